"""Classifiers in, class probabilities out (issue 39): layer kinds layernorm and
softmax, models with BatchNorm1d, GELU, SiLU, LayerNorm, Dropout and a final
Softmax read from a torch ``.pt`` and from its ONNX export, skl2onnx's
exports of MLPClassifier and MLPRegressor, and the argmax observable.

Oracles:
* the same model read two ways (``.pt`` and ``.onnx``): the same float32
  weights widened exactly, so weights agree to ``SAME_TOL`` (1e-12; measured
  0: only a normalization's eps could differ, and both read it as float32)
  and the forward maps to ``SAME_TOL`` on random points;
* the model's own forward pass: torch in float64, scikit-learn's
  ``predict``/``predict_proba`` (of a copy whose weights are rounded to
  float32 where the export is float32), to ``FORWARD_TOL``;
* Monte Carlo with a confidence interval: the solver's mean class
  probabilities and P(argmax = k) against a direct torch forward pass on
  sampled inputs and noises, within ``Z`` combined standard errors;
* closed forms for the new layers (torch.nn.functional.layer_norm, softmax);
* the exact ``CaseError.key`` of every refusal.
"""
import copy
import warnings

import numpy as np
import pytest
import tomli_w
import torch  # part of the test extra

import mzpdf
from mzpdf.errors import CaseError
from mzpdf.network import make_layer

onnx = pytest.importorskip("onnx")  # part of the test extra
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402
from onnx.reference.ops._op import OpRunUnaryNum  # noqa: E402
from scipy import special  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402

# Same float64 weights from two files: only round-off could differ (measured: 0).
SAME_TOL = 1e-12
# A float64 forward pass against the model's own: round-off ~1e-15 on O(1) values.
FORWARD_TOL = 1e-12
# Monte Carlo against Monte Carlo: 4 combined standard errors, a two-sided normal coverage of 1 - 6e-5 per class.
Z = 4.0
# Noise of the two hidden layers of the classifier; the layernorm and the softmax are deterministic.
NOISES = [{"kind": "gaussian", "std": 0.15}, {"kind": "gaussian", "std": 0.1}, {"kind": "none"}, {"kind": "none"},
          {"kind": "none"}]
INPUT_MEAN, INPUT_STD = np.array([0.3, -0.4, 0.2]), 0.5


def _classifier() -> torch.nn.Sequential:
    """Linear, BatchNorm1d, GELU, Linear, SiLU, LayerNorm, Dropout, Linear, GELU(tanh), Linear, Softmax in
    float32, trained for 150 steps on a 3-class problem (a second), in evaluation mode."""
    torch.manual_seed(5)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.GELU(), nn.Linear(8, 6), nn.SiLU(), nn.LayerNorm(6),
                          nn.Dropout(0.2), nn.Linear(6, 5), nn.GELU(approximate="tanh"), nn.Linear(5, 3),
                          nn.Softmax(dim=-1))
    x = torch.randn(256, 3)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(model(x) + 1e-9), y)
        loss.backward()
        opt.step()
    return model.eval()


