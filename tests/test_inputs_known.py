"""Inputs known exactly (issue 38): a gaussian std of 0 or a singular
covariance is folded into the first layer, the methods see the rank of the
uncertainty, and the results report layer 0 as the case's input law.

Oracles:
* closed form: a linear-gaussian net pushes N(m, C) to N(W m + b, W C W^T + S)
  layer by layer, whatever the rank of C; marginals are gaussian densities;
* identity: the folded case and the network folded by hand (W A, W m + b,
  input N(0, I_r)) run the same arithmetic, so their layers agree to
  round-off; ``uncertain = [...]`` and the zero stds it stands for are the
  same case; every std 0 is the point input;
* Monte Carlo with a confidence interval for the [montecarlo] reference beside
  a folded run;
* the exact key of every refusal, also as ``mzpdf run``'s exit status 2.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from scipy.stats import norm

import mzpdf
from mzpdf.errors import CaseError, SingularDensityError
from mzpdf.network import Layer, Network
from mzpdf.network.folding import fold_input

ROOT = Path(__file__).resolve().parents[1]
# The sparse method's moments of a linear-gaussian net are sums over Gauss-Hermite atoms, exact for the
# polynomials involved: measured <= 2e-13 here, so 1e-10 is the bound with margin.
SPARSE_MOMENT_TOL = 1e-10
# The grid's moments on 40 nodes: spectrally accurate, measured 2.4e-10 on the known-input net and 7.2e-10 on
# the rank-1 one (absolute, moments of order 1); 5e-9 leaves a factor 7 across platforms, and a wrong fold
# (a known input's mean or a factor off) moves the moments by ~0.1.
GRID_MOMENT_TOL = 5e-9
# Gaussian marginals on the grid: measured ~1e-10 of the peak; 1e-7 of the peak as in test_deterministic.py.
MARGINAL_TOL = 1e-7
# The same case computed twice (folded by the case, or by hand): the first layer's W A and W m + b are the same
# products, so only round-off of the order of eps could differ.
SAME_ARITHMETIC_TOL = 1e-12
MC_SIGMAS = 5  # Monte Carlo means within 5 standard errors: a false failure has probability ~6e-7 per mean

NOISE = {"kind": "gaussian", "std": 0.4}
MEAN = [0.4, -0.2, 1.0, 0.3]
STD = [0.5, 0.0, 0.3, 0.0]  # inputs 1 and 3 known exactly: rank 2


def linear_net(n_in=4, seed=3, activation="identity"):
    """n_in -> 2 -> 2, gaussian noise."""
    rng = np.random.default_rng(seed)
    return Network((Layer(rng.standard_normal((2, n_in)) * 0.8, rng.standard_normal(2) * 0.3, activation, NOISE),
                    Layer(rng.standard_normal((2, 2)) * 0.8, rng.standard_normal(2) * 0.3, activation,
                          {"kind": "gaussian", "std": [0.3, 0.5]})))


def closed_form(net, m, C):
    """(mean, cov) of every layer of a linear-gaussian net."""
    out = [(m, C)]
    for layer in net:
        W = layer.weights
        m, C = W @ m + layer.bias, W @ C @ W.T + np.diag(layer.noise.variance())
        out.append((m, C))
    return out


def run(net, law, method="grid", **table):
    solver = {"method": method, **table.pop("solver", {})}
    return mzpdf.run(mzpdf.load_case({"network": net.to_dict(), "input": law, "solver": solver, **table}))


@pytest.fixture(scope="module")
def linear_grid():
    net = linear_net()
    return net, run(linear_net(), {"kind": "gaussian", "mean": MEAN, "std": STD})


def test_the_methods_see_the_rank():
    """The case holds the folded network (input width 2 = the rank) for
    every method and for 'auto'; fold holds the case's own."""
    net = linear_net()
    for method in ("auto", "grid", "sparse", "tt", "qmc", "montecarlo"):
        case = mzpdf.load_case({"network": net.to_dict(), "input": {"kind": "gaussian", "mean": MEAN, "std": STD},
                                "solver": {"method": method}})
        assert case.network.widths == [2, 2, 2] and case.input.dim == 2, method
        assert case.fold.network.widths == [4, 2, 2] and case.fold.input.dim == 4
    assert case.solver.method == "montecarlo"


