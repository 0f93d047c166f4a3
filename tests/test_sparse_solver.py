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
    sol = SparseSolver(Options(level=2, quad_level=2)).propagate(net, law)
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


LG_CASE = """
[case]
name = "sparse_lg"
[network.random]
widths = [4, 4, 4, 4]
activation = "identity"
sigma_w = 0.9
sigma_b = 0.3
seed = 3
noise = { kind = "gaussian", std = 0.5 }
[input]
kind = "gaussian"
mean = [0.1, -0.2, 0.0, 0.3]
std = 0.5
[solver]
method = "sparse"
level = 2
quad_level = 2
"""


def test_sparse_method_through_a_case_matches_the_linear_gaussian_closed_form():
    """``method = "sparse"`` end to end: every stored layer's mean and
    covariance against m' = W m + b, C' = W C W^T + S (exact at level 2 up to
    round-off: 1e-12 relative), and each stored marginal against the exact
    gaussian marginal on its abscissae (the marginal rule is exact for
    gaussians: 1e-10 of the peak), the stored joint of neurons 0 and 1 too."""
    from mzpdf.io.case import loads_case

    case = loads_case(LG_CASE)
    results = mzpdf.run(case)
    m, C = case.input.mean(), case.input.cov()
    for n, layer in enumerate(results.forward):
        if n > 0:
            W = case.network.layers[n - 1].weights
            m = W @ m + case.network.layers[n - 1].bias
            C = W @ C @ W.T + np.diag(case.network.layers[n - 1].noise.variance())
        assert np.max(np.abs(layer.mean - m)) <= 1e-12 * np.max(np.abs(m))
        assert np.max(np.abs(layer.cov - C)) <= 1e-12 * np.max(np.abs(C))
        sd = np.sqrt(np.diag(C))
        exact = np.exp(-0.5 * ((layer.marginal_x - m[:, None]) / sd[:, None]) ** 2) / (np.sqrt(2 * np.pi) * sd[:, None])
        assert np.max(np.abs(layer.marginal_pdf - exact)) <= 1e-10 * np.max(exact)
        x, y, pdf = layer.joint
        X, Y = np.meshgrid(x, y, indexing="ij")
        d = np.stack([X - m[0], Y - m[1]], axis=-1)
        c2 = C[:2, :2]
        joint = np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(c2), d)) / (2 * np.pi * np.sqrt(np.linalg.det(c2)))
        assert np.max(np.abs(pdf - joint)) <= 1e-10 * np.max(joint)
    assert np.all(results.diagnostics["points"][1:] == 41)
    assert np.max(np.abs(results.diagnostics["mass"] - 1.0)) <= 1e-12


@pytest.mark.parametrize(("override", "key"), [
    ("solver.level=0", "solver.level"),
    ("solver.box=-1", "solver.box"),
    ('network.random.noise={kind="laplace", scale=0.3}', "network.random.noise.kind"),
    ('input.kind="uniform"', "input.kind"),
    ('observable.kind="neuron"', "observable"),
])
def test_sparse_method_refuses_bad_cases_by_key_and_writes_nothing(tmp_path, override, key):
    from mzpdf.cli import main
    from mzpdf.io.case import loads_case

    text = LG_CASE
    if override.startswith("input.kind"):
        text = text.replace('kind = "gaussian"\nmean = [0.1, -0.2, 0.0, 0.3]\nstd = 0.5',
                            'kind = "uniform"\nlow = [-1, -1, -1, -1]\nhigh = [1, 1, 1, 1]')
        override = None
    if override and override.startswith("observable"):
        text += '\n[observable]\nkind = "neuron"\nindex = 0\n'
        override = None
    with pytest.raises(CaseError) as err:
        loads_case(text, [override] if override else [])
    assert err.value.key == key
    path = tmp_path / "case.toml"
    path.write_text(text)
    out = tmp_path / "out.h5"
    assert main(["run", str(path), "-o", str(out), "--quiet"] + (["--set", override] if override else [])) == 2
    assert not out.exists()
