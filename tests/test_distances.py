"""Distances between layer densities against depth (issue 9, item 4).

Oracle: a linear-gaussian unit x' = a x + b + xi started at its stationary
variance keeps that variance v, so layer n is N(m_n, v) with
m_n - m_inf = a^n (m_0 - m_inf), and against the stationary N(m_inf, v):
TV = 2 Phi(D / 2) - 1, Hellinger^2 = 1 - exp(-D^2 / 8), KL = D^2 / 2 with
D = |m_n - m_inf| / sqrt(v). The densities come from the grid solver (48
nodes: interpolation error ~1e-10), the distances from the crossing-aware
quadrature; acceptance 1e-6.
"""
import numpy as np
import tomli_w
from scipy import special

from mzpdf.io.case import loads_case
from mzpdf.solvers.grid.engine import GridSolver
from mzpdf.theory import cutoff, distances_1d, distances_grid

A, B, S, M0, DEPTH = 0.6, 0.4, 0.5, 6.0, 12


def _unit():
    v = S**2 / (1 - A**2)
    table = {"network": {"layers": [{"weights": [[A]], "bias": [B], "activation": "identity",
                                     "noise": {"kind": "gaussian", "std": S}}] * DEPTH},
             "input": {"kind": "gaussian", "mean": [M0], "std": float(np.sqrt(v))},
             "solver": {"method": "grid", "nodes": 48}}
    case = loads_case(tomli_w.dumps(table))
    return GridSolver(case.solver).propagate(case.network, case.input), v


def test_tv_hellinger_kl_against_depth_match_closed_form():
    sol, v = _unit()
    m_inf = B / (1 - A)
    stationary = lambda x: np.exp(-0.5 * (x - m_inf) ** 2 / v) / np.sqrt(2 * np.pi * v)  # noqa: E731
    tv = []
    for n in range(1, DEPTH + 1):
        density = sol.densities[n]
        lo = min(density.grid.box[0, 0], m_inf - 9 * np.sqrt(v))  # both supports: mass outside < 1e-18
        hi = max(density.grid.box[0, 1], m_inf + 9 * np.sqrt(v))
        got = distances_1d(lambda x: density.marginal(0, x), stationary, lo, hi)
        D = abs(A**n * (M0 - m_inf)) / np.sqrt(v)
        assert abs(got["tv"] - (2 * special.ndtr(D / 2) - 1)) <= 1e-6, n
        assert abs(got["hellinger"] - np.sqrt(1 - np.exp(-D * D / 8))) <= 1e-6, n
        assert abs(got["kl"] - D * D / 2) <= 1e-6 * max(1.0, D * D / 2), n
        tv.append(got["tv"])
    assert np.all(np.diff(tv) < 0)  # the unit forgets its input


def test_grid_distances_are_a_quadrature():
    """On the layer's own grid (both sides restricted to its box) the plain
    rule agrees with the crossing-aware one only to O(h^2) for TV (kinks of
    |p - q|: 1.5e-3 measured here, so 5e-3, not 1e-6), and spectrally for KL (smooth)."""
    sol, v = _unit()
    m_inf = B / (1 - A)
    stationary = lambda x: np.exp(-0.5 * (x - m_inf) ** 2 / v) / np.sqrt(2 * np.pi * v)  # noqa: E731
    density = sol.densities[3]
    lo, hi = density.grid.box[0]
    fine = distances_1d(lambda x: density.marginal(0, x), stationary, lo, hi)
    got = distances_grid(density.values, stationary(density.grid.points[:, 0]), density.grid.weights)
    assert abs(got["tv"] - fine["tv"]) <= 5e-3
    assert abs(got["kl"] - fine["kl"]) <= 1e-8 * fine["kl"]


def test_cutoff_interpolates_the_crossings():
    d = [1.0, 1.0, 0.8, 0.4, 0.1, 0.0]
    c = cutoff(d)
    assert c["depth"] == 2.75  # 2 + (0.8 - 0.5) / (0.8 - 0.4)
    assert c["start"] == 1.5 and c["end"] == 4.0 and c["window"] == 2.5
    assert np.isnan(cutoff([1.0, 0.95])["depth"])
