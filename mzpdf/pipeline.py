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
from .memory import check_memory
from .operators.solve import ForwardSolution, GridSolver
from .progress import Progress
from .results import BackwardSummary, LayerSummary, MonteCarloLayer, Results

__all__ = ["run", "summarize_forward"]

JOINT_POINTS = 81  # per axis, of the stored 2-D marginal of neurons 0 and 1


def run(case, progress: bool = False, checkpoint=None, resume: bool = False) -> Results:
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

    Numerical-health warnings (:class:`mzpdf.errors.MzpdfWarning`) are
    re-issued and also listed, one per line, in ``diagnostics["warnings"]``.

    Raises
    ------
    CaseError
        Before any computation, when the case needs more memory than is
        available (see :mod:`mzpdf.memory`).
    """
    check_memory(case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MzpdfWarning)
        results = _run(case, progress, checkpoint, resume)
    health = []
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if issubclass(w.category, MzpdfWarning):
            health.append(f"{w.category.__name__}: {w.message}")
    if health:
        results.diagnostics["warnings"] = "\n".join(health)
    return results


def _run(case, progress: bool, checkpoint, resume: bool) -> Results:
    start = time.perf_counter()
    report = Progress(case.name, "layers", enabled=progress)
    g = case.observable
    backward = mc_layers = mc_backward = mc_stderr = mz = solution = analysis = None
    if case.solver.method == "montecarlo":
        mc, q0, q0_err = _sample(case, case.solver)
        forward = [_summary_from_montecarlo(layer) for layer in mc.layers]
        diagnostics = {"mass": 1.0 - mc.outside_fraction, "lost_mass": mc.outside_fraction,
                       "samples": np.int64(case.solver.samples)}
        if g is not None:
            backward = BackwardSummary(_points(case), q0, float(mc.g_mean))
            diagnostics["q0_stderr"] = q0_err
            diagnostics["mean_stderr"] = np.float64(mc.g_stderr)
    elif case.solver.method == "sparse":
        from .sparse.solver import SparseSolver

        solution = SparseSolver(case.solver).propagate(case.network, case.input, progress=report)
        forward = summarize_sparse(solution, case.solver)
        diagnostics = dict(solution.diagnostics)
        if g is not None:
            points = _points(case)
            back = SparseSolver(case.solver).pullback(solution, g, points if len(points) else None)
            backward = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean)
            diagnostics["duality_gap"] = back.duality_gap
            diagnostics["backward_duality_gap"] = np.float64(back.duality_gap.max())
    elif case.solver.method == "tt":
        from .tt.solver import TTSolver

        solution = TTSolver(case.solver).propagate(case.network, case.input, progress=report)
        forward = summarize_tt(solution, case.solver.marginal_points)
        diagnostics = dict(solution.diagnostics)
        if g is not None:
            points = _points(case)
            back = TTSolver(case.solver).pullback(solution, g, points if len(points) else None,
                                                  progress=getattr(report, "note", None))
            backward = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean)
            diagnostics.update(back.diagnostics)
            diagnostics["duality_gap"] = back.duality_gap
            diagnostics["backward_duality_gap"] = np.float64(back.duality_gap.max())
        if case.projection is not None:
            report.close()
            mz = _reduce(case, solution, None, forward, progress)
    else:
        solver = GridSolver(case.solver, backend=case.backend)
        states, on_layer = [], None
        if checkpoint is not None:
            states = checkpoint.load() if resume else []
            if not states:
                checkpoint.start()
            on_layer = checkpoint.save
        solution = solver.propagate(case.network, case.input, progress=report, resume=states, on_layer=on_layer)
        forward = summarize_forward(solution, case.solver.marginal_points)
        diagnostics = dict(solution.diagnostics)
        if g is not None:
            points = _points(case)
            back = solver.pullback(solution, g, points if len(points) else None)
            backward = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean)
            gap = abs(back.mean - back.mean_forward) / max(abs(back.mean_forward), 1e-300)
            diagnostics["backward_duality_gap"] = np.float64(gap)
        if case.projection is not None:
            report.close()
            mz = _reduce(case, solution, back if g is not None else None, forward, progress)
    if case.solver.method != "montecarlo" and case.montecarlo is not None:
        mc, q0, mc_stderr = _sample(case, case.montecarlo, [layer.marginal_x for layer in forward])
        mc_layers = mc.layers
        if g is not None:
            mc_backward = BackwardSummary(_points(case), q0, float(mc.g_mean))
            diagnostics["montecarlo_mean_stderr"] = np.float64(mc.g_stderr)
    if case.analysis is not None:
        from .theory.analysis import run_analysis

        analysis = run_analysis(case, forward, solution)
    report.close()
    return Results(
        case_name=case.name, case_toml=case.toml, method=case.solver.method, forward=forward,
        backward=backward, montecarlo=mc_layers, montecarlo_backward=mc_backward,
        montecarlo_backward_stderr=mc_stderr, mz=mz, diagnostics=diagnostics, analysis=analysis,
        wall_time_s=time.perf_counter() - start,
    )


def _reduce(case, solution, back, forward, progress: bool):
    """The Mori-Zwanzig reduction of a grid or TT solution, summarized (on
    TT: the forward equation only, see :mod:`mzpdf.mz.tt`)."""
    if case.solver.method == "tt":
        from .mz.tt import reduce_tt

        report = Progress(f"{case.name}: memory kernels", "layer steps", enabled=progress)
        mz = reduce_tt(solution, case.projection, case.solver, progress=report)
    else:
        from .mz import reduce_network

        report = Progress(f"{case.name}: memory kernels", "layers", enabled=progress)
        mz = reduce_network(solution, case.projection, back, progress=report)
    report.close()
    return mz.summary([layer.marginal_x for layer in forward])


def summarize_forward(solution: ForwardSolution, marginal_points: int = 201) -> list[LayerSummary]:
    """Moments and marginals of every layer of a grid solution; marginals are
    interpolated onto ``marginal_points`` equispaced abscissae per neuron spanning
    the layer's box."""
    out = []
    for n, density in enumerate(solution.densities):
        if density is None:  # an atom: the point input
            x0 = solution.input_law.mean()
            xs = np.repeat(x0[:, None], marginal_points, axis=1)
            out.append(LayerSummary(x0, np.zeros((x0.size, x0.size)), 1.0, xs, np.full(xs.shape, np.inf),
                                    np.column_stack([x0, x0])))
            continue
        grid = density.grid
        mass, mean, cov = density.moments()
        xs = np.stack([np.linspace(lo, hi, marginal_points) for lo, hi in grid.box])
        pdf = np.stack([density.marginal(k, xs[k]) for k in range(grid.ndim)])
        joint = None
        if grid.ndim >= 2:
            x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in grid.box[:2])
            nodal = grid.marginal(density.values, (0, 1))
            joint = (x, y, grid.rules[0].interpolation_matrix(x) @ nodal @ grid.rules[1].interpolation_matrix(y).T)
        out.append(LayerSummary(mean, cov, mass, xs, pdf, grid.box, joint))
    return out


