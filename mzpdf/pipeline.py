"""The pipeline as one function: a validated case in, :class:`Results` out.

No file I/O happens here: :mod:`mzpdf.cli` reads the case and writes the
results, and Python users call :func:`run` on a case from
:func:`mzpdf.load_case` (or build solvers directly).
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from .errors import MzpdfWarning
from .results import BackwardSummary, Results
from .solvers import SOLVERS
from .solvers.base import case_points
from .theory.analysis import run_analysis

__all__ = ["run"]


def run(case, progress: bool = False, checkpoint=None, resume: bool = False, executor=None) -> Results:
    """Run ``case`` (a :class:`mzpdf.io.case.Case`) and return its results.

    Parameters
    ----------
    case : Case
    progress : bool
        Report each finished layer on stderr (only when stderr is a terminal).
    checkpoint : mzpdf.io.checkpoint.Checkpoint, optional
        Where the forward solve stores each finished layer.
    resume : bool
        Continue from ``checkpoint``'s layers when it holds this very case.
    executor : callable, optional
        ``executor(fn, items)`` -> ``[fn(item) for item in items]``, computed on
        a cluster (:func:`mzpdf.sweep.dask_executor`), for a method whose
        capabilities say ``distributed``; the numbers do not depend on it.

    Numerical-health warnings (:class:`mzpdf.errors.MzpdfWarning`) are
    re-issued and also listed, one per line, in ``diagnostics["warnings"]``.

    Raises
    ------
    CaseError
        Before any computation, when the case needs more memory than is
        available (see :mod:`mzpdf.memory`).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MzpdfWarning)
        results = _run(case, progress, checkpoint, resume, executor)
    health = []
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if issubclass(w.category, MzpdfWarning):
            health.append(f"{w.category.__name__}: {w.message}")
    if health:
        results.diagnostics["warnings"] = "\n".join(health)
    return results


def _run(case, progress: bool, checkpoint, resume: bool, executor=None) -> Results:
    start = time.perf_counter()
    solver = SOLVERS.get(case.solver.method, "solver.method")(case, executor)
    solution = solver.solve(progress=progress, checkpoint=checkpoint, resume=resume)
    diagnostics = dict(solution.diagnostics)
    mz = analysis = mc_layers = mc_backward = mc_stderr = None
    if case.projection is not None:
        mz = solver.reduce(solution, progress)
    if case.montecarlo is not None and solver.capabilities.densities:  # a sampling reference beside densities
        reference = SOLVERS.get(case.montecarlo.method)  # the method the [montecarlo] section's options are of
        mc, q0, mc_stderr = reference.reference(case, [layer.marginal_x for layer in solution.forward])
        mc_layers = mc.layers
        if case.observable is not None:
            mc_backward = BackwardSummary(case_points(case), q0, float(mc.g_mean))
            diagnostics["montecarlo_mean_stderr"] = np.float64(mc.g_stderr)
    if case.analysis is not None:
        analysis = run_analysis(case, solution)
    problems = solver.accuracy_problems(solution)
    return Results(
        accepted=not problems, reason="; ".join(problems), method_reason=getattr(case, "method_reason", ""),
        case_name=case.name, case_toml=case.toml, method=case.solver.method, forward=list(solution.forward),
        backward=solution.backward, montecarlo=mc_layers, montecarlo_backward=mc_backward,
        montecarlo_backward_stderr=mc_stderr, mz=mz, diagnostics=diagnostics, analysis=analysis,
        wall_time_s=time.perf_counter() - start, solution=solution, resumed_from_layer=solution.resumed_from_layer,
    )
