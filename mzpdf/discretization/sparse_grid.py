"""Sparse grids: Smolyak constructions on nested 1-D rules (SPEC 3.2).

A sparse grid is the union of small tensor grids, one per multi-index
``l = (l_1, ..., l_N)`` of a downward-closed set (if ``l`` is in the set, so
is every ``l - e_k`` with ``l_k >= 1``). Level ``l`` of a 1-D family has
``m(0) = 1`` node (the centre) and ``m(l) = 2^l + 1`` nodes; the families are
nested, so index ``l`` contributes only its *new* points, those whose 1-D
coordinate ``k`` is new at level ``l_k`` for every ``k``.

Two 1-D families (``rule``):

``"cc"``
    Clenshaw-Curtis (Chebyshev-Lobatto) nodes, global polynomial basis:
    spectral accuracy for smooth functions.
``"hat"``
    Equispaced nodes, piecewise-linear hat basis with the boundary nodes:
    local, second order, and its interpolant of a positive function is
    positive on a full tensor grid (not on a sparse one).

Functions on a grid are nodal values; :meth:`SparseGrid.hierarchize` turns
them into hierarchical surpluses (SPEC 3.2), the coefficients of the basis in
which the Smolyak interpolant is ``sum_p alpha_p prod_k phi_{p_k}(x_k)`` with
``phi_{p_k}`` the level-``l_k`` nodal basis function of the 1-D node ``p_k``
(``l_k`` its level of first appearance). Everything else -- quadrature,
evaluation, marginals, moments -- is built from these surpluses and the 1-D
integrals of the basis, dimension by dimension (the unidirectional principle).

Coordinates: reference ``t`` in ``[-1, 1]^N``, physical ``x = c + h * t`` on a
box. Hierarchical surpluses of a new index depend only on the function at
points of indices ``<= l``, so dimension-adaptive refinement
(:func:`adaptive_grid`) can compute them before the index joins the set.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import combinations_with_replacement
from typing import Callable

import numpy as np
from scipy import sparse as sp

from ._kernels import hierarchical_sum
from .rules import _clenshaw_curtis

__all__ = ["SPARSE_RULES", "SparseGrid", "regular_indices", "adaptive_grid", "AdaptiveResult"]

SPARSE_RULES = ("cc", "hat")
MAX_LEVEL = 24  # 1-D keys are integers in [0, 2^MAX_LEVEL]
_K = 1 << MAX_LEVEL


# -- 1-D nested families -----------------------------------------------------------------

def level_size(level: int) -> int:
    return 1 if level == 0 else (1 << level) + 1


def level_keys(level: int) -> np.ndarray:
    """Integer keys of the nodes of ``level`` in increasing coordinate order."""
    if level == 0:
        return np.array([_K // 2], dtype=np.int64)
    return np.arange(level_size(level), dtype=np.int64) << (MAX_LEVEL - level)


def key_level(keys: np.ndarray) -> np.ndarray:
    """Level at which each 1-D key first appears."""
    keys = np.asarray(keys, dtype=np.int64)
    out = np.empty(keys.shape, dtype=np.int64)
    centre, ends = keys == _K // 2, (keys == 0) | (keys == _K)
    other = ~(centre | ends)
    tz = np.zeros(keys.shape, dtype=np.int64)
    k = np.where(other, keys, 1)
    while np.any((k & 1) == 0):
        even = (k & 1) == 0
        tz[even] += 1
        k = np.where(even, k >> 1, k)
    out[other] = MAX_LEVEL - tz[other]
    out[centre], out[ends] = 0, 1
    return out


def new_keys(level: int) -> np.ndarray:
    """Keys that first appear at ``level``."""
    keys = level_keys(level)
    return keys if level == 0 else keys[key_level(keys) == level]


def key_coordinate(rule: str, keys: np.ndarray) -> np.ndarray:
    """Reference coordinate in ``[-1, 1]`` of each key."""
    s = np.asarray(keys, dtype=np.float64) / _K
    if rule == "cc":
        return -np.cos(np.pi * s)
    return 2.0 * s - 1.0


def nodal_basis(rule: str, level: int, t: np.ndarray) -> np.ndarray:
    """``(len(t), m(level))``: the level's nodal basis functions at ``t``
    (``t`` outside ``[-1, 1]`` gives zero rows)."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    m = level_size(level)
    if level == 0:
        out = np.ones((t.size, 1))
    elif rule == "cc":
        x = key_coordinate(rule, level_keys(level))
        w = (-1.0) ** np.arange(m)
        w[[0, -1]] *= 0.5
        d = t[:, None] - x[None, :]
        hit = d == 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            c = w / d
            out = c / c.sum(axis=1, keepdims=True)
        rows = hit.any(axis=1)
        out[rows] = hit[rows]
    else:
        x = key_coordinate(rule, level_keys(level))
        h = 2.0 / (m - 1)
        out = np.maximum(0.0, 1.0 - np.abs(t[:, None] - x[None, :]) / h)
    out[(t < -1.0) | (t > 1.0)] = 0.0
    return out


