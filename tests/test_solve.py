"""``mzpdf.solve(network, input_law, method, tol, **options)`` (issue 39).

Oracles:
* identity: ``solve`` on a scikit-learn network is the equivalent case file
  (the model's weights written as ``[[network.layers]]`` by hand, not through
  mzpdf) run by ``mzpdf.run``: the same validated case, the same arithmetic,
  so every stored array agrees to round-off (1e-12; in practice bit for bit);
* identity: a result file written by ``write_results`` reads back with the
  same arrays (HDF5 stores float64 exactly) and its case text is a case file
  that validates to the same network;
* the exact ``CaseError.key`` of every refusal, named as ``solve``'s argument.
"""
import warnings

import numpy as np
import pytest
import tomli_w

import mzpdf
from mzpdf.errors import CaseError
from mzpdf.io.case import loads_case

sklearn = pytest.importorskip("sklearn")  # part of the test extra
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402

# The same case built two ways: only round-off could differ (the weights are copied as float64 both ways).
SAME_ARITHMETIC_TOL = 1e-12
NOISE = {"kind": "gaussian", "std": 0.2}
INPUT = {"kind": "gaussian", "mean": [0.3, -0.2], "std": [0.5, 0.4]}
OBSERVABLE = {"kind": "neuron", "index": 0, "points": [[0.0, 0.0], [0.5, -0.5]]}


@pytest.fixture(scope="module")
def regressor():
    """A 2 -> 3 -> 1 tanh MLPRegressor, trained briefly."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = np.tanh(X[:, 0]) - 0.5 * X[:, 1] ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # brief training is the point
        return MLPRegressor(hidden_layer_sizes=(3,), activation="tanh", max_iter=100, random_state=0).fit(X, y)


def _case_file(model, path):
    """The regressor as a case file, its weights written by hand (W = coefs_[k].T)."""
    acts = ["tanh", "identity"]
    layers = [{"weights": W.T.tolist(), "bias": b.tolist(), "activation": a, "noise": NOISE}
              for W, b, a in zip(model.coefs_, model.intercepts_, acts)]
    table = {"case": {"name": "solve"}, "network": {"layers": layers}, "input": INPUT,
             "solver": {"method": "grid", "nodes": 24}, "observable": OBSERVABLE}
    path.write_text(tomli_w.dumps(table))
    return path


def _arrays(results):
    """Every stored number of a Results, by name."""
    out = {}
    for n, layer in enumerate(results.forward):
        for name in ("mean", "cov", "marginal_x", "marginal_pdf", "box"):
            out[f"layer{n}.{name}"] = np.asarray(getattr(layer, name))
    out["q0"], out["g_mean"] = results.backward.q0, np.float64(results.backward.mean)
    out["points"] = results.backward.points
    for name in ("mass", "lost_mass", "duality_gap", "error_estimate"):
        if name in results.diagnostics:
            out[name] = np.asarray(results.diagnostics[name])
    return out


def _assert_same(a, b, tol):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.allclose(a[name], b[name], rtol=0, atol=tol, equal_nan=True), name


def test_solve_equals_the_case_file_run(regressor, tmp_path):
    """Oracle: identity. from_sklearn + solve == the hand-written case file + run."""
    net = mzpdf.from_sklearn(regressor, NOISE)
    got = mzpdf.solve(net, INPUT, method="grid", nodes=24, observable=OBSERVABLE)
    ref = mzpdf.run(mzpdf.load_case(_case_file(regressor, tmp_path / "mlp.toml")))
    assert got.method == ref.method == "grid"
    _assert_same(_arrays(got), _arrays(ref), SAME_ARITHMETIC_TOL)
    worst = max(np.max(np.abs(a.marginal_pdf - b.marginal_pdf)) for a, b in zip(got.forward, ref.forward))
    print(f"solve vs case file: largest marginal difference {worst:.1e}")
    # the same Law interface as run(case)
    assert np.array_equal(got.law(2).mean, ref.law(2).mean)
    x = np.linspace(-1.0, 1.0, 5)
    assert np.allclose(got.law(1).marginal(0, x), ref.law(1).marginal(0, x), rtol=0, atol=SAME_ARITHMETIC_TOL)


def test_solve_auto_and_an_input_law_object(regressor, tmp_path):
    """Oracle: identity. method='auto' with an InputLaw object chooses and
    computes as the case file without [solver] (the default tol is left out
    for methods that have no solver.tol)."""
    net = mzpdf.from_sklearn(regressor, NOISE)
    law = mzpdf.GaussianInput(np.array(INPUT["mean"]), np.diag(np.array(INPUT["std"]) ** 2))  # as the case builds it
    got = mzpdf.solve(net, law)
    path = _case_file(regressor, tmp_path / "auto.toml")
    ref = mzpdf.run(mzpdf.load_case(path, unset=["solver", "observable"]))
    assert got.method == ref.method and got.method_reason == ref.method_reason
    for a, b in zip(got.forward, ref.forward):
        assert np.allclose(a.marginal_pdf, b.marginal_pdf, rtol=0, atol=SAME_ARITHMETIC_TOL)
        assert np.allclose(a.cov, b.cov, rtol=0, atol=SAME_ARITHMETIC_TOL)


def test_solve_results_write_and_read_back(regressor, tmp_path):
    """Oracle: identity. write_results then read_results gives the same arrays
    (float64 stored exactly), and the stored case text validates to the same
    network, so `mzpdf run` on it reruns the solve."""
    net = mzpdf.from_sklearn(regressor, NOISE)
    res = mzpdf.solve(net, INPUT, method="grid", nodes=24, observable=OBSERVABLE)
    path = mzpdf.write_results(res, tmp_path / "solve.h5")
    back = mzpdf.read_results(path)
    _assert_same(_arrays(res), _arrays(back), 0.0)
    assert back.case_name == "solve" and back.method == "grid"
    again = loads_case(back.case_toml)
    for a, b in zip(again.network, net):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)


def test_solve_passes_tol_to_a_method_that_takes_it():
    """solver.tol reaches the method's options where the method has one."""
    net = mzpdf.random_network([2, 2], seed=1, noise=NOISE)
    for tol in (0.05, 0.2):
        res = mzpdf.solve(net, INPUT, method="sparse", tol=tol)
        assert loads_case(res.case_toml).solver.tol == tol
    grid = mzpdf.solve(net, INPUT, method="grid", nodes=16, tol=0.2)
    assert loads_case(grid.case_toml).solver.tol == 0.2


