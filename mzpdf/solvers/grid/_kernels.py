"""Numba kernels of the grid transfer (Perron-Frobenius) and Koopman sums.

Kernels are dumb: contiguous float64/int64 arrays in, results written into
``out``. The wrappers in :mod:`mzpdf.solvers.grid.transfer` check shapes, choose
the algorithm and own the threading policy. Every kernel has a NumPy twin in
:mod:`mzpdf.solvers.grid._reference` and a test comparing the two.

Notation: ``mapped`` (J, N) holds F(x_j) for the J source nodes; the target
grid has 1-D nodes ``ynodes[k]`` (M,) per output neuron k, flattened in C
order; the transition kernel is ``prod_k rho_k(y_{i_k} - F_k(x_j))``.
"""
from __future__ import annotations

import math

import numpy as np

from ..._numba import jit, jit_inline, jit_parallel, prange

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@jit
def noise_pdf(code, z, s):
    """1-D noise density of kind ``code`` (see mzpdf.network.noise) and scale ``s`` at ``z``."""
    if code == 0:  # gaussian
        u = z / s
        return _INV_SQRT_2PI / s * math.exp(-0.5 * u * u)
    if code == 1:  # uniform on [-s, s]
        return 0.5 / s if abs(z) <= s else 0.0
    if code == 2:  # laplace
        return 0.5 / s * math.exp(-abs(z) / s)
    return math.nan


@jit_inline
def _factor_column(code, scale, ynodes, mapped, j, out):
    """out[k, i, j] = rho_k(ynodes[k, i] - mapped[j, k]) for one source j."""
    n_dim, m = out.shape[0], out.shape[1]
    for k in range(n_dim):
        s = scale[k]
        f = mapped[j, k]
        for i in range(m):
            out[k, i, j] = noise_pdf(code, ynodes[k, i] - f, s)


@jit_parallel
def fill_factor_tables(code, scale, ynodes, mapped, out):
    """out[k, i, j] = rho_k(ynodes[k, i] - mapped[j, k]).

    Shapes: scale (N,), ynodes (N, M), mapped (J, N), out (N, M, J).
    """
    for j in prange(out.shape[2]):
        _factor_column(code, scale, ynodes, mapped, j, out)


@jit_inline
def _window_start(code, scale, ynodes, mapped, j, lo, hi, fac, idx, partial, first):
    """Fill the 1-D factors of source j over its window, set ``idx`` to the
    window's first multi-index and ``partial`` to the running products
    (``partial[0] = first``). Returns False for an empty window."""
    n_dim = mapped.shape[1]
    for k in range(n_dim):
        if hi[j, k] <= lo[j, k]:
            return False
        for i in range(lo[j, k], hi[j, k]):
            fac[k, i] = noise_pdf(code, ynodes[k, i] - mapped[j, k], scale[k])
        idx[k] = lo[j, k]
    partial[0] = first
    for k in range(n_dim):
        partial[k + 1] = partial[k] * fac[k, idx[k]]
    return True


@jit_inline
def _window_next(j, lo, hi, fac, idx, partial):
    """Advance ``idx`` through source j's window box (last axis fastest) and
    update the running products; returns False when the box is exhausted."""
    n_dim = idx.size
    k = n_dim - 1
    while k >= 0:
        idx[k] += 1
        if idx[k] < hi[j, k]:
            break
        idx[k] = lo[j, k]
        k -= 1
    if k < 0:
        return False
    for kk in range(k, n_dim):
        partial[kk + 1] = partial[kk] * fac[kk, idx[kk]]
    return True


@jit_inline
def _flat_index(idx, m):
    flat = 0
    for k in range(idx.size):
        flat = flat * m + idx[k]
    return flat