def nodal_weights(rule: str, level: int) -> np.ndarray:
    """Integrals over ``[-1, 1]`` of the level's nodal basis functions."""
    m = level_size(level)
    if level == 0:
        return np.array([2.0])
    if rule == "cc":
        return _clenshaw_curtis(m)[1]
    w = np.full(m, 2.0 / (m - 1))
    w[[0, -1]] *= 0.5
    return w


# -- multi-index sets --------------------------------------------------------------------

def regular_indices(dim: int, level: int) -> np.ndarray:
    """All multi-indices with ``|l|_1 <= level``, ``(count, dim)``."""
    rows = [np.zeros(dim, dtype=np.int64)]
    for total in range(1, level + 1):
        for combo in combinations_with_replacement(range(dim), total):
            rows.append(np.bincount(combo, minlength=dim).astype(np.int64))
    return np.array(rows)


def _check_downward_closed(indices: np.ndarray) -> None:
    have = {tuple(r) for r in indices}
    for r in indices:
        for k in np.flatnonzero(r):
            back = r.copy()
            back[k] -= 1
            if tuple(back) not in have:
                raise ValueError(f"index set is not downward closed: {tuple(r)} without {tuple(back)}")


def _block_keys(index: np.ndarray) -> np.ndarray:
    """Keys of the new points of one multi-index, ``(count, dim)``."""
    axes = [new_keys(int(l)) for l in index]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9,
                 0x2545F4914F6CDD1D, 0x9FB21C651E98DF25, 0x6A09E667F3BCC909, 0xBB67AE8584CAA73B],
                dtype=np.uint64)


