"""Contraction, kernel bounds and truncation estimates of the Mori-Zwanzig
reduction in L2(mu) (docs/theory.md, section 5).

On each layer the norm of observables is ``||u||^2 = sum_j w_j mu_j u_j^2``,
``mu`` the layer's own discretized law, and the dual norm on densities
``||p||^2 = sum_j w_j p_j^2 / mu_j``. Since the grid solve gives
``mu_{n+1} = N_n mu_n`` exactly, Jensen's inequality makes the Koopman
operator ``M_n`` a contraction from L2(mu_{n+1}) to L2(mu_n) (up to the mass
the box cuts), and on functions of zero mean a strict one: its second
singular value, the (discretized) maximal correlation ``rho_n`` of
``(X_n, X_{n+1})``, is < 1 because the kernel is positive (Perron-Frobenius).

With ``K[n, k] = (R_{n+1} N_n Q_n)(Q_n N_{n-1} Q_{n-1}) ... (Q_{k+1} N_k E_k)``
(``Q`` idempotent), sub-multiplicativity gives for lag ``l = n - k >= 1``

    ||K[n, k]|| <= a_n * kappa_{n-1} ... kappa_{k+1} * b_k,

    kappa_m = ||Q_{m+1} N_m Q_m||  (= ||Q_m M_m Q_{m+1}||, observables),
    a_n     = ||R_{n+1} N_n Q_n||  (exit: from L2(1/mu_n) to the reduced norm),
    b_k     = ||Q_{k+1} N_k E_k||  (entry: from the reduced norm to L2(1/mu_{k+1})),

and ``kappa_m <= ||Q_m|| rho_m ||Q_{m+1}||`` for any projection that keeps the
constants (``||Q|| = 1`` when ``P`` is orthogonal). The truncation estimate is
a rigorous a-posteriori bound on the L1 error of the kept marginals: the
error ``e`` of the recursion truncated at lag h obeys
``e_{n+1} = sum_{l <= h} K[n, n-l] e_{n-l} - d_n`` with ``d_n`` the dropped
terms applied to the exact reduced densities, so
``||e_{n+1}|| <= sum_l ||K[n, n-l]|| ||e_{n-l}|| + ||d_n||``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["contraction", "entry_factor", "exit_factor", "kernel_bounds", "truncation_estimate"]

DENSE_LIMIT = 1500  # below this many columns the operator is formed and its SVD taken exactly
BLOCK = 6  # vectors of the block power iteration (each step costs about one kernel formation)
RTOL = 1e-10  # relative change of the estimate that stops the iteration
MAX_STEPS = 200



class KeptNodalL1:
    """The L1 norms of a reduced space of nodal kept marginals on a tensor
    grid ``self.kept_grid`` (the Chorin layers of tensor trains and sparse
    grids): what :class:`~mzpdf.mz.reduction.MoriZwanzig` asks of a projection."""

    norm_name = "L1 (densities)"
    error_factor = 1.0

    @property
    def dim(self) -> int:
        return self.kept_grid.size

    @property
    def unit_norms(self) -> np.ndarray:
        """L1 norm of each reduced unit vector's density."""
        return self.kept_grid.weights

    def kept_marginal(self, r):
        return np.asarray(r).reshape(-1)

    def l1(self, a, b) -> float:
        return float(self.kept_grid.weights @ np.abs(np.asarray(a) - b))

    def kernel_norm(self, kernel, source) -> float:
        """L1 operator norm (the largest column norm over unit densities)."""
        cols = self.kept_grid.weights @ np.abs(kernel)
        return float(np.max(cols / source.unit_norms))

    def reduced_norm(self, r) -> float:
        """L1 norm of the kept marginal ``r`` (the measured error's norm)."""
        return float(self.kept_grid.weights @ np.abs(np.asarray(r).reshape(-1)))


def _koopman_norms(t, here, there, maps: list) -> list[float]:
    """Largest singular values of ``A_i = D_n^1/2 q_in M_n q_out D_{n+1}^-1/2``
    (observables, ``D = diag(w mu)``) for each ``(q_in, q_in_t, q_out, q_out_t)``
    in ``maps``, from one block iteration whose kernel formations they share."""
    d_in = np.sqrt(here.grid.weights * here.mu)[:, None]
    d_out = np.sqrt(there.grid.weights * there.mu)[:, None]
    v = t.target.weights[:, None]
    count = len(maps)

    def apply(x):  # x (J_out, count * B): one block per map
        parts = np.split(x, count, axis=1)
        pulled = np.split(t.backward_matmat(np.hstack([v * m[2](b / d_out) for m, b in zip(maps, parts)])),
                          count, axis=1)
        return [d_in * m[0](b) for m, b in zip(maps, pulled)]

    def apply_t(ys):
        pushed = np.split(t.forward_matmat(np.hstack([m[1](d_in * y) for m, y in zip(maps, ys)])), count, axis=1)
        return [m[3](v * b) / d_out for m, b in zip(maps, pushed)]

    n_in = there.grid.size
    if n_in <= DENSE_LIMIT:
        return [float(np.linalg.norm(y, 2)) for y in apply(np.tile(np.eye(n_in), (1, count)))]
    rng = np.random.default_rng(0)
    xs = [np.linalg.qr(rng.standard_normal((n_in, BLOCK)))[0] for _ in range(count)]
    best = np.zeros(count)
    for _ in range(MAX_STEPS):
        ys = apply(np.hstack(xs))
        sigma = np.array([np.linalg.norm(y, 2) for y in ys])
        if np.all(np.abs(sigma - best) <= RTOL * sigma):
            return list(np.maximum(sigma, best))
        best = np.maximum(best, sigma)
        xs = [np.linalg.qr(z)[0] for z in apply_t(ys)]
    return list(best)


