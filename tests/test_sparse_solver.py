"""The experimental sparse-grid solver on log-densities (issue 4, progress).

Oracles: the closed form of linear-gaussian networks; the converged tensor
grid solver (64 nodes) for a 2-neuron tanh net, with the error required to
fall as the level rises; the Gauss-Hermite Smolyak rule's polynomial
exactness.
"""
import numpy as np
import pytest

import mzpdf
from mzpdf.errors import CaseError
from mzpdf.sparse import hermite_smolyak
from mzpdf.sparse.solver import SparseOptions as Options
from mzpdf.sparse.solver import SparseSolver, check_case


def test_hermite_smolyak_is_exact_for_its_polynomials():
    pts, w = hermite_smolyak(4, 3)  # total degree 13
    assert abs(w.sum() - 1.0) < 1e-14
    assert abs(w @ (pts[:, 0] ** 4 * pts[:, 1] ** 2) - 3.0) < 1e-13   # E[V^4] E[V^2]
    assert abs(w @ (pts[:, 0] ** 2 * pts[:, 1] ** 2 * pts[:, 2] ** 2) - 1.0) < 1e-13
    assert abs(w @ (pts[:, 3] ** 6) - 15.0) < 1e-12


@pytest.mark.parametrize("width", [4, 6])
def test_linear_gaussian_layers_are_exact_at_level_2(width):
    rng = np.random.default_rng(0)
    layers = [mzpdf.Layer(rng.standard_normal((width, width)) / np.sqrt(width), 0.2 * rng.standard_normal(width),
                          "identity", {"kind": "gaussian", "std": 0.5}) for _ in range(4)]
    net = mzpdf.Network(tuple(layers))
    law = mzpdf.GaussianInput(0.3 * np.ones(width), 0.5 * np.eye(width))
    sol = SparseSolver(Options()).propagate(net, law)
    m, C = law.mean(), law.cov()
    for n, layer in enumerate(net):
        m = layer.weights @ m + layer.bias
        C = layer.weights @ C @ layer.weights.T + np.diag(layer.noise.scale ** 2)
        mass, mean, cov = sol.laws[n + 1].moments(2)
        assert abs(mass - 1.0) < 1e-12
        assert np.max(np.abs(mean - m)) < 1e-12 * np.max(np.abs(m))
        assert np.max(np.abs(cov - C)) < 1e-12 * np.max(np.abs(C))
    assert sol.diagnostics["points"][-1] == {4: 41, 6: 85}[width]


def test_tanh_net_converges_with_level_against_the_grid():
    net = mzpdf.random_network([2, 2, 2, 2], activation="tanh", sigma_w=0.6, sigma_b=0.3, seed=2,
                               noise={"kind": "gaussian", "std": 0.4})
    law = mzpdf.GaussianInput(np.zeros(2), 0.5 * np.eye(2))
    grid = mzpdf.GridSolver(nodes=64).propagate(net, law)
    errors = []
    for level, quad in ((4, 3), (6, 5)):
        sol = SparseSolver(Options(level=level, quad_level=quad)).propagate(net, law)
        errors.append(max(d.grid.weights @ np.abs(sol.laws[n].pdf(d.grid.points) - d.values)
                          for n, d in enumerate(grid.densities) if n > 0))
    # measured 2.9e-2 and 1.4e-3 (algebraic convergence; see the module docstring)
    assert errors[1] < errors[0] / 5 and errors[1] < 3e-3


def test_cases_outside_the_method_are_refused_by_key():
    net = mzpdf.random_network([2, 2], noise={"kind": "laplace", "scale": 0.3})
    with pytest.raises(CaseError, match="noise.kind"):
        check_case(net, mzpdf.GaussianInput(np.zeros(2), np.eye(2)))
    net = mzpdf.random_network([2, 2], noise={"kind": "gaussian", "std": 0.3})
    with pytest.raises(CaseError, match="input.kind"):
        check_case(net, mzpdf.UniformInput(-np.ones(2), np.ones(2)))