def _multipliers(dim: int) -> np.ndarray:
    """One odd 64-bit multiplier per dimension, all distinct: ``_MIX`` and,
    beyond its 12, splitmix64 outputs (repeating ``_MIX`` made keys that
    differ by a swap of dimensions ``k`` and ``k + 12`` collide, which stopped
    every sparse grid of 13 or more dimensions)."""
    if dim <= _MIX.size:
        return _MIX[:dim]
    with np.errstate(over="ignore"):
        z = np.arange(1, dim - _MIX.size + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return np.concatenate([_MIX, z | np.uint64(1)])


def _hash_rows(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64)
    dim = keys.shape[1]
    mix = _multipliers(dim)
    with np.errstate(over="ignore"):
        h = (keys.astype(np.uint64) * mix[None, :]).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(29)
    return h


class _PointIndex:
    """Rows of keys -> their position, by hashing (every lookup is verified)."""

    def __init__(self, keys: np.ndarray):
        self.keys = keys
        h = _hash_rows(keys)
        self.order = np.argsort(h, kind="stable")
        self.sorted = h[self.order]
        if np.any(self.sorted[1:] == self.sorted[:-1]):
            raise RuntimeError("hash collision among sparse-grid points")

    def find(self, rows: np.ndarray) -> np.ndarray:
        """Positions of ``rows`` (-1 where absent)."""
        h = _hash_rows(rows)
        pos = np.searchsorted(self.sorted, h)
        pos = np.minimum(pos, self.sorted.size - 1)
        idx = self.order[pos]
        ok = (self.sorted[pos] == h) & np.all(self.keys[idx] == rows, axis=1)
        return np.where(ok, idx, -1)


# -- the grid ------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SparseGrid:
    """A Smolyak sparse grid on a box.

    Parameters
    ----------
    indices : (n_indices, N) int array
        A downward-closed set of multi-indices.
    box : (N, 2)
        The interval of each variable.
    rule : "cc" | "hat"
    """

    indices: np.ndarray
    box: np.ndarray
    rule: str = "cc"

    def __post_init__(self):
        if self.rule not in SPARSE_RULES:
            raise ValueError(f"rule must be one of {list(SPARSE_RULES)}, got {self.rule!r}")
        idx = np.atleast_2d(np.asarray(self.indices, dtype=np.int64))
        box = np.asarray(self.box, dtype=np.float64).reshape(-1, 2)
        if idx.shape[1] != box.shape[0]:
            raise ValueError(f"indices have {idx.shape[1]} columns, the box {box.shape[0]} rows")
        if np.any(idx < 0) or np.any(idx > MAX_LEVEL):
            raise ValueError(f"levels must lie in [0, {MAX_LEVEL}]")
        if np.any(box[:, 1] <= box[:, 0]):
            raise ValueError("box rows must have lo < hi")
        _check_downward_closed(idx)
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "box", box)

    @classmethod
    def regular(cls, box: np.ndarray, level: int, rule: str = "cc") -> "SparseGrid":
        """The regular grid ``|l|_1 <= level`` on ``box``."""
        box = np.asarray(box, dtype=np.float64).reshape(-1, 2)
        return cls(regular_indices(box.shape[0], level), box, rule)

    @property
    def ndim(self) -> int:
        return self.box.shape[0]

    @cached_property
    def keys(self) -> np.ndarray:
        """1-D keys of every point, ``(size, N)``, block by block in index order."""
        return np.concatenate([_block_keys(l) for l in self.indices])

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @cached_property
    def levels(self) -> np.ndarray:
        """Level of first appearance of each point's coordinates, ``(size, N)``."""
        return key_level(self.keys)

    @cached_property
    def reference_points(self) -> np.ndarray:
        return key_coordinate(self.rule, self.keys)

    @cached_property
    def points(self) -> np.ndarray:
        """Physical coordinates, ``(size, N)``."""
        c, h = self.box.mean(axis=1), 0.5 * (self.box[:, 1] - self.box[:, 0])
        return c + h * self.reference_points

    def to_reference(self, x: np.ndarray) -> np.ndarray:
        c, h = self.box.mean(axis=1), 0.5 * (self.box[:, 1] - self.box[:, 0])
        return (np.atleast_2d(np.asarray(x, dtype=np.float64)) - c) / h

    @cached_property
    def _index(self) -> _PointIndex:
        return _PointIndex(self.keys)

    # -- hierarchical basis ---------------------------------------------------------------
    @cached_property
    def _hierarchizers(self) -> list:
        """Per dimension, the sparse matrix of the 1-D hierarchization step
        ``alpha_p = v_p - sum_q L_{l_p - 1, q}(t_p) v_q`` (q: the level
        ``l_p - 1`` nodes of p's fiber along that dimension)."""
        mats = []
        keys, levels, n = self.keys, self.levels, self.size
        for k in range(self.ndim):
            rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.ones(n)]
            for lev in range(1, int(levels[:, k].max(initial=0)) + 1):
                at = np.flatnonzero(levels[:, k] == lev)
                if not at.size:
                    continue
                parent_keys = level_keys(lev - 1)
                t = key_coordinate(self.rule, keys[at, k])
                mat = nodal_basis(self.rule, lev - 1, t)  # (len(at), m(lev-1))
                for j, pk in enumerate(parent_keys):
                    nz = np.flatnonzero(mat[:, j] != 0.0)
                    if not nz.size:
                        continue
                    probe = keys[at[nz]].copy()
                    probe[:, k] = pk
                    q = self._index.find(probe)
                    if np.any(q < 0):
                        raise RuntimeError("sparse grid misses a hierarchical parent (index set not closed)")
                    rows.append(at[nz])
                    cols.append(q)
                    vals.append(-mat[nz, j])
            mats.append(sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                      shape=(n, n)))
        return mats

    def hierarchize(self, values: np.ndarray) -> np.ndarray:
        """Hierarchical surpluses of nodal ``values`` (``(size,)`` or ``(size, m)``)."""
        a = np.asarray(values, dtype=np.float64)
        for mat in self._hierarchizers:
            a = mat @ a
        return a

    @cached_property
    def _basis_integrals(self) -> np.ndarray:
        """``(size, N)``: integral of each point's 1-D basis function over its interval."""
        out = np.empty(self.keys.shape)
        half = 0.5 * (self.box[:, 1] - self.box[:, 0])
        for lev in np.unique(self.levels):
            w = nodal_weights(self.rule, int(lev))
            pos = {int(key): i for i, key in enumerate(level_keys(int(lev)))}
            mask = self.levels == lev
            out[mask] = w[[pos[int(key)] for key in self.keys[mask]]]
        return out * half[None, :]

    @cached_property
    def weights(self) -> np.ndarray:
        """Nodal quadrature weights: ``integral(I f) = weights @ f`` (the
        transposed hierarchization applied to the basis integrals). Some are
        negative."""
        w = np.prod(self._basis_integrals, axis=1)
        for mat in reversed(self._hierarchizers):
            w = mat.T @ w
        return np.asarray(w)

    # -- operations on nodal values -------------------------------------------------------
    def integrate(self, values: np.ndarray) -> float:
        return float(self.weights @ np.asarray(values, dtype=np.float64))

    def _basis_table(self, k: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """1-D basis values along dimension ``k`` at reference ``t``: a table
        ``(len(t), n_keys)`` and each point's column in it."""
        distinct, col = np.unique(self.keys[:, k], return_inverse=True)
        lev = key_level(distinct)
        table = np.empty((t.size, distinct.size))
        for l in np.unique(lev):
            mat = nodal_basis(self.rule, int(l), t)
            pos = np.searchsorted(level_keys(int(l)), distinct[lev == l])
            table[:, lev == l] = mat[:, pos]
        return table, col.astype(np.int64)

    def evaluate(self, values: np.ndarray, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """The Smolyak interpolant of nodal ``values`` at points ``x`` (P, N);
        zero outside the box."""
        return self.evaluate_surpluses(self.hierarchize(values), self.to_reference(x), chunk)

    def evaluate_surpluses(self, alpha: np.ndarray, t: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """The interpolant with hierarchical surpluses ``alpha`` at reference
        points ``t`` (P, N) in ``[-1, 1]^N`` (zero outside)."""
        t = np.atleast_2d(np.asarray(t, dtype=np.float64))
        out = np.empty(t.shape[0])
        for s in range(0, t.shape[0], chunk):
            tt = t[s: s + chunk]
            tables, cols = zip(*(self._basis_table(k, tt[:, k]) for k in range(self.ndim)))
            width = max(tb.shape[1] for tb in tables)
            pad = np.zeros((self.ndim, tt.shape[0], width))
            for k, tb in enumerate(tables):
                pad[k, :, : tb.shape[1]] = tb
            hierarchical_sum(pad, np.ascontiguousarray(np.column_stack(cols)), alpha, out[s: s + chunk])
        return out

    def marginal(self, values: np.ndarray, k: int, x: np.ndarray) -> np.ndarray:
        """Marginal of the interpolant onto variable ``k`` at abscissae ``x``."""
        alpha = self.hierarchize(values)
        ints = self._basis_integrals
        others = np.prod(np.delete(ints, k, axis=1), axis=1)
        c, h = self.box[k].mean(), 0.5 * (self.box[k, 1] - self.box[k, 0])
        table, col = self._basis_table(k, (np.asarray(x, dtype=np.float64).reshape(-1) - c) / h)
        return table[:, col] @ (alpha * others)

    def moments(self, values: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Mass, mean and covariance of the density with nodal ``values``
        (by the grid's quadrature; mean and covariance normalized by the mass)."""
        f = np.asarray(values, dtype=np.float64)
        wf = self.weights * f
        mass = float(wf.sum())
        x = self.points
        mean = x.T @ wf / mass
        d = x - mean
        cov = (d * wf[:, None]).T @ d / mass
        return mass, mean, cov


# -- dimension-adaptive refinement -------------------------------------------------------

@dataclass
class AdaptiveResult:
    """An adaptively built grid with the function's nodal values."""

    grid: SparseGrid
    values: np.ndarray
    indicator: float  # largest indicator among the candidates left out
    evaluations: int
    capped: bool


def adaptive_grid(func: Callable[[np.ndarray], np.ndarray], box: np.ndarray, rule: str = "cc", level: int = 2,
                  tol: float = 1e-6, max_points: int = 100_000, indicator: str = "l1") -> AdaptiveResult:
    """Dimension-adaptive Smolyak grid for ``func`` (vectorized over points
    ``(P, N)``), after Gerstner and Griebel.

    Starts from the regular grid of ``level``; then repeatedly evaluates
    ``func`` on the new points of every admissible forward neighbour of the
    index set and adds those whose indicator exceeds ``tol``. The indicator
    is the size of the candidate's hierarchical increment: ``"l1"``, its L1
    norm ``sum_p |alpha_p| prod_k int phi_{p_k}`` relative to the integral of
    ``|f|``; ``"max"``, its largest surplus ``max_p |alpha_p|`` (absolute: for
    a log-density, the relative error it adds to the density). Stops when no
    candidate exceeds ``tol``, or before the grid would exceed ``max_points``
    (``capped``).
    """
    if indicator not in ("l1", "max"):
        raise ValueError(f"indicator must be 'l1' or 'max', got {indicator!r}")
    box = np.asarray(box, dtype=np.float64).reshape(-1, 2)
    dim = box.shape[0]
    grid = SparseGrid.regular(box, level, rule)
    values = np.asarray(func(grid.points), dtype=np.float64)
    evaluations = grid.size
    scale = max(float(np.abs(grid.weights @ np.abs(values))), 1e-300)
    have = {tuple(r) for r in grid.indices}
    seen: dict[tuple, tuple[float, np.ndarray, np.ndarray]] = {}  # candidate -> (indicator, keys, values)
    capped, worst = False, 0.0
    while True:
        candidates = []
        for r in grid.indices:
            for k in range(dim):
                c = r.copy()
                c[k] += 1
                t = tuple(c)
                if t in have or c[k] > MAX_LEVEL:
                    continue
                if all(tuple(c - np.eye(dim, dtype=np.int64)[j]) in have for j in np.flatnonzero(c)):
                    candidates.append(t)
        candidates = sorted(set(candidates))
        fresh = [c for c in candidates if c not in seen]
        if fresh:  # evaluate the function on the new points of all fresh candidates at once
            blocks = [_block_keys(np.array(c)) for c in fresh]
            pts_ref = key_coordinate(rule, np.concatenate(blocks))
            c0, h0 = box.mean(axis=1), 0.5 * (box[:, 1] - box[:, 0])
            pts = c0 + h0 * pts_ref
            f = np.asarray(func(pts), dtype=np.float64)
            evaluations += pts.shape[0]
            surplus = f - grid.evaluate(values, pts)
            start = 0
            for c, b in zip(fresh, blocks):
                s = slice(start, start + b.shape[0])
                ints = np.ones(b.shape[0])
                for k in range(dim):
                    lev = int(c[k])
                    w = nodal_weights(rule, lev) * h0[k]
                    ints *= w[np.searchsorted(level_keys(lev), b[:, k])]
                size = (float(np.abs(surplus[s]) @ ints) / scale if indicator == "l1"
                        else float(np.max(np.abs(surplus[s]))))
                seen[c] = (size, b, f[s])
                start += b.shape[0]
        worst = max((seen[c][0] for c in candidates), default=0.0)
        chosen = [c for c in candidates if seen[c][0] > tol]
        if not chosen:
            break
        added = sum(seen[c][1].shape[0] for c in chosen)
        if grid.size + added > max_points:
            capped = True
            break
        order = [tuple(r) for r in grid.indices] + chosen
        new_values = np.concatenate([values] + [seen[c][2] for c in chosen])
        grid = SparseGrid(np.array(order), box, rule)
        values = new_values
        have.update(chosen)
    return AdaptiveResult(grid, values, worst, evaluations, capped)
