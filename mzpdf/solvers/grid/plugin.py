"""``method = "grid"``: tensor grids (SPEC 3.1), :class:`mzpdf.solvers.grid.engine.GridSolver`.

Tails (``observable.thresholds``, ``observable.quantiles``; :mod:`mzpdf.tails`):
the last noise is integrated in closed form over the atoms ``w_j p_{L-1}(x_j)``
of layer L-1's grid. With thresholds the boxes reach further into the tails
(:func:`mzpdf.solvers.grid.engine.threshold_tail`; once more if a cut could still
matter). The error bound of each probability is the difference to a second
solve on the same boxes with half the nodes (the companion of
:mod:`mzpdf.solvers.grid.accuracy`), plus the
mass the boxes cut times the largest survival any cut atom can have, plus a
round-off allowance.

Noiseless layers (``noise = none``): a run of them and the noisy layer
after it is one transition ``k(y | x) = rho(y - G(x))``, ``G`` the composed
map evaluated at the nodes of the last density
(:meth:`mzpdf.network.Network.collapsed`), so the grids have the widths of
the input and the noisy layers only. A layer inside such a run has no
density: its moments are exact quadratures of the push-forward
(:meth:`mzpdf.solvers.grid.engine.ForwardSolution.pushforward`), its marginals
NaN, ``/diagnostics/no_density`` marks it and ``law(n).marginal`` raises
:class:`~mzpdf.errors.SingularDensityError`. A noiseless last layer (no
density at the output), ``[projection]`` and ``[analysis] distances`` on
such nets are refused (qmc takes the first).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...laws import AtomLaw, FunctionLaw, MomentLaw
from ...memory import numba_threads
from ...observables import make_observable
from ...options import is_auto
from ...results import BackwardSummary, LayerSummary, atom_summary
from ...tails import case_problem
from ..base import JOINT_POINTS, Capabilities, Solution, Solver, noiseless_problem
from ..registry import SOLVERS, accepting
from .accuracy import companion, error_estimate, forecast_seconds, next_nodes, start_nodes
from .engine import GridSolver, grid_bytes, threshold_tail
from .mz import reduce_network
from .options import GridOptions
from .tails import CUT_SHARE, cut_mass, exceedances, log_tail_of, quantiles, sup_survival, warn_cut

@SOLVERS.register("grid")
class Grid(Solver):
    """Densities on tensor grids of ``solver.nodes`` per neuron: exact
    mass bookkeeping, spectral accuracy, any noise law; up to 3-4 neurons."""

    name = "grid"
    options_class = GridOptions
    capabilities = Capabilities(noiseless=True, max_width=4, projections=("chorin", "mori"),
                                backends=("cpu", "cuda"), tails=True)
    auto_priority = 0
    auto_description = "densities on tensor grids, refined to solver.tol"

    @classmethod
    def estimate_seconds(cls, case) -> float:
        """The forecast of the first level (:func:`~mzpdf.solvers.grid.accuracy.start_nodes`
        with ``nodes = "auto"``), or of the solve at the case's nodes."""
        return forecast_seconds(_state_widths(case), _first_nodes(case))

    @classmethod
    def _problem(cls, case, keys):
        problem = noiseless_problem(cls.name, case, keys)
        if problem is not None:
            return problem
        problem = case_problem(case)
        if problem is not None or not is_auto(_grid_option(case, "nodes")):
            return problem
        nodes, seconds, budget = _first_nodes(case), cls.estimate_seconds(case), _grid_option(case, "max_seconds")
        if seconds > budget:  # refused in seconds, not after a run that cannot meet tol
            return ("solver.nodes", f"is 'auto': even the first level ({nodes} nodes per neuron on laws of up to "
                    f"{max(_state_widths(case))} neurons) is forecast at {seconds:.3g} s, beyond solver.max_seconds "
                    f"= {budget:g}", "auto")
        return None

    @classmethod
    def estimate_bytes(cls, case) -> int:
        projection, columns = case.projection, 0
        if projection is not None:
            keep = len(projection.keep)
            reduced = _first_nodes(case) ** keep if projection.kind == "chorin" else 1 + keep * (keep + 3) // 2
            columns = (len(case.network.widths) - 1) * reduced + 1
        hidden = max((layer.n_out for layer in case.network if layer.noise.is_deterministic), default=0)
        return grid_bytes(case.network.state_widths, _first_nodes(case), numba_threads(), columns, hidden)

    @classmethod
    def memory_key(cls, case):
        noiseless = " (noisy ones and the input: noiseless layers are composed)" if case.network.has_noiseless else ""
        others = [name for name in accepting(case) if name != cls.name]
        methods = f", or use solver.method = {' or '.join(repr(m) for m in others)}" if others else ""
        nodes = _first_nodes(case)
        return ("solver.nodes", f"{nodes} nodes per neuron on layers of up to "
                f"{max(case.network.state_widths)} neurons{noiseless}; lower solver.nodes{methods}", case.solver.nodes)

    def _march(self, report):
        """The forward solve at the first level's nodes (with thresholds, on
        boxes that reach into the tails: :func:`~mzpdf.solvers.grid.engine.threshold_tail`)."""
        self._tail = self.options.tail if self.case.tails is None else threshold_tail(self.options.tail)
        self._nodes, self._started = _first_nodes(self.case), time.perf_counter()
        return self._engine(nodes=self._nodes, tail=self._tail).march(self.case.network, self.case.input)

    def _complete(self, native):
        """Refine to ``solver.tol`` (``nodes = "auto"``, :mod:`~mzpdf.solvers.grid.accuracy`);
        with thresholds, once more on wider boxes if the cut could still matter
        to an exceedance (more than ``CUT_SHARE`` of it); then the estimate
        from the companion solve of the solve kept."""
        case, opt = self.case, self.options
        widths, hidden = _state_widths(case), _hidden_width(case)
        levels, level_start = 1, getattr(self, "_started", time.perf_counter())
        while is_auto(opt.nodes):
            self._companion = companion(native, opt, case.backend)
            self._estimate = error_estimate(native, self._companion)
            if np.max(self._estimate) <= opt.tol:
                break
            now = time.perf_counter()
            finer = next_nodes(widths, self._nodes, now - level_start, opt.max_seconds - (now - self._started),
                               hidden)
            if finer is None:
                break
            level_start, self._nodes, levels = now, finer, levels + 1
            native = self._engine(nodes=finer, tail=self._tail).propagate(case.network, case.input)
        self._levels = levels
        widened = self._widen(native)
        if widened is not native or not is_auto(opt.nodes):
            native = widened
            self._companion = companion(native, opt, case.backend)
            self._estimate = error_estimate(native, self._companion)
        GridSolver(opt, backend=case.backend, nodes=self._nodes).report_health(native)
        return native

    def _widen(self, native):
        """With thresholds, the solve once more on wider boxes if the cut could
        still matter to an exceedance (more than ``CUT_SHARE`` of it)."""
        case, spec = self.case, self.case.tails
        if spec is None or not spec.thresholds.size:
            return native
        g, t = case.observable, spec.thresholds
        prob = np.exp(log_tail_of(native, g, t))
        effect = cut_mass(native) * sup_survival(native.layers, g, t)
        share = np.where(prob > 0, effect / np.where(prob > 0, prob, 1.0), 0.0)  # P = 0: its bound says it
        worst = int(np.argmax(share))
        if share[worst] <= CUT_SHARE:
            return native
        tail = threshold_tail(threshold_tail(self.options.tail), effect[worst], CUT_SHARE * prob[worst])
        return self._engine(nodes=self._nodes, tail=tail).propagate(case.network, case.input)

    def _engine(self, **overrides) -> GridSolver:
        overrides.setdefault("nodes", getattr(self, "_nodes", _first_nodes(self.case)))
        return GridSolver(self.options, backend=self.case.backend, check_health=False, **overrides)

    def _diagnostics(self, native) -> dict:
        out = dict(native.diagnostics)
        out["error_estimate"] = self._estimate
        out["nodes"] = np.int64(self._nodes)
        out["refinements"] = np.int64(self._levels - 1)
        return out

    def _accuracy_problems(self, solution) -> list[str]:
        est = np.asarray(solution.diagnostics.get("error_estimate", np.zeros(1)), dtype=np.float64)
        tol = self.options.tol
        if np.all(est <= tol):
            return []
        n = int(np.argmax(est))
        nodes = int(solution.diagnostics.get("nodes", 0))
        how = ("raise solver.max_seconds, or use another method" if is_auto(self.options.nodes)
               else "raise solver.nodes or set it to 'auto'")
        return [f"error estimate {est[n]:.3g} at layer {n} is above solver.tol = {tol:g} with {nodes} nodes per "
                f"neuron ({how})"]

    def _summarize(self, native) -> list:
        return summarize_forward(native, self.options.marginal_points)

    def _solution(self, forward, backward, diagnostics, native, native_backward, resumed_from):
        return GridSolution(self.name, forward, backward, diagnostics, native, native_backward, resumed_from,
                            observable=self.case.observable, options=self.options, backend=self.case.backend,
                            _coarse={"solve": self._companion})

    def _pullback(self, native, report):
        points = self._points()
        back = self._engine().pullback(native, self.case.observable, points if len(points) else None)
        tail_fields = {}
        spec = self.case.tails
        if spec is not None:
            g = self.case.observable
            prob, err = exceedances(native, self._companion, g, spec.thresholds)
            tail_fields = {"thresholds": spec.thresholds, "exceedance": prob, "exceedance_error": err,
                           "quantile_levels": spec.quantiles, "quantiles": quantiles(native, g, spec.quantiles)}
            warn_cut(native, g, spec.thresholds, prob)
        summary = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean, **tail_fields)
        gap = abs(back.mean - back.mean_forward) / max(abs(back.mean_forward), 1e-300)
        return summary, back, {"backward_duality_gap": np.float64(gap)}

    def _reduce(self, solution, report):
        return reduce_network(solution.native, self.case.projection, solution.native_backward, progress=report)