def _export(model, path, opset):
    """The model as ONNX: torch.onnx.export's defaults (opset None), or the TorchScript exporter at ``opset``
    with the weights in an external data file as the default writes them."""
    x = torch.randn(2, model[0].in_features)
    if opset is None:
        try:
            torch.onnx.export(model, (x,), str(path))
        except ModuleNotFoundError as err:  # the default exporter needs onnxscript
            pytest.skip(f"torch.onnx.export's default exporter cannot run here ({err})")
        return path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset)
    if opset >= 17:
        onnx.save_model(onnx.load(str(path)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    return path


def _write(path, table):
    path.write_text(tomli_w.dumps(table))
    return path


def _case(file: str, method: str = "auto", **extra) -> dict:
    table = {"case": {"name": "clf", "seed": 3}, "network": {"file": file, "noise": NOISES},
             "input": {"kind": "gaussian", "mean": INPUT_MEAN.tolist(), "std": INPUT_STD},
             "solver": {"method": method}}
    table.update(extra)
    return table


@pytest.fixture(scope="module")
def classifier():
    return _classifier()


# -- acceptance 1: the .pt and the .onnx give the same network -----------------------------------------------------
@pytest.mark.parametrize("opset", [None, 14, 17, 20], ids=["default", "opset14", "opset17", "opset20"])
def test_torch_model_and_its_onnx_export_give_the_same_network(classifier, tmp_path, opset):
    torch.save(classifier, tmp_path / "m.pt")
    _export(classifier, tmp_path / "m.onnx", opset)
    if opset is not None and opset >= 17:
        assert (tmp_path / "m.onnx.data").is_file()  # the weights live beside the model
    pt = mzpdf.load_case(_write(tmp_path / "pt.toml", _case("m.pt"))).network
    ox = mzpdf.load_case(_write(tmp_path / "ox.toml", _case("m.onnx"))).network
    kinds = [(layer.kind, layer.activation.name) for layer in pt]
    assert kinds == [("dense", "gelu"), ("dense", "silu"), ("layernorm", "identity"), ("dense", "gelu_tanh"),
                     ("softmax", "identity")]
    assert [(layer.kind, layer.activation.name) for layer in ox] == kinds
    worst = max(max(np.max(np.abs(a.weights - b.weights)), np.max(np.abs(a.bias - b.bias)), abs(a.eps - b.eps))
                for a, b in zip(pt, ox))
    x = np.random.default_rng(1).normal(size=(200, 3)) * 2.0
    fwd = np.max(np.abs(pt.forward(x) - ox.forward(x)))
    with torch.no_grad():
        own = _float64_twin(classifier)(torch.from_numpy(x)).numpy()
    print(f"opset {opset}: .pt vs .onnx weights {worst:.1e}, forward {fwd:.1e}; vs torch (float64) "
          f"{np.max(np.abs(pt.forward(x) - own)):.1e}")
    if opset is None:
        # torch's default exporter folds BatchNorm1d into the first Gemm itself, in float32 (the file holds
        # float32 products; the .pt route folds in float64): that layer agrees to float32 rounding, every
        # other layer exactly
        first = pt[0]
        scale = float(np.finfo(np.float32).eps) * max(np.max(np.abs(first.weights)), np.max(np.abs(first.bias)))
        assert max(np.max(np.abs(first.weights - ox[0].weights)), np.max(np.abs(first.bias - ox[0].bias))) <= scale
        rest = max((max(np.max(np.abs(a.weights - b.weights)), np.max(np.abs(a.bias - b.bias)), abs(a.eps - b.eps))
                    for a, b in zip(list(pt)[1:], list(ox)[1:])), default=0.0)
        assert rest <= SAME_TOL and fwd <= 10 * scale
        return
    assert worst <= SAME_TOL and fwd <= SAME_TOL
    assert np.max(np.abs(pt.forward(x) - own)) <= FORWARD_TOL
    assert np.allclose(ox.forward(x).sum(axis=1), 1.0, rtol=0, atol=1e-15)  # class probabilities


def _float64_twin(model):
    """``model`` in float64 with the normalizations' eps as the float32 model adds it (float32(1e-5)): the
    network's arithmetic, so that only round-off separates the two."""
    twin = copy.deepcopy(model).double()
    for m in twin.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
            m.eps = float(np.float32(m.eps))
    return twin


def _torch_probabilities(model, n: int, seed: int) -> np.ndarray:
    """The class probabilities of ``n`` paths: inputs from the case's input law, the hidden noises of NOISES
    added after the first two layers, the model's own modules (float64) between them."""
    m = _float64_twin(model)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(INPUT_MEAN + INPUT_STD * rng.standard_normal((n, 3)))
    with torch.no_grad():
        h = m[0:3](x) + torch.from_numpy(NOISES[0]["std"] * rng.standard_normal((n, 8)))
        h = m[3:5](h) + torch.from_numpy(NOISES[1]["std"] * rng.standard_normal((n, 6)))
        return m[5:](h).numpy()


def test_class_probabilities_agree_with_a_torch_forward_pass_on_samples(classifier, tmp_path):
    _export(classifier, tmp_path / "m.onnx", 17)
    case = mzpdf.load_case(_write(tmp_path / "c.toml", _case("m.onnx", observable={"kind": "argmax", "index": 1})))
    assert case.solver.method == "qmc" and "not grid" in case.method_reason  # auto skips the methods that refuse
    results = mzpdf.run(case)
    out = results.forward[-1]
    p = _torch_probabilities(classifier, 200_000, seed=8)
    direct, direct_se = p.mean(axis=0), p.std(axis=0, ddof=1) / np.sqrt(len(p))
    z = np.abs(out.mean - direct) / np.hypot(out.mean_stderr, direct_se)
    hit = (p.argmax(axis=1) == 1).astype(float)
    p1, p1_se = hit.mean(), hit.std(ddof=1) / np.sqrt(hit.size)
    g_se = float(results.diagnostics["mean_stderr"])
    z_argmax = abs(results.backward.mean - p1) / np.hypot(g_se, p1_se)
    print(f"mean class probabilities {out.mean} vs torch {direct}: {z.max():.2f} standard errors; "
          f"P(argmax = 1) {results.backward.mean:.4f} vs torch {p1:.4f}: {z_argmax:.2f} standard errors")
    assert np.all(z <= Z) and z_argmax <= Z
    assert abs(out.mean.sum() - 1.0) <= 1e-12  # the law of the last layer is the law of class probabilities
    # the check can fail: without the hidden noises the torch probabilities move far outside the band
    quiet = copy.deepcopy(classifier).double()
    with torch.no_grad():
        x = INPUT_MEAN + INPUT_STD * np.random.default_rng(9).standard_normal((200_000, 3))
        q = quiet(torch.from_numpy(x)).numpy()
    far = np.abs(out.mean - q.mean(axis=0)) / np.hypot(out.mean_stderr, q.std(axis=0) / np.sqrt(len(q)))
    assert far.max() > Z


# -- the methods that refuse, and auto -----------------------------------------------------------------------------
def _inline(kind_of_last="softmax"):
    return {"layers": [
        {"weights": [[1.0, 0.5], [-0.3, 0.8], [0.2, 0.1]], "bias": [0.1, 0.0, -0.2], "activation": "tanh",
         "noise": {"kind": "gaussian", "std": 0.1}},
        {"kind": "layernorm", "weight": [1.0, 1.5, 0.7], "bias": [0.0, 0.1, 0.2], "noise": {"kind": "none"}},
        {"kind": kind_of_last, "weights": np.eye(3).tolist(), "noise": {"kind": "gaussian", "std": 0.1}}]}


@pytest.mark.parametrize("method", ["grid", "sparse", "tt"])
def test_discretizations_refuse_layernorm_and_softmax_naming_the_key(tmp_path, method):
    table = {"case": {"name": "ln"}, "network": _inline(),
             "input": {"kind": "gaussian", "mean": [0.0, 0.0], "std": 0.5}, "solver": {"method": method}}
    with pytest.raises(CaseError) as err:
        mzpdf.load_case(_write(tmp_path / "c.toml", table))
    assert err.value.key == "network.layers[1].kind"
    assert "layer 1 is a layernorm layer" in str(err.value) and "montecarlo, qmc" in str(err.value)
    table["network"]["layers"][1] = dict(table["network"]["layers"][0], noise={"kind": "gaussian", "std": 0.1},
                                         weights=np.eye(3).tolist())
    with pytest.raises(CaseError) as err:
        mzpdf.load_case(_write(tmp_path / "c.toml", table))
    assert err.value.key == "network.layers[2].kind" and "softmax layer" in str(err.value)
    table["network"]["layers"][2]["kind"] = "dense"
    table["network"]["layers"][2]["activation"] = "identity"
    table["observable"] = {"kind": "argmax", "index": 0}  # an indicator: only the sampling methods take it
    with pytest.raises(CaseError) as err:
        mzpdf.load_case(_write(tmp_path / "c.toml", table))
    assert err.value.key == "observable.kind" and "montecarlo, qmc" in str(err.value)


# -- the layer kinds in case files ---------------------------------------------------------------------------------
def test_layernorm_and_softmax_layers_match_torch_and_round_trip():
    rng = np.random.default_rng(2)
    gain, shift, x = rng.uniform(0.5, 1.5, 5), rng.normal(size=5), rng.normal(size=(40, 5)) * 3.0
    ln = make_layer({"kind": "layernorm", "weight": gain.tolist(), "bias": shift.tolist(), "eps": 1e-3,
                     "activation": "silu", "noise": {"kind": "none"}})
    want = torch.nn.functional.silu(torch.nn.functional.layer_norm(
        torch.from_numpy(x), (5,), torch.from_numpy(gain), torch.from_numpy(shift), eps=1e-3)).numpy()
    assert np.max(np.abs(ln.forward(x) - want)) <= FORWARD_TOL
    W, b = rng.normal(size=(3, 5)), rng.normal(size=3)
    sm = make_layer({"kind": "softmax", "weights": W.tolist(), "bias": b.tolist(), "noise": {"kind": "none"}})
    want = torch.softmax(torch.from_numpy(x @ W.T + b), dim=-1).numpy()
    assert np.max(np.abs(sm.forward(x) - want)) <= FORWARD_TOL
    for layer in (ln, sm):
        again = make_layer(layer.to_dict())
        assert again.kind == layer.kind and np.array_equal(again.weights, layer.weights) and again.eps == layer.eps
        assert np.array_equal(again.forward(x), layer.forward(x))


@pytest.mark.parametrize("spec, key, match", [
    ({"kind": "layernorm", "weights": [[1.0]]}, "network.layers[0].weights", "weight = "),
    ({"kind": "layernorm", "bias": [0.0]}, "network.layers[0].weight", "is required"),
    ({"kind": "layernorm", "weight": [1.0, 1.0], "eps": 0.0}, "network.layers[0].eps", "> 0"),
    ({"kind": "dense", "weights": [[1.0]], "activation": "tanh", "eps": 1e-3}, "network.layers[0].eps", "layernorm"),
    ({"kind": "softmax", "weights": [[1.0], [2.0]], "activation": "tanh"}, "network.layers[0].activation", "identity"),
    ({"kind": "softmax", "weights": [[1.0]]}, "network.layers[0].weights", "at least 2"),
    ({"kind": "conv", "weights": [[1.0]]}, "network.layers[0].kind", "layernorm"),
])
def test_layer_kind_keys_are_checked(spec, key, match):
    with pytest.raises(CaseError, match=match) as err:
        make_layer(spec, "network.layers[0]")
    assert err.value.key == key


def test_softmax_only_as_the_last_layer(tmp_path):
    net = _inline("softmax")
    net["layers"] = [net["layers"][2], net["layers"][0]]
    net["layers"][0]["weights"] = [[1.0, 0.0], [0.0, 1.0]]
    table = {"case": {"name": "s"}, "network": net, "input": {"kind": "gaussian", "mean": [0.0, 0.0], "std": 0.5},
             "solver": {"method": "montecarlo"}}
    with pytest.raises(CaseError, match="only on the last layer") as err:
        mzpdf.load_case(_write(tmp_path / "c.toml", table))
    assert err.value.key == "network.layers[0].kind"
    nn = torch.nn
    with pytest.raises(CaseError, match=r"Linear at \[2\] after the Softmax at \[1\]"):
        mzpdf.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Softmax(-1), nn.Linear(3, 2)), None)


