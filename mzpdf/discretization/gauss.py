"""Quadrature for expectations under the standard normal law: Smolyak
combinations of Gauss-Hermite rules (many dimensions) and their full tensor
products (two or three dimensions, where the tensor rule is affordable and
converges faster).

The 1-D rules are Gauss-Hermite (probabilists') with ``2 l + 1`` nodes at
level ``l`` (exact for polynomials of degree ``4 l + 1``); the Smolyak
combination ``sum_{L-d+1 <= |l| <= L} (-1)^(L-|l|) C(d-1, L-|l|) Q_l1 x ... x Q_ld``
is exact for the polynomials of total degree ``4 L + 1`` (and all sums of
their tensor products the combination contains). Coinciding points are
merged; some weights are negative.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import product
from math import comb

import numpy as np

from .sparse_grid import regular_indices

__all__ = ["hermite_rule", "hermite_smolyak", "hermite_tensor", "laplace_rule"]


@lru_cache(maxsize=64)
def hermite_rule(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``2 level + 1``-point rule for E[f(V)], V ~ N(0, 1)."""
    t, w = np.polynomial.hermite.hermgauss(2 * level + 1)
    nodes = np.sqrt(2.0) * t
    nodes[level] = 0.0  # the middle node, exactly
    return nodes, w / np.sqrt(np.pi)


@lru_cache(maxsize=64)
def laplace_rule(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``2 level + 2``-point rule for E[f(Z)], Z with
    density ``exp(-|z|) / 2``: Gauss-Laguerre on each half-line (exact for
    polynomials of degree ``2 level + 1`` on each side of the kink)."""
    t, w = np.polynomial.laguerre.laggauss(level + 1)
    return np.concatenate([-t[::-1], t]), 0.5 * np.concatenate([w[::-1], w])


_FAMILIES = {"hermite": hermite_rule, "laplace": laplace_rule}


@lru_cache(maxsize=64)
def hermite_smolyak(dim: int, level: int, family: str = "hermite") -> tuple[np.ndarray, np.ndarray]:
    """Points ``(Q, dim)`` and weights ``(Q,)`` with ``E[f(V)] ~ weights @ f(points)``,
    ``V ~ N(0, I_dim)`` (``family = "laplace"``: independent standard Laplace
    variables, from :func:`laplace_rule`)."""
    acc: dict[tuple, float] = {}
    exact: dict[tuple, tuple] = {}
    one_d = _FAMILIES[family]
    for l in regular_indices(dim, level):
        gap = level - int(l.sum())
        if gap > dim - 1:
            continue
        coeff = (-1) ** gap * comb(dim - 1, gap)
        rules = [one_d(int(k)) for k in l]
        for combo in product(*(range(len(r[0])) for r in rules)):
            point = tuple(float(rules[k][0][i]) for k, i in enumerate(combo))
            key = tuple(round(v, 12) for v in point)
            exact.setdefault(key, point)
            acc[key] = acc.get(key, 0.0) + coeff * float(np.prod([rules[k][1][i] for k, i in enumerate(combo)]))
    pts = np.array([exact[k] for k in acc], dtype=np.float64).reshape(-1, dim)
    wts = np.array(list(acc.values()))
    keep = np.abs(wts) > 1e-300
    return pts[keep], wts[keep]


@lru_cache(maxsize=16)
def hermite_tensor(dim: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The tensor product of ``points``-point Gauss-Hermite rules: points
    ``(points^dim, dim)`` and positive weights with ``E[f(V)] ~ weights @ f(points)``,
    exact for polynomials of degree ``2 points - 1`` in each variable."""
    t, w = np.polynomial.hermite.hermgauss(points)
    t, w = np.sqrt(2.0) * t, w / np.sqrt(np.pi)
    grids = np.meshgrid(*([t] * dim), indexing="ij")
    weights = np.meshgrid(*([w] * dim), indexing="ij")
    return (np.stack(grids, axis=-1).reshape(-1, dim),
            np.prod(np.stack(weights, axis=-1).reshape(-1, dim), axis=1))
