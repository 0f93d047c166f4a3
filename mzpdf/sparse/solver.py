"""Densities through layers of 2-10 neurons on Smolyak sparse grids (SPEC 3.2).

``[solver] method = "sparse"`` (options in
:class:`mzpdf.options.SparseGridOptions`). Measured (tests/test_sparse_solver.py,
scripts/bench_sparse.py): linear-gaussian layers are exact to round-off at
level 2 in 4 and 6 dimensions (41 and 85 nodes). On tanh nets (3 layers,
noise 0.4) against a converged tensor grid, largest L1 over layers: 2
neurons, regular levels 6, 8, 10: 1.4e-3, 4.5e-5, 3.6e-7 (7169 nodes, 3 s);
dimension-adaptive at tolerance 1e-6: 3.6e-7; 3 neurons, adaptive at 1e-5
and 1e-6: 1.1e-5 and 5.1e-7 (20 s), where regular levels converge slowly
(7.3e-4 at level 10); 4 neurons (``quadrature = "tensor"``, 16-20 points),
adaptive at 1e-4 and 1e-5: 6.5e-5 (12 k nodes) and 6.6e-6 (35 k nodes). At
6 neurons (cases/sparse_6d.toml, level 3, Smolyak rules) every marginal of
every layer is inside the 1e6-path Monte Carlo band
(tests/test_against_montecarlo.py); moments within ~4e-3 of Monte Carlo,
limited by the grid level, not the rule (quad_level 3 -> 5 moves them by
< 1e-4; level 4 by ~3e-3). A tensor rule of 6-10 points per neuron is too
coarse for the kernel sum there.

Why log-densities in whitened coordinates: a density is a localized bump,
and Smolyak grids on a box approximate bumps badly -- the hierarchical
increments of coarse levels are as large as the function, so the grid must
resolve the bump in every direction at once (a 6-D gaussian on its +-6 sd box
has O(1) quadrature error at 45 000 Clenshaw-Curtis points). Its logarithm
in the coordinates ``u = A^-1 (x - m)`` (``m, A A^T`` the layer's mean and
covariance) is instead a gentle function: exactly ``-|u|^2 / 2`` plus a
constant for a gaussian, a smooth perturbation of it otherwise. So each layer
``n`` holds ``l_n(u) = log p_n(m_n + A_n u)`` by its values on a
Clenshaw-Curtis sparse grid over ``[-R, R]^N`` (``R = box`` sds), and
``p_n = exp(interpolant)``, positive by construction.

One layer step (gaussian noise of covariance ``S``):

1. Moments of ``X_{n+1} = F(X_n) + xi``: ``E[F(X_n)]`` and ``Cov[F(X_n)] + S``
   by the layer's Gauss-Hermite rule in ``u`` (the integrand
   ``f(x) p_n(x) |det A| / phi(u)`` is smooth, constant for a gaussian).
2. The new grid's nodes ``y_i = m_{n+1} + A_{n+1} u_i``.
3. ``p_{n+1}(y_i) = int k(y_i | x) p_n(x) dx`` at every node, by one of two
   rules (``quadrature``):

   - ``tensor`` (the default up to 3 neurons): a tensor Gauss-Hermite rule
     ``(x_j, w_j)`` for ``p_n`` in its whitened coordinates, and
     ``p_{n+1}(y) = sum_j w_j k(y | F(x_j))``, a gaussian mixture summed in
     log space by one kernel for all nodes. Its relative error is uniform
     over the box (the far tails of ``p_{n+1}`` are the noise tails of the
     outermost mixture components), 1e-9 with 48 points per neuron on the
     tanh nets above: the log-density needs relative accuracy in the tails.
     ``quad_points^N`` components, so for few neurons.
   - ``smolyak`` (the default from 4 neurons): per node, a Gauss-Hermite
     Smolyak rule centred on the integrand, its mode and curvature from
     Gauss-Newton on ``N(m_n, C_n)`` times the likelihood of ``y_i`` (exact
     for linear-gaussian layers). Any width, but on saturating layers the
     integrand is far from gaussian and the rule converges slowly (relative
     error 3.4e-4 at level 8 on the 2-neuron tanh net, 6.5e-5 at level 10):
     this, not the interpolation, was what held the solver at ~1e-4.

Backward (:meth:`SparseSolver.pullback`, an ``[observable]`` in a case):
``q_n = E[g(X_L) | X_n]`` on its own sparse grid over twice the density's
box, its nodal values by a Gauss-Hermite rule over the noise from
``q_{n+1}``. The two directions are discretized differently, so duality
holds to the discretization error and is reported per layer
(``/diagnostics/duality_gap``): linear-gaussian net of 4 neurons, affine
``g``, level 2: gap 8e-15, ``q_0`` at points within 5e-6 of the closed form
(``q_{n+1}`` held constant beyond its box, reached by grid corners); 2-neuron
tanh net, level 8: ``q_0`` within 3e-11 of the tensor grid's, gap 3.7e-6
(level 10: 1.9e-8).

Expectations, marginals (a ``(N-1)``-dimensional Gauss-Hermite rule around
the conditional gaussian at each abscissa: the layer's rule, or the Smolyak
rule over 3 or more neurons) and the mass ``E[1]`` (which
should be 1: a check of the whole discretization) follow from ``l_n``.
Each layer is then normalized to mass 1 (a constant off ``l_n``), so that
the mass error does not accumulate over layers or shift every marginal:
unnormalized, the 6-neuron case's marginals miss ~1e-3 of probability, 30
standard errors of its Monte Carlo band; the mass before is reported.

Scope, refused up front with the key named: gaussian noise (the kernel's
logarithm must be smooth); gaussian, mixture or point inputs (a uniform
input has no logarithm outside its box). Unimodal, near-gaussian layers are
where the method is accurate; a multimodal layer (a narrow noise after a
saturating layer) makes the per-node rule miss modes -- use ``grid`` there.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.linalg import solve_triangular

from ..discretization.sparse import SparseGrid, adaptive_grid
from ..errors import CaseError, MassLossWarning, NumericalHealthWarning
from ..network import InputLaw, Network
from ..results import DualPairing
from ..options import SparseGridOptions as SparseOptions
from .._numba import jit_parallel, prange
from .hermite import GaussRule, hermite_smolyak

__all__ = ["GridFunction", "LogDensity", "SparseBackward", "SparseOptions", "SparseSolver", "SparseSolution", "check_case"]

_LOG_2PI = np.log(2.0 * np.pi)
_GAUSS_NEWTON_STEPS = 8
_CHUNK = 256  # nodes per vectorized block of the transfer integrals
_NOISE_LEVEL = 4  # Gauss-Hermite Smolyak level of the noise integral of a Koopman step (exact to degree 17)


def check_case(network: Network, input_law: InputLaw, keys=None) -> None:
    """Raise a CaseError naming the entry the sparse method cannot handle."""
    for n, layer in enumerate(network):
        if type(layer.noise).__name__ != "GaussianNoise":
            where = keys[n] if keys is not None else f"network.layers[{n}]"
            raise CaseError(f"{where}.noise.kind", "must be 'gaussian' with solver.method = 'sparse' (the method "
                                                   "works with the logarithm of the transition kernel)",
                            layer.noise.to_dict().get("kind"))
    if input_law.kind not in ("gaussian", "mixture", "point"):
        raise CaseError("input.kind", "must be 'gaussian', 'mixture' or 'point' with solver.method = 'sparse' (a "
                                      "uniform input has no log-density outside its box)", input_law.kind)


class LogDensity:
    """``p(x) = exp(l(u))``, ``x = mean + chol @ u``, with ``l`` interpolated
    on a sparse grid over ``[-R, R]^N``. Beyond the box ``l`` continues as
    ``l(clip(u)) - (|u|^2 - |clip(u)|^2) / 2`` (gaussian tails)."""

    def __init__(self, mean: np.ndarray, chol: np.ndarray, grid: SparseGrid, values: np.ndarray, radius: float,
                 rule: GaussRule | None = None):
        self.mean, self.chol, self.grid, self.radius = mean, chol, grid, radius
        self.rule = rule or GaussRule("smolyak")  # the standard-normal rule behind expectations and marginals
        self.values = np.asarray(values, dtype=np.float64)
        self.alpha = grid.hierarchize(self.values)
        self.logdet = float(np.sum(np.log(np.diag(chol))))
        self.dim = mean.size

    @property
    def points(self) -> np.ndarray:
        """Nodes in neuron coordinates, ``(M, N)``."""
        return self.mean + self.grid.points @ self.chol.T

    def whiten(self, x: np.ndarray) -> np.ndarray:
        return solve_triangular(self.chol, (np.atleast_2d(x) - self.mean).T, lower=True).T

    def log_u(self, u: np.ndarray) -> np.ndarray:
        uc = np.clip(u, -self.radius, self.radius)
        inside = self.grid.evaluate_surpluses(self.alpha, uc / self.radius)
        return inside - 0.5 * (np.sum(u * u, axis=1) - np.sum(uc * uc, axis=1))

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        return self.log_u(self.whiten(x))

    def pdf(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.log_pdf(x))

    def normalize(self) -> float:
        """Scale ``p`` to mass 1 by the layer's own rule (a constant off the
        log-density: the hierarchical surpluses reproduce constants exactly),
        so that the discretization's mass error neither accumulates over layers
        nor shows in every marginal; returns the mass before."""
        mass = self.moments()[0]
        if mass > 0 and np.isfinite(mass):
            self.values = self.values - np.log(mass)
            self.alpha = self.grid.hierarchize(self.values)
        return mass

    def gauss_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Points ``x`` and weights ``w`` with ``int f p dx ~ w @ f(x)`` (the
        layer's rule in whitened coordinates, times ``p / phi``)."""
        v, w = self.rule(self.dim)
        g = self.log_u(v) + 0.5 * np.sum(v * v, axis=1) + 0.5 * self.dim * _LOG_2PI + self.logdet
        return self.mean + v @ self.chol.T, w * np.exp(g)

    def moments(self) -> tuple[float, np.ndarray, np.ndarray]:
        """Mass, mean and covariance (normalized by the mass)."""
        x, w = self.gauss_weights()
        mass = float(w.sum())
        mean = x.T @ w / mass
        d = x - mean
        return mass, mean, (d * w[:, None]).T @ d / mass

    def expect_map(self, fn: Callable[[np.ndarray], np.ndarray]) -> tuple[float, np.ndarray, np.ndarray]:
        """Mass, mean and covariance of ``fn(X)`` (normalized by the mass)."""
        x, w = self.gauss_weights()
        y = fn(x)
        mass = float(w.sum())
        mean = y.T @ w / mass
        d = y - mean
        return mass, mean, (d * w[:, None]).T @ d / mass

    def marginal(self, keep: list[int], xs: np.ndarray) -> np.ndarray:
        """Density of the neurons ``keep`` at points ``xs`` ``(P, len(keep))``:
        at each point, a Gauss-Hermite rule over the other neurons around
        their conditional gaussian (from the layer's mean and covariance)."""
        xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
        cov = self.chol @ self.chol.T
        rest = [k for k in range(self.dim) if k not in keep]
        if not rest:
            return self.pdf(xs)
        c_kk, c_rk, c_rr = cov[np.ix_(keep, keep)], cov[np.ix_(rest, keep)], cov[np.ix_(rest, rest)]
        gain = np.linalg.solve(c_kk, c_rk.T).T
        cond = c_rr - gain @ c_rk.T
        lc = np.linalg.cholesky(0.5 * (cond + cond.T))
        rule = self.rule if self.rule.kind == "smolyak" or len(rest) <= 2 else GaussRule("smolyak", self.rule.level)
        v, w = rule(len(rest))  # (a tensor rule over 3+ neurons at every abscissa would cost too much)
        out = np.empty(xs.shape[0])
        logdet = float(np.sum(np.log(np.diag(lc)))) + 0.5 * len(rest) * _LOG_2PI
        for s in range(0, xs.shape[0], 256):
            block = xs[s: s + 256]
            centre = self.mean[rest] + (block - self.mean[keep]) @ gain.T  # (B, r)
            pts = np.empty((block.shape[0], v.shape[0], self.dim))
            pts[:, :, keep] = block[:, None, :]
            pts[:, :, rest] = centre[:, None, :] + (v @ lc.T)[None, :, :]
            lp = self.log_pdf(pts.reshape(-1, self.dim)).reshape(block.shape[0], -1)
            out[s: s + 256] = np.exp(lp + 0.5 * np.sum(v * v, axis=1)[None, :] + logdet) @ w
        return out


