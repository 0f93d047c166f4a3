"""Model importers (issue 28): ONNX files, scikit-learn MLPs, per-layer noise
for file models.

Oracles:
* the same weights written inline as ``[[network.layers]]``: an importer that
  copies float64 weights exactly makes the solver do the same arithmetic, so
  the densities agree to round-off (1e-12; in practice bit for bit);
* the model's own forward pass (scikit-learn ``predict``/``predict_proba``,
  the ONNX reference evaluator ``onnx.reference.ReferenceEvaluator``) for the
  deterministic map, float64 throughout: folding a normalization reorders a
  few multiplications, so 1e-12 leaves three orders of magnitude of margin
  over round-off (~1e-15 for outputs of order 1);
* exact equality of weights copied from scikit-learn (no arithmetic at all);
* the exact ``CaseError.key`` and the named node / op for every refusal.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tomli_w

import mzpdf
from mzpdf.errors import CaseError

onnx = pytest.importorskip("onnx")  # part of the test extra
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402

# Same float64 weights, same solver arithmetic: only round-off could differ.
SAME_ARITHMETIC_TOL = 1e-12
# A float64 forward pass against the model's own: round-off ~1e-15 on O(1) values.
FORWARD_TOL = 1e-12
NOISES = [{"kind": "gaussian", "std": 0.1}, {"kind": "gaussian", "std": 0.15}, {"kind": "gaussian", "std": 0.2}]


def _data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, np.tanh(X[:, 0]) - 0.5 * X[:, 1] ** 2


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # brief training is the point
        return model.fit(X, y)


@pytest.fixture(scope="module")
def regressor():
    """A 2 -> 3 -> 3 -> 1 tanh MLPRegressor, trained briefly."""
    X, y = _data()
    return _fit(MLPRegressor(hidden_layer_sizes=(3, 3), activation="tanh", max_iter=200, random_state=0), X, y)


def _case(network: dict) -> dict:
    return {"case": {"name": "mlp"}, "network": network,
            "input": {"kind": "gaussian", "mean": [0.3, -0.2], "std": 0.5},
            "solver": {"method": "grid", "nodes": 24}}


def _write(path, table):
    path.write_text(tomli_w.dumps(table))
    return path


# -- acceptance 1: skl2onnx export as network.file == the inline weights --------------------------------------------
def test_skl2onnx_export_with_per_layer_noise_equals_the_inline_case(regressor, tmp_path):
    X, _ = _data()
    (tmp_path / "mlp.onnx").write_bytes(to_onnx(regressor, X[:1].astype(np.float64)).SerializeToString())
    acts = ["tanh", "tanh", "identity"]
    inline = [{"weights": W.T.tolist(), "bias": b.tolist(), "activation": a, "noise": nz}
              for W, b, a, nz in zip(regressor.coefs_, regressor.intercepts_, acts, NOISES)]
    a = _write(tmp_path / "a.toml", _case({"file": "mlp.onnx", "noise": NOISES}))
    b = _write(tmp_path / "b.toml", _case({"layers": inline}))
    ra, rb = mzpdf.run(mzpdf.load_case(a)), mzpdf.run(mzpdf.load_case(b))
    assert len(ra.forward) == len(rb.forward) == 4
    worst = max(np.max(np.abs(la.marginal_pdf - lb.marginal_pdf)) for la, lb in zip(ra.forward, rb.forward))
    print(f"ONNX file vs inline layers: largest marginal difference {worst:.1e}")
    for la, lb in zip(ra.forward, rb.forward):
        assert np.array_equal(la.marginal_x, lb.marginal_x)
        assert np.max(np.abs(la.marginal_pdf - lb.marginal_pdf)) <= SAME_ARITHMETIC_TOL
        assert np.max(np.abs(la.cov - lb.cov)) <= SAME_ARITHMETIC_TOL


# -- acceptance 2: from_sklearn copies the weights ----------------------------------------------------------------
def test_from_sklearn_layers_equal_the_model(regressor):
    net = mzpdf.from_sklearn(regressor, NOISES)
    assert net.widths == [2, 3, 3, 1]
    for layer, W, b in zip(net, regressor.coefs_, regressor.intercepts_):
        assert np.array_equal(layer.weights, W.T) and np.array_equal(layer.bias, b)  # a copy: exact
    assert [layer.activation.name for layer in net] == ["tanh", "tanh", "identity"]
    assert [float(layer.noise.scale[0]) for layer in net] == [0.1, 0.15, 0.2]
    x = _data(1, 50)[0]
    assert np.max(np.abs(net.forward(x)[:, 0] - regressor.predict(x))) <= FORWARD_TOL


def test_from_sklearn_classifier_output_maps():
    X, y = _data(2)
    binary = _fit(MLPClassifier(hidden_layer_sizes=(4,), activation="relu", max_iter=100, random_state=0),
                  X, (y > 0).astype(int))
    multi = _fit(MLPClassifier(hidden_layer_sizes=(4,), activation="logistic", max_iter=100, random_state=0),
                 X, np.digitize(y, [-0.5, 0.3]))
    x = _data(3, 40)[0]
    logits = mzpdf.from_sklearn(binary, None).forward(x)
    assert logits.shape == (40, 1)  # one logit: P(class 1) is its logistic
    assert np.max(np.abs(1 / (1 + np.exp(-logits[:, 0])) - binary.predict_proba(x)[:, 1])) <= FORWARD_TOL
    proba = mzpdf.from_sklearn(binary, None, output="probabilities")
    assert proba[-1].activation.name == "sigmoid"
    assert np.max(np.abs(proba.forward(x)[:, 0] - binary.predict_proba(x)[:, 1])) <= FORWARD_TOL
    z = mzpdf.from_sklearn(multi, None).forward(x)
    soft = np.exp(z - z.max(axis=1, keepdims=True))
    assert np.max(np.abs(soft / soft.sum(axis=1, keepdims=True) - multi.predict_proba(x))) <= FORWARD_TOL
    soft = mzpdf.from_sklearn(multi, None, output="probabilities")  # a softmax layer since issue 39
    assert soft[-1].kind == "softmax"
    assert np.max(np.abs(soft.forward(x) - multi.predict_proba(x))) <= FORWARD_TOL


@pytest.mark.parametrize("make, key, match", [
    (lambda: MLPRegressor(), "model", "fitted"),
    (lambda: object(), "model", "MLPRegressor or MLPClassifier"),
])
def test_from_sklearn_refusals(make, key, match):
    with pytest.raises(CaseError, match=match) as err:
        mzpdf.from_sklearn(make(), None)
    assert err.value.key == key


def test_from_sklearn_noise_list_of_wrong_length(regressor):
    with pytest.raises(CaseError, match="has 2 entries, the network has 3 layers") as err:
        mzpdf.from_sklearn(regressor, NOISES[:2])
    assert err.value.key == "noise"
    net = mzpdf.from_sklearn(regressor, [NOISES[0], None, {"kind": "none"}])
    assert [layer.noise.is_deterministic for layer in net] == [False, True, True]


# -- ONNX graphs built by hand ------------------------------------------------------------------------------------
def _tensor(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float64), name)


def _model(nodes, inits, n_in, n_out, out="y"):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, n_in])],
                              [helper.make_tensor_value_info(out, TensorProto.DOUBLE, [None, n_out])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _bn_graph(rng):
    """Gemm (transB, alpha, beta) -> BatchNormalization -> Tanh -> MatMul -> Add -> BatchNormalization ->
    LeakyRelu -> Flatten -> Identity, in float64."""
    n = lambda *a, **k: helper.make_node(*a, **k)  # noqa: E731
    pos = lambda size: rng.uniform(0.5, 2.0, size)  # noqa: E731
    inits = [_tensor("B1", rng.normal(size=(4, 3))), _tensor("C1", rng.normal(size=4)),
             _tensor("s1", pos(4)), _tensor("t1", rng.normal(size=4)), _tensor("m1", rng.normal(size=4)),
             _tensor("v1", pos(4)),
             _tensor("B2", rng.normal(size=(4, 2))), _tensor("c2", rng.normal(size=(1, 2))),
             _tensor("s2", pos(2)), _tensor("t2", rng.normal(size=2)), _tensor("m2", rng.normal(size=2)),
             _tensor("v2", pos(2))]
    nodes = [n("Gemm", ["x", "B1", "C1"], ["g"], name="dense1", transB=1, alpha=0.7, beta=1.3),
             n("BatchNormalization", ["g", "s1", "t1", "m1", "v1"], ["bn1"], name="bn1", epsilon=1e-3),
             n("Tanh", ["bn1"], ["h1"], name="act1"),
             n("MatMul", ["h1", "B2"], ["mm"], name="dense2"),
             n("Add", ["c2", "mm"], ["a2"], name="bias2"),
             n("BatchNormalization", ["a2", "s2", "t2", "m2", "v2"], ["bn2"], name="bn2"),
             n("LeakyRelu", ["bn2"], ["h2"], name="act2", alpha=0.2),
             n("Flatten", ["h2"], ["f"], name="flat"),
             n("Identity", ["f"], ["y"], name="id")]
    return _model(nodes, inits, 3, 2)


def test_onnx_batchnorm_folding_matches_the_reference_evaluator(tmp_path):
    model = _bn_graph(np.random.default_rng(4))
    onnx.checker.check_model(model)
    onnx.save(model, tmp_path / "bn.onnx")
    net = mzpdf.load_onnx(tmp_path / "bn.onnx", {"kind": "gaussian", "std": 0.1})
    assert net.widths == [3, 4, 2]
    assert [layer.activation.name for layer in net] == ["tanh", "leaky_relu"]
    assert net[1].activation.params == {"slope": float(np.float32(0.2))}  # ONNX float attributes are float32
    x = np.random.default_rng(5).normal(size=(60, 3))
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    err = np.max(np.abs(net.forward(x) - expected))
    print(f"ONNX BatchNormalization folded: largest forward difference {err:.1e}")
    assert err <= FORWARD_TOL


@pytest.mark.parametrize("op, attrs", [("LogSoftmax", {"axis": 1}), ("Conv", {})])
def test_onnx_refuses_unsupported_nodes_by_name_and_op(tmp_path, op, attrs):
    inits = [_tensor("W", np.eye(2)), _tensor("K", np.ones((1, 1, 1)))]
    second = ["h", "K"] if op == "Conv" else ["h"]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="dense"),
             helper.make_node(op, second, ["y"], name="the_odd_one", **attrs)]
    onnx.save(_model(nodes, inits, 2, 2), tmp_path / "m.onnx")
    table = _case({"file": "m.onnx", "noise": NOISES[0]})
    table["input"]["mean"] = [0.0, 0.0]
    with pytest.raises(CaseError) as err:
        mzpdf.load_case(_write(tmp_path / "c.toml", table))
    assert err.value.key == "network.file"
    assert "'the_odd_one'" in str(err.value) and f"op type {op}" in str(err.value)


def test_onnx_refuses_branches_and_names_from_sklearn_for_skl2onnx_files(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="dense"),
             helper.make_node("Add", ["h", "x"], ["y"], name="skip")]
    onnx.save(_model(nodes, [_tensor("W", np.eye(2))], 2, 2), tmp_path / "branch.onnx")
    with pytest.raises(CaseError, match="'skip'.*two computed tensors") as err:
        mzpdf.load_onnx(tmp_path / "branch.onnx", None)
    assert "from_sklearn" not in str(err.value)  # not a skl2onnx file
    X, y = _data()
    clf = _fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=50, random_state=0), X, (y > 0).astype(int))
    model = to_onnx(clf, X[:1].astype(np.float32))
    (hidden,) = [node for node in model.graph.node if node.op_type == "Relu"]
    hidden.op_type = "Selu"  # an activation mzpdf has no layer for
    (tmp_path / "clf.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(CaseError, match=rf"'{hidden.name}' \(op type Selu\).*mzpdf.from_sklearn") as err:
        mzpdf.load_onnx(tmp_path / "clf.onnx", None)
    assert err.value.key == "network.file"
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf \xff\x00")
    with pytest.raises(CaseError, match="readable ONNX"):
        mzpdf.load_onnx(tmp_path / "junk.onnx", None)


def test_float32_skl2onnx_export_widens_the_weights_exactly(regressor, tmp_path):
    X, _ = _data()
    (tmp_path / "f32.onnx").write_bytes(to_onnx(regressor, X[:1].astype(np.float32)).SerializeToString())
    net = mzpdf.load_onnx(tmp_path / "f32.onnx", None)
    for layer, W, b in zip(net, regressor.coefs_, regressor.intercepts_):
        assert layer.weights.dtype == np.float64
        assert np.array_equal(layer.weights, W.T.astype(np.float32).astype(np.float64))
        assert np.array_equal(layer.bias, b.astype(np.float32).astype(np.float64))


# -- per-layer noise in case files --------------------------------------------------------------------------------
def test_noise_list_of_wrong_length_names_network_noise(regressor, tmp_path):
    X, _ = _data()
    (tmp_path / "mlp.onnx").write_bytes(to_onnx(regressor, X[:1].astype(np.float64)).SerializeToString())
    np.savez(tmp_path / "w.npz", W0=regressor.coefs_[0].T, W1=regressor.coefs_[1].T)
    for name, n_given, n_layers in (("mlp.onnx", 2, 3), ("mlp.onnx", 4, 3), ("w.npz", 1, 2)):
        table = _case({"file": name, "noise": (NOISES * 2)[:n_given]})
        with pytest.raises(CaseError) as err:
            mzpdf.load_case(_write(tmp_path / "c.toml", table))
        assert err.value.key == "network.noise"
        entries = "1 entry" if n_given == 1 else f"{n_given} entries"
        assert f"has {entries}, the network has {n_layers} layers" in str(err.value)
    out = subprocess.run([sys.executable, "-m", "mzpdf", "validate", str(tmp_path / "c.toml")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "network.noise has 1 entry, the network has 2 layers" in out.stderr, out.stderr
    table = _case({"file": "w.npz", "noise": [{"kind": "none"}, NOISES[1]]})
    table["solver"]["method"] = "montecarlo"  # grid refuses a deterministic layer; the network itself is valid
    table["solver"].pop("nodes")
    net = mzpdf.load_case(_write(tmp_path / "d.toml", table)).network
    assert [layer.noise.kind for layer in net] == ["none", "gaussian"]