# -- acceptance 2: skl2onnx's default exports ----------------------------------------------------------------------
def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # brief training is the point
        return model.fit(X, y)


def _as_exported(model, dtype):
    """A copy of ``model`` with the weights the export holds (rounded to float32 for a float32 export)."""
    twin = copy.deepcopy(model)
    twin.coefs_ = [np.asarray(c, dtype=dtype).astype(np.float64) for c in model.coefs_]
    twin.intercepts_ = [np.asarray(c, dtype=dtype).astype(np.float64) for c in model.intercepts_]
    return twin


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("zipmap", [True, False])
def test_skl2onnx_classifier_exports_give_predict_proba(tmp_path, dtype, zipmap):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = X[:, 0] - X[:, 1] ** 2
    x = rng.normal(size=(100, 2)) * 2.0
    for labels, act in ((np.digitize(y, [-0.5, 0.3]), "tanh"), ((y > 0).astype(int), "relu")):
        clf = _fit(MLPClassifier(hidden_layer_sizes=(5, 4), activation=act, max_iter=200, random_state=0), X, labels)
        options = None if zipmap else {id(clf): {"zipmap": False}}
        (tmp_path / "c.onnx").write_bytes(to_onnx(clf, X[:1].astype(dtype), options=options).SerializeToString())
        net = mzpdf.load_onnx(tmp_path / "c.onnx", None)
        assert [layer.kind for layer in net] == ["dense", "dense", "softmax"]
        err = np.max(np.abs(net.forward(x) - _as_exported(clf, dtype).predict_proba(x)))
        print(f"{len(clf.classes_)} classes, {dtype.__name__}, zipmap {zipmap}: forward vs predict_proba {err:.1e}")
        assert err <= FORWARD_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skl2onnx_regressor_export_gives_predict(tmp_path, dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    reg = _fit(MLPRegressor(hidden_layer_sizes=(6, 4), activation="relu", max_iter=200, random_state=0), X,
               np.sin(X[:, 0]) + X[:, 1] * X[:, 2])
    (tmp_path / "r.onnx").write_bytes(to_onnx(reg, X[:1].astype(dtype)).SerializeToString())
    net = mzpdf.load_onnx(tmp_path / "r.onnx", None)
    x = rng.normal(size=(100, 3))
    err = np.max(np.abs(net.forward(x)[:, 0] - _as_exported(reg, dtype).predict(x)))
    print(f"regressor, {dtype.__name__}: forward vs predict {err:.1e}")
    assert err <= FORWARD_TOL
    # skl2onnx writes a two-output regressor with a final Reshape to (-1, 1), which interleaves the outputs of a
    # batch: refused, naming the node and mzpdf.from_sklearn
    reg2 = _fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=50, random_state=0), X, np.stack([X[:, 0], X[:, 1]], 1))
    (tmp_path / "r2.onnx").write_bytes(to_onnx(reg2, X[:1].astype(dtype)).SerializeToString())
    with pytest.raises(CaseError, match=r"\(op type Reshape\).*\(batch, 2\).*mzpdf.from_sklearn"):
        mzpdf.load_onnx(tmp_path / "r2.onnx", None)