def _mean_free(proj):
    """The L2(mu)-orthogonal complement of the constants and its transpose."""
    wmu = (proj.grid.weights * proj.mu)[:, None]
    total = float(wmu.sum())

    def q(u):
        return u - (wmu * u).sum(axis=0, keepdims=True) / total

    def q_t(y):
        return y - wmu * y.sum(axis=0, keepdims=True) / total

    return q, q_t, q, q_t


def contraction(t, here, there) -> tuple[float, float]:
    """``(kappa_n, rho_n)``: ``||Q_n M_n Q_{n+1}||`` and the norm of ``M_n`` on
    zero-mean functions (the discretized maximal correlation of ``X_n``,
    ``X_{n+1}``), both from L2(mu_{n+1}) to L2(mu_n)."""
    q_in, q_in_t, _, _ = _mean_free(here)
    _, _, q_out, q_out_t = _mean_free(there)
    maps = [(q_in, q_in_t, q_out, q_out_t)]
    if here.norm != 0.0 and there.norm != 0.0:
        maps.append((here.complement_fn, here.complement_fn_transpose, there.complement_fn,
                     there.complement_fn_transpose))
    norms = _koopman_norms(t, here, there, maps)
    return (norms[1] if len(norms) > 1 else 0.0), norms[0]


def entry_factor(streamed: np.ndarray, here, there) -> float:
    """``b_k = ||Q_{k+1} N_k E_k||`` from ``here``'s reduced norm to
    L2(1/mu_{k+1}); ``streamed = N_k E_k`` (J_out, dim)."""
    cols = there.density_rows()[:, None] * there.complement(streamed)
    scaled = np.linalg.solve(here._gram_factor, cols.T).T  # cols L^-T
    return float(np.linalg.norm(scaled, 2))


def exit_factor(t, here, there) -> float:
    """``a_n = ||R_{n+1} N_n Q_n||`` from L2(1/mu_n) to ``there``'s reduced
    norm, through its transpose ``D_n^1/2 Q_n M_n E_{n+1} H^-1 L`` (observables;
    ``H`` the pairing, ``G = L L^T`` the reduced Gram matrix)."""
    if here.norm == 0.0:
        return 0.0
    pulled = t.backward_matmat(t.target.weights[:, None] * there.extend_fn(np.eye(there.dim)))
    cols = np.sqrt(here.grid.weights * here.mu)[:, None] * here.complement_fn(pulled)
    cols = cols @ np.linalg.solve(there.pairing, there._gram_factor)
    return float(np.linalg.norm(cols, 2))


def kernel_bounds(streaming: np.ndarray, exit_: np.ndarray, kappa: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """``[n, lag]`` bound of every kernel: the streaming norm itself at lag 0,
    ``a_n kappa_{n-1} ... kappa_{k+1} b_k`` at lag ``n - k >= 1``; NaN where
    ``lag > n``."""
    L = kappa.size
    out = np.full((L, L), np.nan)
    out[:, 0] = streaming
    for n in range(1, L):
        for lag in range(1, n + 1):
            k = n - lag
            out[n, lag] = exit_[n] * np.prod(kappa[k + 1 : n]) * entry[k]
    return out


def truncation_estimate(mz) -> np.ndarray:
    """``(L,)``: for memory ``h = 0 .. L-1``, an upper bound on the largest L1
    error of the kept marginals of the recursion truncated at lag h (module
    doc), from the kernels' norms and the dropped terms applied to the exact
    reduced densities ``mz.projected``. Zero at ``h = L - 1`` (nothing dropped)."""
    L = mz.depth
    proj = mz.projections
    norms = np.zeros((L, L))
    for (n, k), kern in mz.kernels.items():
        norms[n, n - k] = proj[n + 1].kernel_norm(kern, proj[k])
    out = np.zeros(L)
    for h in range(L):
        bound = np.zeros(L + 1)
        for n in range(L):
            dropped = mz.noise[n].copy() if n > h else np.zeros_like(mz.noise[n])
            for k in range(0, n - h):
                dropped += mz.kernels[n, k] @ mz.projected[k]
            kept = sum(norms[n, n - k] * bound[k] for k in range(max(0, n - h), n + 1))
            bound[n + 1] = kept + proj[n + 1].reduced_norm(dropped)
        out[h] = max(p.error_factor * b for p, b in zip(proj, bound))
    return out
