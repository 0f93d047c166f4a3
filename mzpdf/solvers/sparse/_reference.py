"""Readable NumPy twins of :mod:`mzpdf.solvers.sparse._kernels` (same arguments,
results returned), for the tests that compare the two."""
from __future__ import annotations

import numpy as np


def mixture_logsum(log_tables, vidx, log_weights):
    a = log_weights[None, :] + sum(log_tables[k, vidx[:, k], :] for k in range(log_tables.shape[0]))
    top = a.max(axis=1)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


def log_kernel(t, scale, smooth, laplace):
    from scipy.special import log_ndtr

    t = np.asarray(t, dtype=np.float64)
    if not laplace:
        v = scale ** 2 + smooth ** 2
        return -0.5 * t * t / v - 0.5 * np.log(2.0 * np.pi * v)
    if smooth <= 0:
        return -np.abs(t) / scale - np.log(2.0 * scale)
    a = smooth / scale
    return (np.logaddexp(-t / scale + log_ndtr(t / smooth - a), t / scale + log_ndtr(-t / smooth - a))
            + 0.5 * a * a - np.log(2.0 * scale))


def fill_tables(ys, centres, scale, smooth, laplace, off):
    out = np.empty((ys.shape[0], ys.shape[1], centres.shape[0]))
    for k in range(ys.shape[0]):
        out[k] = np.exp(log_kernel(ys[k][:, None] - centres[None, :, k], scale[k], smooth[k], laplace) - off[k][:, None])
    return out


def mixture_logpdf(y, centres, log_weights, scale, smooth, laplace):
    a = log_weights[None, :] + sum(log_kernel(y[:, None, k] - centres[None, :, k], scale[k], smooth[k], laplace)
                                   for k in range(y.shape[1]))
    top = a.max(axis=1)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


def mixture_marginal(x, centres, weights, scale, smooth, laplace):
    return np.exp(log_kernel(x[:, None] - centres[None, :], scale, smooth, laplace)) @ weights



def laplace_grid_sum(centres, weights, axes, scale):
    """The product-Laplace sum on the tensor grid of ``axes`` (a list of 1-D
    arrays), term by term, without the kernel's normalization."""
    f = [np.exp(-np.abs(np.asarray(ax)[:, None] - centres[None, :, k]) / scale[k]) for k, ax in enumerate(axes)]
    return np.einsum("aj,bj,cj,j->abc", f[0], f[1], f[2], weights)