def summarize_tt(solution, marginal_points: int = 201) -> list[LayerSummary]:
    """Moments and marginals of every layer of a TT solution (marginals on
    ``marginal_points`` equispaced abscissae per neuron spanning the box that
    cuts ``tail`` mass per side)."""
    tail = 1e-10
    out = []
    for n, law in enumerate(solution.laws):
        if n == 0 and solution.input_law.is_atomic:
            x0 = solution.input_law.mean()
            xs = np.repeat(x0[:, None], marginal_points, axis=1)
            out.append(LayerSummary(x0, np.zeros((x0.size, x0.size)), 1.0, xs, np.full(xs.shape, np.inf),
                                    np.column_stack([x0, x0])))
            continue
        mass, mean, cov = law.moments()
        box = law.box(tail)
        xs = np.stack([np.linspace(lo, hi, marginal_points) for lo, hi in box])
        pdf = np.stack([law.marginal(k, xs[k]) for k in range(law.dim)])
        joint = None
        if law.dim >= 2:
            x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in box[:2])
            pdf2 = law.joint01(x, y)
            joint = None if pdf2 is None else (x, y, pdf2)
        out.append(LayerSummary(mean, cov, float(mass) if n else 1.0, xs, pdf, box, joint))
    return out


def summarize_sparse(solution, options) -> list[LayerSummary]:
    """Moments and marginals of every layer of a sparse-grid solution
    (``options``: the SparseGridOptions). The input layer comes from the input
    law itself; a layer's marginals are on ``marginal_points`` equispaced
    abscissae over its grid's box (``box`` standard deviations about the mean)."""
    law0 = solution.input_law
    m = options.marginal_points
    if law0.is_atomic:
        x0 = law0.mean()
        xs = np.repeat(x0[:, None], m, axis=1)
        out = [LayerSummary(x0, np.zeros((x0.size, x0.size)), 1.0, xs, np.full(xs.shape, np.inf),
                            np.column_stack([x0, x0]))]
    else:
        box = law0.box(1e-12)
        xs = np.stack([np.linspace(lo, hi, m) for lo, hi in box])
        out = [LayerSummary(law0.mean(), law0.cov(), 1.0, xs, np.stack([law0.marginal_pdf(k, xs[k])
                                                                       for k in range(law0.dim)]), box,
                            _sparse_joint(solution.laws[0], box))]
    for law in solution.laws[1:]:
        mass, mean, cov = law.moments()
        sd = np.sqrt(np.diag(law.chol @ law.chol.T))
        box = np.column_stack([law.mean - options.box * sd, law.mean + options.box * sd])
        xs = np.stack([np.linspace(lo, hi, m) for lo, hi in box])
        pdf = np.stack([law.marginal([k], xs[k][:, None]) for k in range(law.dim)])
        out.append(LayerSummary(mean, cov, float(mass), xs, pdf, box, _sparse_joint(law, box)))
    return out


