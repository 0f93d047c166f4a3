"""Smolyak sparse grids (issue 4, item 1): hierarchization, interpolation,
quadrature, marginals, moments and dimension-adaptive refinement.

Oracles: exactness on the polynomial (CC) or multilinear (hat) spaces that a
Smolyak grid of a given level reproduces; closed-form integrals and marginals
of separable functions; observed convergence with level.
"""
import numpy as np
import pytest

from mzpdf.discretization.sparse_grid import (
    SparseGrid, adaptive_grid, key_level, level_keys, new_keys, regular_indices,
)

BOX = np.array([[-1.0, 2.0], [0.0, 1.0], [-2.0, -1.0], [0.5, 3.0]])


def _random_points(box, n, seed=0):
    rng = np.random.default_rng(seed)
    return box[:, 0] + rng.random((n, box.shape[0])) * (box[:, 1] - box[:, 0])


def test_one_dimensional_families_are_nested():
    for level in range(1, 8):
        coarse, fine = set(level_keys(level - 1)), set(level_keys(level))
        assert coarse <= fine
        assert set(new_keys(level)) == fine - coarse
        assert np.all(key_level(new_keys(level)) == level)


def test_regular_index_count_and_grid_size():
    # |l|_1 <= L in d dims: C(L + d, d) indices; known CC grid sizes (Novak-Ritter)
    assert len(regular_indices(4, 3)) == 35
    assert SparseGrid.regular(np.tile([-1.0, 1.0], (2, 1)), 3).size == 29
    assert SparseGrid.regular(np.tile([-1.0, 1.0], (6, 1)), 4).size == 1457


@pytest.mark.parametrize("rule", ["cc", "hat"])
def test_interpolant_reproduces_nodal_values(rule):
    g = SparseGrid.regular(BOX, 4, rule)
    v = np.sin(g.points.sum(axis=1))
    assert np.max(np.abs(g.evaluate(v, g.points) - v)) < 1e-13


def test_cc_reproduces_polynomials_of_its_space():
    # level 3 contains the block (1, 1, 1, 0): quadratics in three variables at once,
    # and (2, 1, 0, 0): quartic x quadratic
    g = SparseGrid.regular(BOX, 3, "cc")
    f = lambda x: x[:, 0] ** 2 * x[:, 1] ** 2 * x[:, 2] ** 2 + x[:, 0] ** 4 * x[:, 3] ** 2 - 3.0 * x[:, 1]  # noqa: E731
    x = _random_points(BOX, 300)
    assert np.max(np.abs(g.evaluate(f(g.points), x) - f(x))) < 1e-11


def test_hat_reproduces_multilinear_functions():
    g = SparseGrid.regular(BOX, 4, "hat")  # block (1, 1, 1, 1) is in |l| <= 4
    f = lambda x: (1 + x[:, 0]) * (2 - x[:, 1]) * x[:, 2] * x[:, 3] + x[:, 0]  # noqa: E731
    x = _random_points(BOX, 300)
    assert np.max(np.abs(g.evaluate(f(g.points), x) - f(x))) < 1e-12


def test_weights_integrate_constants_and_the_interpolant():
    g = SparseGrid.regular(BOX, 5, "cc")
    volume = np.prod(BOX[:, 1] - BOX[:, 0])
    assert abs(g.weights.sum() - volume) < 1e-12 * volume
    # integral of the interpolant, computed from surpluses, equals weights @ values
    v = np.exp(g.points[:, 0]) * g.points[:, 1]
    alpha = g.hierarchize(v)
    assert abs(np.prod(g._basis_integrals, axis=1) @ alpha - g.integrate(v)) < 1e-12


def test_quadrature_converges_spectrally_for_cc_and_at_second_order_for_hat():
    f = lambda x: np.exp(0.3 * x.sum(axis=1))  # noqa: E731
    exact = np.prod([(np.exp(0.3 * b) - np.exp(0.3 * a)) / 0.3 for a, b in BOX])
    cc = []
    for L in (2, 4, 6):
        g = SparseGrid.regular(BOX, L, "cc")
        cc.append(abs(g.integrate(f(g.points)) - exact) / exact)
    assert cc[0] > 1e-7 and cc[1] < 1e-9 and cc[2] < 1e-14  # measured 4.8e-6, 1.1e-10, 4.6e-16
    hat = []
    for L in (5, 6, 7):
        g = SparseGrid.regular(BOX, L, "hat")
        hat.append(abs(g.integrate(f(g.points)) - exact) / exact)
    ratios = np.array(hat[:-1]) / np.array(hat[1:])
    assert np.all((ratios > 3.0) & (ratios < 6.0))  # h halves per level: ~4 (order 2, log factors)


