"""Error estimates of the sampling methods at a stated confidence (SPEC 6).

``solver.tol`` bounds, on every layer with a density, the largest L1
distance of a neuron's marginal to the true one and each mean's and standard
deviation's error relative to that standard deviation. A sampling method
states, per layer, the largest of

- ``L1``: ``z sum_k se_k h`` (``se_k`` the standard error of the density at
  abscissa k, ``h`` the spacing; each ``|error_k| <= z se_k`` at the stated
  confidence, so the sum bounds the L1 error at least as often) plus the
  evaluation error of the abscissae grid (what the method gives: bin
  averages against point values, or the second differences of the stored
  densities) plus the mass beyond the abscissae;
- ``mean``: ``z se(mean) / std``;
- ``std``: ``z se(var) / (2 var)`` (the relative error of ``std`` to first order),

over its neurons (the std of a neuron below ``STD_FLOOR`` of its layer's
largest taken as that floor), ``z`` the two-sided normal (or Student-t with
``replicates - 1`` degrees of freedom) quantile of ``confidence``. The bound
is statistical: it holds at the stated confidence where the estimates are
normal over the replicates, and its coverage is checked against closed forms
(tests/test_error_estimates.py).
"""
from __future__ import annotations

import numpy as np

__all__ = ["CONFIDENCE", "quantile_factor", "layer_error", "second_difference_error"]

CONFIDENCE = 0.95  # the confidence at which the sampling methods state their error estimates
# a neuron whose std is below this share of its layer's largest (a ReLU unit almost always at its atom) has its
# moments' errors stated relative to that floor: relative to its own std they measure nothing of use
STD_FLOOR = 1e-3


def quantile_factor(confidence: float = CONFIDENCE, replicates: int | None = None) -> float:
    """Two-sided quantile of ``confidence``: Student-t with ``replicates - 1``
    degrees of freedom (a standard error from that many replicates), normal
    without ``replicates``."""
    from scipy import stats

    p = 0.5 * (1.0 + confidence)
    return float(stats.norm.ppf(p) if replicates is None else stats.t.ppf(p, replicates - 1))


def second_difference_error(pdf: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(N,) L1 estimate of interpolating densities ``pdf`` (N, m) between their
    abscissae: ``sum_k |p_{k-1} - 2 p_k + p_{k+1}| h / 12`` (piecewise linear
    interpolation errs by ``h^2 |p''| / 12`` on average over a cell)."""
    if pdf.shape[1] < 3:
        return np.zeros(pdf.shape[0])
    return np.sum(np.abs(np.diff(pdf, 2, axis=1)), axis=1) * np.ravel(h) / 12.0


def layer_error(z: float, std: np.ndarray, mean_stderr=None, var_stderr=None, pdf_stderr=None, h=None,
                evaluation=None, outside=None) -> float:
    """The largest of the three errors of one layer (module doc); parts that
    are None are left out. ``std``, ``mean_stderr``, ``var_stderr``,
    ``evaluation`` and ``outside`` are (N,), ``pdf_stderr`` (N, m), ``h`` (N,)."""
    std = np.asarray(std, dtype=np.float64)
    finite = std[np.isfinite(std)]
    floor = STD_FLOOR * (finite.max() if finite.size else 0.0)
    safe = np.where(std > floor, std, floor if floor > 0 else np.inf)
    parts = [0.0]
    if mean_stderr is not None:
        parts.append(float(np.max(z * np.asarray(mean_stderr) / safe)))
    if var_stderr is not None:
        parts.append(float(np.max(z * np.asarray(var_stderr) / (2.0 * safe**2))))
    if pdf_stderr is not None:
        l1 = z * np.sum(np.asarray(pdf_stderr), axis=1) * np.ravel(h)
        if evaluation is not None:
            l1 = l1 + np.asarray(evaluation)
        if outside is not None:
            l1 = l1 + np.asarray(outside)
        parts.append(float(np.max(l1)))
    return max(parts)
