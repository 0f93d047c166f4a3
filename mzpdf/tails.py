"""Small probabilities of a quantity of interest: ``P(g(X_L) > t)`` and
quantiles deep in the tail (SPEC 5), to accuracy relative to the probability.

For a linear read-out ``g(y) = a . y + c`` (a neuron is ``a = e_i``) and the
last layer ``X_L = F(X_{L-1}) + xi``, the last noise is integrated in closed
form::

    P(g(X_L) > t) = E[ S(t - a . F(X_{L-1}) - c) ],     S(z) = P(a . xi > z).

Given any weighted atoms ``(w_j, x_j)`` of the law of ``X_{L-1}`` (grid nodes
times nodal density, or equally weighted samples) the expectation is the sum
``sum_j w_j S(t - a . F(x_j) - c)`` of non-negative terms, evaluated as
``exp(logsumexp(log w_j + log S_j))`` so that probabilities of 1e-12 and far
below keep their relative accuracy. ``S`` has a closed form for gaussian noise
(``a . xi`` is gaussian with std ``sqrt(sum a_i^2 s_i^2)``) and, for uniform and
laplace noise, when ``a`` has one nonzero entry; a read-out of several neurons
under uniform or laplace noise is refused (:func:`tails_problem`).

Every noise law here is symmetric, so the lower tail is the same sum with
``S(a . F(x_j) + c - t)``: quantiles at small levels are found from it,
without the cancellation of ``1 - P(g > t)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import real_array
from .errors import CaseError

__all__ = ["case_problem", "TailSpec", "make_tails", "readout", "tails_problem", "log_survival", "log_tail", "survival_bound",
           "invert_tail"]

# Noise kinds whose read-out a . xi has a closed-form survival function for any a.
_ANY_READOUT = ("gaussian",)
# Noise kinds with a closed form when a has exactly one nonzero entry.
_ONE_NEURON = ("uniform", "laplace")
# Floor of log-probabilities handed to the root finder: exp(-1e4) is 0 in
# double precision, and brentq needs finite values.
_LOG_FLOOR = -1.0e4
# Doublings of the bracket's width before a quantile is declared out of reach.
_MAX_DOUBLINGS = 200


@dataclass(frozen=True)
class TailSpec:
    """The tail questions of an ``[observable]``.

    Attributes
    ----------
    thresholds : (T,)
        The ``t`` of ``P(g(X_L) > t)`` (possibly empty).
    quantiles : (Q,)
        Levels ``q`` in (0, 1) of the quantiles ``t_q`` with ``P(g(X_L) <= t_q) = q``
        (possibly empty).
    """

    thresholds: np.ndarray
    quantiles: np.ndarray

    @property
    def key(self) -> str:
        """The case key that asks for tails (for messages)."""
        return "observable.thresholds" if self.thresholds.size else "observable.quantiles"

    @property
    def value(self) -> list:
        return (self.thresholds if self.thresholds.size else self.quantiles).tolist()


def make_tails(thresholds=None, quantiles=None, key: str = "observable") -> TailSpec | None:
    """Validate ``thresholds`` and ``quantiles`` of an ``[observable]`` table.

    Returns None when neither is given.

    Raises
    ------
    CaseError
        Naming ``observable.thresholds`` (not a non-empty list of finite
        numbers) or ``observable.quantiles`` (a level outside (0, 1)).
    """
    if thresholds is None and quantiles is None:
        return None
    t = np.zeros(0) if thresholds is None else real_array(thresholds, f"{key}.thresholds", 1)
    q = np.zeros(0) if quantiles is None else real_array(quantiles, f"{key}.quantiles", 1)
    bad = (q <= 0.0) | (q >= 1.0)
    if np.any(bad):
        raise CaseError(f"{key}.quantiles", "must hold levels strictly between 0 and 1 (a quantile q has "
                        "P(g(X_L) <= t_q) = q)", float(q[bad][0]))
    return TailSpec(t, q)


def check_levels(q: np.ndarray) -> None:
    """Raise ValueError unless every quantile level is strictly between 0 and 1."""
    bad = ~((q > 0.0) & (q < 1.0))
    if np.any(bad):
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {float(q[bad][0])}")


def readout(observable, width: int) -> tuple[np.ndarray, float]:
    """``(a, c)`` with ``g(y) = a . y + c`` for a neuron or linear observable on
    ``width`` output neurons."""
    if hasattr(observable, "readout"):
        return observable.readout(width)
    raise ValueError(f"exceedance probabilities and quantiles need a neuron or linear observable (the last "
                     f"noise is integrated in closed form along a linear read-out), got "
                     f"{getattr(observable, 'kind', type(observable).__name__)!r}")


def tails_problem(noise, a: np.ndarray) -> str | None:
    """Why ``S(z) = P(a . xi > z)`` has no closed form here, or None."""
    if noise.is_deterministic:
        return "needs noise on the last layer (its survival function is integrated in closed form)"
    if noise.kind in _ANY_READOUT:
        return None
    if noise.kind in _ONE_NEURON:
        if np.count_nonzero(a) <= 1:
            return None
        return (f"needs a read-out of one neuron under {noise.kind} noise on the last layer (the sum of "
                f"{np.count_nonzero(a)} independent {noise.kind} variables has no closed-form survival "
                "function): use kind = 'neuron', or gaussian last-layer noise")
    return f"has no closed-form survival function for {noise.kind!r} noise on the last layer"


def case_problem(case):
    """``(key, rule, value)`` when ``case`` asks for tails its last layer's
    noise has no closed-form survival function for, else None (the check of
    every method with the tails capability)."""
    tails = getattr(case, "tails", None)
    if tails is None:
        return None
    if not hasattr(case.observable, "readout"):
        return ("observable.kind", "must be 'neuron' or 'linear' for exceedance probabilities and quantiles (the "
                "last noise is integrated in closed form along a linear read-out)", case.observable.kind)
    a, _ = readout(case.observable, case.network.widths[-1])
    reason = tails_problem(case.network[-1].noise, a)
    return None if reason is None else (tails.key, reason, tails.value)


def log_survival(noise, a: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``log P(a . xi > z)`` for the noise law ``noise`` (one scale per
    neuron), elementwise in ``z`` (any shape); ``-inf`` where it is 0.

    Raises
    ------
    ValueError
        Where :func:`tails_problem` names a reason.
    """
    from scipy import special

    reason = tails_problem(noise, a)
    if reason is not None:
        raise ValueError(f"observable.thresholds {reason}")
    z = np.asarray(z, dtype=np.float64)
    scale = np.broadcast_to(noise.scale, a.shape)
    if noise.kind == "gaussian":
        sd = float(np.sqrt(np.sum((a * scale) ** 2)))
        if sd == 0.0:  # g does not see the noise: a step
            return np.where(z < 0.0, 0.0, -np.inf)
        return special.log_ndtr(-z / sd)
    nonzero = np.flatnonzero(a)
    if nonzero.size == 0:
        return np.where(z < 0.0, 0.0, -np.inf)
    k = nonzero[0]
    width = abs(a[k]) * scale[k]  # a_k xi_k is symmetric with this scale
    if noise.kind == "uniform":
        frac = np.clip((width - z) / (2.0 * width), 0.0, 1.0)
        with np.errstate(divide="ignore"):
            return np.log(frac)
    # laplace: S(z) = exp(-z/b)/2 for z >= 0, 1 - exp(z/b)/2 below
    return np.where(z >= 0.0, np.log(0.5) - np.maximum(z, 0.0) / width,
                    np.log1p(-0.5 * np.exp(np.minimum(z, 0.0) / width)))


