"""``solver.method = "auto"`` (the default): the registry chooses the method.

The candidates are the registered methods with an ``auto_priority`` (lower
first): today grid (deterministic, error-controlled, cheap while the state
it carries is 1-4 dimensional after deterministic layers are composed) and
then qmc (randomized quasi-Monte Carlo: any width, any layer, with stated
standard errors). A noiseless network (a trained model: uncertainty only in
its input) goes to qmc, whose preintegration gives the densities of its
layers and the tails of its output; with a gaussian input of at most 3
dimensions (``solver.outer = "auto"``) deterministically, by composite
Gauss-Legendre over the input directions not integrated exactly. tt and sparse are chosen only when a case names them:
their cost and accuracy on dense layers are not predictable before a run
(docs/benchmarks.md).

The method taken may then refine its own defaults within a small time
(``Solver.auto_refine``: the grid takes more nodes per neuron while its
estimate stays within a few seconds); keys the case gives are kept.

A candidate is taken when it accepts the case (its ``check_case``), its
memory estimate fits the memory available (the guard of ``mzpdf run``) and
its ``estimate_seconds`` is within :data:`AUTO_SECONDS`; when every accepting
candidate is estimated slower, the quickest is taken. The choice and the
reason are the case's ``method_reason`` (``/diagnostics`` attribute
``method_reason``, and one line on stderr from ``mzpdf run``).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from ..errors import CaseError
from ..memory import available_bytes, format_bytes
from ..options import is_auto
from .registry import SOLVERS, estimate_bytes

__all__ = ["AUTO_SECONDS", "choose_method"]

AUTO_SECONDS = 300.0  # a candidate estimated slower than this gives way to the next one


def choose_method(method, build: Callable) -> object:
    """The case of ``method``: ``build(name)`` (a validated Case for method
    ``name``, or a CaseError) for a named method, or the case of the method
    chosen for ``"auto"``, with its ``method_reason`` (empty for a named
    method).

    Raises
    ------
    CaseError
        ``solver.method`` when no candidate takes the case, listing why each
        refused (the refusals name the key: ``network.layers[2].noise.kind``,
        ``solver.nodes``, ...).
    """
    if not is_auto(method):
        return build(method)  # method_reason stays empty: the case named its method
    names = sorted((SOLVERS.get(name).auto_priority, name) for name in SOLVERS
                   if SOLVERS.get(name).auto_priority is not None)
    refused, feasible = [], []
    have = available_bytes()
    for _, name in names:
        try:
            case = build(name)
        except CaseError as err:
            refused.append(f"{name}: {err}")
            continue
        need = estimate_bytes(case)
        if need > have:
            refused.append(f"{name}: needs about {format_bytes(need)} of memory, {format_bytes(have)} available")
            continue
        seconds = float(SOLVERS.get(name).estimate_seconds(case))
        feasible.append((name, case, seconds))
        if seconds <= AUTO_SECONDS:
            break
    if not feasible:
        raise CaseError("solver.method", "is 'auto' and no registered method takes this case: "
                        + "; ".join(refused), "auto")
    name, case, seconds = next(((n, c, s) for n, c, s in feasible if s <= AUTO_SECONDS),
                               min(feasible, key=lambda f: f[2]))
    finer = SOLVERS.get(name).auto_refine(case, lambda defaults: build(name, defaults))
    if finer is not case and estimate_bytes(finer) <= have:
        case, seconds = finer, float(SOLVERS.get(name).estimate_seconds(finer))
    why = [f"solver.method = 'auto' chose {name} (estimated {_seconds(seconds)}; "
           f"{SOLVERS.get(name).auto_description})"]
    why += [f"not {text}" for text in refused]
    why += [f"not {n} (estimated {_seconds(s)})" for n, _, s in feasible if n != name]
    return dataclasses.replace(case, method_reason="; ".join(why))


def _seconds(s: float) -> str:
    return f"{s:.2g} s" if s < 10 else f"{s:.0f} s"
