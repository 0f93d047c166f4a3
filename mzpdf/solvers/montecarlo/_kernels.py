"""Numba kernels of the Monte Carlo estimators: streaming moments and
uniform-bin histograms. NumPy twins below each kernel serve the tests."""
from __future__ import annotations

import numpy as np

from ..._numba import jit


@jit
def accumulate_moments(x, shift, sum1, sum2):
    """sum1 += sum_s (x_s - shift); sum2 += sum_s (x_s - shift)(x_s - shift)^T.

    Shapes: x (n, N), shift (N,), sum1 (N,), sum2 (N, N). Centring on a shift
    near the mean avoids cancellation in the covariance."""
    n, dim = x.shape
    d = np.empty(dim)
    for s in range(n):
        for k in range(dim):
            d[k] = x[s, k] - shift[k]
            sum1[k] += d[k]
        for k in range(dim):
            dk = d[k]
            for l in range(k, dim):
                sum2[k, l] += dk * d[l]
    for k in range(dim):  # mirror the upper triangle (kept symmetric after every call)
        for l in range(k + 1, dim):
            sum2[l, k] = sum2[k, l]


@jit
def accumulate_histogram(x, left, width, counts):
    """counts[k, b] += #{s : left[k] + b width[k] <= x[s, k] < left[k] + (b+1) width[k]}.

    Shapes: x (n, N), left (N,), width (N,), counts (N, m) int64. Samples
    outside the bins are not counted."""
    n, dim = x.shape
    m = counts.shape[1]
    for s in range(n):
        for k in range(dim):
            b = np.floor((x[s, k] - left[k]) / width[k])
            if 0 <= b < m:
                counts[k, np.int64(b)] += 1


def moments_numpy(x, shift):
    """Twin of :func:`accumulate_moments` for one block: (sum1, sum2)."""
    d = x - shift
    return d.sum(axis=0), d.T @ d


def histogram_numpy(x, left, width, m):
    """Twin of :func:`accumulate_histogram` for one block: counts (N, m)."""
    b = np.floor((x - left) / width)
    counts = np.zeros((x.shape[1], m), dtype=np.int64)
    for k in range(x.shape[1]):
        ok = (b[:, k] >= 0) & (b[:, k] < m)
        counts[k] = np.bincount(b[ok, k].astype(np.int64), minlength=m)
    return counts
