"""1-D rules and tensor grids against exact integrals and interpolants."""
import numpy as np
import pytest

from mzpdf.discretization import RULES, TensorGrid, make_rule

# Round-off of sums of O(100) terms of size O(1).
ROUND_OFF = 1e-13


@pytest.mark.parametrize("m", [5, 8, 13])
def test_rules_are_exact_for_their_polynomials(m):
    # Gauss-Legendre: degree 2m-1; Clenshaw-Curtis: degree m-1; trapezoid: degree 1.
    degree = {"gauss_legendre": 2 * m - 1, "clenshaw_curtis": m - 1, "trapezoid": 1}
    for name in RULES:
        rule = make_rule(name, m, -0.5, 2.0)
        for d in range(degree[name] + 1):
            exact = (2.0 ** (d + 1) - (-0.5) ** (d + 1)) / (d + 1)
            assert abs(rule.weights @ rule.nodes**d - exact) < ROUND_OFF * max(1, abs(exact))


def test_trapezoid_is_spectral_for_decaying_functions():
    # The error of the trapezoid rule for a gaussian on +-8 sigma falls like
    # exp(-c m^2): 41 nodes already reach round-off.
    rule = make_rule("trapezoid", 41, -8, 8)
    assert abs(rule.weights @ np.exp(-0.5 * rule.nodes**2) - np.sqrt(2 * np.pi)) < ROUND_OFF


@pytest.mark.parametrize("name", RULES.names())
def test_interpolation_converges(name):
    f = lambda x: np.exp(-0.5 * (x - 0.4) ** 2) * (1 + 0.2 * np.cos(2 * x))  # noqa: E731
    x = np.linspace(-7, 7, 501)
    errors = []
    for m in (21, 41, 61):
        rule = make_rule(name, m, -7, 7)
        errors.append(np.abs(rule.interpolation_matrix(x) @ f(rule.nodes) - f(x)).max())
    # Spectral (barycentric, trigonometric) convergence: 61 nodes give < 1e-8;
    # the trigonometric interpolant saturates at the end values f(+-7) ~ 2e-10.
    assert errors[2] < 1e-8
    assert errors[0] >= errors[1] >= errors[2]


def test_interpolation_is_zero_outside_the_box():
    rule = make_rule("gauss_legendre", 9, 0, 1)
    assert np.all(rule.interpolation_matrix(np.array([-0.1, 1.1])) == 0)


@pytest.mark.parametrize("rule", RULES.names())
def test_grid_moments_and_marginals_of_a_gaussian(rule):
    # Oracle: closed-form mean, covariance and marginal of a 3-d gaussian on a
    # box of +-9 sigma (truncation ~1e-19). Tolerances: 60 nodes resolve it to ~1e-12.
    mean = np.array([0.3, -0.5, 1.0])
    cov = np.array([[0.5, 0.1, 0.0], [0.1, 0.4, -0.05], [0.0, -0.05, 0.3]])
    s = np.sqrt(np.diag(cov))
    grid = TensorGrid.from_box(np.column_stack([mean - 9 * s, mean + 9 * s]), 60, rule)
    d = grid.points - mean
    p = np.exp(-0.5 * np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(cov))
    mass, m, c = grid.moments(p)
    tol = 1e-9
    assert abs(mass - 1) < tol
    assert np.abs(m - mean).max() < tol
    assert np.abs(c - cov).max() < tol
    marg = grid.marginal(p, 1)
    exact = np.exp(-0.5 * ((grid.axes[1] - mean[1]) / s[1]) ** 2) / (np.sqrt(2 * np.pi) * s[1])
    assert np.abs(marg - exact).max() < tol
    pair = grid.marginal(p, (2, 0))
    assert pair.shape == (60, 60)
    pts = mean + 0.3 * np.random.default_rng(0).standard_normal((7, 3))
    dp = pts - mean
    pex = np.exp(-0.5 * np.einsum("ij,jk,ik->i", dp, np.linalg.inv(cov), dp)) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(cov))
    assert np.abs(grid.interpolate(p, pts) - pex).max() < 1e-7


def test_two_neuron_marginal_orders_axes_as_asked():
    grid = TensorGrid.from_box([[0, 1], [0, 2], [0, 3]], 5, "gauss_legendre")
    x = grid.points
    p = x[:, 0] + 10 * x[:, 2]
    ab = grid.marginal(p, (0, 2))
    ba = grid.marginal(p, (2, 0))
    assert np.allclose(ab, ba.T)
    # integral over axis 1 of length 2: 2 * (x0 + 10 x2)
    assert np.allclose(ab, 2 * (grid.axes[0][:, None] + 10 * grid.axes[2][None, :]), atol=ROUND_OFF * 100)
