"""Rank-adaptive TT cross approximation of a black-box function on a grid.

:func:`cross` builds a train from function values at a few fibers: it keeps,
per bond, ``r`` left and right multi-indices; each half-sweep evaluates the
fibers ``f(I_k, :, J_{k+1})`` core by core, truncates them by SVD (which sets
the rank), and picks the next index set by :func:`maxvol` (the rows of the
truncated basis spanning a submatrix of locally maximal volume). Ranks grow
because every fiber matrix is enlarged by a few extra columns ("kick")
evaluated at random neighbours of the current indices; they shrink when the
SVD says so. Sweeps stop when two consecutive trains agree to ``tol``, when
the error on the check points is below ``tol``, or when two half-sweeps
lowered that error by less than 20 % (stalled: the rank rule has settled).

References: Oseledets & Tyrtyshnikov, "TT-cross approximation of
multidimensional arrays", Linear Algebra Appl. 432 (2010); Goreinov et al.,
"How to find a good submatrix" (2010) for maxvol; Savostyanov & Oseledets
(2011) for the rank-adaptive sweeps. The code is ours.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .tensor_train import _dot_cores, cores_at_indices

__all__ = ["maxvol", "cross", "CrossResult"]

_STALL_SWEEPS, _STALL_GAIN = 2, 0.8  # stop when 2 half-sweeps gained less than 20 % on the best error before them


def maxvol(a: np.ndarray, tol: float = 1.05, max_iters: int = 200) -> np.ndarray:
    """Rows of an ``(n, r)`` matrix (``n >= r``, full column rank) whose
    ``r x r`` submatrix is dominant: every entry of ``a @ inv(a[rows])`` is at
    most ``tol`` in modulus. Starts from column-pivoted QR of ``a.T``, then
    swaps rows greedily with rank-one updates (``O(n r)`` per swap)."""
    from scipy.linalg import qr

    n, r = a.shape
    if r == 0:
        return np.zeros(0, dtype=np.int64)
    if n < r:
        raise ValueError(f"maxvol needs at least as many rows as columns, got {a.shape}")
    _, _, piv = qr(a.T, pivoting=True, mode="economic")
    rows = np.array(piv[:r], dtype=np.int64)
    b = np.linalg.solve(a[rows].T, a.T).T
    for _ in range(max_iters):
        i, j = np.unravel_index(np.argmax(np.abs(b)), b.shape)
        if abs(b[i, j]) <= tol:
            break
        bj = b[:, j].copy()
        bi = b[i, :].copy()
        bi[j] -= 1.0
        b -= np.outer(bj, bi) / b[i, j]
        rows[j] = i
    return rows


@dataclass
class CrossResult:
    """What :func:`cross` produced.

    Attributes
    ----------
    cores : list of arrays
    evaluations : int
        Calls of the function, points counted.
    sweeps : int
        Half-sweeps done.
    error : float
        A-posteriori relative error ``|f - tt|_2 / |f|_2`` on the check points.
    converged : bool
        Whether two consecutive trains agreed to ``tol``, or the check error fell below it.
    capped : bool
        Whether some bond wanted a rank above ``max_rank``.
    """

    cores: list
    evaluations: int
    sweeps: int
    error: float
    converged: bool
    capped: bool

    @property
    def ranks(self) -> tuple:
        return (1,) + tuple(c.shape[2] for c in self.cores)


def _truncation_rank(s: np.ndarray, tol: float, max_rank: int, ndim: int) -> tuple[int, bool]:
    if s.size == 0 or s[0] == 0.0:
        return 1, False
    tail = np.sqrt(np.cumsum(s[::-1] ** 2))[::-1]
    rank = max(1, int(np.sum(tail > tol / np.sqrt(max(ndim - 1, 1)) * tail[0])))
    return (max_rank, True) if rank > max_rank else (rank, False)


def _skeleton(mat: np.ndarray, tol: float, max_rank: int, ndim: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Truncated column basis ``U`` of ``mat`` (rank by :func:`_truncation_rank`),
    its maxvol rows, and ``U @ inv(U[rows])`` (the interpolating core, equal
    to the identity on those rows); also whether ``max_rank`` cut."""
    u, s, _ = np.linalg.svd(mat, full_matrices=False)
    rank, cut = _truncation_rank(s, tol, max_rank, ndim)
    u = u[:, :min(rank, u.shape[1])]
    rows = maxvol(u)
    return np.linalg.solve(u[rows].T, u.T).T, rows, cut


def _unique_rows(a: np.ndarray) -> np.ndarray:
    _, first = np.unique(a, axis=0, return_index=True)
    return a[np.sort(first)]