@pytest.mark.parametrize("call, key", [
    (lambda net: mzpdf.solve(net, {"kind": "gaussian", "mean": [0.0, 0.0], "std": [0.5, -0.1]}), "input_law.std[1]"),
    (lambda net: mzpdf.solve(net, {"kind": "gaussian", "mean": [0.0, 0.0, 0.0], "std": 0.5}), "input_law"),
    (lambda net: mzpdf.solve(net, 3), "input_law"),
    (lambda net: mzpdf.solve("net.toml", INPUT), "network"),
    (lambda net: mzpdf.solve(net, INPUT, method="magic"), "method"),
    (lambda net: mzpdf.solve(net, INPUT, method="grid", nodes=1), "nodes"),
    (lambda net: mzpdf.solve(net, INPUT, method="grid", colour="red"), "colour"),
    (lambda net: mzpdf.solve(net, INPUT, tol=-1.0), "tol"),
    (lambda net: mzpdf.solve(net, INPUT, observable={"kind": "neuron", "index": 7}), "observable.index"),
])
def test_solve_errors_name_the_argument(call, key):
    """Oracle: the exact key of each refusal, as solve's argument."""
    net = mzpdf.random_network([2, 2], seed=1, noise=NOISE)
    with pytest.raises(CaseError) as info:
        call(net)
    assert info.value.key == key, str(info.value)


def test_solve_with_a_known_input_equals_the_case_file(regressor, tmp_path):
    """Oracle: identity. A std of 0 through solve (folded: the grid sees one
    input) is the same case file through run; layer 0 is the given law."""
    net = mzpdf.from_sklearn(regressor, NOISE)
    known = {"kind": "gaussian", "mean": [0.3, 1.0], "std": [0.5, 0.0]}
    got = mzpdf.solve(net, known, method="grid", nodes=24, observable={**OBSERVABLE, "points": [[0.0, 1.0]]})
    path = _case_file(regressor, tmp_path / "known.toml")
    ref = mzpdf.run(mzpdf.load_case(path, overrides=["input.std=[0.5, 0.0]", "input.mean=[0.3, 1.0]",
                                                     "observable.points=[[0.0, 1.0]]"]))
    _assert_same(_arrays(got), _arrays(ref), SAME_ARITHMETIC_TOL)
    assert "the methods see 1 uncertain input" in got.method_reason
    assert np.array_equal(got.forward[0].cov, np.diag([0.25, 0.0])) and got.backward.points.shape == (1, 2)
