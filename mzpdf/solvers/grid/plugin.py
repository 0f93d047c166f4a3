"""``method = "grid"``: tensor grids (SPEC 3.1), :class:`mzpdf.solvers.grid.engine.GridSolver`.

Tails (``observable.thresholds``, ``observable.quantiles``; :mod:`mzpdf.tails`):
the last noise is integrated in closed form over the atoms ``w_j p_{L-1}(x_j)``
of layer L-1's grid. With thresholds the boxes reach further into the tails
(:func:`mzpdf.solvers.grid.engine.threshold_tail`; once more if a cut could still
matter). The error bound of each probability is the difference to a second
solve on the same boxes with fewer nodes (:data:`COARSE_FRACTION`), plus the
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

from dataclasses import dataclass, field

import numpy as np

from ...laws import AtomLaw, FunctionLaw, MomentLaw
from ...memory import numba_threads
from ...observables import make_observable
from ...results import BackwardSummary, LayerSummary, atom_summary
from ...tails import case_problem
from ..base import JOINT_POINTS, Capabilities, Solution, Solver, noiseless_problem
from ..registry import SOLVERS, accepting
from .engine import GridSolver, grid_bytes, threshold_tail
from .mz import reduce_network
from .options import GridOptions
from .tails import CUT_SHARE, coarse_solve, cut_mass, exceedances, log_tail_of, quantiles, sup_survival, warn_cut

# kernel pairs per second of the windowed transfer sum on 2 cores (4 neurons, 3 tanh layers, 16 nodes:
# 1.3e10 pairs in 8 s); the estimate behind solver.method = "auto"
PAIRS_PER_SECOND = 1e9
# solver.method = "auto" (Grid.auto_refine): nodes per neuron tried, finest first, and the time they may take
AUTO_NODES = (64, 56, 48)
AUTO_REFINE_SECONDS = 5.0


@SOLVERS.register("grid")
class Grid(Solver):
    """Densities on tensor grids of ``solver.nodes`` per neuron: exact
    mass bookkeeping, spectral accuracy, any noise law; up to 3-4 neurons."""

    name = "grid"
    options_class = GridOptions
    capabilities = Capabilities(noiseless=True, max_width=4, projections=("chorin", "mori"),
                                backends=("cpu", "cuda"), tails=True)
    auto_priority = 0
    auto_description = "densities on tensor grids with error control"

    @classmethod
    def auto_refine(cls, case, build):
        """The most nodes of ``AUTO_NODES`` (when the case gives none) whose
        estimate stays within ``AUTO_REFINE_SECONDS``: small states (a 2-D
        net, a 3-D input composed into a 1-D output) get spectral accuracy
        for free, where 40 nodes can leave ~1e-2 (narrow output noise behind a
        composed map)."""
        for nodes in AUTO_NODES:
            finer = build({"nodes": nodes})
            if finer.solver.nodes == case.solver.nodes:  # the case gives its nodes
                return case
            if cls.estimate_seconds(finer) <= AUTO_REFINE_SECONDS:
                return finer
        return case

    @classmethod
    def estimate_seconds(cls, case) -> float:
        """Kernel pairs of every layer's transfer (nodes^(d_in + d_out), d the
        dimension of the state the grid carries: noiseless layers carry
        none) at ``PAIRS_PER_SECOND``."""
        n, dims = case.solver.nodes, [0 if case.input.is_atomic else case.network.widths[0]]
        for layer in case.network:
            if not layer.noise.is_deterministic:
                dims.append(layer.n_out)
        return 0.1 + sum(float(n) ** (a + b) for a, b in zip(dims[:-1], dims[1:])) / PAIRS_PER_SECOND

    @classmethod
    def _problem(cls, case, keys):
        problem = noiseless_problem(cls.name, case, keys)
        if problem is not None:
            return problem
        return case_problem(case)

    @classmethod
    def estimate_bytes(cls, case) -> int:
        projection, columns = case.projection, 0
        if projection is not None:
            keep = len(projection.keep)
            reduced = case.solver.nodes ** keep if projection.kind == "chorin" else 1 + keep * (keep + 3) // 2
            columns = (len(case.network.widths) - 1) * reduced + 1
        hidden = max((layer.n_out for layer in case.network if layer.noise.is_deterministic), default=0)
        return grid_bytes(case.network.state_widths, case.solver.nodes, numba_threads(), columns, hidden)

    @classmethod
    def memory_key(cls, case):
        noiseless = " (noisy ones and the input: noiseless layers are composed)" if case.network.has_noiseless else ""
        others = [name for name in accepting(case) if name != cls.name]
        methods = f", or use solver.method = {' or '.join(repr(m) for m in others)}" if others else ""
        return ("solver.nodes", f"{case.solver.nodes} nodes per neuron on layers of up to "
                f"{max(case.network.state_widths)} neurons{noiseless}; lower solver.nodes{methods}", case.solver.nodes)

    def _march(self, report):
        """The forward solve (with thresholds, on boxes that reach into the
        tails: :func:`~mzpdf.solvers.grid.engine.threshold_tail`)."""
        extra = {} if self.case.tails is None else {"tail": threshold_tail(self.options.tail)}
        return self._engine(**extra).march(self.case.network, self.case.input)

    def _complete(self, native):
        """With thresholds, once more on wider boxes if the cut could still
        matter to an exceedance (more than ``CUT_SHARE`` of it)."""
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
        return self._engine(tail=tail).propagate(case.network, case.input)

    def _engine(self, **overrides) -> GridSolver:
        return GridSolver(self.options, backend=self.case.backend, **overrides)

    def _summarize(self, native) -> list:
        return summarize_forward(native, self.options.marginal_points)

    def _solution(self, forward, backward, diagnostics, native, native_backward, resumed_from):
        return GridSolution(self.name, forward, backward, diagnostics, native, native_backward, resumed_from,
                            observable=self.case.observable, options=self.options, backend=self.case.backend)

    def _pullback(self, native, report):
        points = self._points()
        back = self._engine().pullback(native, self.case.observable, points if len(points) else None)
        tail_fields = {}
        spec = self.case.tails
        if spec is not None:
            g = self.case.observable
            coarse = coarse_solve(native, self.options, self.case.backend)
            prob, err = exceedances(native, coarse, g, spec.thresholds)
            tail_fields = {"thresholds": spec.thresholds, "exceedance": prob, "exceedance_error": err,
                           "quantile_levels": spec.quantiles, "quantiles": quantiles(native, g, spec.quantiles)}
            warn_cut(native, g, spec.thresholds, prob)
        summary = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean, **tail_fields)
        gap = abs(back.mean - back.mean_forward) / max(abs(back.mean_forward), 1e-300)
        return summary, back, {"backward_duality_gap": np.float64(gap)}

    def _reduce(self, solution, report):
        return reduce_network(solution.native, self.case.projection, solution.native_backward, progress=report)


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
        grid = density.grid

        def joint(i, j, x, y):
            nodal = grid.marginal(density.values, (min(i, j), max(i, j)))
            if i > j:
                nodal = nodal.T
            return grid.rules[i].interpolation_matrix(x) @ nodal @ grid.rules[j].interpolation_matrix(y).T

        return FunctionLaw(mass, mean, cov, density.marginal, joint, "grid")

    def _observable(self, g):
        if g is None:
            if self.observable is None:
                raise ValueError("an observable must be given (the case has no [observable])")
            return self.observable
        return make_observable(g) if isinstance(g, dict) else g

    def _exceedance(self, g, t):
        if "solve" not in self._coarse:
            self._coarse["solve"] = coarse_solve(self.native, self.options, self.backend)
        return exceedances(self.native, self._coarse["solve"], self._observable(g), t)

    def _quantile(self, g, q):
        return quantiles(self.native, self._observable(g), q)


def summarize_forward(solution, marginal_points: int = 201) -> list[LayerSummary]:
    """Moments and marginals of every layer of a grid solution; marginals are
    interpolated onto ``marginal_points`` equispaced abscissae per neuron spanning
    the layer's box. A layer without a density (inside a run of noiseless
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
        pdf = np.stack([density.marginal(k, xs[k]) for k in range(grid.ndim)])
        joint = None
        if grid.ndim >= 2:
            x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in grid.box[:2])
            nodal = grid.marginal(density.values, (0, 1))
            joint = (x, y, grid.rules[0].interpolation_matrix(x) @ nodal @ grid.rules[1].interpolation_matrix(y).T)
        out.append(LayerSummary(mean, cov, mass, xs, pdf, grid.box, joint))
    return out
