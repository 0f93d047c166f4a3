"""Numba kernel of qmc's conditional-density estimator, with its NumPy twin
(for the tests)."""
from __future__ import annotations

import numpy as np

from ..._numba import jit

# Noise codes of mzpdf.network.noise (GAUSSIAN, UNIFORM, LAPLACE), repeated here so
# that the kernel module imports nothing but numba's policy.
_GAUSSIAN, _UNIFORM, _LAPLACE = 0, 1, 2


@jit
def accumulate_conditional_pdf(f, code, scale, radius, y0, h, out):
    """out[j, k] += sum_i rho_j(y0[j] + k h[j] - f[i, j]): the conditional-density
    sum of one block of mapped samples at equispaced abscissae.

    Shapes: f (n, N), scale, radius, y0, h (N,), out (N, m). ``code`` is the
    noise law's (gaussian 0, uniform 1, laplace 2) and ``scale`` its std,
    half-width or scale. Terms with ``|y - f| > radius[j]`` are dropped
    (``radius`` = the noise's ``window_radius``: rho below 1e-16 of its peak).

    No exponential per term: from the abscissa nearest to ``f`` outwards a
    gaussian's ratio of neighbours is itself geometric (two multiplications
    per term), a laplace's is constant, and a uniform adds one constant over
    an index range (a difference array), so a term costs a few flops.
    """
    n, dim = f.shape
    m = out.shape[1]
    diff = np.zeros(m + 1)
    for j in range(dim):
        s, r, a0, hj = scale[j], radius[j], y0[j], h[j]
        if code == _UNIFORM:
            diff[:] = 0.0
            c = 0.5 / s
            for i in range(n):
                lo = max(np.ceil((f[i, j] - s - a0) / hj), 0.0)
                hi = min(np.floor((f[i, j] + s - a0) / hj), m - 1.0)
                if lo <= hi:
                    diff[np.int64(lo)] += c
                    diff[np.int64(hi) + 1] -= c
            acc = 0.0
            for k in range(m):
                acc += diff[k]
                out[j, k] += acc
        elif code == _GAUSSIAN:
            norm = 1.0 / (np.sqrt(2.0 * np.pi) * s)
            inv = 0.5 / (s * s)
            q = np.exp(-2.0 * hj * hj * inv)
            for i in range(n):
                k0 = np.int64(min(max(np.floor((f[i, j] - a0) / hj + 0.5), 0.0), m - 1.0))
                d = a0 + k0 * hj - f[i, j]
                if abs(d) > r:  # the nearest abscissa is beyond the window: so is every other
                    continue
                peak = norm * np.exp(-d * d * inv)
                g, rk, dk = peak, np.exp(-(2.0 * d * hj + hj * hj) * inv), d
                for k in range(k0, m):  # rightwards: g_{k+1} = g_k r_k, r_{k+1} = r_k q
                    if dk > r:
                        break
                    out[j, k] += g
                    g *= rk
                    rk *= q
                    dk += hj
                rk = np.exp((2.0 * d * hj - hj * hj) * inv)
                g, rk, dk = peak * rk, rk * q, d - hj
                for k in range(k0 - 1, -1, -1):  # leftwards, the mirror image
                    if dk < -r:
                        break
                    out[j, k] += g
                    g *= rk
                    rk *= q
                    dk -= hj
        elif code == _LAPLACE:
            norm = 0.5 / s
            e = np.exp(-hj / s)
            for i in range(n):
                k0 = np.int64(min(max(np.ceil((f[i, j] - a0) / hj), 0.0), np.float64(m)))
                dk = a0 + k0 * hj - f[i, j]  # >= 0 up to round-off: right of f
                g = norm * np.exp(-abs(dk) / s)
                for k in range(k0, m):
                    if dk > r:
                        break
                    out[j, k] += g
                    g *= e
                    dk += hj
                dk = a0 + (k0 - 1) * hj - f[i, j]  # < 0: left of f
                g = norm * np.exp(-abs(dk) / s)
                for k in range(k0 - 1, -1, -1):
                    if dk < -r:
                        break
                    out[j, k] += g
                    g *= e
                    dk -= hj


def conditional_pdf_numpy(f, noise, x):
    """Twin of :func:`accumulate_conditional_pdf` for one block, by direct
    evaluation of the noise law's 1-D factors (no window): (N, m) sums
    ``sum_i rho_j(x[j, k] - f[i, j])``.

    ``noise`` is a NoiseLaw of ``N`` neurons; ``x`` (N, m) any abscissae."""
    z = x.T[None, :, :] - f[:, None, :]  # (n, m, N): rho's last axis is the neuron
    return noise.pdf(z).sum(axis=0).T
