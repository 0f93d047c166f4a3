"""Numba kernels of the discretizations: sums of products of 1-D tables
over the points of a sparse grid (Leja: ``newton_sum``, ``mixture_sum``;
Clenshaw-Curtis: ``hierarchical_sum``). Kernels are dumb: contiguous float64
/ int64 arrays in, results written into ``out``; the wrappers in
:mod:`mzpdf.discretization.leja` and :mod:`mzpdf.discretization.sparse_grid`
check shapes. NumPy twins of the Leja kernels are in
:mod:`mzpdf.discretization._reference`, compared by tests/test_sparse_kernels.py.
"""
from __future__ import annotations

import numpy as np

from .._numba import jit_parallel, prange

_LANES = 8  # points evaluated together by newton_sum (its innermost loops)
_ATOMS_PER_BLOCK = 1024  # atoms of one block of mixture_sum (its partial products stay in cache)


@jit_parallel
def newton_sum(u, nodes, ratios, offsets, prefix, start, coef, out):
    """``out[p] = sum_a coef[a] prod_k psi_{alpha_ak}(u[p, k])`` with the
    normalized Newton basis ``psi_j = psi_{j-1} (u - nodes[j-1]) ratios[j]``.

    The multi-indices come in runs sharing all but the last entry: run ``g``
    covers ``coef[offsets[g]:offsets[g+1]]`` (last entry 0, 1, ...), its
    other entries are ``prefix[g]`` and differ from the run before from
    entry ``start[g]`` on (so the running product is recomputed from there).
    Points go in blocks of ``_LANES`` (the innermost loops run over them).
    Shapes: u (P, N), nodes and ratios (D,), offsets (G + 1,), prefix (G, N - 1),
    start (G,), coef (A,), out (P,).
    """
    n_pts, n_dim = u.shape
    n_deg = nodes.size
    n_runs = offsets.size - 1
    last = n_dim - 1
    n_tasks = (n_pts + _LANES - 1) // _LANES
    for task in prange(n_tasks):
        lo = task * _LANES
        n = min(n_pts, lo + _LANES) - lo
        tab = np.zeros((n_dim, n_deg, _LANES))
        partial = np.ones((n_dim, _LANES))
        acc = np.zeros(_LANES)
        s = np.empty(_LANES)
        for k in range(n_dim):
            for q in range(n):
                tab[k, 0, q] = 1.0
            for j in range(1, n_deg):
                for q in range(n):
                    tab[k, j, q] = tab[k, j - 1, q] * (u[lo + q, k] - nodes[j - 1]) * ratios[j]
        for g in range(n_runs):
            for k in range(start[g], last):
                row = prefix[g, k]
                for q in range(_LANES):
                    partial[k + 1, q] = partial[k, q] * tab[k, row, q]
            for q in range(_LANES):
                s[q] = 0.0
            o = offsets[g]
            for j in range(offsets[g + 1] - o):
                c = coef[o + j]
                for q in range(_LANES):
                    s[q] += c * tab[last, j, q]
            for q in range(_LANES):
                acc[q] += partial[last, q] * s[q]
        for q in range(n):
            out[lo + q] = acc[q]


@jit_parallel
def mixture_sum(tables, vidx, start, weights, out):
    """``out[i] = sum_j weights[j] prod_k tables[k, vidx[i, k], j]`` (a
    separable kernel summed over atoms ``j``).

    Rows of ``vidx`` are sorted so that row ``i`` differs from row ``i - 1``
    from entry ``start[i]`` on: the products over the first entries are
    shared. Atoms go in blocks whose partial sums are added at the end.
    Shapes: tables (N, V, J), vidx and start (M, N) and (M,), weights (J,), out (M,).
    """
    n_dim, _, n_atoms = tables.shape
    n_nodes = vidx.shape[0]
    n_blocks = (n_atoms + _ATOMS_PER_BLOCK - 1) // _ATOMS_PER_BLOCK
    sums = np.zeros((n_blocks, n_nodes))
    for b in prange(n_blocks):
        lo = b * _ATOMS_PER_BLOCK
        n = min(n_atoms, lo + _ATOMS_PER_BLOCK) - lo
        part = np.empty((n_dim + 1, _ATOMS_PER_BLOCK))
        for j in range(n):
            part[0, j] = weights[lo + j]
        for i in range(n_nodes):
            for k in range(start[i], n_dim):
                v = vidx[i, k]
                for j in range(n):
                    part[k + 1, j] = part[k, j] * tables[k, v, lo + j]
            s = 0.0
            for j in range(n):
                s += part[n_dim, j]
            sums[b, i] = s
    for i in prange(n_nodes):
        s = 0.0
        for b in range(n_blocks):
            s += sums[b, i]
        out[i] = s


@jit_parallel
def hierarchical_sum(tables, cols, alpha, out):
    """out[i] = sum_p alpha[p] prod_k tables[k, i, cols[p, k]]."""
    n_dim, n_eval, _ = tables.shape
    n_pts = cols.shape[0]
    for i in prange(n_eval):
        acc = 0.0
        for p in range(n_pts):
            v = alpha[p]
            for k in range(n_dim):
                v *= tables[k, i, cols[p, k]]
                if v == 0.0:
                    break
            acc += v
        out[i] = acc
