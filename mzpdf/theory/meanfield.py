"""Mean-field signal propagation in wide random networks (SPEC 5, issue 9).

For ``h_{l+1} = W x_l + b`` with ``W_ij ~ N(0, sigma_w^2 / N)``,
``b_i ~ N(0, sigma_b^2)`` and ``x_l = phi(h_l) + xi_l`` (additive noise of
variance ``s^2``, 0 for the classical noiseless maps), the pre-activation
variance and the correlation of two inputs follow, as the width grows,

    q_{l+1} = sigma_w^2 (E[phi(sqrt(q_l) z)^2] + s^2) + sigma_b^2,
    c_{l+1} = (sigma_w^2 E[phi(u_1) phi(u_2)] + sigma_b^2) / q*,

with ``(u_1, u_2)`` centred gaussian of variances ``q*`` and correlation
``c_l`` (the noise is independent across the two inputs, so it enters the
variance but not the covariance). From them: the fixed points ``q*`` and
``c*``, ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]`` (order for ``chi_1 < 1``,
chaos for ``chi_1 > 1``), the depth scales ``xi_q = -1 / ln chi_q`` and
``xi_c = -1 / ln chi_c``, and the critical line ``chi_1 = 1``. References:
Poole et al. (2016), Schoenholz et al. (2017); the code is ours.

Quadrature: composite Gauss-Legendre in the pre-activation ``u = sqrt(q) z``
on ``|u| <= 9 sqrt(q)`` (the gaussian tail beyond is below 1e-18) with panels
of width at most 1/2 in ``u``. The activations' singularities nearest the
real axis sit at a fixed distance in ``u`` (``pi/2`` for tanh), so the panel
width, and hence the accuracy, does not degrade as ``q`` grows -- unlike
Gauss-Hermite in ``z``, whose poles approach the axis like ``1/sqrt(q)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .._validate import number
from ..errors import CaseError
from ..network.activations import Activation, make_activation

__all__ = ["MeanField", "gaussian_expectation", "gaussian_expectation2", "critical_sigma_w"]

_Z_MAX = 9.0  # standard deviations kept
_PANEL = 0.5  # largest panel width in u
_ORDER = 24  # Gauss-Legendre points per panel


@lru_cache(maxsize=None)
def _gl(order: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(order)


def _rule(q: float, order: int = _ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``u`` and weights (gaussian density of variance q included) of
    the composite rule for ``E[g(U)]``, ``U ~ N(0, q)`` (``order`` points per
    panel)."""
    sd = np.sqrt(q)
    half = _Z_MAX * sd
    panels = max(2, int(np.ceil(2 * half / _PANEL)))
    edges = np.linspace(-half, half, panels + 1)
    x, w = _gl(order)
    mid, rad = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    u = (mid[:, None] + rad[:, None] * x[None, :]).ravel()
    wu = (rad[:, None] * w[None, :]).ravel()
    return u, wu * np.exp(-0.5 * u * u / q) / np.sqrt(2.0 * np.pi * q)


def gaussian_expectation(g, q: float) -> float:
    """``E[g(U)]`` for ``U ~ N(0, q)``; ``g`` vectorized. ``q = 0`` gives ``g(0)``."""
    if q <= 0.0:
        return float(np.asarray(g(np.zeros(1)))[0])
    u, w = _rule(q)
    return float(w @ g(u))


def gaussian_expectation2(g1, g2, q1: float, q2: float, c: float) -> float:
    """``E[g1(U_1) g2(U_2)]`` for centred gaussians of variances ``q1, q2`` and
    correlation ``c``: ``U_2 = c sqrt(q2/q1) U_1 + sqrt(q2 (1 - c^2)) Z``,
    a product rule over ``(U_1, Z)``."""
    if q1 <= 0.0 or q2 <= 0.0:
        return float(np.asarray(g1(np.zeros(1)))[0] * np.asarray(g2(np.zeros(1)))[0]) if q1 <= 0 and q2 <= 0 else (
            gaussian_expectation(g2, q2) * float(np.asarray(g1(np.zeros(1)))[0]) if q1 <= 0
            else gaussian_expectation(g1, q1) * float(np.asarray(g2(np.zeros(1)))[0]))
    c = float(np.clip(c, -1.0, 1.0))
    u1, w1 = _rule(q1)
    rest = q2 * (1.0 - c * c)
    inner_mean = c * np.sqrt(q2 / q1) * u1
    if rest <= 1e-300:
        return float(w1 @ (g1(u1) * g2(inner_mean)))
    v, wv = _rule(rest)
    return float(w1 @ (g1(u1) * (g2(inner_mean[:, None] + v[None, :]) @ wv)))


