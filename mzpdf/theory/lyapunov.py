"""Lyapunov exponents of a network along its noisy sample paths (issue 9, item 3).

Along each path ``x_{n+1} = F_n(x_n) + xi_n`` a block of ``k`` tangent vectors
is pushed through the Jacobians ``J_n = diag(phi'(W x + b)) W`` (dense) or
``I + h diag(phi'(W x + b)) W`` (residual) and re-orthonormalized by QR after
every layer (Benettin's method); ``lambda_i`` is the mean over layers of
``ln |R_ii|``. In mean field (wide i.i.d. layers) the top exponent is
``(1/2) ln chi_1`` (:class:`mzpdf.theory.MeanField`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["lyapunov_exponents"]


def lyapunov_exponents(network, input_law, k: int = 1, samples: int = 16, seed: int = 0,
                       burn_in: int = 0) -> dict:
    """Top-``k`` exponents per layer, averaged over ``samples`` paths.

    Returns ``{"exponents": (k,), "stderr": (k,), "per_path": (samples, k)}``;
    ``stderr`` is the standard error across paths. ``burn_in`` layers are
    walked but not counted (so that paths first reach their stationary
    regime). ``k`` may not exceed the narrowest layer.
    """
    widths = network.widths
    if not 1 <= k <= min(widths):
        raise ValueError(f"k must be in [1, {min(widths)}] (the narrowest layer), got {k}")
    if not 0 <= burn_in < network.depth:
        raise ValueError(f"burn_in must be in [0, {network.depth - 1}], got {burn_in}")
    rng = np.random.default_rng(seed)
    x = input_law.sample(rng, samples)
    q = np.stack([np.linalg.qr(rng.standard_normal((widths[0], k)))[0] for _ in range(samples)])
    logs = np.zeros((samples, k))
    for n, layer in enumerate(network):
        h = x @ layer.weights.T + layer.bias
        d = layer.activation.derivative(h)  # (samples, n_out)
        tangent = d[:, :, None] * np.einsum("oi,sik->sok", layer.weights, q)
        if layer.kind == "residual":
            tangent = q + layer.step * tangent
        q, r = np.linalg.qr(tangent)
        if n >= burn_in:
            logs += np.log(np.abs(np.diagonal(r, axis1=1, axis2=2)))
        x = layer.forward(x) + layer.noise.sample(rng, samples)
    per_path = logs / (network.depth - burn_in)
    return {"exponents": per_path.mean(axis=0), "stderr": per_path.std(axis=0, ddof=1) / np.sqrt(samples)
            if samples > 1 else np.full(k, np.nan), "per_path": per_path}
