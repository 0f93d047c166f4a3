"""Numba kernels of the sparse solver's mixtures (log-kernels, log-sum-exp
sums, Laplace lattices). Kernels are dumb: contiguous float64 / int64 arrays
in, results written into ``out``; the wrappers in
:mod:`mzpdf.solvers.sparse.transfer` check shapes.
Every kernel has a NumPy twin in :mod:`mzpdf.solvers.sparse._reference` and a test
(tests/test_sparse_grid.py) comparing the two.
"""
from __future__ import annotations

import math

import numpy as np

from ..._numba import jit, jit_inline, jit_parallel, prange

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)



@jit_inline
def logsumexp_step(acc, top, a):
    """One term ``a`` into a streaming log-sum-exp ``top + log(acc)``: returns the new ``(acc, top)``."""
    if a > top:
        return acc * np.exp(top - a) + 1.0, a
    return acc + np.exp(a - top), top


@jit_parallel
def mixture_logsum(log_tables, vidx, log_weights, out):
    """``out[i] = log sum_j exp(log_weights[j] + sum_k log_tables[k, vidx[i, k], j])``
    by a streaming log-sum-exp (no underflow: the far tails).
    Shapes: log_tables (N, V, J), vidx (M, N), log_weights (J,), out (M,)."""
    n_dim, _, n_atoms = log_tables.shape
    for i in prange(vidx.shape[0]):
        top = -np.inf
        acc = 0.0
        for j in range(n_atoms):
            a = log_weights[j]
            for k in range(n_dim):
                a += log_tables[k, vidx[i, k], j]
            acc, top = logsumexp_step(acc, top, a)
        out[i] = top + np.log(acc)


@jit_inline
def log_ndtr(x):
    """``log Phi(x)``, the standard normal CDF (an asymptotic series below
    -30, where its first omitted term is 105 / x^8 < 2e-10 relative; erfc
    above, which keeps its relative accuracy down to -37)."""
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    r = 1.0 / (x * x)
    return -0.5 * x * x - math.log(-x) - _HALF_LOG_2PI + math.log(1.0 - r + 3.0 * r * r - 15.0 * r * r * r)


@jit_inline
def log_kernel(t, scale, smooth, laplace):
    """``log rho(t)`` of one neuron's noise, convolved with ``N(0, smooth^2)``:
    gaussian of std ``scale`` (then ``N(0, scale^2 + smooth^2)``), or Laplace
    of scale ``scale`` (``smooth > 0``: the normal-Laplace density)."""
    if not laplace:
        v = scale * scale + smooth * smooth
        return -0.5 * t * t / v - 0.5 * math.log(v) - _HALF_LOG_2PI
    if smooth <= 0.0:
        return -abs(t) / scale - math.log(2.0 * scale)
    a = smooth / scale
    right = -t / scale + log_ndtr(t / smooth - a)
    left = t / scale + log_ndtr(-t / smooth - a)
    top = max(right, left)
    return top + math.log(math.exp(right - top) + math.exp(left - top)) + 0.5 * a * a - math.log(2.0 * scale)


@jit_parallel
def fill_tables(ys, centres, scale, smooth, laplace, off, out):
    """``out[k, v, j] = exp(log_kernel(ys[k, v] - centres[j, k]) - off[k, v])``.
    Shapes: ys and off (N, V), centres (J, N), scale and smooth (N,), out (N, V, J)."""
    n_dim, n_val = ys.shape
    for j in prange(centres.shape[0]):
        for k in range(n_dim):
            for v in range(n_val):
                out[k, v, j] = math.exp(log_kernel(ys[k, v] - centres[j, k], scale[k], smooth[k], laplace) - off[k, v])


@jit_parallel
def mixture_logpdf(y, centres, log_weights, scale, smooth, laplace, out):
    """``out[i] = log sum_j exp(log_weights[j] + sum_k log_kernel(y[i, k] - centres[j, k]))``
    (streaming log-sum-exp). Shapes: y (P, N), centres (J, N), log_weights (J,),
    scale and smooth (N,), out (P,)."""
    n_pts, n_dim = y.shape
    for i in prange(n_pts):
        top = -np.inf
        acc = 0.0
        for j in range(centres.shape[0]):
            a = log_weights[j]
            for k in range(n_dim):
                a += log_kernel(y[i, k] - centres[j, k], scale[k], smooth[k], laplace)
            acc, top = logsumexp_step(acc, top, a)
        out[i] = top + np.log(acc)


