"""Readable NumPy twins of the kernels in :mod:`._kernels`.

They evaluate the Nystrom sums exactly as written in SPEC 3.1, pair by pair
with broadcasting, and serve as the oracle of the kernel tests and as the
"vectorized NumPy" baseline of ``scripts/bench_grid.py``.
"""
from __future__ import annotations

import numpy as np

from ...network.noise import NoiseLaw


def kernel_matrix(noise: NoiseLaw, target_points: np.ndarray, mapped: np.ndarray) -> np.ndarray:
    """``K[i, j] = prod_k rho_k(y_ik - F_jk)``, shape (I, J)."""
    z = target_points[:, None, :] - mapped[None, :, :]
    return np.prod(noise.pdf(z), axis=2)


def transfer_sum(noise, target_points, mapped, coeffs, chunk: int = 256) -> np.ndarray:
    """``out_i = sum_j coeffs_j K[i, j]``, computed in chunks of target points."""
    out = np.empty(target_points.shape[0])
    for start in range(0, out.size, chunk):
        stop = min(start + chunk, out.size)
        out[start:stop] = kernel_matrix(noise, target_points[start:stop], mapped) @ coeffs
    return out


def koopman_sum(noise, target_points, mapped, zvalues, chunk: int = 256) -> np.ndarray:
    """``out_j = sum_i zvalues_i K[i, j]``."""
    out = np.zeros(mapped.shape[0])
    for start in range(0, target_points.shape[0], chunk):
        stop = min(start + chunk, target_points.shape[0])
        out += zvalues[start:stop] @ kernel_matrix(noise, target_points[start:stop], mapped)
    return out


def marginal_sum(noise, k: int, x, centres, coeffs) -> np.ndarray:
    """Twin of :func:`mzpdf.solvers.grid._kernels.marginal_sum`, without the
    window: ``sum_j coeffs[j] rho_k(x - centres[j])`` for neuron ``k``'s noise."""
    law = type(noise)(noise.scale[k:k + 1])
    return np.array([float(coeffs @ law.pdf((xi - np.asarray(centres))[:, None])[:, 0]) for xi in np.ravel(x)])