def cross(fn: Callable[[np.ndarray], np.ndarray], shape, tol: float = 1e-8, max_rank: int = 64,
          rng: np.random.Generator | None = None, start: np.ndarray | None = None, init_rank: int = 4,
          kick: int = 4, max_sweeps: int = 12, checks: np.ndarray | None = None,
          on_sweep: Callable[[int], None] | None = None) -> CrossResult:
    """Cross approximation of ``fn`` on the grid of ``shape``.

    Parameters
    ----------
    fn : callable
        ``fn(idx)`` with ``idx`` an int array ``(P, N)`` of multi-indices
        returns the ``(P,)`` values.
    shape : sequence of int
    tol : float
        Relative accuracy aimed at (SVD truncation and the stopping rule).
    max_rank : int
    rng : numpy Generator
        For the initial and the kick indices (pass a seeded one for
        reproducible trains).
    start : (S, N) int array, optional
        Typical multi-indices (e.g. drawn from an approximation of the
        function's bulk); initial and kick indices are taken from them and
        their neighbours. Uniform random indices otherwise.
    checks : (C, N) int array, optional
        Points of the a-posteriori error estimate (default: ``start``, or 1000
        uniform random indices).
    """
    shape = tuple(int(n) for n in shape)
    N = len(shape)
    rng = np.random.default_rng(0) if rng is None else rng
    if start is None:
        start = np.column_stack([rng.integers(n, size=256) for n in shape])
    start = np.asarray(start, dtype=np.int64)
    count = [0]

    def evaluate(idx: np.ndarray) -> np.ndarray:
        count[0] += idx.shape[0]
        return np.asarray(fn(idx), dtype=np.float64)

    def fibers(left: np.ndarray, k: int, right: np.ndarray) -> np.ndarray:
        a, n, b = left.shape[0], shape[k], right.shape[0]
        idx = np.empty((a, n, b, N), dtype=np.int64)
        idx[..., :k] = left[:, None, None, :]
        idx[..., k] = np.arange(n)[None, :, None]
        idx[..., k + 1:] = right[None, None, :, :]
        return evaluate(idx.reshape(-1, N)).reshape(a, n, b)

    def neighbours(cols: slice, m: int) -> np.ndarray:
        """``m`` rows of ``start`` restricted to ``cols``, one coordinate of
        each moved to a random node: indices near the bulk of the function."""
        rows = start[rng.integers(start.shape[0], size=m), cols].copy()
        if rows.shape[1]:
            j = rng.integers(rows.shape[1], size=m)
            sizes = np.array(shape[cols])
            rows[np.arange(m), j] = rng.integers(sizes[j])
        return rows

    # Nested right index sets J[k] over variables k..N-1, from the start rows.
    I = [np.zeros((1, 0), dtype=np.int64)] + [None] * N
    J = [None] * N + [np.zeros((1, 0), dtype=np.int64)]
    for k in range(N - 1, 0, -1):
        J[k] = _unique_rows(start[rng.integers(start.shape[0], size=init_rank), k:])
    check = start if checks is None else np.asarray(checks, dtype=np.int64)
    exact = evaluate(check)
    denom = float(np.linalg.norm(exact))

    def check_error(cores) -> float:
        approx = cores_at_indices(cores, check)
        return float(np.linalg.norm(exact - approx) / denom) if denom > 0 else float(np.linalg.norm(approx))

    cores, previous, sweeps, converged, capped = [None] * N, None, 0, False, False
    errors = []
    while sweeps < max_sweeps:
        if on_sweep is not None:
            on_sweep(sweeps + 1)
        left_to_right = sweeps % 2 == 0
        capped_now = False
        if left_to_right:
            for k in range(N - 1):
                t = fibers(I[k], k, J[k + 1])
                a, n, b = t.shape
                mat = t.reshape(a * n, b)
                if kick:
                    m = max(kick, b // 4)  # grow ranks geometrically while they grow
                    extra = fibers(I[k], k, neighbours(slice(k + 1, N), m)).reshape(a * n, m)
                    mat = np.hstack([mat, extra])
                skeleton, rows, cut = _skeleton(mat, tol, max_rank, N)
                capped_now |= cut
                cores[k] = skeleton.reshape(a, n, -1)
                I[k + 1] = np.column_stack([I[k][rows // n], rows % n])
            cores[N - 1] = fibers(I[N - 1], N - 1, J[N])
        else:
            for k in range(N - 1, 0, -1):
                t = fibers(I[k], k, J[k + 1])
                a, n, b = t.shape
                mat = t.reshape(a, n * b).T
                if kick:
                    m = max(kick, a // 4)
                    extra = fibers(neighbours(slice(0, k), m), k, J[k + 1]).reshape(m, n * b).T
                    mat = np.hstack([mat, extra])
                skeleton, rows, cut = _skeleton(mat, tol, max_rank, N)
                capped_now |= cut
                cores[k] = skeleton.T.reshape(-1, n, b)
                J[k] = np.column_stack([rows // b, J[k + 1][rows % b]])
            cores[0] = fibers(I[0], 0, J[1])
        sweeps += 1
        capped = capped_now
        current = [c.copy() for c in cores]
        errors.append(check_error(current))
        if previous is not None:
            norm2 = _dot_cores(current, current)
            diff2 = norm2 - 2 * _dot_cores(current, previous) + _dot_cores(previous, previous)
            if (norm2 > 0 and np.sqrt(max(diff2, 0.0) / norm2) < tol) or errors[-1] < tol:
                converged = True
                break
        if len(errors) >= _STALL_SWEEPS + 2 and min(errors[-_STALL_SWEEPS:]) > _STALL_GAIN * min(errors[:-_STALL_SWEEPS]):
            break  # stalled: more sweeps of this rank rule do not lower the error on the check points
        previous = current
    return CrossResult(cores, count[0], sweeps, errors[-1], converged, capped)