@jit_parallel
def transfer_windowed(code, scale, ynodes, mapped, coeffs, lo, hi, out_threads):
    """Scatter form of the transfer sum over each source's window.

    out_threads[t, i] += coeffs[j] * prod_k rho_k(y_{i_k} - mapped[j, k]) for
    target indices ``i_k`` in ``[lo[j, k], hi[j, k])``; sources are split
    into ``out_threads.shape[0]`` contiguous blocks, one per thread, whose
    partial sums the caller adds up.
    """
    n_threads = out_threads.shape[0]
    n_src, n_dim = mapped.shape
    m = ynodes.shape[1]
    for t in prange(n_threads):
        fac = np.empty((n_dim, m))
        idx = np.empty(n_dim, dtype=np.int64)
        partial = np.empty(n_dim + 1)
        for j in range(t * n_src // n_threads, (t + 1) * n_src // n_threads):
            if coeffs[j] == 0.0 or not _window_start(code, scale, ynodes, mapped, j, lo, hi, fac, idx, partial,
                                                     coeffs[j]):
                continue
            while True:
                out_threads[t, _flat_index(idx, m)] += partial[n_dim]
                if not _window_next(j, lo, hi, fac, idx, partial):
                    break


@jit_parallel
def koopman_windowed(code, scale, ynodes, mapped, zvalues, lo, hi, out):
    """Gather form: out[j] = sum over the window of j of
    zvalues[i] * prod_k rho_k(y_{i_k} - mapped[j, k])."""
    n_src, n_dim = mapped.shape
    m = ynodes.shape[1]
    for j in prange(n_src):
        fac = np.empty((n_dim, m))
        idx = np.empty(n_dim, dtype=np.int64)
        partial = np.empty(n_dim + 1)
        acc = 0.0
        if _window_start(code, scale, ynodes, mapped, j, lo, hi, fac, idx, partial, 1.0):
            while True:
                acc += zvalues[_flat_index(idx, m)] * partial[n_dim]
                if not _window_next(j, lo, hi, fac, idx, partial):
                    break
        out[j] = acc


@jit_parallel
def transfer_dense_loop(tables, coeffs, out):
    """The dense transfer sum as a plain pair loop over factor tables:
    out[i] = sum_j coeffs[j] * prod_k tables[k, i_k, j].

    Kept as the loop a compiler sees (used by the benchmark as the minimal
    numba reference, and by tests); the solver's dense path uses BLAS.
    """
    n_dim, m, n_src = tables.shape
    n_out = out.size
    for i in prange(n_out):
        idx = np.empty(n_dim, dtype=np.int64)
        rem = np.int64(i)
        for k in range(n_dim - 1, -1, -1):
            idx[k] = rem % m
            rem //= m
        acc = 0.0
        for j in range(n_src):
            prod = coeffs[j]
            for k in range(n_dim):
                prod *= tables[k, idx[k], j]
            acc += prod
        out[i] = acc


@jit
def factor_tables_serial(code, scale, ynodes, mapped, out):
    """:func:`fill_factor_tables` on one thread, for small problems: a thread
    team costs more to wake (on a loaded machine, ~10x the work) than
    ``N * M * J`` noise densities take."""
    for j in range(out.shape[2]):
        _factor_column(code, scale, ynodes, mapped, j, out)



@jit
def marginal_sum(code, s, radius, x, centres, coeffs, out):
    """out[i] = sum_j coeffs[j] rho(x[i] - centres[j]) over the j with
    ``|x[i] - centres[j]| <= radius`` (the terms beyond are below round-off).

    ``centres`` must be sorted ascending; ``coeffs`` in the same order.
    Shapes: x (P,), centres (J,), coeffs (J,), out (P,)."""
    n = centres.shape[0]
    for i in range(x.shape[0]):
        lo = np.searchsorted(centres, x[i] - radius, side="left")
        hi = np.searchsorted(centres, x[i] + radius, side="right")
        acc = 0.0
        for j in range(lo, min(hi, n)):
            acc += coeffs[j] * noise_pdf(code, x[i] - centres[j], s)
        out[i] = acc
