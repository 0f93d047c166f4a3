"""Densities through layers of 4-10 neurons on Smolyak sparse grids (SPEC 3.2).

EXPERIMENTAL, forward only: ``[solver] method = "sparse"`` (options in
:class:`mzpdf.options.SparseGridOptions`). Measured (tests/test_sparse_solver.py):
linear-gaussian layers are exact to round-off at level 2 in 4 and 6
dimensions (41 and 85 nodes); a mildly nonlinear 2-neuron tanh net converges
only algebraically with level (L1 against a converged tensor grid 2.9e-2 at
level 4, 1.4e-3 at level 6, 5.5e-5 at level 8), limited by the per-node
Gauss-Hermite rule and by the complex zeros of the density, which make the
log-density a function of finite analyticity; a 6-neuron tanh net at level 4
misses the mass by 5 %.

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
   by a Gauss-Hermite Smolyak rule in ``u`` (the integrand
   ``f(x) p_n(x) |det A| / phi(u)`` is smooth, constant for a gaussian).
2. The new grid's nodes ``y_i = m_{n+1} + A_{n+1} u_i``.
3. ``p_{n+1}(y_i) = int k(y_i | x) p_n(x) dx`` node by node, by a
   Gauss-Hermite Smolyak rule centred on the integrand: its mode and
   curvature from Gauss-Newton on ``N(m_n, C_n)`` times the likelihood of
   ``y_i`` (exact for linear-gaussian layers, where every step is exact up to
   round-off), so the integral keeps its *relative* accuracy in the far tails,
   where the log-density needs it.

Expectations, marginals (a ``(N-1)``-dimensional Gauss-Hermite rule around
the conditional gaussian at each abscissa) and the mass ``E[1]`` (which
should be 1: a check of the whole discretization) follow from ``l_n``.

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
from ..options import SparseGridOptions as SparseOptions
from .hermite import hermite_smolyak

__all__ = ["LogDensity", "SparseOptions", "SparseSolver", "SparseSolution", "check_case"]

_LOG_2PI = np.log(2.0 * np.pi)
_GAUSS_NEWTON_STEPS = 8
_CHUNK = 256  # nodes per vectorized block of the transfer integrals


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

    def __init__(self, mean: np.ndarray, chol: np.ndarray, grid: SparseGrid, values: np.ndarray, radius: float):
        self.mean, self.chol, self.grid, self.radius = mean, chol, grid, radius
        self.values = np.asarray(values, dtype=np.float64)
        self.alpha = grid.hierarchize(self.values)
        self.logdet = float(np.sum(np.log(np.diag(chol))))
        self.dim = mean.size
        self.level_for_marginals = 3  # Gauss-Hermite level of the rules behind marginal()
        self.adaptive = None  # the AdaptiveResult when the grid was built adaptively

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

    def _gauss_weights(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Points ``x`` and weights ``w`` with ``int f p dx ~ w @ f(x)``."""
        v, w = hermite_smolyak(self.dim, level)
        g = self.log_u(v) + 0.5 * np.sum(v * v, axis=1) + 0.5 * self.dim * _LOG_2PI + self.logdet
        return self.mean + v @ self.chol.T, w * np.exp(g)

    def moments(self, level: int) -> tuple[float, np.ndarray, np.ndarray]:
        x, w = self._gauss_weights(level)
        mass = float(w.sum())
        mean = x.T @ w / mass
        d = x - mean
        return mass, mean, (d * w[:, None]).T @ d / mass

    def expect_map(self, fn: Callable[[np.ndarray], np.ndarray], level: int) -> tuple[float, np.ndarray, np.ndarray]:
        """Mass, mean and covariance of ``fn(X)`` (normalized by the mass)."""
        x, w = self._gauss_weights(level)
        y = fn(x)
        mass = float(w.sum())
        mean = y.T @ w / mass
        d = y - mean
        return mass, mean, (d * w[:, None]).T @ d / mass

    def marginal(self, keep: list[int], xs: np.ndarray, level: int) -> np.ndarray:
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
        v, w = hermite_smolyak(len(rest), self.level_for_marginals)
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


