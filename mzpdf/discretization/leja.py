"""Smolyak interpolation on nested symmetric Leja points for the standard
normal weight (the sparse grids of the sparse solver, SPEC 3.2).

1-D rule. The nested sequence ``0, -a_1, a_1, -a_2, a_2, ...``: ``a_l`` the
point of ``x > 0`` that maximizes ``exp(-x^2 / 2) prod |x - x_i|`` over the
points ``x_i`` before it (a symmetric weighted Leja sequence: ``a_1 = 1``,
``a_2 = sqrt(2 + sqrt 3)``, then 2.714, 0.475, 3.573, ...). Level ``l`` of the
1-D rule holds ``2 l + 1`` points and interpolates polynomials of degree
``2 l``; its points spread like those of Gauss-Hermite rules, so that the
interpolant is accurate where a gaussian-like density has its mass, and the
pairs keep symmetric functions symmetric.

Sparse grid. A multi-index ``alpha`` (one Newton degree per variable) is a
point ``(x_alpha_1, ..., x_alpha_N)``; a downward-closed set of them is a
Smolyak grid, and the interpolant on it is unique in the span of the Newton
products ``psi_alpha(u) = prod_k psi_alpha_k(u_k)``,
``psi_j(u) = prod_{i<j} (u - x_i) / (x_j - x_i)`` (Chkifa, Cohen and Schwab
2014): one point per basis function, and the coefficient of a point is its
hierarchical surplus (the value minus the interpolant of the points before
it). The Smolyak level of ``alpha`` is ``sum_k ceil(alpha_k / 2)`` (its pair
levels); the regular grid of level ``L`` takes every index of level ``<= L``
(8 neurons: 145, 833, 3649 points at levels 2, 3, 4; 4 neurons: 129, 321,
681, 1289, 2241 at levels 3-7), and dimension-adaptive refinement adds
pair-level blocks (``2^(active dims)`` points each) where their surpluses,
weighted by ``E|psi_alpha(U)|`` under ``U ~ N(0, I)``, are largest.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import combinations_with_replacement
from typing import Callable

import numpy as np
from scipy import sparse as sp

from ._kernels import newton_sum

__all__ = ["LejaGrid", "leja_nodes", "pair_levels", "regular_indices", "block_indices", "adaptive_leja_grid",
           "AdaptiveLeja"]

MAX_PAIRS = 24  # largest 1-D pair level (49 points, degree 48)


@lru_cache(maxsize=1)
def leja_pairs() -> np.ndarray:
    """``a_1, ..., a_MAX_PAIRS``: the positive points of the symmetric Leja
    sequence for the weight ``exp(-x^2 / 2)`` (module doc), each by Newton's
    method on the derivative of the log objective from the best point of a
    fine search grid (converged to round-off)."""
    pts = [0.0]
    out = []
    grid = np.linspace(1e-6, 3.0 + 2.0 * np.sqrt(MAX_PAIRS), 200_001)
    for _ in range(MAX_PAIRS):
        p = np.array(pts)
        log_obj = -0.5 * grid ** 2 + np.sum(np.log(np.abs(grid[:, None] - p[None, :]) + 1e-300), axis=1)
        x = float(grid[int(np.argmax(log_obj))])
        for _ in range(50):
            step = (-x + np.sum(1.0 / (x - p))) / (-1.0 - np.sum(1.0 / (x - p) ** 2))
            x -= step
            if abs(step) < 1e-15 * x:
                break
        out.append(x)
        pts += [-x, x]
    return np.array(out)


@lru_cache(maxsize=1)
def leja_nodes() -> np.ndarray:
    """The 1-D points in Newton order: ``0, -a_1, a_1, -a_2, a_2, ...``."""
    a = leja_pairs()
    out = np.zeros(2 * a.size + 1)
    out[1::2], out[2::2] = -a, a
    return out


@lru_cache(maxsize=1)
def _newton_ratios() -> np.ndarray:
    """``r_j`` with ``psi_j(u) = psi_{j-1}(u) (u - x_{j-1}) r_j``."""
    x = leja_nodes()
    r = np.ones(x.size)
    for j in range(1, x.size):
        r[j] = 1.0 / (x[j] - x[j - 1])
        for i in range(j - 1):
            r[j] *= (x[j - 1] - x[i]) / (x[j] - x[i])
    return r


def newton_basis(u: np.ndarray, degree: int) -> np.ndarray:
    """``psi_0 .. psi_degree`` at the points ``u`` (any shape): ``u.shape + (degree + 1,)``."""
    u = np.asarray(u, dtype=np.float64)
    x, r = leja_nodes(), _newton_ratios()
    out = np.empty(u.shape + (degree + 1,))
    out[..., 0] = 1.0
    for j in range(1, degree + 1):
        out[..., j] = out[..., j - 1] * (u - x[j - 1]) * r[j]
    return out


def pair_levels(indices: np.ndarray) -> np.ndarray:
    """Pair level ``ceil(alpha / 2)`` of every entry."""
    return (np.asarray(indices) + 1) // 2


def regular_indices(dim: int, level: int) -> np.ndarray:
    """Every multi-index of Smolyak level ``<= level`` (``(count, dim)``, lexicographic)."""
    rows = []
    for total in range(level + 1):
        for combo in combinations_with_replacement(range(dim), total):
            rows.append(block_indices(np.bincount(np.array(combo, dtype=np.int64), minlength=dim)))
    return _sorted(np.concatenate(rows))


def block_indices(levels: np.ndarray) -> np.ndarray:
    """The multi-indices of one pair-level block: ``alpha_k`` in
    ``{2 l_k - 1, 2 l_k}`` where ``l_k >= 1``, 0 elsewhere."""
    levels = np.asarray(levels, dtype=np.int64)
    axes = [np.array([2 * l - 1, 2 * l]) if l > 0 else np.zeros(1, dtype=np.int64) for l in levels]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1).astype(np.int64)


def _encode(rows: np.ndarray) -> np.ndarray:
    """One integer per multi-index, increasing in lexicographic order (up to
    11 variables; beyond, a byte view that sorts the same for these
    non-negative small integers)."""
    rows = np.asarray(rows, dtype=np.int64)
    base = 2 * MAX_PAIRS + 1
    if rows.shape[1] <= 11:
        return rows @ (base ** np.arange(rows.shape[1] - 1, -1, -1, dtype=np.int64))
    big = np.ascontiguousarray(rows.astype(">u1"))
    return big.view(np.dtype((np.void, rows.shape[1]))).ravel()


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, max(sorted_keys.size - 1, 0))
    return sorted_keys[pos] == keys if sorted_keys.size else np.zeros(keys.size, dtype=bool)


def _sorted(indices: np.ndarray) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64)
    return np.ascontiguousarray(indices[np.lexsort(indices.T[::-1])])


@lru_cache(maxsize=1)
def _mean_abs_1d() -> np.ndarray:
    """``E|psi_j(U)|``, U ~ N(0, 1), for every 1-D degree (a 200-point Gauss-Hermite rule)."""
    t, w = np.polynomial.hermite_e.hermegauss(200)
    return (w / w.sum()) @ np.abs(newton_basis(t, leja_nodes().size - 1))


@dataclass(frozen=True, eq=False)
class LejaGrid:
    """A downward-closed set of multi-indices (``(A, N)``, stored in
    lexicographic order) and its points on the Leja sequence.

    Functions on the grid are nodal values (one per point, in the stored
    order); :meth:`hierarchize` turns them into the coefficients of the Newton
    products, :meth:`evaluate` sums those at any points.
    """

    indices: np.ndarray

    def __post_init__(self):
        idx = _sorted(np.atleast_2d(self.indices))
        if idx.size and (idx.min() < 0 or idx.max() > 2 * MAX_PAIRS):
            raise ValueError(f"degrees must lie in [0, {2 * MAX_PAIRS}]")
        keys = _encode(idx)
        if np.any(keys[1:] == keys[:-1]):
            raise ValueError("multi-indices must be distinct")
        for k in range(idx.shape[1]):
            rows = idx[idx[:, k] > 0].copy()
            rows[:, k] -= 1
            missing = ~_contains(keys, _encode(rows))
            if np.any(missing):
                below = rows[np.argmax(missing)]
                above = below.copy()
                above[k] += 1
                raise ValueError(f"index set is not downward closed: {tuple(int(v) for v in above)} without "
                                 f"{tuple(int(v) for v in below)}")
        object.__setattr__(self, "indices", idx)

    @classmethod
    def regular(cls, dim: int, level: int) -> "LejaGrid":
        return cls(regular_indices(dim, level))

    @property
    def ndim(self) -> int:
        return self.indices.shape[1]

    @property
    def size(self) -> int:
        return self.indices.shape[0]

    @cached_property
    def degree(self) -> int:
        return int(self.indices.max(initial=0))

    @cached_property
    def points(self) -> np.ndarray:
        """``(A, N)`` points in the reference coordinates (standard normal scale)."""
        return leja_nodes()[self.indices]

    @cached_property
    def basis_mean_abs(self) -> np.ndarray:
        """``E|psi_alpha(U)|`` for ``U ~ N(0, I)``, ``(A,)``: the size of a
        unit coefficient under the gaussian reference."""
        return np.prod(_mean_abs_1d()[self.indices], axis=1)

    @cached_property
    def _hierarchizers(self) -> list:
        """Per dimension, the sparse matrix of the 1-D Newton transform along
        that dimension (every fiber of a downward-closed set is a prefix
        ``0..m`` of the 1-D sequence)."""
        idx, n = self.indices, self.size
        keys = _encode(idx)  # sorted: the indices are in lexicographic order
        deg = self.degree
        inv = np.linalg.inv(newton_basis(leja_nodes()[: deg + 1], deg))  # values -> Newton coefficients, 1-D
        mats = []
        for k in range(self.ndim):
            m = idx[:, k]
            rows = np.repeat(np.arange(n), m + 1)
            j = np.arange(rows.size) - np.repeat(np.cumsum(m + 1) - (m + 1), m + 1)  # 0..m_a for every a
            probe = idx[rows].copy()
            probe[:, k] = j
            cols = np.searchsorted(keys, _encode(probe))
            mats.append(sp.csr_matrix((inv[m[rows], j], (rows, cols)), shape=(n, n)))
        return mats

    def hierarchize(self, values: np.ndarray) -> np.ndarray:
        """Newton coefficients (hierarchical surpluses) of nodal ``values``."""
        c = np.asarray(values, dtype=np.float64)
        for mat in self._hierarchizers:
            c = mat @ c
        return np.asarray(c)

    @cached_property
    def row_start(self) -> np.ndarray:
        """``(A,)``: the first entry where each index differs from the one
        before it (0 for the first): the products over the entries before it
        are shared (:func:`mzpdf.discretization._kernels.mixture_sum`)."""
        idx = self.indices
        out = np.zeros(idx.shape[0], dtype=np.int64)
        if idx.shape[0] > 1:
            out[1:] = np.argmax(idx[1:] != idx[:-1], axis=1)
        return out

    @cached_property
    def _groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernel's layout: runs of indices sharing all but the last
        entry (``offsets``, ``(G + 1,)``), each run's prefix (``prefix``,
        ``(G, N - 1)``) and the first entry where it differs from the run
        before (``start``, ``(G,)``)."""
        idx = self.indices
        if self.ndim == 1:
            return np.array([0, idx.shape[0]], dtype=np.int64), np.zeros((1, 0), dtype=np.int64), \
                np.zeros(1, dtype=np.int64)
        head = idx[:, :-1]
        new = np.ones(idx.shape[0], dtype=bool)
        new[1:] = np.any(head[1:] != head[:-1], axis=1)
        first = np.flatnonzero(new)
        offsets = np.append(first, idx.shape[0]).astype(np.int64)
        prefix = np.ascontiguousarray(head[first])
        start = np.zeros(first.size, dtype=np.int64)
        if first.size > 1:
            diff = prefix[1:] != prefix[:-1]
            start[1:] = np.argmax(diff, axis=1)
        return offsets, prefix, start

    def evaluate(self, coefficients: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The interpolant with Newton ``coefficients`` at points ``u`` ``(P, N)``
        (polynomial extrapolation beyond the points: clip ``u`` first)."""
        u = np.ascontiguousarray(np.atleast_2d(np.asarray(u, dtype=np.float64)))
        if u.shape[1] != self.ndim:
            raise ValueError(f"points have {u.shape[1]} columns, the grid {self.ndim}")
        offsets, prefix, start = self._groups
        out = np.empty(u.shape[0])
        newton_sum(u, leja_nodes()[: self.degree + 1], _newton_ratios()[: self.degree + 1],
                            offsets, prefix, start, np.ascontiguousarray(coefficients, dtype=np.float64), out)
        return out

    def interpolation_error(self, coefficients: np.ndarray, last: np.ndarray | None = None) -> float:
        """``sum |c_alpha| E|psi_alpha(U)|`` over the indices of the last
        Smolyak level (``last``: a boolean mask of the indices to count
        instead): the size, in L1 under the gaussian reference, of the last
        hierarchical increment -- the usual estimate of the error left."""
        if last is None:
            lev = pair_levels(self.indices).sum(axis=1)
            last = lev == lev.max(initial=0)
        return float(np.abs(coefficients[last]) @ self.basis_mean_abs[last])


@dataclass
class AdaptiveLeja:
    """An adaptively built grid with the function's nodal values and
    coefficients; ``indicator``: the summed indicators of the blocks left
    out (an estimate of the L1 error left); ``capped``: stopped by ``max_points``."""

    grid: LejaGrid
    values: np.ndarray
    coefficients: np.ndarray
    indicator: float
    capped: bool


def _block_coefficients(levels: tuple, block: np.ndarray, surplus: np.ndarray) -> np.ndarray:
    """Newton coefficients of a block's points from their surpluses over the
    interpolant without the block: the block's collocation matrix is a
    Kronecker product of 2 x 2 unit lower triangles (``psi_{2l}`` vanishes at
    ``x_{2l-1}``), inverted dimension by dimension."""
    c = np.array(surplus, dtype=np.float64)
    x = leja_nodes()
    for k, l in enumerate(levels):
        if l == 0:
            continue
        low = newton_basis(x[2 * l], 2 * l - 1)[-1]  # psi_{2l-1}(x_{2l})
        lo_rows = np.flatnonzero(block[:, k] == 2 * l - 1)
        key = {tuple(np.delete(block[i], k)): i for i in lo_rows}
        for i in np.flatnonzero(block[:, k] == 2 * l):
            c[i] -= low * c[key[tuple(np.delete(block[i], k))]]
    return c


def adaptive_leja_grid(func: Callable[[np.ndarray], np.ndarray], dim: int, level: int, tol: float,
                       max_points: int) -> AdaptiveLeja:
    """Dimension-adaptive refinement over pair-level blocks (Gerstner and
    Griebel on the Leja grid): start from the regular grid of ``level``;
    repeatedly evaluate ``func`` (of the multi-indices ``(P, dim)`` of the
    points: the point of ``alpha`` is ``leja_nodes()[alpha]``) on the
    points of every admissible block not yet in the grid, and add the blocks
    whose indicator ``sum |c_alpha| E|psi_alpha(U)|`` exceeds ``tol`` (their
    expected contribution, under the gaussian reference, to the
    interpolant), largest first, until none does or the grid would exceed
    ``max_points``."""
    grid = LejaGrid.regular(dim, level)
    values = np.asarray(func(grid.indices), dtype=np.float64)
    coef = grid.hierarchize(values)
    blocks = {tuple(int(v) for v in r) for r in pair_levels(grid.indices)}
    seen: dict[tuple, tuple[float, np.ndarray, np.ndarray]] = {}  # block -> (indicator, indices, values)
    mean_abs = _mean_abs_1d()
    capped = False
    while True:
        candidates = set()
        for b in blocks:
            for k in range(dim):
                c = tuple(b[i] + (i == k) for i in range(dim))
                if c in blocks or c[k] > MAX_PAIRS:
                    continue
                if all(tuple(c[i] - (i == j) for i in range(dim)) in blocks for j in range(dim) if c[j] > 0):
                    candidates.add(c)
        fresh = sorted(c for c in candidates if c not in seen)
        if fresh:
            idx = [block_indices(np.array(c)) for c in fresh]
            pts = leja_nodes()[np.concatenate(idx)]
            f = np.asarray(func(np.concatenate(idx)), dtype=np.float64)
            surplus = f - grid.evaluate(coef, pts)
            start = 0
            for c, ix in zip(fresh, idx):
                s = slice(start, start + ix.shape[0])
                cb = _block_coefficients(c, ix, surplus[s])
                seen[c] = (float(np.abs(cb) @ np.prod(mean_abs[ix], axis=1)), ix, f[s])
                start += ix.shape[0]
        ranked = sorted(((seen[c][0], c) for c in candidates), reverse=True)
        take, added = [], 0
        for size, c in ranked:
            if size <= tol:
                break
            n = seen[c][1].shape[0]
            if grid.size + added + n > max_points:
                capped = True
                break
            take.append(c)
            added += n
        if not take:
            break
        new_idx = np.concatenate([grid.indices] + [seen[c][1] for c in take])
        new_val = np.concatenate([values] + [seen[c][2] for c in take])
        order = np.lexsort(new_idx.T[::-1])
        grid = LejaGrid(new_idx[order])
        values = new_val[order]
        coef = grid.hierarchize(values)
        blocks.update(take)
        for c in take:
            del seen[c]
        if capped:
            break
    left = sum(size for c, (size, _, _) in seen.items() if c in candidates)
    return AdaptiveLeja(grid, values, coef, float(left), capped)
