"""Functions of many variables in tensor-train (TT) format (SPEC 3.3).

A :class:`TTFunction` holds the nodal values of ``f`` on a tensor grid of 1-D
rules in TT form,

    f(x_{i_1}, ..., x_{i_N}) = G_1[:, i_1, :] G_2[:, i_2, :] ... G_N[:, i_N, :],

with cores ``G_k`` of shape ``(r_{k-1}, n_k, r_k)``, ``r_0 = r_N = 1``. Every
operation below costs a polynomial in ``N``, ``n`` and ``r``: integrals,
marginals and moments are contractions with 1-D weight vectors; evaluation at
arbitrary points contracts each core with the point's 1-D interpolation row
(``O(N n r^2)`` per point, done as one matrix product per core for a batch);
rounding is the TT-SVD of an orthogonalized train.

Algorithms: Oseledets, "Tensor-train decomposition", SIAM J. Sci. Comput. 33
(2011) (rounding, arithmetic); the code is ours.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TTFunction", "tt_round", "contract_rows", "cores_at_indices"]

_CHUNK_BYTES = 32 * 2**20  # working set of one batched contraction


def tt_round(cores: list, tol: float, max_rank: int | None = None) -> tuple[list, float, bool]:
    """Round a train to relative Frobenius accuracy ``tol`` (and ranks at most
    ``max_rank``).

    Returns ``(cores, error, capped)``: ``error`` is the relative Frobenius
    norm of what was discarded (exact, from the singular values), ``capped``
    whether ``max_rank`` cut more than ``tol`` allowed.
    """
    cores = [np.array(c, dtype=np.float64) for c in cores]
    N = len(cores)
    for k in range(N - 1, 0, -1):  # right-to-left orthogonalization
        r0, n, r1 = cores[k].shape
        q, r = np.linalg.qr(cores[k].reshape(r0, n * r1).T)
        cores[k] = q.T.reshape(-1, n, r1)
        cores[k - 1] = np.tensordot(cores[k - 1], r.T, axes=(2, 0))
    norm = float(np.linalg.norm(cores[0]))
    if norm == 0.0 or N == 1:
        return cores, 0.0, False
    delta = tol / np.sqrt(N - 1) * norm
    lost2, capped = 0.0, False
    for k in range(N - 1):
        r0, n, r1 = cores[k].shape
        u, s, vt = np.linalg.svd(cores[k].reshape(r0 * n, r1), full_matrices=False)
        tail = np.sqrt(np.cumsum(s[::-1] ** 2))[::-1]  # tail[j] = |s[j:]|
        rank = max(1, int(np.sum(tail > delta)))
        if max_rank is not None and rank > max_rank:
            rank, capped = max_rank, True
        lost2 += float(np.sum(s[rank:] ** 2))
        cores[k] = u[:, :rank].reshape(r0, n, rank)
        cores[k + 1] = np.tensordot(s[:rank, None] * vt[:rank], cores[k + 1], axes=(1, 0))
    error = np.sqrt(lost2) / norm
    return cores, float(error), bool(capped and error > tol)


def contract_rows(cores: list, rows: list) -> np.ndarray:
    """``sum_i rows[0][p, i_1] ... rows[N-1][p, i_N] f(i_1, ..., i_N)`` for each
    ``p``: the train contracted, per point ``p``, with one row vector per core
    (interpolation rows, kernel rows, one-hot rows...). ``rows[k]`` has shape
    ``(P, n_k)``; the result has shape ``(P,)``."""
    P = rows[0].shape[0]
    width = max(c.shape[0] * c.shape[2] for c in cores)
    chunk = max(1, _CHUNK_BYTES // (8 * width))
    # per core, the (n, r0 r1) matrix whose product with the rows gives each
    # point's r0 x r1 core matrix: one GEMM per core and chunk, then a
    # batched vector-matrix product (3x faster than forming row (x) left)
    mats = [c.transpose(1, 0, 2).reshape(c.shape[1], -1) for c in cores]
    out = np.empty(P)
    for start in range(0, P, chunk):
        stop = min(P, start + chunk)
        left = np.ones((stop - start, 1, 1))
        for core, mat, v in zip(cores, mats, rows):
            r0, _, r1 = core.shape
            left = np.matmul(left, (v[start:stop] @ mat).reshape(-1, r0, r1))
        out[start:stop] = left[:, 0, 0]
    return out


def cores_at_indices(cores: list, idx: np.ndarray) -> np.ndarray:
    """Entries of a train at integer multi-indices ``(P, N)``."""
    left = np.ones((idx.shape[0], 1))
    for k, c in enumerate(cores):
        left = np.einsum("pa,pab->pb", left, c[:, idx[:, k], :].transpose(1, 0, 2))
    return left[:, 0]


def _dot_cores(a: list, b: list) -> float:
    """Frobenius inner product of two trains with the same mode sizes."""
    m = np.ones((1, 1))
    for x, y in zip(a, b):
        m = np.einsum("ab,aic,bid->cd", m, x, y, optimize=True)
    return float(m[0, 0])


class TTFunction:
    """Nodal values of a function on a tensor grid of 1-D rules, in TT format.

    Parameters
    ----------
    cores : list of (r_{k-1}, n_k, r_k) arrays
    rules : list of mzpdf.discretization.rules.Rule1D
        The 1-D rule (nodes, weights, interpolation) of each variable.
    """

    def __init__(self, cores, rules):
        cores = [np.asarray(c, dtype=np.float64) for c in cores]
        if len(cores) != len(rules) or not cores:
            raise ValueError(f"need one core per rule, got {len(cores)} cores and {len(rules)} rules")
        for k, (c, rule) in enumerate(zip(cores, rules)):
            if c.ndim != 3 or c.shape[1] != rule.size:
                raise ValueError(f"core {k} has shape {c.shape}, the rule {rule.size} nodes")
            if (c.shape[0] != (1 if k == 0 else cores[k - 1].shape[2])) or (k == len(cores) - 1 and c.shape[2] != 1):
                raise ValueError(f"core {k} has shape {c.shape}: ranks do not chain")
        self.cores = cores
        self.rules = list(rules)

    # -- construction ----------------------------------------------------------
    @classmethod
    def from_dense(cls, values: np.ndarray, rules, tol: float = 1e-12, max_rank: int | None = None) -> "TTFunction":
        """TT-SVD of a full tensor of nodal values (small N only)."""
        values = np.asarray(values, dtype=np.float64)
        shape = tuple(r.size for r in rules)
        if values.shape != shape:
            raise ValueError(f"values have shape {values.shape}, the rules {shape}")
        # the exact train (ranks <= min(prod left, prod right)), then rounded
        cores, rest, r0 = [], values, 1
        for n in shape[:-1]:
            u, s, vt = np.linalg.svd(rest.reshape(r0 * n, -1), full_matrices=False)
            keep = max(1, int(np.sum(s > s[0] * 1e-15))) if s.size and s[0] > 0 else 1
            cores.append(u[:, :keep].reshape(r0, n, keep))
            rest, r0 = s[:keep, None] * vt[:keep], keep
        cores.append(rest.reshape(r0, shape[-1], 1))
        cores, _, _ = tt_round(cores, tol, max_rank)
        return cls(cores, rules)

    @classmethod
    def rank_one(cls, vectors, rules) -> "TTFunction":
        """The separable function ``prod_k v_k(x_k)`` from its nodal vectors."""
        return cls([np.asarray(v, dtype=np.float64).reshape(1, -1, 1) for v in vectors], rules)

    def to_dense(self) -> np.ndarray:
        out = np.ones((1, 1))
        for c in self.cores:
            out = np.tensordot(out, c, axes=(-1, 0))
        return out.reshape(self.shape)

    def to_tensorly(self):
        """The same train as a ``tensorly.tt_tensor.TTTensor`` (nodal values only)."""
        from tensorly.tt_tensor import TTTensor

        return TTTensor([c.copy() for c in self.cores])

    # -- shape -------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.cores)

    @property
    def shape(self) -> tuple:
        return tuple(c.shape[1] for c in self.cores)

    @property
    def ranks(self) -> tuple:
        """``(r_0, ..., r_N)`` with ``r_0 = r_N = 1``."""
        return (1,) + tuple(c.shape[2] for c in self.cores)

    @property
    def max_rank(self) -> int:
        return max(self.ranks)

    @property
    def box(self) -> np.ndarray:
        return np.array([[r.lo, r.hi] for r in self.rules])

    # -- arithmetic ----------------------------------------------------------
    def _check_same_grid(self, other: "TTFunction") -> None:
        if self.shape != other.shape or any(
                a.lo != b.lo or a.hi != b.hi or a.name != b.name for a, b in zip(self.rules, other.rules)):
            raise ValueError("the two functions live on different grids")

    def __add__(self, other: "TTFunction") -> "TTFunction":
        """Exact sum; ranks add (round afterwards)."""
        self._check_same_grid(other)
        N, cores = self.ndim, []
        for k, (a, b) in enumerate(zip(self.cores, other.cores)):
            if N == 1:
                cores.append(a + b)
            elif k == 0:
                cores.append(np.concatenate([a, b], axis=2))
            elif k == N - 1:
                cores.append(np.concatenate([a, b], axis=0))
            else:
                c = np.zeros((a.shape[0] + b.shape[0], a.shape[1], a.shape[2] + b.shape[2]))
                c[: a.shape[0], :, : a.shape[2]] = a
                c[a.shape[0]:, :, a.shape[2]:] = b
                cores.append(c)
        return TTFunction(cores, self.rules)

    def __mul__(self, scalar: float) -> "TTFunction":
        cores = [c.copy() for c in self.cores]
        cores[0] = cores[0] * float(scalar)
        return TTFunction(cores, self.rules)

    __rmul__ = __mul__

    def __sub__(self, other: "TTFunction") -> "TTFunction":
        return self + other * -1.0

    def hadamard(self, other: "TTFunction") -> "TTFunction":
        """Pointwise product on the grid; ranks multiply (round afterwards)."""
        self._check_same_grid(other)
        cores = []
        for a, b in zip(self.cores, other.cores):
            c = np.einsum("aib,cid->acibd", a, b)
            cores.append(c.reshape(a.shape[0] * b.shape[0], a.shape[1], a.shape[2] * b.shape[2]))
        return TTFunction(cores, self.rules)

    def round(self, tol: float, max_rank: int | None = None) -> tuple["TTFunction", float, bool]:
        """``(rounded, relative Frobenius error, capped)``; see :func:`tt_round`."""
        cores, err, capped = tt_round(self.cores, tol, max_rank)
        return TTFunction(cores, self.rules), err, capped

    def dot(self, other: "TTFunction") -> float:
        """Frobenius inner product of the nodal values."""
        self._check_same_grid(other)
        return _dot_cores(self.cores, other.cores)

    def norm(self) -> float:
        """Frobenius norm of the nodal values."""
        return float(np.sqrt(max(_dot_cores(self.cores, self.cores), 0.0)))

    # -- contractions ----------------------------------------------------------
    def contract(self, vectors) -> float:
        """``sum f(i_1..i_N) v_1[i_1] ... v_N[i_N]``."""
        m = np.ones(1)
        for c, v in zip(self.cores, vectors):
            m = m @ np.tensordot(c, v, axes=(1, 0))
        return float(m[0])

    def _weighted(self, vectors=None) -> list:
        """Per core, the ``r x r`` matrix ``sum_i v[i] G[:, i, :]`` (quadrature
        weights when ``vectors`` is None)."""
        vectors = [r.weights for r in self.rules] if vectors is None else vectors
        return [np.tensordot(c, v, axes=(1, 0)) for c, v in zip(self.cores, vectors)]

    def integral(self) -> float:
        """Quadrature of ``f`` over the box."""
        return self.contract([r.weights for r in self.rules])

    def _sides(self, mats: list) -> tuple[list, list]:
        N = self.ndim
        left, right = [np.ones((1,))], [np.ones((1,))]
        for k in range(N - 1):
            left.append(left[-1] @ mats[k])
        for k in range(N - 1, 0, -1):
            right.append(mats[k] @ right[-1])
        return left, right[::-1]

    def marginal(self, k: int) -> np.ndarray:
        """Nodal values of ``int f dx_{-k}`` on the rule of variable ``k``."""
        left, right = self._sides(self._weighted())
        return np.einsum("a,aib,b->i", left[k], self.cores[k], right[k])

    def marginals(self) -> list:
        """:meth:`marginal` of every variable, at the cost of one."""
        left, right = self._sides(self._weighted())
        return [np.einsum("a,aib,b->i", left[k], c, right[k]) for k, c in enumerate(self.cores)]

    def marginal2(self, i: int, j: int) -> np.ndarray:
        """Nodal values ``(n_i, n_j)`` of the 2-D marginal onto variables ``i < j``."""
        if not i < j:
            raise ValueError(f"need i < j, got {i}, {j}")
        mats = self._weighted()
        left, right = self._sides(mats)
        m = np.einsum("a,aib->ib", left[i], self.cores[i])
        for k in range(i + 1, j):
            m = m @ mats[k]
        return np.einsum("ia,ajb,b->ij", m, self.cores[j], right[j])

    def moments(self, values=None) -> tuple[float, np.ndarray, np.ndarray]:
        """``(mass, mean, cov)`` of the density ``f`` (normalized by its mass),
        of the variables themselves or, with ``values`` (one nodal vector per
        variable), of ``g_k(x_k)``. Cost ``O(N^2 r^2 + N n r^2)``."""
        N = self.ndim
        g = [r.nodes for r in self.rules] if values is None else [np.asarray(v, dtype=np.float64) for v in values]
        w = [r.weights for r in self.rules]
        m0 = self._weighted(w)
        m1 = self._weighted([wk * gk for wk, gk in zip(w, g)])
        m2 = self._weighted([wk * gk * gk for wk, gk in zip(w, g)])
        left, right = self._sides(m0)
        mass = float(left[-1] @ m0[-1] @ right[-1]) if N > 1 else float(m0[0][0, 0])
        second = np.empty((N, N))
        mean = np.empty(N)
        for i in range(N):
            mean[i] = left[i] @ m1[i] @ right[i]
            second[i, i] = left[i] @ m2[i] @ right[i]
            v = left[i] @ m1[i]
            for j in range(i + 1, N):
                second[i, j] = second[j, i] = v @ m1[j] @ right[j]
                v = v @ m0[j]
        mean /= mass
        cov = second / mass - np.outer(mean, mean)
        return mass, mean, 0.5 * (cov + cov.T)

    # -- evaluation ------------------------------------------------------------
    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Values at arbitrary points ``(P, N)`` by each rule's interpolation
        (zero outside the box); ``O(N n r^2)`` per point."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        if points.shape[1] != self.ndim:
            raise ValueError(f"points must have {self.ndim} columns, got {points.shape[1]}")
        rows = [r.interpolation_matrix(points[:, k]) for k, r in enumerate(self.rules)]
        return contract_rows(self.cores, rows)

    def at_indices(self, idx: np.ndarray) -> np.ndarray:
        """Nodal values at integer multi-indices ``(P, N)``."""
        return cores_at_indices(self.cores, np.atleast_2d(np.asarray(idx)))

    def __repr__(self) -> str:
        return f"TTFunction(ndim={self.ndim}, shape={self.shape}, ranks={self.ranks})"