def test_linear_gaussian_with_known_inputs_matches_closed_form(linear_grid):
    """Oracle: closed form. Layer 0 is the case's law (zero rows, points and
    gaussian marginals); the later layers are N(W m + b, W C W^T + S)."""
    net, res = linear_grid
    m, C = np.array(MEAN), np.diag(np.array(STD) ** 2)
    zero = res.forward[0]
    assert np.array_equal(zero.mean, m) and np.array_equal(zero.cov, C)
    for i in (1, 3):  # known: points
        assert np.all(zero.marginal_x[i] == m[i]) and np.all(np.isinf(zero.marginal_pdf[i]))
        with pytest.raises(SingularDensityError, match=f"input {i} is known exactly"):
            res.law(0).marginal(i, [m[i]])
    for i in (0, 2):  # uncertain: their gaussian densities
        exact = norm.pdf(zero.marginal_x[i], m[i], STD[i])
        assert np.allclose(zero.marginal_pdf[i], exact, rtol=1e-12, atol=0)
        assert np.allclose(res.law(0).marginal(i, zero.marginal_x[i]), exact, rtol=1e-12, atol=0)
    assert len(res.forward) == 3 and [layer.mean.size for layer in res.forward] == [4, 2, 2]
    for n, (mn, Cn) in enumerate(closed_form(net, m, C)):
        assert np.abs(res.law(n).mean - mn).max() <= GRID_MOMENT_TOL, n
        assert np.abs(res.law(n).cov - Cn).max() <= GRID_MOMENT_TOL, n
        if n:
            x = res.forward[n].marginal_x
            for k in range(2):
                exact = norm.pdf(x[k], mn[k], np.sqrt(Cn[k, k]))
                assert np.abs(res.law(n).marginal(k, x[k]) - exact).max() <= MARGINAL_TOL * exact.max()


def test_linear_gaussian_moments_to_1e10_with_sparse():
    """Oracle: closed form, moments to 1e-10 (sparse: exact quadrature)."""
    net = linear_net()
    res = run(net, {"kind": "gaussian", "mean": MEAN, "std": STD}, method="sparse")
    for n, (mn, Cn) in enumerate(closed_form(net, np.array(MEAN), np.diag(np.array(STD) ** 2))):
        assert np.abs(res.law(n).mean - mn).max() <= SPARSE_MOMENT_TOL, n
        assert np.abs(res.law(n).cov - Cn).max() <= SPARSE_MOMENT_TOL, n


def hand_folded(net, mean, A):
    """The network folded by hand: first layer W A, W m + b."""
    first = net[0]
    return Network((Layer(first.weights @ A, first.weights @ mean + first.bias, first.activation, first.noise),)
                   + net.layers[1:])


def test_folded_run_equals_the_hand_folded_network():
    """Oracle: identity, on a tanh net with an observable at points on the
    support: every layer from 1 on, q0 and E[g]."""
    net = linear_net(activation="tanh")
    m, s = np.array(MEAN), np.array(STD)
    points = [[0.9, -0.2, 0.7, 0.3], [0.0, -0.2, 1.3, 0.3]]
    obs = {"kind": "linear", "coefficients": [1.0, -0.5], "offset": 0.1}
    res = run(net, {"kind": "gaussian", "mean": MEAN, "std": STD}, observable={**obs, "points": points})
    A = np.eye(4)[:, [0, 2]] * s[[0, 2]]
    z = (np.array(points)[:, [0, 2]] - m[[0, 2]]) / s[[0, 2]]
    ref = run(hand_folded(net, m, A), {"kind": "gaussian", "mean": [0.0, 0.0], "cov": np.eye(2).tolist()},
              observable={**obs, "points": z.tolist()})
    for a, b in zip(res.forward[1:], ref.forward[1:]):
        for name in ("mean", "cov", "marginal_x", "marginal_pdf", "box"):
            assert np.allclose(getattr(a, name), getattr(b, name), rtol=0, atol=SAME_ARITHMETIC_TOL), name
    assert np.allclose(res.backward.q0, ref.backward.q0, rtol=0, atol=SAME_ARITHMETIC_TOL)
    assert abs(res.backward.mean - ref.backward.mean) <= SAME_ARITHMETIC_TOL
    assert np.array_equal(res.backward.points, np.array(points))  # the case's points, not z
    assert res.diagnostics["mass"].shape == (3,)