@dataclass
class SparseSolution:
    """Log-densities of every layer; ``laws[0]`` is ``None`` for a point input."""

    network: Network
    input_law: InputLaw
    laws: list
    diagnostics: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return len(self.laws) - 1


class GridFunction:
    """A function of one layer's neurons by its values on a sparse grid over
    ``[-R, R]^N`` in that layer's whitened coordinates; beyond the box, by
    ``outside`` (the Koopman step from the next layer's function, held
    constant beyond its own box: :meth:`clipped`; an extrapolated polynomial
    would be wild, and a constant continuation turns an affine ``q`` into a
    wrong one)."""

    def __init__(self, law: LogDensity, grid: SparseGrid, values: np.ndarray, radius: float,
                 outside: Callable[[np.ndarray], np.ndarray]):
        self.law, self.grid, self.radius, self.outside = law, grid, radius, outside
        self.values = np.asarray(values, dtype=np.float64)
        self.alpha = grid.hierarchize(self.values)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        u = self.law.whiten(x) / self.radius
        inside = np.all(np.abs(u) <= 1.0, axis=1)
        out = np.empty(u.shape[0])
        out[inside] = self.grid.evaluate_surpluses(self.alpha, u[inside])
        if not inside.all():
            out[~inside] = self.outside(x[~inside])
        return out

    def clipped(self, x: np.ndarray) -> np.ndarray:
        """The interpolant, held constant beyond the box."""
        return self.grid.evaluate_surpluses(self.alpha, np.clip(self.law.whiten(x) / self.radius, -1.0, 1.0))