def _state_widths(case) -> list[int]:
    """Widths of the laws a grid solve holds (0 for a point input; noiseless layers are composed)."""
    return [0 if case.input.is_atomic else case.network.widths[0]] + [
        layer.n_out for layer in case.network if not layer.noise.is_deterministic]


def _hidden_width(case) -> int:
    return max((layer.n_out for layer in case.network if layer.noise.is_deterministic), default=0)


def _first_nodes(case) -> int:
    """The case's nodes, or the first level of ``nodes = "auto"``."""
    nodes = _grid_option(case, "nodes")
    return start_nodes(_state_widths(case), _hidden_width(case)) if is_auto(nodes) else int(nodes)


def _grid_option(case, name: str):
    """The case's grid option ``name`` (its default when the case is another method's, as in
    :func:`~mzpdf.solvers.registry.accepting`)."""
    solver = case.solver if isinstance(case.solver, GridOptions) else GridOptions()
    return getattr(solver, name)


@dataclass(frozen=True)
class GridSolution(Solution):
    """The grid's result: laws from the nodal densities themselves, and
    tails with their error bounds (:mod:`mzpdf.solvers.grid.tails`)."""

    observable: object = field(repr=False, default=None)  # the case's [observable]: g = None in the tails
    options: GridOptions | None = field(repr=False, default=None)
    backend: str = "cpu"
    _coarse: dict = field(repr=False, compare=False, default_factory=dict)  # the tails' coarse solve, once

    def _law(self, n):
        native = self.native
        index = native.density_index(n)
        if index is None:
            return MomentLaw(self.forward[n], f"layer {n} is the output of the noiseless layer {n - 1}: a map "
                             "of the last layer with a density, so it has no density of its own (its mean and "
                             f"covariance are exact quadratures of that map; give layer {n - 1} noise for a density)")
        density = native.densities[index]
        if density is None:
            return AtomLaw(native.input_law.mean())
        mass, mean, cov = density.moments()

        def marginal(i, x):
            return native.marginal(index, i, x)

        def joint(i, j, x, y):
            x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
            return native.joint(index, i, j, x.reshape(-1), y.reshape(-1)).reshape(x.shape + y.shape)

        return FunctionLaw(mass, mean, cov, marginal, joint, "grid")

    def _observable(self, g):
        if g is None:
            if self.observable is None:
                raise ValueError("an observable must be given (the case has no [observable])")
            return self.observable
        return make_observable(g) if isinstance(g, dict) else g

    def _exceedance(self, g, t):
        if "solve" not in self._coarse:
            self._coarse["solve"] = companion(self.native, self.options, self.backend)
        return exceedances(self.native, self._coarse["solve"], self._observable(g), t)

    def _quantile(self, g, q):
        return quantiles(self.native, self._observable(g), q)


