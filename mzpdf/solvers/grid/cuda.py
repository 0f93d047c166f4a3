"""CUDA kernels of the grid transfer and Koopman sums (``backend = "cuda"``).

Both sums are one pair sum,

    out[a] = sum_b w[b] prod_k rho_k(A[a, k] - B[b, k]),

with ``A`` the target nodes and ``B`` the mapped sources ``F(x_j)`` for the
transfer sum (``w`` = weights x density), and the roles swapped for the
Koopman sum (the noise densities are even, so the kernel is symmetric in the
difference). One thread per output entry; the inner points stream through
shared memory in tiles of ``TILE``. For gaussian noise the product of
densities is one exponential of the summed squared scaled differences, with
the normalization applied once at the end.

Written with numba.cuda. Without a GPU the kernels run on numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``), which is how the test suite checks
their logic; :func:`cuda_status` says which is the case.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

try:  # the kernel refers to these as globals (numba's simulator swaps them)
    from numba import cuda, float64
except Exception:  # pragma: no cover - numba without its CUDA module
    cuda = float64 = None

__all__ = ["cuda_status", "pair_sum", "TILE", "MAX_DIM"]

TILE = 128   # inner points per shared-memory tile (and threads per block)
MAX_DIM = 8  # neurons per layer the kernel is compiled for


def cuda_status() -> tuple[bool, str]:
    """``(usable, reason)``: whether CUDA kernels can run here, and why not."""
    if cuda is None:  # pragma: no cover
        return False, "numba.cuda cannot be imported"
    try:
        if cuda.is_available():
            return True, "simulator" if _simulated() else "gpu"
        return False, "no CUDA GPU or driver is available (numba.cuda.is_available() is False)"
    except Exception as err:  # noqa: BLE001 - a broken driver or toolkit
        return False, f"CUDA is not usable ({type(err).__name__}: {err})"


def _simulated() -> bool:
    import os

    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@lru_cache(maxsize=1)
def _kernel():
    @cuda.jit
    def pair_sum_kernel(code, inv_scale, a_pts, b_pts, w, out):
        tile_b = cuda.shared.array(shape=(TILE, MAX_DIM), dtype=float64)
        tile_w = cuda.shared.array(shape=TILE, dtype=float64)
        a_loc = cuda.local.array(shape=MAX_DIM, dtype=float64)
        i = cuda.grid(1)
        t = cuda.threadIdx.x
        n_a, n_dim = a_pts.shape
        n_b = b_pts.shape[0]
        if i < n_a:
            for k in range(n_dim):
                a_loc[k] = a_pts[i, k]
        acc = 0.0
        for start in range(0, n_b, TILE):
            j = start + t
            if j < n_b:
                for k in range(n_dim):
                    tile_b[t, k] = b_pts[j, k]
                tile_w[t] = w[j]
            cuda.syncthreads()
            if i < n_a:
                stop = min(TILE, n_b - start)
                for jj in range(stop):
                    if code == 0:  # gaussian: one exponential per pair
                        e = 0.0
                        for k in range(n_dim):
                            d = (a_loc[k] - tile_b[jj, k]) * inv_scale[k]
                            e += d * d
                        acc += tile_w[jj] * math.exp(-0.5 * e)
                    else:
                        v = tile_w[jj]
                        for k in range(n_dim):
                            d = abs(a_loc[k] - tile_b[jj, k]) * inv_scale[k]
                            if code == 1:  # uniform on [-s, s]
                                v = v if d <= 1.0 else 0.0
                            else:  # laplace
                                v *= math.exp(-d)
                        acc += v
            cuda.syncthreads()
        if i < n_a:
            out[i] = acc

    return pair_sum_kernel


def _normalization(code: int, scale: np.ndarray) -> float:
    if code == 0:
        return float(np.prod(1.0 / (math.sqrt(2.0 * math.pi) * scale)))
    return float(np.prod(0.5 / scale))  # uniform 1/(2s), laplace 1/(2b)


def pair_sum(code: int, scale: np.ndarray, a_pts: np.ndarray, b_pts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``out[a] = sum_b w[b] prod_k rho_k(A[a, k] - B[b, k])`` on the GPU (or
    the simulator), for noise kind ``code`` (0 gaussian, 1 uniform, 2 laplace)
    with scales ``scale`` (N,)."""
    a_pts = np.ascontiguousarray(a_pts, dtype=np.float64)
    b_pts = np.ascontiguousarray(b_pts, dtype=np.float64)
    n_dim = a_pts.shape[1]
    if n_dim > MAX_DIM or b_pts.shape[1] != n_dim:
        raise ValueError(f"the CUDA kernel handles 1..{MAX_DIM} neurons, got {n_dim} and {b_pts.shape[1]}")
    scale = np.asarray(scale, dtype=np.float64)
    d_out = cuda.device_array(a_pts.shape[0], dtype=np.float64)
    blocks = (a_pts.shape[0] + TILE - 1) // TILE
    _kernel()[blocks, TILE](np.int64(code), cuda.to_device(1.0 / scale), cuda.to_device(a_pts),
                            cuda.to_device(b_pts), cuda.to_device(np.ascontiguousarray(w, dtype=np.float64)), d_out)
    return d_out.copy_to_host() * _normalization(code, scale)