def test_from_sklearn_multiclass_probabilities_are_a_softmax_layer():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 2))
    clf = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=100, random_state=0), X,
               np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5]))
    net = mzpdf.from_sklearn(clf, None, output="probabilities")
    assert net[-1].kind == "softmax"
    x = rng.normal(size=(50, 2))
    assert np.max(np.abs(net.forward(x) - clf.predict_proba(x))) <= FORWARD_TOL


# -- ONNX refusals -------------------------------------------------------------------------------------------------
def _graph(nodes, inits, n_in, n_out):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, n_in])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, n_out])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class _Erf(OpRunUnaryNum):
    """The reference evaluator's Erf in float64 (its own rounds to float32, a 1e-8 error)."""

    op_domain = ""

    def _run(self, x):
        return (special.erf(x),)


_Erf.__name__ = "Erf"


def test_onnxscript_style_patterns_match_the_reference_evaluator(tmp_path):
    """The node orders of torch's default (onnxscript) exporter, opset 18: Linear as MatMul + Add, GELU as
    Div/Erf/Add/Mul(0.5, .)/Mul(x, .), the tanh GELU with Pow(x, 3), SiLU as Mul(Sigmoid(x), x), layer
    normalization decomposed with ReduceMean's axes as an input, Softmax(axis = -1); float64 constants, so
    the ONNX reference evaluator computes the same functions (oracle to FORWARD_TOL)."""
    rng = np.random.default_rng(6)
    t = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.float64), name)  # noqa: E731
    n = helper.make_node
    inits = [t("W1", rng.normal(size=(3, 5))), t("b1", rng.normal(size=5)), t("W2", rng.normal(size=(5, 5))),
             t("b2", rng.normal(size=5)), t("W3", rng.normal(size=(5, 4))), t("b3", rng.normal(size=4)),
             t("W4", rng.normal(size=(4, 3))), t("b4", rng.normal(size=3)), t("g", rng.uniform(0.5, 1.5, 4)),
             t("beta", rng.normal(size=4)), t("sqrt2", np.sqrt(2.0)), t("one", 1.0), t("half", 0.5),
             t("three", 3.0), t("a", 0.044715), t("c", np.sqrt(2.0 / np.pi)), t("two", 2.0), t("eps", 1e-5),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes")]
    nodes = [n("MatMul", ["x", "W1"], ["m1"]), n("Add", ["m1", "b1"], ["z1"]),
             n("Div", ["z1", "sqrt2"], ["d"]), n("Erf", ["d"], ["e"]), n("Add", ["e", "one"], ["e1"]),
             n("Mul", ["half", "e1"], ["e2"]), n("Mul", ["z1", "e2"], ["h1"]),
             n("MatMul", ["h1", "W2"], ["m2"]), n("Add", ["m2", "b2"], ["z2"]),
             n("Pow", ["z2", "three"], ["p"]), n("Mul", ["a", "p"], ["p1"]), n("Add", ["z2", "p1"], ["p2"]),
             n("Mul", ["c", "p2"], ["p3"]), n("Tanh", ["p3"], ["p4"]), n("Add", ["p4", "one"], ["p5"]),
             n("Mul", ["half", "p5"], ["p6"]), n("Mul", ["z2", "p6"], ["h2"]),
             n("MatMul", ["h2", "W3"], ["m3"]), n("Add", ["m3", "b3"], ["z3"]),
             n("Sigmoid", ["z3"], ["s"]), n("Mul", ["s", "z3"], ["h3"]),
             n("ReduceMean", ["h3", "axes"], ["mu"]), n("Sub", ["h3", "mu"], ["dc"]),
             n("Pow", ["dc", "two"], ["sq"]), n("ReduceMean", ["sq", "axes"], ["var"]),
             n("Add", ["var", "eps"], ["ve"]), n("Sqrt", ["ve"], ["sd"]), n("Div", ["dc", "sd"], ["nz"]),
             n("Mul", ["nz", "g"], ["ng"]), n("Add", ["ng", "beta"], ["h4"]),
             n("MatMul", ["h4", "W4"], ["m4"]), n("Add", ["m4", "b4"], ["z4"]), n("Softmax", ["z4"], ["y"], axis=-1)]
    for i, node in enumerate(nodes):
        node.name = f"node_{node.op_type}_{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save_model(copy.deepcopy(model), str(tmp_path / "s.onnx"), save_as_external_data=True, location="s.onnx.data",
                    size_threshold=0)
    net = mzpdf.load_onnx(tmp_path / "s.onnx", None)
    assert [(layer.kind, layer.activation.name) for layer in net] == [
        ("dense", "gelu"), ("dense", "gelu_tanh"), ("dense", "silu"), ("layernorm", "identity"),
        ("softmax", "identity")]
    x = rng.normal(size=(100, 3)) * 2.0
    (expected,) = ReferenceEvaluator(model, new_ops=[_Erf]).run(None, {"x": x})
    err = np.max(np.abs(net.forward(x) - expected))
    print(f"onnxscript-style patterns: largest forward difference {err:.1e}")
    assert err <= FORWARD_TOL


