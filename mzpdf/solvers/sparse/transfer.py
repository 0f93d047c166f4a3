"""One layer's transfer on the sparse solver's grids: the law after the
layer as a mixture over the atoms of a positive rule for the law before,

    p_{n+1}(y) = sum_j w_j prod_k rho_k(y_k - G_k(x_j)),

exact given the rule, for any separable noise density ``rho`` and any map
``G`` (a layer, or a run of noiseless layers and the noisy one after it).
Its moments and marginals are closed sums over the atoms (the other
factors of the kernel integrate to 1); its values at a Leja grid's points
use the kernel's separability: one table per neuron over the grid's 1-D
coordinates, and products shared between points with a common prefix
(:func:`mzpdf.discretization._kernels.mixture_sum`).

The rule decides the accuracy: with gaussian noise the kernel is smooth in
``x`` and a Gauss-Hermite rule converges spectrally once it resolves the
kernel's width. The Laplace kernel has a kink on ``G_k(x) = y_k``: over the
atoms of a lattice its sum is the integral plus a second-order error that
oscillates with ``y`` on the scale of the atoms' spacing, noise that an
interpolant would amplify. So each atom stands for its lattice cell: its
kernel is convolved with a gaussian of the spread of ``G_k`` over the cell
(``smooth``, per neuron: the lattice step times the largest gradient of
``G_k`` over the atoms, over sqrt 12 -- the normal-Laplace density, closed
form), which makes the sum smooth in ``y``; the second-order error left,
smoothing included, is removed by Richardson extrapolation against the
sub-lattice of twice the step (:mod:`mzpdf.solvers.sparse.rules`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ...discretization._kernels import mixture_sum
from ...discretization.leja import leja_nodes
from ._kernels import fill_tables, laplace_deposits, laplace_grid_sum, log_kernel, mixture_logpdf, mixture_marginal
from ._reference import log_kernel as log_kernel_array  # the kernel's NumPy twin, on arrays

__all__ = ["Mixture", "laplace_sum", "log_noise"]

_LOG_2PI = np.log(2.0 * np.pi)
_ATOM_CHUNK = 32_768  # atoms per table of the grid sums
_UNDERFLOW = 1e-250  # a scaled grid sum below this is redone in log space


def log_noise(noise, t: np.ndarray, k: int | slice = slice(None)) -> np.ndarray:
    """``log rho_k(t)`` elementwise (``k``: the neuron(s) of the last axis of ``t``)."""
    s = noise.scale[k]
    if noise.kind == "gaussian":
        return -0.5 * (t / s) ** 2 - np.log(s) - 0.5 * _LOG_2PI
    if noise.kind == "laplace":
        return -np.abs(t) / s - np.log(2.0 * s)
    raise ValueError(f"no transfer for noise kind {noise.kind!r}")


def laplace_sum(centres: np.ndarray, weights: np.ndarray, scale: np.ndarray, axes: list) -> np.ndarray:
    """``sum_j weights[j] prod_k rho_k(t_k - centres[j, k])`` (``rho_k`` the
    Laplace density of scale ``scale[k]``) on the tensor grid of ``axes``
    (one 1-D array per column of ``centres``, up to 3; any order), exactly,
    in O(J + nodes) (:func:`mzpdf.solvers.sparse._kernels.laplace_grid_sum`)."""
    n = len(axes)
    if n > 3 or centres.shape[1] != n:
        raise ValueError(f"laplace_sum takes 1-3 axes, one per column of centres (got {n} and {centres.shape[1]})")
    axes = [np.asarray(ax, dtype=np.float64).ravel() for ax in axes]
    orders = [np.argsort(ax, kind="stable") for ax in axes]
    size = np.array([ax.size for ax in axes] + [1] * (3 - n), dtype=np.int64)
    table = np.zeros((3, max(int(size.max()), 1)))
    decay = np.ones_like(table)
    for k, (ax, order) in enumerate(zip(axes, orders)):
        t = ax[order]
        table[k, : t.size] = t
        decay[k, 1: t.size] = np.exp(-np.diff(t) / scale[k])
    cen = np.zeros((centres.shape[0], 3))
    cen[:, :n] = centres
    scale3 = np.ones(3)
    scale3[:n] = scale
    idx = np.empty((cen.shape[0], 3, 2), dtype=np.int64)
    amp = np.empty((cen.shape[0], 3, 2))
    laplace_deposits(cen, np.ascontiguousarray(weights, dtype=np.float64), table, size, scale3, idx, amp)
    out = np.empty(tuple(int(v) for v in size))
    laplace_grid_sum(idx, amp, decay, out)
    out = out.reshape(tuple(int(v) for v in size[:n])) / float(np.prod(2.0 * np.asarray(scale)))
    inverse = [np.argsort(order) for order in orders]
    return out[np.ix_(*inverse)]


def _combine(log_fine: np.ndarray, log_coarse: np.ndarray) -> np.ndarray:
    """Richardson ``(4 fine - coarse) / 3`` of positive sums in log space;
    where the coarse sum is off by a factor > 2 the fine one is kept."""
    ratio = np.exp(np.clip(log_coarse - log_fine, -50.0, 50.0))
    ok = (ratio > 0.5) & (ratio < 2.0)
    return np.where(ok, log_fine + np.log((4.0 - np.where(ok, ratio, 1.0)) / 3.0), log_fine)


@dataclass(frozen=True, eq=False)
class Mixture:
    """``p(y) = sum_j weights[j] prod_k (rho_k * N(0, smooth_k^2))(y_k - centres[j, k])``.

    centres : (J, N)
    weights : (J,), positive, summing to 1
    noise : the layer's noise law (gaussian or laplace)
    coarse : Mixture or None
        The same transfer over the rule's companion (:mod:`mzpdf.solvers.sparse.rules`).
    richardson : bool
        Combine with ``coarse`` as ``(4 fine - coarse) / 3`` (trapezoid rules).
    smooth : (N,) array or None
        The atoms' cell spread per neuron (module doc); None: no smoothing.
    """

    centres: np.ndarray
    weights: np.ndarray
    noise: object
    coarse: "Mixture | None" = None
    richardson: bool = False
    smooth: np.ndarray | None = field(default=None)

    @property
    def dim(self) -> int:
        return self.centres.shape[1]

    @property
    def _smooth(self) -> np.ndarray:
        return np.zeros(self.dim) if self.smooth is None else np.ascontiguousarray(self.smooth, dtype=np.float64)

    @property
    def _laplace(self) -> bool:
        if self.noise.kind not in ("gaussian", "laplace"):
            raise ValueError(f"no transfer for noise kind {self.noise.kind!r}")
        return self.noise.kind == "laplace"

    @property
    def _exact_laplace(self) -> bool:
        """Laplace noise, no smoothing: sums on tensor grids by :func:`laplace_sum`."""
        return self.noise.kind == "laplace" and self.smooth is None

    @cached_property
    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the layer (the noise adds its variance;
        the cells' smoothing is left out: it is part of the rule's error,
        which the Richardson pair removes from the densities)."""
        w = self.weights
        mean = w @ self.centres
        d = self.centres - mean
        cov = (d * w[:, None]).T @ d + np.diag(self.noise.variance())
        return mean, 0.5 * (cov + cov.T)

    # -- values -------------------------------------------------------------------------------
    def log_pdf_indices(self, mean: np.ndarray, sd: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """``log p`` at the Leja points ``mean + sd * x[indices]`` (``indices``
        ``(P, N)``, any order; :mod:`mzpdf.discretization.leja`)."""
        fine = self._log_indices(mean, sd, indices)
        if self.richardson and self.coarse is not None:
            return _combine(fine, self.coarse._log_indices(mean, sd, indices))
        return fine

    def _log_indices(self, mean, sd, indices) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        order = np.lexsort(indices.T[::-1])
        vidx = np.ascontiguousarray(indices[order])
        start = np.zeros(vidx.shape[0], dtype=np.int64)
        if vidx.shape[0] > 1:
            start[1:] = np.argmax(vidx[1:] != vidx[:-1], axis=1)  # (0 for a repeated row: recomputed)
        out = np.empty(vidx.shape[0])
        out[order] = self._log_sorted(mean, sd, vidx, start)
        return out

    def _log_sorted(self, mean, sd, vidx, start) -> np.ndarray:
        n_dim = self.dim
        # the 1-D coordinates the points use, per neuron (tables only for those)
        used = [np.unique(vidx[:, k]) for k in range(n_dim)]
        width = max(u.size for u in used)
        ys = np.zeros((n_dim, width))
        local = np.empty_like(vidx)
        for k in range(n_dim):
            ys[k, : used[k].size] = mean[k] + sd[k] * leja_nodes()[used[k]]
            ys[k, used[k].size:] = ys[k, 0]
            local[:, k] = np.searchsorted(used[k], vidx[:, k])
        scale, smooth, laplace = self.noise.scale, self._smooth, self._laplace
        off = np.empty(ys.shape)
        for k in range(n_dim):  # the largest log factor of each 1-D coordinate (the kernel decreases in |t|)
            c = self._sorted_centres[k]
            pos = np.clip(np.searchsorted(c, ys[k]), 1, c.size - 1)
            gap = np.minimum(np.abs(ys[k] - c[pos - 1]), np.abs(ys[k] - c[pos]))
            off[k] = [log_kernel(g, scale[k], smooth[k], laplace) for g in gap]
        total = np.zeros(vidx.shape[0])
        for lo in range(0, self.centres.shape[0], _ATOM_CHUNK):
            cen = self._centres_c[lo: lo + _ATOM_CHUNK]
            tables = np.empty((n_dim, width, cen.shape[0]))
            fill_tables(ys, cen, scale, smooth, laplace, off, tables)
            part = np.empty(vidx.shape[0])
            mixture_sum(tables, local, start, np.ascontiguousarray(self.weights[lo: lo + _ATOM_CHUNK]), part)
            total += part
        shift = np.sum(off[np.arange(n_dim)[None, :], local], axis=1)
        out = np.full(vidx.shape[0], -np.inf)
        fine = total > _UNDERFLOW
        out[fine] = np.log(total[fine]) + shift[fine]
        if not fine.all():  # far-tail points: the same sum in log space
            pts = ys[np.arange(n_dim)[None, :], local[~fine]]
            out[~fine] = self._log_points(np.ascontiguousarray(pts))
        return out

    @cached_property
    def _sorted_centres(self) -> list:
        return [np.sort(self.centres[:, k]) for k in range(self.dim)]

    @cached_property
    def _centres_c(self) -> np.ndarray:
        return np.ascontiguousarray(self.centres)

    def log_pdf(self, y: np.ndarray) -> np.ndarray:
        """``log p`` at any points ``y`` ``(P, N)`` (``P x J`` kernel evaluations)."""
        y = np.ascontiguousarray(np.atleast_2d(np.asarray(y, dtype=np.float64)))
        fine = self._log_points(y)
        if self.richardson and self.coarse is not None:
            return _combine(fine, self.coarse._log_points(y))
        return fine

    def _log_points(self, y: np.ndarray) -> np.ndarray:
        out = np.empty(y.shape[0])
        mixture_logpdf(y, np.ascontiguousarray(self.centres), np.log(self.weights), self.noise.scale,
                                self._smooth, self._laplace, out)
        return out

    # -- marginals ----------------------------------------------------------------------------
    def marginal(self, k: int, x: np.ndarray) -> np.ndarray:
        """Density of neuron ``k`` at the abscissae ``x`` (1-D)."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).ravel())
        if self._exact_laplace:
            out = laplace_sum(self.centres[:, [k]], self.weights, self.noise.scale[[k]], [x])
            if self.richardson and self.coarse is not None:
                return (4.0 * out - self.coarse.marginal(k, x)) / 3.0
            return out
        out = np.empty(x.size)
        mixture_marginal(x, np.ascontiguousarray(self.centres[:, k]), self.weights,
                                  float(self.noise.scale[k]), float(self._smooth[k]), self._laplace, out)
        if self.richardson and self.coarse is not None:
            return (4.0 * out - self.coarse.marginal(k, x)) / 3.0
        return out

    def _factor(self, k: int, x: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """``(len(x), hi - lo)``: neuron ``k``'s kernel factors of atoms ``lo:hi``."""
        return np.exp(log_kernel_array(x[:, None] - self.centres[None, lo:hi, k], float(self.noise.scale[k]),
                                 float(self._smooth[k]), self._laplace))

    def joint_points(self, i: int, j: int, pts: np.ndarray) -> np.ndarray:
        """Density of neurons ``i`` and ``j`` at the points ``pts`` ``(P, 2)``."""
        pts = np.atleast_2d(np.asarray(pts, dtype=np.float64))
        out = np.zeros(pts.shape[0])
        step = _ATOM_CHUNK // 4
        for s in range(0, pts.shape[0], 512):
            block = pts[s: s + 512]
            for lo in range(0, self.centres.shape[0], step):
                hi = lo + step
                out[s: s + 512] += (self._factor(i, block[:, 0], lo, hi) * self._factor(j, block[:, 1], lo, hi)) \
                    @ self.weights[lo:hi]
        if self.richardson and self.coarse is not None:
            return (4.0 * out - self.coarse.joint_points(i, j, pts)) / 3.0
        return out

    def joint(self, i: int, j: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Density of neurons ``i`` and ``j`` on the grid ``x`` by ``y`` (``(len(x), len(y))``)."""
        x, y = (np.asarray(a, dtype=np.float64).ravel() for a in (x, y))
        if self._exact_laplace:
            out = laplace_sum(self.centres[:, [i, j]], self.weights, self.noise.scale[[i, j]], [x, y])
            if self.richardson and self.coarse is not None:
                return (4.0 * out - self.coarse.joint(i, j, x, y)) / 3.0
            return out
        out = np.zeros((x.size, y.size))
        for lo in range(0, self.centres.shape[0], _ATOM_CHUNK):
            hi = lo + _ATOM_CHUNK
            out += (self._factor(i, x, lo, hi) * self.weights[None, lo:hi]) @ self._factor(j, y, lo, hi).T
        if self.richardson and self.coarse is not None:
            return (4.0 * out - self.coarse.joint(i, j, x, y)) / 3.0
        return out