@dataclass
class SparseBackward(DualPairing):
    """Result of :meth:`SparseSolver.pullback`.

    functions : list
        ``q_n = E[g(X_L) | X_n]`` for n = 0..L: :class:`GridFunction` for
        n < L (``None`` at n = 0 for a point input), ``g`` itself at n = L.
    points, q0 : arrays or None
        ``q_0`` at ``points`` (P, N_0), from ``q_1`` by one Koopman step.
    mean : float
        ``E[g(X_L)]`` from the backward side: ``E_{p_0}[q_0]`` (``q_0`` at the
        input point for a point input).
    mean_forward : float
        ``E_{p_L}[g]`` by the last layer's rule.
    pairings : (L + 1,) array
        ``E_{p_n}[q_n]`` by layer n's rule: all equal for an exact
        discretization (duality).
    duality_gap : (L,) array
        ``|pairings[n] - mean_forward| / (|mean_forward| + sd(g))``, n < L,
        ``sd(g)`` the standard deviation of ``g(X_L)`` (a scale that stays
        meaningful when ``E[g]`` is near zero).
    """

    functions: list = field(default_factory=list)


class SparseSolver:
    """Forward solve on sparse grids; ``options`` is a
    :class:`mzpdf.options.SparseGridOptions` (the ``[solver]`` table of
    ``method = "sparse"``; ``SparseOptions`` here is the same class)."""

    def __init__(self, options: SparseOptions | None = None):
        self.options = options or SparseOptions()

    def _grid(self, dim: int) -> SparseGrid:
        R = self.options.box
        return SparseGrid.regular(np.tile([-R, R], (dim, 1)), self.options.level_for(dim), "cc")

    def _rule(self, dim: int) -> GaussRule:
        """The standard-normal rule of a layer of ``dim`` neurons."""
        opt = self.options
        return GaussRule(opt.quadrature_for(dim), opt.quad_level, opt.quad_points)

    def _law(self, mean, cov, log_fn) -> LogDensity:
        """A LogDensity for ``log_fn`` (log-density at points ``(P, N)``), on
        the regular grid or, with ``adaptive_tol``, a dimension-adaptive one."""
        opt = self.options
        chol = np.linalg.cholesky(0.5 * (cov + cov.T))
        dim = mean.size
        R = opt.box
        if opt.adaptive_tol > 0:
            res = adaptive_grid(lambda u: log_fn(mean + u @ chol.T), np.tile([-R, R], (dim, 1)), "cc",
                                level=min(opt.level_for(dim), 2), tol=opt.adaptive_tol, max_points=opt.max_points,
                                indicator="max")
            law = LogDensity(mean, chol, res.grid, res.values, R, self._rule(dim))
        else:
            grid = self._grid(dim)
            law = LogDensity(mean, chol, grid, log_fn(mean + grid.points @ chol.T), R, self._rule(dim))
        return law

    def propagate(self, network: Network, input_law: InputLaw,
                  progress: Callable[[int, int], None] | None = None, resume: list | None = None,
                  on_layer: Callable[[int, dict], None] | None = None) -> SparseSolution:
        """Log-densities of every layer.

        Every layer is normalized to mass 1 by its own rule. Diagnostics
        (arrays over layers ``0..L``): ``mass`` (``E[1]`` by the layer's own
        quadrature before that: 1 for an exact discretization), ``points``
        (sparse-grid nodes), ``quadrature_points`` (points of the transfer rule into each layer; 0
        after a point input),
        ``time_per_layer_s`` (L,), ``lost_mass`` (mass beyond the box, from
        the gaussian tails: negligible for ``box`` >= 6), ``duality_gap``
        (NaN: no backward solve).

        ``resume`` holds the states of layers 1, 2, ... of an earlier,
        interrupted solve of the same problem (as given to ``on_layer(n,
        state)`` after each computed layer): those layers are rebuilt from
        their whitening, grid and nodal values, which gives the same numbers.
        """
        check_case(network, input_law)
        L = network.depth
        diag = {"mass": np.ones(L + 1), "lost_mass": np.zeros(L + 1), "points": np.zeros(L + 1, dtype=np.int64),
                "quadrature_points": np.zeros(L + 1, dtype=np.int64), "time_per_layer_s": np.zeros(L),
                "duality_gap": np.full(L, np.nan)}
        laws: list = []
        if input_law.is_atomic:
            laws.append(None)
        else:
            law = self._law(input_law.mean(), input_law.cov(), lambda x: np.log(np.maximum(input_law.pdf(x), 1e-300)))
            laws.append(law)
            diag["points"][0] = law.grid.size
            diag["mass"][0] = law.normalize()
        resume = list(resume or ())[:L]
        for n, layer in enumerate(network):
            k = n + 1
            if n < len(resume):  # rebuilt from an earlier solve's state
                state = resume[n]
                grid = SparseGrid(state["indices"], state["box"], "cc")
                laws.append(LogDensity(state["mean"], state["chol"], grid, state["values"], self.options.box,
                                       self._rule(layer.n_out)))
                for name in ("mass", "points", "quadrature_points"):
                    diag[name][k] = state[name]
                diag["time_per_layer_s"][n] = state["seconds"]
                if progress is not None:
                    progress(k, L)
                continue
            start = time.perf_counter()
            prev = laws[-1]
            S = np.diag(layer.noise.scale ** 2)
            if prev is None:  # a point input: the law after the first layer is the noise around F(x0)
                centre = layer.forward(input_law.mean()[None, :])[0]
                mean, cov = centre, S

                def log_fn(y, centre=centre, layer=layer):
                    return _log_noise(layer, y - centre)
            else:
                _, mean, cov = prev.expect_map(layer.forward)
                cov = cov + S

                def log_fn(y, prev=prev, layer=layer):
                    return self._log_transfer(prev, layer, y)
            law = self._law(mean, cov, log_fn)
            laws.append(law)
            diag["points"][k] = law.grid.size
            if prev is not None:  # (after a point input the law is the noise itself: no rule, 0)
                diag["quadrature_points"][k] = prev.rule(layer.n_in)[0].shape[0]
            diag["mass"][k] = law.normalize()
            diag["time_per_layer_s"][n] = time.perf_counter() - start
            if not np.isfinite(law.values).all():
                warnings.warn(f"layer {k}: the log-density holds NaN or Inf (the per-node rule failed: "
                              "raise solver.quad_level, or use method 'grid')", NumericalHealthWarning, stacklevel=2)
            elif abs(diag["mass"][k] - 1.0) > 1e-2:
                warnings.warn(f"layer {k}: mass {diag['mass'][k]:.4g} instead of 1 (raise solver.level and "
                              "solver.quad_level; a multimodal layer needs method 'grid')", MassLossWarning,
                              stacklevel=2)
            if on_layer is not None:
                on_layer(k, {"mean": law.mean, "chol": law.chol, "indices": law.grid.indices, "box": law.grid.box,
                             "values": law.values, "mass": diag["mass"][k], "points": diag["points"][k],
                             "quadrature_points": diag["quadrature_points"][k],
                             "seconds": diag["time_per_layer_s"][n]})
            if progress is not None:
                progress(k, L)
        return SparseSolution(network, input_law, laws, diag)

    def pullback(self, solution: SparseSolution, observable: Callable[[np.ndarray], np.ndarray],
                 points: np.ndarray | None = None) -> SparseBackward:
        """Koopman operators on sparse grids: ``q_L = g``, and ``q_n`` by its
        values ``q_n(x_i) = E[q_{n+1}(F(x_i) + xi)]`` (a Gauss-Hermite Smolyak
        rule over the noise) at the nodes of a grid over ``[-2R, 2R]^N`` in
        layer n's whitened coordinates (twice the density's box: ``F`` and the
        noise carry the density grid's outer nodes beyond its box; points beyond
        it are computed by the Koopman step itself) -- regular of ``level``, or
        adaptive to ``adaptive_tol`` times the scale ``|E g| + sd(g)``. ``q_0`` also at ``points``. The discretizations of
        the two directions differ, so duality holds only up to the
        discretization error; the gap is reported per layer."""
        opt = self.options
        laws, net = solution.laws, solution.network
        L = net.depth
        x, w = laws[L].gauss_weights()
        gx = np.asarray(observable(x), dtype=np.float64)
        mean_forward = float(w @ gx)
        scale = abs(mean_forward) + np.sqrt(max(float(w @ gx ** 2) - mean_forward ** 2, 0.0))
        functions: list = [None] * (L + 1)
        functions[L] = observable
        R = 2.0 * opt.box
        for n in range(L - 1, -1, -1):
            law = laws[n]
            if law is None:
                break

            layer, q_next = net.layers[n], functions[n + 1]

            def q_at(u, law=law, layer=layer, q_next=q_next):  # at the nodes: q_next beyond its box by its step
                return self._koopman(layer, q_next, law.mean + u @ law.chol.T)

            def step(x, layer=layer, q_next=getattr(q_next, "clipped", q_next)):  # one level deep, then clipped
                return self._koopman(layer, q_next, x)

            box = np.tile([-R, R], (law.dim, 1))
            if opt.adaptive_tol > 0:
                res = adaptive_grid(q_at, box, "cc", level=min(opt.level_for(law.dim), 2), tol=opt.adaptive_tol * scale,
                                    max_points=opt.max_points, indicator="max")
                grid, values = res.grid, res.values
            else:
                grid = SparseGrid.regular(box, opt.level_for(law.dim), "cc")
                values = q_at(grid.points)
            functions[n] = GridFunction(law, grid, values, R, step)
        q0 = None
        if points is not None:
            points = np.atleast_2d(np.asarray(points, dtype=np.float64))
            q0 = self._koopman(net.layers[0], functions[1], points)
        pairings = np.empty(L + 1)
        for n, law in enumerate(laws):
            if law is None:  # a point input: q_0 at the point
                pairings[n] = self._koopman(net.layers[0], functions[1], solution.input_law.mean()[None, :])[0]
            else:
                x, w = law.gauss_weights()
                pairings[n] = w @ functions[n](x)
        gap = np.abs(pairings[:L] - mean_forward) / max(scale, 1e-300)
        return SparseBackward(points, q0, float(pairings[0]), mean_forward, pairings, gap, functions)

    @staticmethod
    def _koopman(layer, q: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
        """``E[q(F(x) + xi)]`` at the points ``x``."""
        v, w = hermite_smolyak(layer.n_out, _NOISE_LEVEL)
        noise = v * layer.noise.scale
        out = np.empty(x.shape[0])
        for s in range(0, x.shape[0], _CHUNK):
            y = layer.forward(x[s: s + _CHUNK])[:, None, :] + noise[None, :, :]
            out[s: s + _CHUNK] = np.asarray(q(y.reshape(-1, layer.n_out))).reshape(-1, v.shape[0]) @ w
        return out

    def _log_transfer(self, prev: LogDensity, layer, y: np.ndarray) -> np.ndarray:
        """``log int k(y | x) p(x) dx`` at the points ``y`` ``(P, N_out)``:
        with a tensor rule, one kernel sum over the rule's nodes for every
        point; with a Smolyak rule, one rule per point centred on the
        integrand (:func:`_posterior`)."""
        if prev.rule.kind == "tensor":
            x, w = prev.gauss_weights()
            keep = w > 0
            s = layer.noise.scale
            out = np.empty(y.shape[0])
            _log_kernel_sum(np.ascontiguousarray(y / s), np.ascontiguousarray(layer.forward(x[keep]) / s),
                            np.log(w[keep]), out)
            return out - np.sum(np.log(s)) - 0.5 * s.size * _LOG_2PI
        v, w = prev.rule(layer.n_in)
        out = np.empty(y.shape[0])
        cov_x = prev.chol @ prev.chol.T
        prec_x = np.linalg.inv(cov_x)
        inv_s2 = 1.0 / layer.noise.scale ** 2
        for s in range(0, y.shape[0], _CHUNK):
            yb = y[s: s + _CHUNK]
            mu, chol_post = _posterior(layer, prev.mean, prec_x, inv_s2, yb)
            pts = mu[:, None, :] + np.einsum("bij,qj->bqi", chol_post, v)  # (B, Q, N_in)
            flat = pts.reshape(-1, layer.n_in)
            mapped = layer.forward(flat).reshape(yb.shape[0], v.shape[0], -1)
            log_k = _log_noise(layer, (yb[:, None, :] - mapped).reshape(-1, layer.n_out)).reshape(yb.shape[0], -1)
            log_p = prev.log_pdf(flat).reshape(yb.shape[0], -1)
            logdet = np.sum(np.log(np.diagonal(chol_post, axis1=1, axis2=2)), axis=1)
            a = log_k + log_p + 0.5 * np.sum(v * v, axis=1)[None, :] + (0.5 * layer.n_in * _LOG_2PI + logdet)[:, None]
            top = a.max(axis=1)
            total = np.exp(a - top[:, None]) @ w
            with np.errstate(divide="ignore", invalid="ignore"):
                out[s: s + _CHUNK] = np.where(total > 0, top + np.log(total), np.nan)
        return out


@jit_parallel
def _log_kernel_sum(y, f, log_w, out):
    """``out[i] = log sum_j exp(log_w[j] - |y[i] - f[j]|^2 / 2)`` (a streaming
    log-sum-exp: no underflow in the far tails)."""
    n, d = y.shape
    for i in prange(n):
        top = -np.inf
        acc = 0.0
        for j in range(f.shape[0]):
            r = 0.0
            for k in range(d):
                t = y[i, k] - f[j, k]
                r += t * t
            a = log_w[j] - 0.5 * r
            if a > top:
                acc = acc * np.exp(top - a) + 1.0
                top = a
            else:
                acc += np.exp(a - top)
        out[i] = top + np.log(acc)


def _log_noise(layer, d: np.ndarray) -> np.ndarray:
    """Log-density of the layer's gaussian noise at the residuals ``d`` ``(P, N_out)``."""
    s = layer.noise.scale
    return -0.5 * np.sum((d / s) ** 2, axis=1) - np.sum(np.log(s)) - 0.5 * s.size * _LOG_2PI


def _jacobian(layer, x: np.ndarray) -> np.ndarray:
    """``dF/dx`` at the points ``x`` ``(B, N_in)``: ``(B, N_out, N_in)``."""
    z = x @ layer.weights.T + layer.bias
    jac = layer.activation.derivative(z)[:, :, None] * layer.weights[None, :, :]
    if layer.kind == "residual":
        jac = jac * layer.step + np.eye(layer.n_in)[None, :, :]
    return jac


def _posterior(layer, m: np.ndarray, prec: np.ndarray, inv_s2: np.ndarray, y: np.ndarray):
    """Mode and Cholesky factor of the covariance of ``N(x; m, prec^-1) k(y | x)``
    for each row of ``y``, by Gauss-Newton from ``m``."""
    B = y.shape[0]
    mu = np.tile(m, (B, 1))
    for _ in range(_GAUSS_NEWTON_STEPS):
        J = _jacobian(layer, mu)
        r = y - layer.forward(mu)
        H = prec[None, :, :] + np.einsum("bki,k,bkj->bij", J, inv_s2, J)
        g = np.einsum("bki,k,bk->bi", J, inv_s2, r) - (mu - m) @ prec.T
        step = np.linalg.solve(H, g[..., None])[..., 0]
        mu = mu + step
        if np.max(np.abs(step)) < 1e-12 * (1.0 + np.max(np.abs(mu))):
            break
    J = _jacobian(layer, mu)
    H = prec[None, :, :] + np.einsum("bki,k,bkj->bij", J, inv_s2, J)
    cov = np.linalg.inv(H)
    return mu, np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, 1, 2)))