def _brentq(f, lo: float, hi: float) -> float:
    from scipy.optimize import brentq

    return float(brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


@dataclass(frozen=True)
class MeanField:
    """Mean-field maps of one activation at ``(sigma_w, sigma_b)`` with
    additive noise of standard deviation ``noise_std`` after the activation."""

    activation: Activation | str
    sigma_w: float
    sigma_b: float = 0.0
    noise_std: float = 0.0

    def __post_init__(self):
        act = self.activation
        if isinstance(act, str):
            act = make_activation(act, "analysis.activation")
        object.__setattr__(self, "activation", act)
        object.__setattr__(self, "sigma_w", number(self.sigma_w, "analysis.sigma_w", 0.0))
        object.__setattr__(self, "sigma_b", number(self.sigma_b, "analysis.sigma_b", 0.0, strict=False))
        object.__setattr__(self, "noise_std", number(self.noise_std, "analysis.noise_std", 0.0, strict=False))

    # -- maps ------------------------------------------------------------------
    def q_map(self, q: float) -> float:
        phi = self.activation
        return self.sigma_w**2 * (gaussian_expectation(lambda u: phi(u) ** 2, q) + self.noise_std**2) + self.sigma_b**2

    def c_map(self, c: float, q: float | None = None) -> float:
        """Next-layer correlation of two inputs at correlation ``c``, both at variance ``q`` (default q*)."""
        q = self.fixed_q() if q is None else q
        phi = self.activation
        cov = self.sigma_w**2 * gaussian_expectation2(phi, phi, q, q, c) + self.sigma_b**2
        return cov / self.q_map(q)

    # -- fixed points ---------------------------------------------------------------
    def fixed_q(self) -> float:
        """The stable fixed point ``q*`` of the q-map (0 when the map keeps 0
        and is contracting there)."""
        f = lambda q: self.q_map(q) - q  # noqa: E731
        lo = 0.0
        if f(0.0) <= 0.0:  # q = 0 is a fixed point (phi(0) = 0, no bias, no noise)
            lo = 1e-14
            if f(lo) <= 0.0:
                return 0.0
        hi = max(1.0, 2 * self.sigma_b**2 + 1.0)
        while f(hi) > 0.0:
            hi *= 2.0
            if hi > 1e6:  # the rule's cost grows like sqrt(q): stop before it matters
                raise CaseError("analysis.sigma_w", "gives a q-map without a finite fixed point (unbounded "
                                                    "activation with sigma_w too large)", self.sigma_w)
        return _brentq(f, lo, hi)

    def fixed_c(self) -> float:
        """The stable fixed point ``c*`` of the correlation map (1 in the ordered phase)."""
        q = self.fixed_q()
        if self.noise_std == 0.0 and self.chi_1() <= 1.0:
            return 1.0
        f = lambda c: self.c_map(c, q) - c  # noqa: E731
        hi = 1.0 if self.noise_std > 0.0 else 1.0 - 1e-10  # noise: c = 1 maps below 1
        return _brentq(f, 0.0 if f(0.0) >= 0.0 else -1.0 + 1e-12, hi)

    # -- slopes and depth scales -----------------------------------------------------------
    def chi_1(self) -> float:
        """``sigma_w^2 E[phi'(sqrt(q*) z)^2]``: the slope of the c-map at c = 1."""
        d = self.activation.derivative
        return self.sigma_w**2 * gaussian_expectation(lambda u: d(u) ** 2, self.fixed_q())

    def chi_q(self) -> float:
        """Slope of the q-map at ``q*``: ``dQ/dq = sigma_w^2 E[phi(U)^2 (U^2/q - 1)] / (2 q)``
        (gaussian integration by parts; needs only phi)."""
        q = self.fixed_q()
        phi = self.activation
        if q <= 0.0:
            d = self.activation.derivative
            return self.sigma_w**2 * float(d(np.zeros(1))[0]) ** 2
        return self.sigma_w**2 * gaussian_expectation(lambda u: phi(u) ** 2 * (u * u / q - 1.0), q) / (2.0 * q)

    def chi_c(self) -> float:
        """Slope of the c-map at ``c*``: ``sigma_w^2 E[phi'(u_1) phi'(u_2)] / q_map(q*)`` times q*."""
        q, c = self.fixed_q(), self.fixed_c()
        d = self.activation.derivative
        return self.sigma_w**2 * gaussian_expectation2(d, d, q, q, c) * q / self.q_map(q) if q > 0 else self.chi_1()

    def depth_scales(self) -> tuple[float, float]:
        """``(xi_q, xi_c)`` with ``xi = -1 / ln chi`` (inf at chi = 1)."""
        def scale(chi):
            return float("inf") if chi == 1.0 else -1.0 / np.log(chi) if chi < 1.0 else 1.0 / np.log(chi)
        return scale(self.chi_q()), scale(self.chi_c())


def critical_sigma_w(activation, sigma_b: float = 0.0, noise_std: float = 0.0, bracket=(0.05, 20.0)) -> float:
    """``sigma_w`` on the order-to-chaos line ``chi_1 = 1`` for this ``sigma_b``."""
    def f(s):
        try:
            return MeanField(activation, s, sigma_b, noise_std).chi_1() - 1.0
        except CaseError:  # no finite fixed point: the variance explodes, far on the unstable side
            return 1.0

    return _brentq(f, *bracket)
