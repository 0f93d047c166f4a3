"""A-priori bounds on the contraction of one layer (SPEC 4), computed from the
network alone, to set beside the measured ``kappa``.

* Dobrushin coefficient (gaussian noise): the largest total-variation
  distance between two transition laws ``k(.|x)``, ``k(.|x')`` with x, x' in
  the layer's box. For noise ``N(0, diag(s^2))`` that distance is
  ``2 Phi(|S^-1 (F(x) - F(x'))| / 2) - 1 <= 2 Phi(D / (2 s_min)) - 1`` with D
  the diameter of the image ``F(box)``, bounded here by interval arithmetic
  (exact per neuron for the monotone activations).
* Canonical correlation (linear-gaussian layers): for jointly gaussian
  ``(X_n, X_{n+1})`` the largest correlation of any two functions of them is
  the top canonical correlation ``||C_{n+1}^-1/2 W C_n^1/2||_2``; it equals
  kappa for the Mori projection onto constants in L2(p) and bounds it for any
  Mori basis that holds the constants.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg, special

from ..network.inputs import GaussianInput
from ..network.noise import GaussianNoise

__all__ = ["image_diameter", "dobrushin_coefficient", "canonical_correlations"]


def image_diameter(layer, box: np.ndarray) -> float:
    """An upper bound on ``sup |F(x) - F(x')|`` over ``x, x'`` in ``box`` (n_in, 2)."""
    box = np.asarray(box, dtype=np.float64)
    centre, half = box.mean(axis=1), 0.5 * (box[:, 1] - box[:, 0])
    W = np.asarray(layer.weights)
    pre_mid = W @ centre + layer.bias
    pre_half = np.abs(W) @ half
    lo, hi = layer.activation(pre_mid - pre_half), layer.activation(pre_mid + pre_half)
    span = np.abs(hi - lo)  # monotone activations: the exact range of each neuron
    if layer.kind == "residual":
        span = 2 * half + layer.step * span
    return float(np.linalg.norm(span))


def dobrushin_coefficient(layer, box: np.ndarray) -> float:
    """``2 Phi(D / (2 s_min)) - 1`` for gaussian noise; NaN for other noise laws."""
    if not isinstance(layer.noise, GaussianNoise):
        return float("nan")
    d = image_diameter(layer, box)
    s = float(np.min(layer.noise.scale))
    return float(special.erf(d / (2.0 * s) / np.sqrt(2.0)))  # 2 Phi(t) - 1 = erf(t / sqrt 2)


def canonical_correlations(network, input_law) -> np.ndarray:
    """Top canonical correlation of (X_n, X_{n+1}) per layer for a
    linear-gaussian chain (identity activations, dense layers, gaussian noise
    and input); NaN from the first layer that is not linear-gaussian on."""
    out = np.full(network.depth, np.nan)
    if not isinstance(input_law, GaussianInput):
        return out
    cov = np.asarray(input_law.cov(), dtype=np.float64)
    for n, layer in enumerate(network):
        if layer.activation.name != "identity" or layer.kind != "dense" or not isinstance(layer.noise, GaussianNoise):
            break
        W = np.asarray(layer.weights)
        nxt = W @ cov @ W.T + np.diag(layer.noise.variance())
        cross = linalg.solve_triangular(np.linalg.cholesky(nxt), W @ np.linalg.cholesky(cov), lower=True)
        out[n] = np.linalg.norm(cross, 2)
        cov = nxt
    return out
