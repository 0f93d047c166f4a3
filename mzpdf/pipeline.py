"""The pipeline as one function: a validated case in, :class:`Results` out.

No file I/O happens here: :mod:`mzpdf.cli` reads the case and writes the
results, and Python users call :func:`run` on a case from
:func:`mzpdf.load_case`, :func:`solve` on a network and an input law (the
same case, built from the pieces), or build solvers directly.

A case whose input has inputs known exactly was solved on its folded network
(:mod:`mzpdf.network.folding`); :func:`run` reports its layer 0 as the
case's input law and its points as given (:class:`UnfoldedSolution`).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ._validate import number
from .errors import CaseError, MzpdfWarning
from .io.case import load_case
from .network import InputLaw, Network
from .options import is_auto
from .laws import Law
from .results import BackwardSummary, LayerSummary, Results
from .solvers import SOLVERS, Solution
from .solvers.base import case_points
from .theory.analysis import run_analysis

__all__ = ["DEFAULT_TOL", "UnfoldedSolution", "run", "solve"]

DEFAULT_TOL = 1e-3  # solver.tol's default (an L1 bound on every layer's marginals, SPEC's error contract)

# The half-width, in standard deviations, of a folded input's stored marginals when the method's own layer 0 gives
# no finite abscissae to copy: 8 std hold all but 1.2e-15 of a gaussian's mass.
UNFOLD_HALF_WIDTH = 8.0


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


def solve(network, input_law, method: str = "auto", tol: float = DEFAULT_TOL, *, observable: dict | None = None,
          montecarlo: dict | None = None, name: str = "solve", seed: int = 0, progress: bool = False,
          **options) -> Results:
    """Propagate ``input_law`` through ``network`` without a case file: the
    same :class:`Results` as ``run(load_case(...))`` of the equivalent case.

    The pieces are written into a case table (``network.to_dict()``, the
    input's table, ``[solver]``) and validated by :func:`mzpdf.load_case`,
    so every rule of a case file applies, and ``results.case_toml`` is a case
    file that ``mzpdf run`` reruns.

    Parameters
    ----------
    network : Network or dict
        E.g. from :func:`mzpdf.from_sklearn`, :func:`mzpdf.from_torch`,
        :func:`mzpdf.load_onnx` or :func:`mzpdf.random_network`; or a
        ``[network]`` table.
    input_law : InputLaw or dict
        E.g. ``mzpdf.GaussianInput(mean, cov)`` or an ``[input]`` table such as
        ``{"kind": "gaussian", "mean": [...], "std": [...]}`` (a std of 0 marks
        an input known exactly).
    method : str
        ``solver.method``: ``"auto"`` or a name in :data:`mzpdf.SOLVERS`.
    tol : float
        ``solver.tol``, passed to a method whose options take it (every one
        once ``solver.tol`` has one meaning for all; today: ``tt``'s rounding
        tolerance and ``sparse``'s acceptance tolerance). With a method, or
        with ``"auto"`` among candidates, that do not take it, the default is
        left out and another value is a CaseError naming ``tol``.
    observable, montecarlo : dict, optional
        The ``[observable]`` and ``[montecarlo]`` tables.
    name, seed : str, int
        ``case.name`` and ``case.seed``.
    progress : bool
        Report each finished layer on stderr (a terminal only).
    **options
        The method's ``[solver]`` options (``nodes=64``, ``samples=10**5``,
        ``backend="cpu"``, ``max_lost_mass=...``).

    Raises
    ------
    CaseError
        Naming the argument: ``network...``, ``input_law...``, ``method``,
        ``tol``, an option's name, ``observable...``, ``montecarlo...``.
    """
    if isinstance(network, Network):
        network = network.to_dict()
    elif not isinstance(network, dict):
        raise CaseError("network", "must be a Network (mzpdf.from_sklearn, from_torch, load_onnx, random_network, "
                        "make_network) or a [network] table", type(network).__name__)
    if isinstance(input_law, InputLaw):
        input_law = input_law.to_dict()
    elif not isinstance(input_law, dict):
        raise CaseError("input_law", "must be an InputLaw (mzpdf.GaussianInput, UniformInput, MixtureInput, "
                        "PointInput) or an [input] table", type(input_law).__name__)
    solver = {"method": method, **options, **_tol_entry(method, tol)}
    table = {"case": {"name": name, "seed": seed}, "network": network, "input": input_law, "solver": solver}
    for section, value in (("observable", observable), ("montecarlo", montecarlo)):
        if value is not None:
            table[section] = value
    try:
        case = load_case(table)
    except CaseError as err:
        raise _argument_error(err) from None
    return run(case, progress=progress)


def _tol_entry(method, tol) -> dict:
    """``{"tol": tol}`` when the method (every candidate of ``"auto"``) takes
    ``solver.tol``; ``{}`` for the default otherwise."""
    tol = number(tol, "tol", 0.0)
    if is_auto(method):
        names = [n for n in SOLVERS if SOLVERS.get(n).auto_priority is not None]
    else:
        names = [SOLVERS.get(method, "method").name]
    refused = [n for n in names if not _takes_tol(n)]
    if not refused:
        return {"tol": tol}
    if tol == DEFAULT_TOL:
        return {}
    raise CaseError("tol", f"is not an option of method {', '.join(refused)} (method = {method!r}) in this version: "
                    f"leave it at {DEFAULT_TOL:g}, or name a method that takes it "
                    f"({', '.join(n for n in SOLVERS if _takes_tol(n))})", tol)


def _takes_tol(name: str) -> bool:
    return "tol" in {f.name for f in fields(SOLVERS.get(name).options_class)}


# case keys -> solve's arguments, longest first
_ARGUMENTS = (("solver.method", "method"), ("solver.tol", "tol"), ("solver.", ""), ("input", "input_law"),
              ("case.name", "name"), ("case.seed", "seed"))


def _argument_error(err: CaseError) -> CaseError:
    """``err`` with its case key named as :func:`solve`'s argument."""
    key = err.key
    for case_key, argument in _ARGUMENTS:
        if key == case_key or key.startswith(case_key) and (case_key.endswith(".") or key[len(case_key)] in ".["):
            key = argument + key[len(case_key):]
            break
    if key == err.key:
        return err
    return CaseError(key, err.rule) if err.value is CaseError._MISSING else CaseError(key, err.rule, err.value)


def _run(case, progress: bool, checkpoint, resume: bool, executor=None) -> Results:
    start = time.perf_counter()
    solver = SOLVERS.get(case.solver.method, "solver.method")(case, executor)
    solution = solver.solve(progress=progress, checkpoint=checkpoint, resume=resume)
    fold = getattr(case, "fold", None)
    if fold is not None and fold.rank > 0:  # inputs known exactly: layer 0 and the points as the case gave them
        solution = _unfold(solution, fold)
        case = replace(case, network=fold.network, input=fold.input, points=fold.points)
    diagnostics = dict(solution.diagnostics)
    mz = analysis = mc_layers = mc_backward = mc_stderr = None
    if case.projection is not None:
        mz = solver.reduce(solution, progress)
    if case.montecarlo is not None and solver.capabilities.densities:  # a sampling reference beside densities
        reference = SOLVERS.get(case.montecarlo.method)  # the method the [montecarlo] section's options are of
        mc, q0, mc_stderr = reference.reference(case, [layer.marginal_x for layer in solution.forward])
        mc_layers = mc.layers
        if fold is not None and fold.rank > 0:  # the inputs known exactly are points, as in /forward
            known = fold.input.known
            pdf, err = mc_layers[0].marginal_pdf.copy(), mc_layers[0].marginal_stderr.copy()
            pdf[known], err[known] = np.inf, 0.0
            mc_layers = [replace(mc_layers[0], marginal_pdf=pdf, marginal_stderr=err)] + mc_layers[1:]
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


@dataclass(frozen=True)
class UnfoldedSolution(Solution):
    """The solution of a case whose known inputs were folded into the first
    layer (:mod:`mzpdf.network.folding`), in the case's coordinates: layer 0
    is the case's input law (N_0 neurons), the later layers and the tails
    are the folded solve's, and ``backward.points`` the case's points."""

    folded: Solution | None = field(default=None, repr=False)
    input_law: Law | None = field(default=None, repr=False)

    def _law(self, n: int) -> Law:
        return self.input_law if n == 0 else self.folded.law(n)

    def _exceedance(self, g, t):
        return self.folded._exceedance(g, t)

    def _quantile(self, g, q):
        return self.folded._quantile(g, q)


def _unfold(solution: Solution, fold) -> UnfoldedSolution:
    """``solution`` (of the folded case) reported in the case's coordinates."""
    z = solution.forward[0]  # the law of z ~ N(0, I_r), on the method's abscissae
    m = z.marginal_x.shape[1]
    half = float(np.max(np.abs(z.marginal_x[np.isfinite(z.marginal_x)]), initial=0.0)) or UNFOLD_HALF_WIDTH
    x = fold.input_abscissae(m, half)
    n0 = x.shape[0]
    zero = LayerSummary(
        fold.mean, fold.input.cov(), z.mass, x, fold.input_marginals(x), np.column_stack([x[:, 0], x[:, -1]]),
        mean_stderr=None if z.mean_stderr is None else np.zeros(n0),
        marginal_pdf_stderr=None if z.marginal_pdf_stderr is None else np.zeros(x.shape))
    backward = solution.backward
    if backward is not None:
        points = fold.points if fold.points is not None else np.zeros((0, n0))
        backward = replace(backward, points=points)
    return UnfoldedSolution(solution.method, (zero,) + tuple(solution.forward[1:]), backward, solution.diagnostics,
                            solution.native, solution.native_backward, solution.resumed_from_layer, folded=solution,
                            input_law=fold.law())
