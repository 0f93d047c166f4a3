"""``method = "grid"``: tensor grids (SPEC 3.1), :class:`mzpdf.operators.solve.GridSolver`.

Tails (``observable.thresholds``, ``observable.quantiles``; :mod:`mzpdf.tails`):
the last noise is integrated in closed form over the atoms ``w_j p_{L-1}(x_j)``
of layer L-1's grid. With thresholds the boxes reach further into the tails
(:func:`mzpdf.operators.solve.threshold_tail`; once more if a cut could still
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
(:meth:`mzpdf.operators.solve.ForwardSolution.pushforward`), its marginals
NaN, ``/diagnostics/no_density`` marks it and ``law(n).marginal`` raises
:class:`~mzpdf.errors.SingularDensityError`. A noiseless last layer (no
density at the output), ``[projection]`` and ``[analysis] distances`` on
such nets are refused (qmc takes the first).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..memory import grid_bytes, numba_threads
from ..results import BackwardSummary, LayerSummary
from ..options import GridOptions
from ..errors import CaseError
from .base import SOLVERS, AtomLaw, Capabilities, FunctionLaw, MomentLaw, Solver, accepting

JOINT_POINTS = 81  # per axis, of the stored 2-D marginal of neurons 0 and 1
# Nodes of the second solve behind an exceedance's error bound, as a fraction
# of solver.nodes: coarse enough that its error dominates the fine solve's
# under spectral convergence (so |fine - coarse| bounds the fine error), fine
# enough to be resolved; costs about 0.75^(2N) of the solve for N neurons.
COARSE_FRACTION = 0.75
# Round-off allowance of an exceedance, relative to it: L + 1 chained
# Nystrom sums of positive terms and a log-sum-exp, each ~1e-14 relative.
ROUNDOFF_PER_LAYER = 1e-13
# Share of an exceedance that the boxes' cut may account for before the boxes
# are widened once more (and, if it still does, a warning): below the 1e-6
# relative accuracy the tails are meant to reach.
CUT_SHARE = 1e-6


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
        from ..tails import case_problem

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

    def _propagate(self, report, states, on_layer):
        from ..operators.solve import GridSolver, threshold_tail

        case, tails = self.case, self.case.tails
        extra = {} if tails is None else {"tail": threshold_tail(self.options.tail)}
        self._solver = GridSolver(self.options, backend=case.backend, **extra)
        native = self._solver.propagate(case.network, case.input, progress=report, resume=states, on_layer=on_layer)
        if tails is not None and tails.thresholds.size:  # widen once more if the cut could still matter
            prob = np.exp(self._log_tail(native, case.observable, tails.thresholds))
            effect = self._cut(native) * self._sup_survival(case.observable, tails.thresholds)
            share = np.where(prob > 0, effect / np.where(prob > 0, prob, 1.0), 0.0)  # P = 0: its bound says it
            worst = int(np.argmax(share))
            if share[worst] > CUT_SHARE:
                tail = threshold_tail(self._solver.options.tail, effect[worst], CUT_SHARE * prob[worst])
                self._solver = GridSolver(self.options, backend=case.backend, tail=tail)
                native = self._solver.propagate(case.network, case.input, progress=report, on_layer=on_layer)
        return native

    def _summarize(self, native) -> list:
        return summarize_forward(native, self.options.marginal_points)

    def _law(self, solution, n):
        index = solution.native.density_index(n)
        if index is None:
            return MomentLaw(solution.forward[n], f"layer {n} is the output of the noiseless layer {n - 1}: a map "
                             "of the last layer with a density, so it has no density of its own (its mean and "
                             f"covariance are exact quadratures of that map; give layer {n - 1} noise for a density)")
        density = solution.native.densities[index]
        if density is None:
            return AtomLaw(solution.native.input_law.mean())
        mass, mean, cov = density.moments()
        grid = density.grid

        def joint(i, j, x, y):
            nodal = grid.marginal(density.values, (min(i, j), max(i, j)))
            if i > j:
                nodal = nodal.T
            return grid.rules[i].interpolation_matrix(x) @ nodal @ grid.rules[j].interpolation_matrix(y).T

        return FunctionLaw(mass, mean, cov, density.marginal, joint, "grid")

    def _pullback(self, native, report):
        points = self._points()
        back = self._solver.pullback(native, self.case.observable, points if len(points) else None)
        tail_fields = {}
        tails = self.case.tails
        if tails is not None:
            prob, err = self._exceedances(native, self.case.observable, tails.thresholds)
            tail_fields = {"thresholds": tails.thresholds, "exceedance": prob, "exceedance_error": err,
                           "quantile_levels": tails.quantiles,
                           "quantiles": self._quantiles(native, self.case.observable, tails.quantiles)}
            self._warn_cut(native, tails.thresholds, prob)
        summary = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean, **tail_fields)
        gap = abs(back.mean - back.mean_forward) / max(abs(back.mean_forward), 1e-300)
        return summary, back, {"backward_duality_gap": np.float64(gap)}

    # -- tails (module doc) ----------------------------------------------------------------------
    def _exceedance(self, solution, g, t, error):
        prob, err = self._exceedances(solution.native, self._observable(g), t)
        return (prob, err) if error else prob

    def _quantile(self, solution, g, q):
        from ..tails import make_tails

        make_tails(None, q.tolist(), "observable")  # the levels' rule, named
        return self._quantiles(solution.native, self._observable(g), q)

    def _observable(self, g):
        if g is None:
            if self.case.observable is None:
                raise CaseError("observable", "must be given (the case has no [observable])")
            return self.case.observable
        if isinstance(g, dict):
            from ..observables import make_observable

            return make_observable(g)
        return g

    def _atoms(self, native, g):
        """Weights (J,) and read-outs ``a . F(x_j) + c`` (J,) of layer L-1's
        atoms, the read-out ``a`` and the last noise; refuses what has no
        closed form."""
        from ..tails import readout, tails_problem

        layer = native.network[-1]
        a, c = readout(g, layer.n_out)
        reason = tails_problem(layer.noise, a)
        if reason is not None:
            raise CaseError("observable.thresholds", reason, layer.noise.kind)
        L = native.depth
        return native.source_coefficients(L - 1), native.transitions[L - 1].mapped @ a + c, a, layer.noise

    def _log_tail(self, native, g, t, lower=False):
        from ..tails import log_tail

        w, m, a, noise = self._atoms(native, g)
        return log_tail(w, m, noise, a, t, lower)

    def _sup_survival(self, g, t):
        from ..tails import readout, survival_bound

        layer = self.case.network[-1]
        a, c = readout(g, layer.n_out)
        return survival_bound(layer, a, c, t)

    def _cut(self, native) -> float:
        """Mass the boxes of layers 0..L-1 cut (the input's tails and, per
        layer, a union bound over neurons of the noise landing outside,
        from the noise CDF on both sides without 1 - cdf), plus the negative
        mass of the atoms: what the discretized law of X_{L-1} may miss."""
        cut = float(native.diagnostics["lost_mass"][0])
        for n in range(native.depth - 1):
            t, noise = native.transitions[n], native.network[n].noise
            box = t.target.box
            out = noise.cdf(box[:, 0] - t.mapped) + noise.cdf(t.mapped - box[:, 1])
            cut += float(np.abs(native.source_coefficients(n)) @ out.sum(axis=1))
        w = native.source_coefficients(native.depth - 1)
        return cut + float(-np.sum(np.minimum(w, 0.0)))

    def _coarse(self, native):
        """The solve on ``native``'s boxes with ``COARSE_FRACTION`` of its nodes (cached)."""
        cached = getattr(self, "_coarse_cache", None)
        if cached is not None and cached[0] is native:
            return cached[1]
        from ..operators.solve import GridSolver

        nodes = max(2, int(round(COARSE_FRACTION * self.options.nodes)))
        solver = GridSolver(self.options, backend=self.case.backend, nodes=nodes)
        boxes = [None if d is None else d.grid.box for d in native.densities]
        with warnings.catch_warnings():  # its health is the fine solve's, already reported
            warnings.simplefilter("ignore")
            coarse = solver.propagate(native.network, native.input_law, boxes=boxes)
        self._coarse_cache = (native, coarse)
        return coarse

    def _exceedances(self, native, g, t):
        """``P(g(X_L) > t)`` (T,) and the bound of its error (module doc)."""
        t = np.asarray(t, dtype=np.float64)
        if t.size == 0:
            return np.zeros(0), np.zeros(0)
        fine = np.exp(self._log_tail(native, g, t))
        coarse_native = self._coarse(native)
        coarse = np.exp(self._log_tail(coarse_native, g, t))
        cut = max(self._cut(native), self._cut(coarse_native))
        roundoff = ROUNDOFF_PER_LAYER * (native.depth + 1) * fine
        return fine, np.abs(fine - coarse) + cut * self._sup_survival(g, t) + roundoff

    def _quantiles(self, native, g, q):
        from ..tails import invert_tail, log_tail

        q = np.asarray(q, dtype=np.float64)
        if q.size == 0:
            return np.zeros(0)
        w, m, a, noise = self._atoms(native, g)
        mass = w[w > 0].sum()
        center = float(w @ m / mass)
        spread = float(np.sqrt(max(w @ (m - center) ** 2 / mass, 0.0) + a**2 @ noise.variance()))
        return invert_tail(lambda s: log_tail(w, m, noise, a, [s])[0],
                           lambda s: log_tail(w, m, noise, a, [s], lower=True)[0], q, center, spread)

    def _warn_cut(self, native, t, prob):
        from ..errors import MassLossWarning

        if np.size(t) == 0:
            return
        effect = self._cut(native) * self._sup_survival(self.case.observable, t)
        bad = (effect > CUT_SHARE * prob) & (prob > 0)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            warnings.warn(f"observable.thresholds[{i}] = {t[i]:g}: the boxes cut mass that may change "
                          f"P = {prob[i]:.3g} by up to {effect[i]:.3g} (lower solver.tail, or give "
                          "solver.domain = 'auto')", MassLossWarning, stacklevel=3)

    def _reduce(self, solution, report):
        from ..mz import reduce_network

        return reduce_network(solution.native, self.case.projection, solution.native_backward, progress=report)


    def joint(self, i, j, x, y):
        self._check(i, j)
        return self.marginal(i, x)


