"""The grid solver end to end against closed forms and identities.

Oracle for linear-gaussian networks (identity activation, gaussian input and
noise): every layer is gaussian with m_{n+1} = W m_n + b and
C_{n+1} = W C_n W^T + S, and E[a.X_L + c | X_0 = x] is affine in x.
"""
import numpy as np
import pytest

import mzpdf
from mzpdf.observables import LinearObservable
from mzpdf.solvers.grid.engine import GridSolver

# Acceptance of the foundation issue: relative error <= 1e-8 in every
# layer's mean and covariance (40 trapezoid nodes reach ~1e-9, see below).
LINEAR_GAUSSIAN_TOL = 1e-8
# The discrete duality is exact up to round-off.
DUALITY_TOL = 1e-12


def linear_gaussian(width, depth=5, std=0.5, sigma_w=0.8, seed=7):
    net = mzpdf.random_network([width] * (depth + 1), "identity", sigma_w, 0.3, seed=seed,
                               noise={"kind": "gaussian", "std": std})
    law = mzpdf.GaussianInput(np.full(width, 0.5), 0.3 * np.eye(width) + 0.05)
    return net, law


def closed_form_moments(net, law):
    m, C = law.mean(), law.cov()
    out = [(m, C)]
    for layer in net:
        W = layer.weights
        m = W @ m + layer.bias
        C = W @ C @ W.T + np.diag(layer.noise.variance())
        out.append((m, C))
    return out


def relative_error(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("width", [2, 3])
def test_linear_gaussian_moments_match_closed_form(width):
    net, law = linear_gaussian(width)
    sol = GridSolver(nodes=40).propagate(net, law)
    for n, (m, C) in enumerate(closed_form_moments(net, law)):
        mass, mean, cov = sol.densities[n].moments()
        assert relative_error(mean, m) < LINEAR_GAUSSIAN_TOL, n
        assert relative_error(cov, C) < LINEAR_GAUSSIAN_TOL, n
    d = sol.diagnostics
    assert d["duality_gap"].max() < DUALITY_TOL
    # Mass is conserved up to the reported truncated mass; what is left is the
    # quadrature error of the noise integral, spectrally small at 40 nodes.
    assert np.abs(d["quadrature_mass_error"]).max() < 1e-9
    assert np.all(d["lost_mass"] < 1e-10)


@pytest.mark.parametrize("width", [2, 3])
def test_linear_gaussian_pullback_matches_closed_form(width):
    net, law = linear_gaussian(width)
    a = np.linspace(1.0, -0.5, width)
    g = LinearObservable(a, 0.25)
    solver = GridSolver(nodes=40 if width == 2 else 32)
    sol = solver.propagate(net, law)
    points = np.random.default_rng(1).uniform(-0.5, 1.5, (4, width))
    back = solver.pullback(sol, g, points)
    A, c = np.eye(width), np.zeros(width)
    for layer in net:
        A, c = layer.weights @ A, layer.weights @ c + layer.bias
    exact_q0 = (points @ A.T + c) @ a + 0.25
    exact_mean = (A @ law.mean() + c) @ a + 0.25
    scale = np.abs(exact_q0).max()
    # q0 is a Nystrom evaluation from the layer-1 grid: accurate to the grid's
    # discretization error (~1e-9 at 40 nodes, ~1e-7 at 32 in 3-d).
    assert np.abs(back.q0 - exact_q0).max() < 1e-6 * scale
    assert abs(back.mean - exact_mean) < 1e-6 * scale
    # Duality: E[g] from the backward solve equals integral of g p_L.
    assert abs(back.mean - back.mean_forward) < DUALITY_TOL * max(1.0, abs(back.mean))


def test_point_input_gives_the_kernel_as_first_density():
    net, _ = linear_gaussian(2, depth=2)
    x0 = np.array([0.3, -0.2])
    sol = GridSolver(nodes=40).propagate(net, mzpdf.PointInput(x0))
    assert sol.densities[0] is None
    mass, mean, cov = sol.densities[1].moments()
    layer = net[0]
    assert relative_error(mean, layer.weights @ x0 + layer.bias) < LINEAR_GAUSSIAN_TOL
    assert relative_error(cov, np.diag(layer.noise.variance())) < LINEAR_GAUSSIAN_TOL


def test_uniform_input_mass_and_mean():
    # Oracle: a uniform input through a linear layer has mean W m + b exactly;
    # the grid holds the uniform density exactly (box = its support), and the
    # trapezoid rule integrates the kink-free gaussian convolution well.
    net, _ = linear_gaussian(2, depth=1)
    law = mzpdf.UniformInput(np.array([-1.0, 0.0]), np.array([1.0, 0.5]))
    sol = GridSolver(nodes=40, rule="gauss_legendre").propagate(net, law)
    assert abs(sol.densities[0].integral() - 1) < 1e-12
    _, mean, _ = sol.densities[1].moments()
    assert relative_error(mean, net[0].weights @ law.mean() + net[0].bias) < 1e-6


def test_fixed_domain_too_small_warns_of_mass_loss():
    net, law = linear_gaussian(2, depth=1)
    with pytest.warns(mzpdf.MassLossWarning, match="layer 1"):
        GridSolver(nodes=20, domain=[-0.5, 0.5]).propagate(net, law)