def test_marginal_of_a_separable_function():
    g = SparseGrid.regular(BOX, 6, "cc")
    v = np.exp(g.points[:, 0]) * (1 + g.points[:, 1] ** 2) * np.cos(g.points[:, 2]) * g.points[:, 3] ** 2
    xs = np.linspace(-1.0, 2.0, 9)
    exact = np.exp(xs) * (4.0 / 3.0) * (np.sin(-1.0) - np.sin(-2.0)) * (27.0 - 0.125) / 3.0
    assert np.max(np.abs(g.marginal(v, 0, xs) - exact)) < 1e-7 * exact.max()


def test_moments_of_a_product_density():
    # uniform on the box times a linear tilt in x_0: mean and variance in closed form
    g = SparseGrid.regular(BOX, 3, "cc")
    a, b = BOX[0]
    dens = (1.0 + 0.2 * g.points[:, 0]) / np.prod(BOX[:, 1] - BOX[:, 0])
    mass, mean, cov = g.moments(dens)
    m0 = (b - a) + 0.1 * (b * b - a * a)
    m1 = (b * b - a * a) / 2 + 0.2 * (b ** 3 - a ** 3) / 3
    m2 = (b ** 3 - a ** 3) / 3 + 0.2 * (b ** 4 - a ** 4) / 4
    assert abs(mass - m0 / (b - a)) < 1e-13
    assert abs(mean[0] - m1 / m0) < 1e-13
    assert abs(cov[0, 0] - (m2 / m0 - (m1 / m0) ** 2)) < 1e-13
    assert abs(mean[1] - 0.5) < 1e-13 and abs(cov[1, 1] - 1.0 / 12.0) < 1e-13
    assert abs(cov[0, 1]) < 1e-13


def test_adaptive_grid_refines_the_dimension_that_needs_it():
    f = lambda x: np.exp(2.0 * x[:, 0]) + 0.01 * x[:, 1] * x[:, 2]  # noqa: E731
    res = adaptive_grid(f, BOX, "cc", level=1, tol=1e-10)
    assert not res.capped and res.indicator <= 1e-10
    levels = res.grid.indices.max(axis=0)
    assert levels[0] >= 4 and np.all(levels[1:] <= 1)
    x = _random_points(BOX, 400)
    err = np.max(np.abs(res.grid.evaluate(res.values, x) - f(x))) / np.max(np.abs(f(x)))
    regular = SparseGrid.regular(BOX, int(levels[0]), "cc")
    assert err < 1e-7 and res.grid.size * 10 < regular.size


def test_adaptive_grid_stops_at_max_points():
    res = adaptive_grid(lambda x: np.exp(np.sin(3 * x.sum(axis=1))), BOX, "cc", level=1, tol=1e-14, max_points=300)
    assert res.capped and res.grid.size <= 300 and res.indicator > 1e-14


def test_index_sets_must_be_downward_closed():
    with pytest.raises(ValueError, match="downward closed"):
        SparseGrid(np.array([[0, 0], [0, 2]]), np.tile([-1.0, 1.0], (2, 1)))
    with pytest.raises(ValueError, match="rule"):
        SparseGrid.regular(BOX, 2, "gauss")


@pytest.mark.parametrize("dim", [13, 16, 32])
def test_grids_beyond_twelve_dimensions_build(dim):
    """Regression: the point hash reused its 12 multipliers cyclically, so
    the points of dimensions k and k + 12 collided and every grid of 13 or
    more dimensions stopped with 'hash collision'. Oracle: the grid builds,
    its weights integrate 1 to the box volume (to round-off) and its points
    are distinct."""
    g = SparseGrid.regular(np.tile([-1.0, 1.0], (dim, 1)), 3)
    assert np.isclose(g.weights.sum(), 2.0**dim, rtol=1e-12)
    assert g.size == len(np.unique(g.points, axis=0))
