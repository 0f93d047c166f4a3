"""Readable NumPy twins of :mod:`mzpdf.discretization._kernels` (same
arguments, results returned), for the tests that compare the two."""
from __future__ import annotations

import numpy as np


def newton_sum(u, nodes, ratios, offsets, prefix, start, coef):
    n_pts, n_dim = u.shape
    tab = np.ones((n_pts, n_dim, nodes.size))
    for j in range(1, nodes.size):
        tab[:, :, j] = tab[:, :, j - 1] * (u - nodes[j - 1]) * ratios[j]
    out = np.zeros(n_pts)
    for g in range(offsets.size - 1):
        front = np.ones(n_pts)
        for k in range(n_dim - 1):
            front *= tab[:, k, prefix[g, k]]
        run = np.arange(offsets[g + 1] - offsets[g])
        out += front * (tab[:, n_dim - 1, run] @ coef[offsets[g]: offsets[g + 1]])
    return out


def mixture_sum(tables, vidx, start, weights):
    n_dim = tables.shape[0]
    prod = np.ones((vidx.shape[0], tables.shape[2]))
    for k in range(n_dim):
        prod *= tables[k, vidx[:, k], :]
    return prod @ weights