def log_tail(weights: np.ndarray, readouts: np.ndarray, noise, a: np.ndarray, thresholds,
             lower: bool = False) -> np.ndarray:
    """``log sum_j w_j S(t - m_j)`` per threshold ``t``: the log of
    ``P(g(X_L) > t)`` (or ``P(g(X_L) <= t)`` with ``lower``) for atoms of
    ``X_{L-1}`` with weights ``weights`` (J,) and noiseless read-outs
    ``readouts`` (J,) ``m_j = a . F(x_j) + c``.

    Atoms of zero or negative weight are left out (the caller accounts for
    negative weight in its error bound). Returns (T,) with ``-inf`` for 0.
    """
    from scipy import special

    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    keep = weights > 0
    log_w, m = np.log(weights[keep]), readouts[keep]
    out = np.empty(thresholds.shape)
    for i, t in enumerate(thresholds):
        z = (m - t) if lower else (t - m)
        out[i] = special.logsumexp(log_w + log_survival(noise, a, z)) if m.size else -np.inf
    return out


def survival_bound(layer, a: np.ndarray, c: float, thresholds) -> np.ndarray:
    """``sup_x P(g(X_L) > t | X_{L-1} = x)`` per threshold: what one unit of
    mass of ``X_{L-1}`` anywhere (inside the box or cut off by it) can add
    to the exceedance. Below 1 only when the last layer's map is bounded
    along ``a`` (a dense layer with a bounded activation)."""
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    lo, hi = layer.activation.range
    if layer.kind != "dense" or not (np.isfinite(lo) and np.isfinite(hi)):
        return np.ones(thresholds.shape)
    top = float(np.sum(np.maximum(a * lo, a * hi))) + c
    return np.exp(log_survival(layer.noise, a, thresholds - top))


def invert_tail(log_upper, log_lower, levels, center: float, spread: float) -> np.ndarray:
    """Quantiles ``t_q`` with ``P(g <= t_q) = q`` of a monotone tail, by brentq
    on the log of the smaller tail: ``log P(g > t) = log(1 - q)`` for
    ``q >= 1/2`` and ``log P(g <= t) = log q`` below (relative accuracy at
    levels near 0 and 1).

    Parameters
    ----------
    log_upper, log_lower : callable
        ``t -> log P(g > t)`` and ``t -> log P(g <= t)`` for one float ``t``.
    levels : (Q,)
    center, spread : float
        Where to start bracketing (a mean and a standard deviation of g).
    """
    from scipy import optimize

    spread = spread if spread > 0 else 1.0
    out = np.empty(len(levels))
    for i, q in enumerate(levels):
        if q >= 0.5:
            target, fn = np.log1p(-q), lambda t: max(float(log_upper(t)), _LOG_FLOOR)
            sign = -1.0  # fn decreases in t
        else:
            target, fn = np.log(q), lambda t: max(float(log_lower(t)), _LOG_FLOOR)
            sign = 1.0
        f = lambda t: fn(t) - target  # noqa: E731
        lo, hi = center - spread, center + spread
        for _ in range(_MAX_DOUBLINGS):  # f must have the sign of -sign at lo
            if sign * f(lo) <= 0:
                break
            lo -= hi - lo
        for _ in range(_MAX_DOUBLINGS):
            if sign * f(hi) >= 0:
                break
            hi += hi - lo
        if sign * f(lo) > 0 or sign * f(hi) < 0:
            raise ValueError(f"observable.quantiles: no bracket found for level {q!r} (the discretized law "
                             f"holds too little mass for it)")
        out[i] = optimize.brentq(f, lo, hi, xtol=1e-13 * max(1.0, abs(lo), abs(hi)), rtol=1e-15, maxiter=200)
    return out