def _sparse_joint(law, box):
    """The 2-D marginal of neurons 0 and 1 of a sparse-grid log-density (None below width 2)."""
    if law.dim < 2:
        return None
    x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in box[:2])
    X, Y = np.meshgrid(x, y, indexing="ij")
    pdf = law.marginal([0, 1], np.column_stack([X.ravel(), Y.ravel()]))
    return x, y, pdf.reshape(X.shape)


def _summary_from_montecarlo(layer: MonteCarloLayer) -> LayerSummary:
    x = layer.marginal_x
    h = (x[:, -1:] - x[:, :1]) / max(x.shape[1] - 1, 1) if x.shape[1] > 1 else np.zeros((x.shape[0], 1))
    box = np.column_stack([x[:, 0] - h[:, 0] / 2, x[:, -1] + h[:, 0] / 2])
    mass = float(np.min(np.sum(layer.marginal_pdf * h, axis=1))) if np.all(np.isfinite(layer.marginal_pdf)) else 1.0
    return LayerSummary(layer.mean, layer.cov, mass, x, layer.marginal_pdf, box)


def _sample(case, opt, abscissae=None):
    """Monte Carlo run of ``case`` with options ``opt``: (run, q0, q0 stderr)
    (q0 empty without an observable or points)."""
    from .montecarlo import conditional_mean, simulate

    seed = case.seed if opt.seed is None else opt.seed
    marginal_points = getattr(opt, "marginal_points", 201)
    mc = simulate(case.network, case.input, samples=opt.samples, seed=seed, chunk=opt.chunk,
                  abscissae=abscissae, marginal_points=marginal_points, observable=case.observable)
    points = _points(case)
    if case.observable is None or not len(points):
        return mc, np.zeros(0), np.zeros(0)
    q0, err = conditional_mean(case.network, points, case.observable, samples=opt.samples, seed=seed,
                               chunk=opt.chunk)
    return mc, q0, err


def _points(case) -> np.ndarray:
    if case.points is None:
        return np.zeros((0, case.network.widths[0]))
    return np.asarray(case.points, dtype=np.float64)