class SparseSolver:
    """Forward solve on sparse grids; ``options`` is a
    :class:`mzpdf.options.SparseGridOptions` (the ``[solver]`` table of
    ``method = "sparse"``; ``SparseOptions`` here is the same class)."""

    def __init__(self, options: SparseOptions | None = None):
        self.options = options or SparseOptions()

    def _grid(self, dim: int) -> SparseGrid:
        R = self.options.box
        return SparseGrid.regular(np.tile([-R, R], (dim, 1)), self.options.level, "cc")

    def _law(self, mean, cov, log_fn) -> LogDensity:
        """A LogDensity for ``log_fn`` (log-density at points ``(P, N)``), on
        the regular grid or, with ``adaptive_tol``, a dimension-adaptive one."""
        opt = self.options
        chol = np.linalg.cholesky(0.5 * (cov + cov.T))
        dim = mean.size
        R = opt.box
        if opt.adaptive_tol > 0:
            res = adaptive_grid(lambda u: log_fn(mean + u @ chol.T), np.tile([-R, R], (dim, 1)), "cc",
                                level=min(opt.level, 2), tol=opt.adaptive_tol, max_points=opt.max_points,
                                indicator="max")
            law = LogDensity(mean, chol, res.grid, res.values, R)
            law.adaptive = res
        else:
            grid = self._grid(dim)
            law = LogDensity(mean, chol, grid, log_fn(mean + grid.points @ chol.T), R)
        law.level_for_marginals = opt.quad_level
        return law

    def propagate(self, network: Network, input_law: InputLaw,
                  progress: Callable[[int, int], None] | None = None) -> SparseSolution:
        """Log-densities of every layer.

        Diagnostics (arrays over layers ``0..L``): ``mass`` (``E[1]`` by the
        layer's own quadrature: 1 for an exact discretization), ``points``
        (sparse-grid nodes), ``quadrature_points`` (per-node rule size),
        ``time_per_layer_s`` (L,), ``lost_mass`` (mass beyond the box, from
        the gaussian tails: negligible for ``box`` >= 6), ``duality_gap``
        (NaN: no backward solve).
        """
        check_case(network, input_law)
        opt = self.options
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
            diag["mass"][0] = law.moments(opt.quad_level)[0]
        for n, layer in enumerate(network):
            start = time.perf_counter()
            prev = laws[-1]
            S = np.diag(layer.noise.scale ** 2)
            if prev is None:  # a point input: the law after the first layer is the noise around F(x0)
                centre = layer.forward(input_law.mean()[None, :])[0]
                mean, cov = centre, S

                def log_fn(y, centre=centre, layer=layer):
                    return _log_noise(layer, y - centre)
            else:
                _, mean, cov = prev.expect_map(layer.forward, opt.quad_level)
                cov = cov + S

                def log_fn(y, prev=prev, layer=layer):
                    return self._log_transfer(prev, layer, y)
            law = self._law(mean, cov, log_fn)
            laws.append(law)
            k = n + 1
            diag["points"][k] = law.grid.size
            diag["quadrature_points"][k] = hermite_smolyak(layer.n_in, opt.quad_level)[0].shape[0]
            diag["mass"][k] = law.moments(opt.quad_level)[0]
            diag["time_per_layer_s"][n] = time.perf_counter() - start
            if not np.isfinite(law.values).all():
                warnings.warn(f"layer {k}: the log-density holds NaN or Inf (the per-node rule failed: "
                              "raise solver.quad_level, or use method 'grid')", NumericalHealthWarning, stacklevel=2)
            elif abs(diag["mass"][k] - 1.0) > 1e-2:
                warnings.warn(f"layer {k}: mass {diag['mass'][k]:.4g} instead of 1 (raise solver.level and "
                              "solver.quad_level; a multimodal layer needs method 'grid')", MassLossWarning,
                              stacklevel=2)
            if progress is not None:
                progress(k, L)
        return SparseSolution(network, input_law, laws, diag)

    def _log_transfer(self, prev: LogDensity, layer, y: np.ndarray) -> np.ndarray:
        """``log int k(y | x) p(x) dx`` at the points ``y`` ``(P, N_out)``."""
        opt = self.options
        v, w = hermite_smolyak(layer.n_in, opt.quad_level)
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