def noiseless_problem(name: str, case, keys):
    """What a method that composes noiseless layers with the noisy layer
    after them (grid, tt) cannot take of them: a noiseless last layer, a
    Mori-Zwanzig reduction, layer-to-layer distances (``(key, rule, value)``
    or None)."""
    net = case.network
    if not net.has_noiseless:
        return None
    L = net.depth
    if net[-1].noise.is_deterministic:
        return (keys.noise(L - 1), f"must not be 'none' on the last layer with solver.method = {name!r}: "
                f"X_{L} = G(X_{L - 1}) is a map with no density on its {net.widths[-1]} neurons for a grid to "
                "hold (give the output layer noise, e.g. an observation noise, or use solver.method = 'qmc', "
                "which gives the moments of a noiseless output)", "none")
    if case.projection is not None:
        return ("projection", f"is not taken by solver.method = {name!r} on a network with noiseless "
                f"layers (layers {_noiseless(net)}): the Mori-Zwanzig reduction needs every layer's density "
                "(give those layers noise, or drop [projection])", case.projection.kind)
    analysis = getattr(case, "analysis", None)
    if analysis is not None and getattr(analysis, "distances", "none") != "none":
        return ("analysis.distances", f"needs every layer's density, which solver.method = {name!r} "
                f"does not give on the noiseless layers {_noiseless(net)} (set it to 'none', or give "
                "those layers noise)", analysis.distances)
    return None


def _noiseless(network) -> list[int]:
    return [n for n, layer in enumerate(network) if layer.noise.is_deterministic]


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


def atom_summary(x0: np.ndarray, marginal_points: int) -> LayerSummary:
    """The summary of a layer that is the point ``x0``."""
    xs = np.repeat(x0[:, None], marginal_points, axis=1)
    return LayerSummary(x0, np.zeros((x0.size, x0.size)), 1.0, xs, np.full(xs.shape, np.inf),
                        np.column_stack([x0, x0]))