@jit_parallel
def mixture_marginal(x, centres, weights, scale, smooth, laplace, out):
    """``out[i] = sum_j weights[j] exp(log_kernel(x[i] - centres[j]))`` for
    one neuron. Shapes: x (P,), centres and weights (J,), out (P,)."""
    for i in prange(x.size):
        acc = 0.0
        for j in range(centres.size):
            acc += weights[j] * math.exp(log_kernel(x[i] - centres[j], scale, smooth, laplace))
        out[i] = acc



@jit_parallel
def laplace_deposits(centres, weights, axes, size, scale, idx, amp):
    """Where each centre enters the product-Laplace sum on the tensor grid
    of ``axes`` (sorted; axis ``k`` is ``axes[k, :size[k]]``), from either
    side along each axis: ``idx[j, k, 0]`` the first node at or above
    ``centres[j, k]`` (-1 if none) with ``amp[j, k, 0] = exp(-(t - c) / scale_k)``
    there, ``idx[j, k, 1]`` the last node below it (-1 if none) with its
    amplitude; ``amp[j, 0, :]`` also carries ``weights[j]``. An axis of one
    node at 0 with a centre coordinate 0 pads a grid of fewer than 3 axes.
    Shapes: centres (J, 3), weights (J,), axes (3, M), size (3,) int,
    scale (3,), idx (J, 3, 2) int, amp (J, 3, 2)."""
    n_atoms = centres.shape[0]
    for j in prange(n_atoms):
        for k in range(3):
            c = centres[j, k]
            n = size[k]
            lo, hi = 0, n  # the first node >= c: binary search
            while lo < hi:
                mid = (lo + hi) >> 1
                if axes[k, mid] < c:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < n:
                idx[j, k, 0] = lo
                amp[j, k, 0] = math.exp(-(axes[k, lo] - c) / scale[k])
            else:
                idx[j, k, 0] = -1
                amp[j, k, 0] = 0.0
            if lo >= 1:
                idx[j, k, 1] = lo - 1
                amp[j, k, 1] = math.exp(-(c - axes[k, lo - 1]) / scale[k])
            else:
                idx[j, k, 1] = -1
                amp[j, k, 1] = 0.0
        amp[j, 0, 0] *= weights[j]
        amp[j, 0, 1] *= weights[j]


@jit
def laplace_grid_sum(idx, amp, decay, out):
    """``out[i] = sum_j weights[j] prod_k exp(-|t_k(i_k) - c_jk| / scale_k)``
    on a 3-D tensor grid, exactly, in O(J + 24 nodes): for each of the 8
    ways a node can lie on either side of a centre along each axis, the
    centres are deposited at their entry nodes (:func:`laplace_deposits`)
    and carried to the nodes beyond by first-order recursions
    ``v_i += decay[k, i] v_{i-1}`` (``decay[k, i] = exp(-(t_i - t_{i-1}) / scale_k)``),
    rightward or leftward per axis. Every node meets every centre in
    exactly one of the 8 ways. Shapes: decay (3, M), out (size[0], size[1], size[2])."""
    n0, n1, n2 = out.shape
    n_atoms = idx.shape[0]
    buf = np.empty_like(out)
    out[:] = 0.0
    for pattern in range(8):
        s0, s1, s2 = pattern & 1, (pattern >> 1) & 1, (pattern >> 2) & 1
        buf[:] = 0.0
        for j in range(n_atoms):
            i0, i1, i2 = idx[j, 0, s0], idx[j, 1, s1], idx[j, 2, s2]
            if i0 >= 0 and i1 >= 0 and i2 >= 0:
                buf[i0, i1, i2] += amp[j, 0, s0] * amp[j, 1, s1] * amp[j, 2, s2]
        if s0 == 0:
            for a in range(1, n0):
                buf[a] += decay[0, a] * buf[a - 1]
        else:
            for a in range(n0 - 2, -1, -1):
                buf[a] += decay[0, a + 1] * buf[a + 1]
        for a in range(n0):
            if s1 == 0:
                for b in range(1, n1):
                    buf[a, b] += decay[1, b] * buf[a, b - 1]
            else:
                for b in range(n1 - 2, -1, -1):
                    buf[a, b] += decay[1, b + 1] * buf[a, b + 1]
        for a in range(n0):
            for b in range(n1):
                if s2 == 0:
                    for c in range(1, n2):
                        buf[a, b, c] += decay[2, c] * buf[a, b, c - 1]
                else:
                    for c in range(n2 - 2, -1, -1):
                        buf[a, b, c] += decay[2, c + 1] * buf[a, b, c + 1]
        out += buf
