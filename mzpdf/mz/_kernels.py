"""Numba kernel of the exact L1 norm of Chorin's orthogonal dynamics.

For every source node j the column ``c = Q_{n+1} N_n Q_n e_j`` is built on the
fly from the per-neuron factor tables of the transition kernel and reduced to
its weighted L1 norm, so the (J_out, J) matrix is never stored. Its NumPy twin
is the blocked computation in :func:`mzpdf.mz.reduction._kappa_l1_numpy`.
"""
from __future__ import annotations

import numpy as np

from .._numba import jit_parallel, prange


@jit_parallel
def chorin_column_norms(tables, digits, w_src, kept_src, wdrop_src, streamed, kept_out, drop_out, wdrop_out,
                        w_out, reference, n_kept_out, out):
    """out[j] = sum_i w_out[i] |c_i| / w_src[j] with

        v_i = w_src[j] prod_k tables[k, digits[i, k], j] - streamed[i, kept_src[j]] wdrop_src[j]
        c_i = v_i - reference[drop_out[i]] sum_{i': kept_out[i'] = kept_out[i]} wdrop_out[i'] v_i'.

    Shapes: tables (N, M, J), digits (I, N) int, streamed (I, d_src),
    kept_out/drop_out (I,) int, w_out/wdrop_out (I,), reference (e_out,).
    """
    n_dim = tables.shape[0]
    n_src = tables.shape[2]
    n_out = digits.shape[0]
    for j in prange(n_src):
        col = np.empty(n_out)
        marg = np.zeros(n_kept_out)
        wj = w_src[j]
        a = kept_src[j]
        wd = wdrop_src[j]
        for i in range(n_out):
            k_ij = wj
            for k in range(n_dim):
                k_ij *= tables[k, digits[i, k], j]
            v = k_ij - streamed[i, a] * wd
            col[i] = v
            marg[kept_out[i]] += wdrop_out[i] * v
        total = 0.0
        for i in range(n_out):
            total += w_out[i] * abs(col[i] - reference[drop_out[i]] * marg[kept_out[i]])
        out[j] = total / wj
