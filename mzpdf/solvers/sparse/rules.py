"""Positive rules for expectations under the standard normal law ``N(0, I)``
(the sparse solver puts every layer's law in these coordinates), and 1-D
rules for the noise laws.

Three kinds, each with a coarser companion for an error estimate:

``gauss``
    Tensor Gauss-Hermite, ``m`` points per variable, the points whose
    product weight is below ``1e-14`` of the largest dropped (mass < 1e-12):
    spectral accuracy for smooth integrands. Companion: ``ceil(3 m / 4)``
    points per variable.
``trapezoid``
    The lattice ``h Z^N`` inside the ball of radius ``radius``, weights
    ``h^N phi``: spectral for smooth integrands too, and second order with a
    known leading term for integrands with kinks (the Laplace kernel), which
    Richardson extrapolation against the sub-lattice ``2 h Z^N`` (the
    companion, no new points) removes. Gauss-Hermite rules converge like
    ``1 / m`` on kinks.
``sobol``
    Scrambled Sobol points (fixed seed: deterministic) through the normal
    quantile and their mirror images ``-v`` (antithetic pairs: the rule is
    symmetric like the tensor rules, so a symmetric net keeps exactly
    symmetric laws, and the odd part of every integrand's error cancels),
    equal weights: any dimension. Companion: the first half of the Sobol
    points with their mirror images (itself a scrambled net).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...discretization.gauss import hermite_smolyak

__all__ = ["AtomRule", "gauss_rule", "trapezoid_rule", "sobol_rule", "noise_rule"]

_PRUNE = 1e-14  # product weights below this share of the largest are dropped from tensor rules
SOBOL_SEED = 20260  # the scrambling of every Sobol rule (results are deterministic)


@dataclass(frozen=True, eq=False)
class AtomRule:
    """``E[f(V)] ~ weights @ f(points)``, V ~ N(0, I_N); positive weights summing to 1.

    coarse : AtomRule or None
        The companion rule behind error estimates (module doc).
    richardson : bool
        The companion is the half-resolution sub-lattice of a trapezoid
        rule: ``(4 fine - coarse) / 3`` removes the second-order term of
        integrands with kinks.
    kind : str
    step : float
        The lattice step of a trapezoid rule (0 for the others).
    """

    points: np.ndarray
    weights: np.ndarray
    kind: str
    coarse: "AtomRule | None" = None
    richardson: bool = False
    step: float = 0.0

    @property
    def size(self) -> int:
        return self.points.shape[0]


@lru_cache(maxsize=32)
def gauss_rule(dim: int, m: int, companion: bool = True) -> AtomRule:
    t, w = np.polynomial.hermite_e.hermegauss(m)
    w = w / w.sum()
    keep_1d = w > _PRUNE * w.max()
    t, w = t[keep_1d], w[keep_1d]
    grids = np.meshgrid(*([np.arange(t.size)] * dim), indexing="ij")
    idx = np.stack([g.reshape(-1) for g in grids], axis=1)
    logw = np.sum(np.log(w)[idx], axis=1)
    keep = logw >= logw.max() + np.log(_PRUNE)
    pts, wts = t[idx[keep]], np.exp(logw[keep])
    coarse = gauss_rule(dim, int(np.ceil(0.75 * m)), False) if companion else None
    return AtomRule(np.ascontiguousarray(pts), wts / wts.sum(), "gauss", coarse)


@lru_cache(maxsize=16)
def trapezoid_rule(dim: int, h: float, radius: float) -> AtomRule:
    n = int(np.floor(radius / (2.0 * h))) * 2  # even, so that the sub-lattice 2hZ^N is centred too
    axis = np.arange(-n, n + 1)
    grids = np.meshgrid(*([axis] * dim), indexing="ij")
    idx = np.stack([g.reshape(-1) for g in grids], axis=1)
    r2 = np.sum((h * idx) ** 2, axis=1)
    inside = r2 <= radius ** 2
    idx, r2 = idx[inside], r2[inside]
    w = np.exp(-0.5 * r2)
    even = np.all(idx % 2 == 0, axis=1)
    coarse = AtomRule(np.ascontiguousarray(h * idx[even]), w[even] / w[even].sum(), "trapezoid", step=2.0 * h)
    return AtomRule(np.ascontiguousarray(h * idx.astype(np.float64)), w / w.sum(), "trapezoid", coarse, True, h)


@lru_cache(maxsize=16)
def sobol_rule(dim: int, log2_points: int) -> AtomRule:
    """``2^log2_points`` points: ``2^(log2_points - 1)`` Sobol points and their mirror images."""
    from scipy.special import ndtri
    from scipy.stats import qmc

    u = qmc.Sobol(dim, scramble=True, seed=SOBOL_SEED).random_base2(log2_points - 1)
    base = ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
    half = base.shape[0] // 2
    coarse = np.concatenate([base[:half], -base[:half]])
    pts = np.concatenate([base, -base])
    return AtomRule(np.ascontiguousarray(pts), np.full(pts.shape[0], 1.0 / pts.shape[0]), "sobol",
                AtomRule(np.ascontiguousarray(coarse), np.full(coarse.shape[0], 1.0 / coarse.shape[0]), "sobol"))


def noise_rule(noise, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(Q, N)`` and weights for ``E[f(xi)]`` over a layer's separable
    noise: the Smolyak combination of 1-D rules of ``level``
    (:func:`mzpdf.discretization.gauss.hermite_smolyak`: Gauss-Hermite for
    gaussian noise, split Gauss-Laguerre for laplace noise, exact on each
    side of its kink), scaled by the per-neuron scale."""
    family = {"gaussian": "hermite", "laplace": "laplace"}.get(noise.kind)
    if family is None:
        raise ValueError(f"no rule for noise kind {noise.kind!r}")
    v, w = hermite_smolyak(noise.scale.size, level, family)
    return v * noise.scale[None, :], w