def test_uncertain_list_is_the_zero_std_case():
    """Oracle: identity. uncertain = [0, 2] with std for those two is std
    [s0, 0, s2, 0]; every std 0 is the point input."""
    net = linear_net(activation="tanh")
    a = run(net, {"kind": "gaussian", "mean": MEAN, "std": [0.5, 0.3], "uncertain": [0, 2]})
    b = run(net, {"kind": "gaussian", "mean": MEAN, "std": STD})
    for la, lb in zip(a.forward, b.forward):
        assert np.array_equal(la.marginal_pdf, lb.marginal_pdf) and np.array_equal(la.cov, lb.cov)
    point = run(net, {"kind": "point", "x": MEAN})
    zero = run(net, {"kind": "gaussian", "mean": MEAN, "std": 0.0})
    for la, lb in zip(point.forward, zero.forward):
        assert np.array_equal(la.marginal_pdf, lb.marginal_pdf) and np.array_equal(la.mean, lb.mean)


def test_rank_one_covariance_matches_closed_form():
    """Oracle: closed form for a rank-1 cov (x_0 = x_1 + 0.1 exactly), and the
    factor reproduces the covariance; the joint of the two inputs is singular."""
    net = linear_net(n_in=2)
    mean, C = np.array([0.3, 0.2]), 0.25 * np.ones((2, 2))
    law = {"kind": "gaussian", "mean": mean.tolist(), "cov": C.tolist()}
    g = mzpdf.make_input(law)
    assert g.rank == 1 and np.allclose(g.factor @ g.factor.T, C, rtol=0, atol=1e-15)
    for method, tol in (("sparse", SPARSE_MOMENT_TOL), ("grid", GRID_MOMENT_TOL)):
        res = run(net, law, method=method)
        for n, (mn, Cn) in enumerate(closed_form(net, mean, C)):
            assert np.abs(res.law(n).mean - mn).max() <= tol, (method, n)
            assert np.abs(res.law(n).cov - Cn).max() <= tol, (method, n)
    x = res.forward[0].marginal_x
    for i in range(2):  # each input alone is N(m_i, 0.25)
        assert np.allclose(res.law(0).marginal(i, x[i]), norm.pdf(x[i], mean[i], 0.5), rtol=1e-12, atol=0)
    with pytest.raises(SingularDensityError, match="singular joint"):
        res.law(0).joint(0, 1, [0.3], [0.2])


def test_result_file_reads_back_layer_zero(linear_grid, tmp_path):
    """Oracle: identity. The folded run's file reads back with the case's
    layer 0 (points stay points, densities interpolate)."""
    _, res = linear_grid
    back = mzpdf.read_results(mzpdf.write_results(res, tmp_path / "known.h5"))
    zero, stored = res.forward[0], back.forward[0]
    for name in ("mean", "cov", "marginal_x", "marginal_pdf"):
        assert np.array_equal(getattr(zero, name), getattr(stored, name)), name
    x = zero.marginal_x[0]
    assert np.allclose(back.law(0).marginal(0, x), zero.marginal_pdf[0], rtol=1e-12, atol=0)
    with pytest.raises(SingularDensityError):
        back.law(0).marginal(1, [MEAN[1]])


def test_montecarlo_reference_beside_a_folded_run():
    """Oracle: Monte Carlo with a confidence interval. The [montecarlo]
    reference samples the case's own input and network: its means agree with
    the closed form within 5 standard errors, and its layer 0 keeps the known
    inputs as points."""
    net = linear_net()
    res = run(net, {"kind": "gaussian", "mean": MEAN, "std": STD}, montecarlo={"samples": 20000, "seed": 2})
    mc = res.montecarlo
    assert np.all(np.isinf(mc[0].marginal_pdf[[1, 3]])) and np.all(np.isfinite(mc[0].marginal_pdf[[0, 2]]))
    assert np.array_equal(mc[0].mean[[1, 3]], np.array(MEAN)[[1, 3]])  # known inputs are sampled as their value
    for n, (mn, _) in enumerate(closed_form(net, np.array(MEAN), np.diag(np.array(STD) ** 2))):
        err = np.maximum(mc[n].mean_stderr, 1e-15)
        assert np.all(np.abs(mc[n].mean - mn) <= MC_SIGMAS * err), n


def test_singular_gaussian_samples():
    """Oracle: the known inputs are sampled as their value exactly, the
    others with the sample covariance's standard error (5 sigma, 4e4 draws)."""
    g = mzpdf.make_input({"kind": "gaussian", "mean": MEAN, "std": STD})
    x = g.sample(np.random.default_rng(0), 40000)
    assert np.all(x[:, [1, 3]] == np.array(MEAN)[[1, 3]])
    var = np.array(STD)[[0, 2]] ** 2
    assert np.all(np.abs(x[:, [0, 2]].var(axis=0) - var) <= MC_SIGMAS * var * np.sqrt(2 / 40000))
    with pytest.raises(SingularDensityError):
        g.pdf(np.zeros((1, 4)))


