"""Mean-field maps (issue 9, build item 1) against independent quadrature and
closed forms.

Oracles: scipy.integrate.quad over z at epsrel 1e-14 (adaptive, independent
of our composite Gauss-Legendre rule in u); the erf closed forms
E[erf(U1) erf(U2)] = (2/pi) arcsin(2 S12 / sqrt((1 + 2 S11)(1 + 2 S22))) and
the critical line sigma_w^2 = pi/4 at sigma_b = 0 (chi_1 = sigma_w^2 4/pi at
q* = 0). Tolerances: 1e-8 where the acceptance sets it, tighter where the
oracle is exact.
"""
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, special

from mzpdf.theory import MeanField, critical_sigma_w, gaussian_expectation, gaussian_expectation2


def quad_expect(g, q):
    f = lambda z: g(np.sqrt(q) * z) * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)  # noqa: E731
    with warnings.catch_warnings():  # QUADPACK notes round-off at this tolerance: it is at round-off already
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return integrate.quad(f, -12, 12, epsabs=1e-16, epsrel=1e-14, limit=2000, points=[0.0])[0]


def tanh2(u):
    return np.tanh(u) ** 2


def dtanh2(u):
    return (1 - np.tanh(u) ** 2) ** 2


@pytest.mark.parametrize("q", [1e-3, 0.1, 1.0, 16.0, 100.0])
def test_expectation_matches_adaptive_quadrature(q):
    """tanh(sqrt(q) z) has poles at distance pi/(2 sqrt(q)) from the real z
    axis; at q = 100 (sigma_w ~ 4 and beyond) the rule must still hold."""
    a, b = gaussian_expectation(tanh2, q), quad_expect(tanh2, q)
    assert abs(a - b) <= 1e-12 * b


@pytest.mark.parametrize("q", [1e-4, 0.5, 3.0, 50.0])
@pytest.mark.parametrize("c", [-0.7, 0.0, 0.4, 0.95])
def test_erf_two_point_expectation_closed_form(q, c):
    exact = 2 / np.pi * np.arcsin(2 * q * c / (1 + 2 * q))
    assert abs(gaussian_expectation2(special.erf, special.erf, q, q, c) - exact) <= 1e-13
    assert abs(gaussian_expectation(lambda u: special.erf(u) ** 2, q)
               - 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q))) <= 1e-14


def test_erf_critical_line_at_zero_bias():
    s = critical_sigma_w("erf", 0.0)
    assert abs(s**2 - np.pi / 4) <= 1e-10


def _independent_fixed_point(sigma_w, sigma_b):
    Q = lambda q: sigma_w**2 * quad_expect(tanh2, q) + sigma_b**2  # noqa: E731
    return optimize.brentq(lambda q: Q(q) - q, 1e-6, 100.0, xtol=1e-15, rtol=1e-15)


@pytest.mark.parametrize("sigma_w, sigma_b", [(1.0, 0.3), (4.0, 0.3), (2.5, 0.05)])
def test_tanh_fixed_point_and_chi1_match_quad(sigma_w, sigma_b):
    mf = MeanField("tanh", sigma_w, sigma_b)
    q = _independent_fixed_point(sigma_w, sigma_b)
    assert abs(mf.fixed_q() - q) <= 1e-8 * q
    chi = sigma_w**2 * quad_expect(dtanh2, q)
    assert abs(mf.chi_1() - chi) <= 1e-8 * chi


def test_tanh_critical_line_matches_quad():
    sigma_b = 0.3

    def chi(sw):
        q = _independent_fixed_point(sw, sigma_b)
        return sw**2 * quad_expect(dtanh2, q) - 1.0

    exact = optimize.brentq(chi, 0.5, 3.0, xtol=1e-14)
    assert abs(critical_sigma_w("tanh", sigma_b) - exact) <= 1e-8 * exact


def test_chi_q_is_the_slope_of_the_q_map():
    """Integration by parts against a central difference of the q-map
    (step 1e-4: truncation error ~1e-9 here)."""
    mf = MeanField("tanh", 2.0, 0.2)
    q, h = mf.fixed_q(), 1e-4
    slope = (mf.q_map(q + h) - mf.q_map(q - h)) / (2 * h)
    assert abs(mf.chi_q() - slope) <= 1e-7


def test_order_and_chaos():
    """Below the critical line c* = 1 and chi_1 < 1; above it c* < 1 is a
    stable fixed point of the c-map (slope < 1)."""
    s = critical_sigma_w("tanh", 0.3)
    ordered, chaotic = MeanField("tanh", 0.9 * s, 0.3), MeanField("tanh", 1.3 * s, 0.3)
    assert ordered.chi_1() < 1.0 and ordered.fixed_c() == 1.0
    assert chaotic.chi_1() > 1.0
    c = chaotic.fixed_c()
    assert c < 1.0 and abs(chaotic.c_map(c) - c) <= 1e-12 and chaotic.chi_c() < 1.0
