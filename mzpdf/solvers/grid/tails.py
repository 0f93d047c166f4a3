"""Exceedance probabilities and quantiles on tensor grids (SPEC 3.1 tails).

The last noise is integrated in closed form (:mod:`mzpdf.tails`) over the
atoms ``w_j p_{L-1}(x_j)`` of layer L-1's grid. The error bound of each
probability is the difference to the companion solve on the same boxes with
half the nodes (:func:`mzpdf.solvers.grid.accuracy.companion`), plus the mass the boxes cut times the
largest survival any cut atom can have, plus a round-off allowance.
"""
from __future__ import annotations

import warnings

import numpy as np

from ...errors import MassLossWarning
from ...tails import invert_tail, log_tail, readout, survival_bound, tails_problem
from .engine import ForwardSolution

__all__ = ["CUT_SHARE", "ROUNDOFF_PER_LAYER", "cut_mass", "exceedances", "log_tail_of",
           "quantiles", "sup_survival", "warn_cut"]

# Round-off allowance of an exceedance, relative to it: L + 1 chained
# Nystrom sums of positive terms and a log-sum-exp, each ~1e-14 relative.
ROUNDOFF_PER_LAYER = 1e-13
# Share of an exceedance that the boxes' cut may account for before the boxes
# are widened once more (and, if it still does, a warning): below the 1e-6
# relative accuracy the tails are meant to reach.
CUT_SHARE = 1e-6


def atoms(native: ForwardSolution, g):
    """Weights (J,) and read-outs ``a . F(x_j) + c`` (J,) of layer L-1's
    atoms, the read-out ``a`` and the last noise; ValueError for what has no
    closed form."""
    layer = native.network[-1]
    a, c = readout(g, layer.n_out)
    reason = tails_problem(layer.noise, a)
    if reason is not None:
        raise ValueError(reason)
    L = native.depth
    return native.source_coefficients(L - 1), native.transitions[L - 1].mapped @ a + c, a, layer.noise


def log_tail_of(native: ForwardSolution, g, t, lower: bool = False) -> np.ndarray:
    """``log P(g(X_L) > t)`` (or ``<= t`` with ``lower``) from ``native``'s atoms."""
    w, m, a, noise = atoms(native, g)
    return log_tail(w, m, noise, a, t, lower)


def sup_survival(network, g, t) -> np.ndarray:
    """The largest survival ``P(g > t | X_{L-1} = x)`` any atom can have."""
    layer = network[-1]
    a, c = readout(g, layer.n_out)
    return survival_bound(layer, a, c, t)


def cut_mass(native: ForwardSolution) -> float:
    """Mass the boxes of layers 0..L-1 cut (the input's tails and, per
    layer, a union bound over neurons of the noise landing outside, from the
    noise CDF on both sides without 1 - cdf), plus the negative mass of the
    atoms: what the discretized law of X_{L-1} may miss."""
    cut = float(native.diagnostics["lost_mass"][0])
    for n in range(native.depth - 1):
        t, noise = native.transitions[n], native.network[n].noise
        box = t.target.box
        out = noise.cdf(box[:, 0] - t.mapped) + noise.cdf(t.mapped - box[:, 1])
        cut += float(np.abs(native.source_coefficients(n)) @ out.sum(axis=1))
    w = native.source_coefficients(native.depth - 1)
    return cut + float(-np.sum(np.minimum(w, 0.0)))


def exceedances(native: ForwardSolution, coarse: ForwardSolution, g, t) -> tuple[np.ndarray, np.ndarray]:
    """``P(g(X_L) > t)`` (T,) and the bound of its error (module doc);
    ``coarse`` is the companion of ``native`` (:func:`mzpdf.solvers.grid.accuracy.companion`)."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    fine = np.exp(log_tail_of(native, g, t))
    rough = np.exp(log_tail_of(coarse, g, t))
    cut = max(cut_mass(native), cut_mass(coarse))
    roundoff = ROUNDOFF_PER_LAYER * (native.depth + 1) * fine
    return fine, np.abs(fine - rough) + cut * sup_survival(native.layers, g, t) + roundoff


def quantiles(native: ForwardSolution, g, q) -> np.ndarray:
    """Quantiles of ``g(X_L)`` at levels ``q``, by bracketing the closed-form tails."""
    q = np.asarray(q, dtype=np.float64)
    if q.size == 0:
        return np.zeros(0)
    w, m, a, noise = atoms(native, g)
    mass = w[w > 0].sum()
    center = float(w @ m / mass)
    spread = float(np.sqrt(max(w @ (m - center) ** 2 / mass, 0.0) + a**2 @ noise.variance()))
    return invert_tail(lambda s: log_tail(w, m, noise, a, [s])[0],
                       lambda s: log_tail(w, m, noise, a, [s], lower=True)[0], q, center, spread)


def warn_cut(native: ForwardSolution, g, t, prob) -> None:
    """A MassLossWarning where the boxes' cut could change an exceedance by more than ``CUT_SHARE`` of it."""
    if np.size(t) == 0:
        return
    effect = cut_mass(native) * sup_survival(native.layers, g, t)
    bad = (effect > CUT_SHARE * prob) & (prob > 0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        warnings.warn(f"observable.thresholds[{i}] = {t[i]:g}: the boxes cut mass that may change "
                      f"P = {prob[i]:.3g} by up to {effect[i]:.3g} (lower solver.tail, or give "
                      "solver.domain = 'auto')", MassLossWarning, stacklevel=4)