def test_rank_is_scale_free():
    """A small std is uncertain, not known: only linear dependence lowers the
    rank (tested on the correlation matrix); the factor reproduces the cov."""
    small = mzpdf.make_input({"kind": "gaussian", "mean": [0.0, 0.0], "std": [1.0, 1e-6]})
    assert small.rank == 2 and not small.is_singular
    tied = mzpdf.make_input({"kind": "gaussian", "mean": [0.0, 0.0], "cov": [[4.0, 0.02], [0.02, 1e-4]]})
    assert tied.rank == 1  # correlation 1: x_1 = x_0 / 200
    assert np.allclose(tied.factor @ tied.factor.T, tied.cov(), rtol=0, atol=1e-15)
    with pytest.raises(CaseError, match="variance 0 and a nonzero covariance") as info:
        mzpdf.make_input({"kind": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.1], [0.1, 0.0]]})
    assert info.value.key == "input.cov"


@pytest.mark.parametrize("change, key, match", [
    ({"input": {"kind": "gaussian", "mean": [0.0] * 4, "std": [0.5, 0.1, 0.2, -0.1]}}, "input.std[3]", ">= 0"),
    ({"input": {"kind": "gaussian", "mean": [0.0] * 4, "std": -0.1}}, "input.std", ">= 0"),
    ({"input": {"kind": "gaussian", "mean": [0.0, 0.0, 0.0, 0.0],
                "cov": [[1.0, 2.0, 0, 0], [2.0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]}},
     "input.cov", "positive semidefinite"),
    ({"input": {"kind": "gaussian", "mean": [0.0] * 4, "std": 0.5, "uncertain": [0, 4]}}, "input.uncertain[1]",
     r"in \[0, 4\)"),
    ({"input": {"kind": "gaussian", "mean": [0.0] * 4, "std": [0.5, 0.1], "uncertain": [0, 1, 2]}}, "input.std",
     "shape"),
    ({"input": {"kind": "mixture", "components": [{"mean": [0.0] * 4, "std": [0.5, 0.0, 0.1, 0.1]}]}},
     "input.components[0].cov", "positive definite"),
    ({"observable": {"kind": "neuron", "index": 0, "points": [[0.0, 0.5, 0.0, 0.0]]}}, "observable.points",
     "off the input law's support"),
    ({"projection": {"kind": "chorin", "keep": [0]}}, "input.std", r"\[projection\]"),
    ({"network": {"layers": [{"kind": "residual", "weights": np.eye(4).tolist(), "activation": "tanh",
                              "noise": NOISE}]}}, "input.std", "dense first layer only"),
])
def test_refusals_name_the_key(change, key, match):
    """Oracle: the exact key and rule of each refusal."""
    table = {"network": linear_net().to_dict(), "input": {"kind": "gaussian", "mean": [0.0] * 4, "std": STD}}
    table.update(change)
    with pytest.raises(CaseError, match=match) as info:
        mzpdf.load_case(table)
    assert info.value.key == key, str(info.value)


def test_fold_input_leaves_regular_laws_alone():
    """A regular gaussian, a uniform, a point: nothing to fold (the
    existing cases are untouched)."""
    net = linear_net()
    for law in ({"kind": "gaussian", "mean": MEAN, "std": 0.5}, {"kind": "uniform", "low": [0] * 4, "high": [1] * 4},
                {"kind": "point", "x": MEAN}):
        assert fold_input(net, mzpdf.make_input(law)) is None


@pytest.mark.parametrize("input_table, key", [
    ({"kind": "gaussian", "mean": [0.0, 0.0], "std": [0.5, -0.1]}, "input.std[1]"),
    ({"kind": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 2.0], [2.0, 1.0]]}, "input.cov"),
    ({"kind": "gaussian", "mean": [0.0, 0.0], "std": 0.5, "uncertain": [2]}, "input.uncertain[0]"),
])
def test_cli_exits_2_naming_the_key(tmp_path, input_table, key):
    """Oracle: INTERFACE.md's exit status 2, stderr naming the key, no file."""
    net = linear_net(n_in=2)
    case = tmp_path / "case.toml"
    case.write_text(tomli_w.dumps({"case": {"name": "bad"}, "network": net.to_dict(), "input": input_table}))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "mzpdf", "run", str(case), "-o", str(tmp_path / "out.h5")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert key in done.stderr
    assert not (tmp_path / "out.h5").exists()