def test_onnx_refusals_name_the_node_its_op_and_what_to_do(tmp_path, classifier):
    t = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.float64), name)  # noqa: E731
    # a GELU-like pattern with the wrong constant (x / 2 for x / sqrt 2) is no activation mzpdf knows
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="dense"),
             helper.make_node("Div", ["h", "two"], ["d"], name="div"),
             helper.make_node("Erf", ["d"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["a"], name="add"),
             helper.make_node("Mul", ["h", "a"], ["m"], name="mul"),
             helper.make_node("Mul", ["m", "half"], ["y"], name="mul_half")]
    inits = [t("W", np.eye(2)), t("two", 2.0), t("one", 1.0), t("half", 0.5)]
    onnx.save(_graph(nodes, inits, 2, 2), tmp_path / "g.onnx")
    with pytest.raises(CaseError) as err:
        mzpdf.load_onnx(tmp_path / "g.onnx", None)
    assert err.value.key == "network.file"
    assert "node 'div' (op type Div)" in str(err.value) and "GELU as Div/Erf/Add/Mul/Mul" in str(err.value)
    # the same nodes with sqrt 2 read as gelu
    inits[1] = t("two", np.float32(np.sqrt(2.0)))
    onnx.save(_graph(nodes, inits, 2, 2), tmp_path / "g.onnx")
    assert mzpdf.load_onnx(tmp_path / "g.onnx", None)[0].activation.name == "gelu"
    # a missing external data file
    _export(classifier, tmp_path / "m.onnx", 17)
    (tmp_path / "m.onnx.data").unlink()
    with pytest.raises(CaseError, match=r"external data file 'm.onnx.data', which is missing") as err:
        mzpdf.load_onnx(tmp_path / "m.onnx", None)
    assert err.value.key == "network.file"