def summarize_forward(solution, marginal_points: int = 201) -> list[LayerSummary]:
    """Moments and marginals of every layer of a grid solution; marginals are
    the layers' own kernel sums (:meth:`ForwardSolution.marginal`) at
    ``marginal_points`` equispaced abscissae per neuron spanning the layer's box. A layer without a density (inside a run of noiseless
    layers) gets the moments of its push-forward, NaN marginals on abscissae
    spanning the images of the nodes, and that span as its box."""
    out = []
    for n in range(solution.layers.depth + 1):
        index = solution.density_index(n)
        if index is None:
            mass, mean, cov, box = solution.pushforward(n)
            xs = np.stack([np.linspace(lo, hi, marginal_points) for lo, hi in box])
            out.append(LayerSummary(mean, cov, mass, xs, np.full(xs.shape, np.nan), box))
            continue
        density = solution.densities[index]
        if density is None:  # an atom: the point input
            out.append(atom_summary(solution.input_law.mean(), marginal_points))
            continue
        grid = density.grid
        mass, mean, cov = density.moments()
        xs = np.stack([np.linspace(lo, hi, marginal_points) for lo, hi in grid.box])
        pdf = np.stack([solution.marginal(index, k, xs[k]) for k in range(grid.ndim)])
        joint = None
        if grid.ndim >= 2:
            x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in grid.box[:2])
            joint = (x, y, solution.joint(index, 0, 1, x, y))
        out.append(LayerSummary(mean, cov, mass, xs, pdf, grid.box, joint))
    return out
