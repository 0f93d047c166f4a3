"""ONNX models as mzpdf networks: :func:`load_onnx` (``network.file = "model.onnx"``).

The file is parsed with the ``onnx`` package (``onnx.load``: protocol
buffers, no code from the file runs); weights kept in an external data file
beside the model (``torch.onnx.export``'s default writes ``model.onnx.data``)
are read from the model's folder. The graph is read as one chain of nodes,
each taking the output of the one before it; constant operands come from the
graph's initializers or ``Constant`` nodes. Tensors are read in float64
(float32 weights are widened exactly).

===========================  ================================================
ONNX node(s)                 mzpdf layer
===========================  ================================================
``Gemm``                     a new dense layer ``W x + b`` from
                             ``alpha op(A) op(B) + beta C`` (``transB``,
                             ``alpha``, ``beta``; ``transA = 0`` only)
``MatMul``                   a new dense layer ``W x`` (``x @ B``)
``Add`` (of a constant)      added to the bias of the layer just opened
``BatchNormalization``       folded into the affine map just opened
``Relu``, ``LeakyRelu``,     the activation of the layer just opened
``Tanh``, ``Sigmoid``,       (``relu``, ``leaky_relu`` with ``slope =
``Erf``, ``Softplus``,       alpha``, ``tanh``, ``sigmoid``, ``erf``,
``Gelu``                     ``softplus``, ``gelu`` / ``gelu_tanh``)
``Sigmoid``, ``Mul``         ``silu`` (``x * sigmoid(x)``)
``Div``/``Mul``, ``Erf``,    ``gelu`` (``x Phi(x)``, exported as
``Add``, ``Mul``, ``Mul``    ``0.5 x (1 + erf(x / sqrt 2))``)
``Mul``, ..., ``Tanh``, ...  ``gelu_tanh`` (the tanh approximation)
``LayerNormalization``       a ``layernorm`` layer over the last axis
``ReduceMean``, ``Sub``,     the same, in its decomposed form (opset < 17)
``Pow``, ``ReduceMean``,
``Add``, ``Sqrt``, ``Div``,
``Mul``, ``Add``
``Softmax`` (last axis)      the output map: the open affine map becomes a
                             ``softmax`` layer (after an activation, a softmax
                             layer with identity weights is appended)
``Identity``, ``Flatten``,   skipped: no-ops on a float vector (``Flatten``
``Cast``, ``Reshape``,       with ``axis = 1``, ``Cast`` to a float type,
``Dropout``                  ``Reshape`` to ``(batch, n)`` or ``(n,)``,
                             ``Dropout`` in inference), as exporters write
                             them
===========================  ================================================

A multi-node activation or normalization is recognized by its wiring (every
node takes only ``x``, constants and the pattern's own results) and checked
numerically: the nodes, evaluated in float64 on test points, must give the
activation to ``PATTERN_TOL`` (the exporters' float32 constants, such as
``1.4142135`` for ``sqrt 2``, are the only difference), or the layer
normalization with the pattern's own ``eps``, gains and shifts to round-off.

A scikit-learn classifier exported with skl2onnx (label and probabilities,
the probabilities through a ``ZipMap``) is read along its probability path:
the nodes that compute the labels (``ArgMax``, ``ArrayFeatureExtractor``,
...) and the ``ZipMap`` are ignored, a multiclass ``Softmax`` is the output
map, and a binary classifier's ``[1 - p, p]`` (``Sigmoid``, ``Sub``,
``Concat``) becomes the softmax of ``[0, z]``, the same two probabilities.

A layer with no activation node after its affine map gets ``identity``. Any
other node, or a graph that branches, is refused with a
:class:`~mzpdf.errors.CaseError` naming the node, its op type and what to do.
The ``onnx`` package is an optional dependency (``pip install 'mzpdf[onnx]'``),
imported only when a file is read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import _special as special
from ..errors import CaseError
from ._importing import LayerSpec, append_softmax, build_network, layernorm_spec
from .activations import make_activation
from .network import Network, normalize

__all__ = ["load_onnx", "SUPPORTED_OPS", "PATTERN_TOL"]

_ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Erf": "erf",
                "Softplus": "softplus"}
_NO_OPS = ("Identity", "Flatten", "Cast", "Reshape", "Dropout")
SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "BatchNormalization", "LayerNormalization", "Softmax", "Gelu",
                 *_ACTIVATIONS, *_NO_OPS, "Constant")
# nodes a multi-node pattern (GELU, SiLU, decomposed layer normalization) is made of
_PATTERN_OPS = ("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Tanh", "Sigmoid", "Neg", "Reciprocal",
                "ReduceMean")
_PATTERN_ACTIVATIONS = ("gelu", "gelu_tanh", "silu")
# A pattern's values against its activation: the exporters write float32 constants (1.4142135 for sqrt 2,
# 0.7978846 for sqrt(2 / pi)), which move the values by ~1e-7 relative; a different function (GELU's erf and
# tanh forms differ by up to 4.7e-4) is far outside.
PATTERN_TOL = 1e-6
# A decomposed layer normalization against normalize() with its own eps, gains and shifts: the same float64
# operations in another order, round-off ~1e-15 on O(1) values.
_LAYERNORM_TOL = 1e-10
_PATTERN_HELP = ("recognized multi-node patterns: GELU as Div/Erf/Add/Mul/Mul or its tanh approximation, SiLU as "
                 "Sigmoid/Mul, layer normalization as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div[/Mul/Add]")
_FLOAT_TYPES = (1, 10, 11, 16)  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
# ONNX float attributes are float32, their defaults too (BatchNormalization epsilon, LeakyRelu alpha).
_F32_1E_5, _F32_1E_2 = float(np.float32(1e-5)), float(np.float32(0.01))
_SKLEARN_HINT = ("; this file was written by skl2onnx: mzpdf.from_sklearn(model, noise) reads the fitted "
                 "scikit-learn model itself")


def _onnx(key: str):
    try:
        import onnx
    except ImportError:  # pragma: no cover - exercised only without onnx
        raise CaseError(key, "names an ONNX model, which needs the onnx package (pip install 'mzpdf[onnx]')") \
            from None
    return onnx


class _Reader:
    """Walks the chain of nodes of one graph, building :class:`LayerSpec` s."""

    def __init__(self, onnx, graph, key: str, path: str, hint: str = ""):
        self.onnx, self.key, self.path, self.hint = onnx, key, path, hint
        self.const = {t.name: self._array(t) for t in graph.initializer}
        inputs = [v.name for v in graph.input if v.name not in self.const]
        if len(inputs) != 1:
            raise CaseError(key, f"must be a graph with one input (a float vector), has {len(inputs)} "
                                 f"({', '.join(inputs) or 'none'}){hint}", path)
        self.stream = inputs[0]  # the name of the tensor that carries x
        self.specs: list[LayerSpec] = []
        self.attrs: dict = {}
        self.uses: dict = {}  # tensor name -> indices of the nodes (len(nodes): a graph output) that read it

    def _array(self, tensor) -> np.ndarray:
        arr = self.onnx.numpy_helper.to_array(tensor)
        return arr.astype(np.float64) if arr.dtype.kind == "f" else arr

    def refuse(self, node, rule: str):
        raise CaseError(self.key, f"holds node {node.name!r} (op type {node.op_type}), which {rule}{self.hint}",
                        self.path)

    def _attributes(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    # -- the walk ------------------------------------------------------------
    def run(self, nodes: list, outputs: list) -> None:
        """Read ``nodes`` (graph order) whose results reach the graph's ``outputs``."""
        for i, node in enumerate(nodes):
            for name in node.input:
                self.uses.setdefault(name, []).append(i)
        for name in outputs:
            self.uses.setdefault(name, []).append(len(nodes))
        i = 0
        while i < len(nodes):
            node = nodes[i]
            self.attrs = self._attributes(node)
            if self._fold_constant(node):
                i += 1
                continue
            end = self._pattern(nodes, i) if node.op_type in _PATTERN_OPS else None
            if end is None:
                end = self._binary_probabilities(nodes, i)
            if end is not None:
                i = end
                continue
            self.read(node)
            i += 1

    def _fold_constant(self, node) -> bool:
        """Read a node of constants only (``Constant``, ``Identity`` / ``Cast`` /
        ``CastLike`` of a constant, as exporters alias weights) into the constants."""
        if node.op_type == "Constant":
            self.constant(node)
            return True
        data = [name for name in node.input if name]
        if node.op_type in ("Identity", "Cast", "CastLike") and data and all(n in self.const for n in data):
            self.const[node.output[0]] = np.asarray(self.const[data[0]])
            return True
        return False

    # -- operands --------------------------------------------------------------
    def operands(self, node, inputs=None) -> list:
        """The constant operands of ``node`` (``None`` for an empty optional
        input), after checking that its first input is the stream and the
        others are constants."""
        inputs = list(node.input) if inputs is None else inputs
        data = [name for name in inputs if name and name not in self.const]
        if len(data) > 1:
            self.refuse(node, "combines two computed tensors (mzpdf reads a chain of layers, not a branching "
                              f"graph; {_PATTERN_HELP}): export a plain sequence of layers")
        if data != [self.stream] or inputs[0] != self.stream:
            self.refuse(node, f"does not take the output of the node before it ({self.stream!r}) as its first "
                              "input (mzpdf reads a chain of layers): export a plain sequence of layers")
        return [self.const[name] if name else None for name in inputs[1:]]

    def open_layer(self, node) -> LayerSpec:
        if not self.specs or self.specs[-1].closed:
            self.refuse(node, "must directly follow a Gemm or MatMul (or a layer normalization) to be folded into "
                              "its affine map: put it right after the layer it normalizes or shifts")
        return self.specs[-1]

    def close_open_layer(self) -> None:
        if self.specs:
            self.specs[-1].closed = True

    def set_activation(self, node, name: str, params: dict | None = None) -> None:
        if not self.specs or self.specs[-1].closed:
            self.refuse(node, "is an activation with no Gemm, MatMul or layer normalization before it (mzpdf "
                              "reads one activation a layer): put a linear layer before it")
        spec = self.specs[-1]
        spec.activation, spec.params, spec.closed = name, dict(params or {}), True

    # -- nodes ---------------------------------------------------------------
    def read(self, node) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            self.refuse(node, f"mzpdf cannot translate (supported op types: {', '.join(SUPPORTED_OPS)}; "
                              f"{_PATTERN_HELP}): export the model from those layers, or build the network "
                              "in Python (mzpdf.from_torch, mzpdf.from_sklearn, [[network.layers]])")
        if len(node.output) != 1 and not (op in ("Dropout", "LayerNormalization")
                                          and not any(self.uses.get(o) for o in node.output[1:] if o)):
            self.refuse(node, f"has {len(node.output)} outputs that are read (mzpdf reads nodes with one)")
        getattr(self, f"_{op.lower()}", self._activation)(node)
        self.stream = node.output[0]

    def constant(self, node) -> None:
        attrs = self._attributes(node)
        if "value" in attrs:
            self.const[node.output[0]] = self._array(attrs["value"])
            return
        for name in ("value_float", "value_floats", "value_int", "value_ints"):
            if name in attrs:
                self.const[node.output[0]] = np.asarray(attrs[name], dtype=np.float64 if "float" in name else np.int64)
                return
        self.refuse(node, f"must hold a numeric tensor 'value' (found attributes {sorted(attrs)})")

    def _gemm(self, node) -> None:
        B, C = (self.operands(node) + [None])[:2]
        if self.attrs.get("transA", 0):
            self.refuse(node, "has transA = 1 (it would transpose the batch of inputs): export with transA = 0")
        B = self._matrix(node, B)
        W = float(self.attrs.get("alpha", 1.0)) * (B if self.attrs.get("transB", 0) else B.T)
        b = np.zeros(W.shape[0]) if C is None else self._vector(node, float(self.attrs.get("beta", 1.0)) * C,
                                                                 W.shape[0])
        self.close_open_layer()
        self.specs.append(LayerSpec("dense", W, b))

    def _matmul(self, node) -> None:
        (B,) = self.operands(node)
        W = self._matrix(node, B).T
        self.close_open_layer()
        self.specs.append(LayerSpec("dense", W, np.zeros(W.shape[0])))

    def _add(self, node) -> None:
        inputs = list(node.input)
        if len(inputs) == 2 and inputs[1] == self.stream and inputs[0] in self.const:
            inputs.reverse()  # Add commutes
        (c,) = self.operands(node, inputs)
        spec = self.open_layer(node)
        spec.bias = spec.bias + self._vector(node, c, spec.bias.size)

    def _batchnormalization(self, node) -> None:
        scale, shift, mean, var = self.operands(node)[:4]
        if any(v is None for v in (scale, shift, mean, var)):
            self.refuse(node, "must have constant scale, B, input_mean and input_var")
        if self.attrs.get("training_mode", 0):
            self.refuse(node, "has training_mode = 1 (only inference-mode normalization can be folded): export "
                              "the model in evaluation mode (model.eval())")
        spec = self.open_layer(node)
        n = spec.bias.size
        spec.fold_batchnorm(*(self._vector(node, v, n) for v in (scale, shift, mean, var)),
                            self.attrs.get("epsilon", _F32_1E_5))

    def _layernormalization(self, node) -> None:
        scale, shift = (self.operands(node) + [None, None])[:2]
        if self.attrs.get("axis", -1) not in (-1, 1):
            self.refuse(node, f"normalizes from axis {self.attrs['axis']}; mzpdf normalizes the features of a "
                              "layer (axis = -1)")
        if scale is None:
            self.refuse(node, "must have a constant Scale")
        n = self.specs[-1].bias.size if self.specs else np.size(scale)
        scale = self._vector(node, scale, n)
        shift = np.zeros(n) if shift is None else self._vector(node, shift, n)
        self.close_open_layer()
        self.specs.append(layernorm_spec(scale, shift, self.attrs.get("epsilon", _F32_1E_5)))

    def _softmax(self, node) -> None:
        self.operands(node)
        if self.attrs.get("axis", -1) not in (-1, 1):
            self.refuse(node, f"takes the softmax over axis {self.attrs['axis']}; mzpdf takes it over the features "
                              "of the output layer (axis = -1)")
        if not self.specs:
            self.refuse(node, "is a softmax with no layer before it: put a linear layer before it")
        append_softmax(self.specs)

    def _gelu(self, node) -> None:
        self.operands(node)
        approximate = self.attrs.get("approximate", "none")
        approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
        if approximate not in ("none", "tanh"):
            self.refuse(node, f"has approximate = {approximate!r}; only 'none' and 'tanh' are GELUs mzpdf knows")
        self.set_activation(node, "gelu" if approximate == "none" else "gelu_tanh")

    def _activation(self, node) -> None:
        self.operands(node)
        params = {"slope": float(self.attrs.get("alpha", _F32_1E_2))} if node.op_type == "LeakyRelu" else {}
        self.set_activation(node, _ACTIVATIONS[node.op_type], params)

    def _identity(self, node) -> None:
        self.operands(node)

    def _dropout(self, node) -> None:
        ops = self.operands(node)
        training = ops[1] if len(ops) > 1 else None
        if training is not None and bool(np.ravel(training)[0]):
            self.refuse(node, "is a dropout in training mode: export the model in evaluation mode (model.eval())")

    def _flatten(self, node) -> None:
        self.operands(node)
        if self.attrs.get("axis", 1) != 1:
            self.refuse(node, f"has axis = {self.attrs['axis']}; only axis = 1 (a no-op on a batch of vectors) "
                              "is supported")

    def _cast(self, node) -> None:
        self.operands(node)
        if self.attrs.get("to") not in _FLOAT_TYPES:
            self.refuse(node, f"casts to ONNX type {self.attrs.get('to')}; only casts to a float type are no-ops "
                              "for mzpdf")

    def _reshape(self, node) -> None:
        (shape,) = self.operands(node)[:1]
        shape = [int(v) for v in np.ravel(shape)]
        width = self.specs[-1].bias.size if self.specs else None
        flat = (len(shape) == 1 and shape[0] in (-1, width)) or \
               (len(shape) == 2 and shape[0] in (-1, 0) and shape[1] in (-1, width))
        if width is None or not flat:
            self.refuse(node, f"reshapes to {shape}; only a reshape to (batch, {width}) is a no-op for mzpdf")

    # -- multi-node patterns -------------------------------------------------
    def _pattern(self, nodes: list, i: int):
        """The index after a GELU, SiLU or decomposed layer normalization that
        starts at ``nodes[i]`` (its layer or activation recorded), or None."""
        island, where, made = [], [], {self.stream}
        for j in range(i, len(nodes)):
            node = nodes[j]
            if self._fold_constant(node):
                continue
            data = [name for name in node.input if name and name not in self.const]
            if node.op_type not in _PATTERN_OPS or not data or not set(data) <= made or len(node.output) != 1:
                break
            island.append(node)
            where.append(j)
            made.add(node.output[0])
        for end in range(len(island), 1, -1):
            inner = {n.output[0] for n in island[:end - 1]}
            if any(u > where[end - 1] for name in inner for u in self.uses.get(name, ())):
                continue  # an intermediate result is read after the pattern: not a closed pattern
            if self._match(island[:end]):
                self.stream = island[end - 1].output[0]
                return where[end - 1] + 1
        return None

    def _match(self, sub: list) -> bool:
        ops = [n.op_type for n in sub]
        if "ReduceMean" in ops:
            return self._match_layernorm(sub)
        if any(np.size(self.const[name]) != 1 for n in sub for name in n.input if name in self.const):
            return False
        x = np.linspace(-6.0, 6.0, 241)[:, None]
        y = self._evaluate(sub, x)
        if y is None or y.shape != x.shape:
            return False
        for name in _PATTERN_ACTIVATIONS:
            if name == "silu" and ops != ["Sigmoid", "Mul"] or name.startswith("gelu") and \
                    ("Erf" in ops) != (name == "gelu"):
                continue
            want = make_activation(name)(x)
            if np.all(np.abs(y - want) <= PATTERN_TOL * np.maximum(np.abs(want), 1.0)):
                self.set_activation(sub[0], name)
                return True
        return False

    def _match_layernorm(self, sub: list) -> bool:
        """``(x - mean x) / sqrt(mean (x - mean x)^2 + eps)``, then an optional
        ``Mul`` by the gains and ``Add`` of the shifts."""
        ops = [n.op_type for n in sub]
        head = ["ReduceMean", "Sub", "Pow", "ReduceMean", "Add", "Sqrt", "Div"]
        if ops[:7] != head or ops[7:] not in ([], ["Mul"], ["Add"], ["Mul", "Add"]):
            return False
        eps = [self.const[name] for name in sub[4].input if name in self.const]
        n = self.specs[-1].bias.size if self.specs else None
        gain, shift = None, None
        for node in sub[7:]:
            (c,) = [self.const[name] for name in node.input if name in self.const] or [None]
            if c is None:
                return False
            n = n or np.size(c)
            if node.op_type == "Mul":
                gain = c
            else:
                shift = c
        if len(eps) != 1 or np.size(eps[0]) != 1 or n is None or n < 2:
            return False
        eps = float(np.ravel(eps[0])[0])
        gain = np.ones(n) if gain is None else np.broadcast_to(np.ravel(gain), (n,)).astype(np.float64)
        shift = np.zeros(n) if shift is None else np.broadcast_to(np.ravel(shift), (n,)).astype(np.float64)
        x = np.random.default_rng(0).normal(size=(64, n)) * np.linspace(0.5, 3.0, n) + np.linspace(-1.0, 1.0, n)
        y = self._evaluate(sub, x)
        if y is None or y.shape != x.shape or eps <= 0:
            return False
        want = normalize(x, eps) * gain + shift
        if not np.all(np.abs(y - want) <= _LAYERNORM_TOL * np.maximum(np.abs(want), 1.0)):
            return False
        self.close_open_layer()
        self.specs.append(layernorm_spec(gain, shift, eps))
        return True

    def _evaluate(self, sub: list, x: np.ndarray):
        """The nodes ``sub`` evaluated in float64 with the stream at ``x``, or
        None where they are not what the patterns are made of."""
        env = {self.stream: x}
        binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}
        unary = {"Sqrt": np.sqrt, "Erf": special.erf, "Tanh": np.tanh, "Sigmoid": special.expit,
                 "Neg": np.negative, "Reciprocal": np.reciprocal}
        with np.errstate(all="ignore"):
            for node in sub:
                args = [env[name] if name in env else self.const[name] for name in node.input if name]
                op = node.op_type
                if op == "ReduceMean":
                    attrs = self._attributes(node)
                    axes = attrs.get("axes", list(np.ravel(args[1])) if len(args) > 1 else None)
                    if axes is None or [int(a) for a in axes] not in ([-1], [1]) or attrs.get("keepdims", 1) != 1:
                        return None
                    out = np.mean(args[0], axis=-1, keepdims=True)
                elif op in binary and len(args) == 2:
                    out = binary[op](np.asarray(args[0], dtype=np.float64), np.asarray(args[1], dtype=np.float64))
                elif op in unary and len(args) == 1:
                    out = unary[op](args[0])
                else:
                    return None
                env[node.output[0]] = out
        return env[sub[-1].output[0]]

    def _binary_probabilities(self, nodes: list, i: int):
        """skl2onnx's binary classifier: ``Sub(1, p)`` and ``Concat([1 - p, p])``
        after the class-1 probability ``p = sigmoid(z)``: the softmax of
        ``[0, z]`` (index after the Concat, or None)."""
        node = nodes[i]
        spec = self.specs[-1] if self.specs else None
        if node.op_type != "Sub" or spec is None or spec.activation != "sigmoid" or spec.bias.size != 1:
            return None
        one, p = list(node.input)
        if p != self.stream or one not in self.const or np.size(self.const[one]) != 1 or \
                float(np.ravel(self.const[one])[0]) != 1.0:
            return None
        rest = [j for j in range(i + 1, len(nodes)) if nodes[j].op_type != "Constant"]
        if not rest or nodes[rest[0]].op_type != "Concat" or list(nodes[rest[0]].input) != [node.output[0], p] or \
                self._attributes(nodes[rest[0]]).get("axis") not in (-1, 1):
            return None
        spec.kind, spec.activation = "softmax", "identity"
        spec.weights = np.vstack([np.zeros_like(spec.weights), spec.weights])
        spec.bias = np.concatenate([[0.0], spec.bias])
        self.stream = nodes[rest[0]].output[0]
        return rest[0] + 1

    # -- shapes --------------------------------------------------------------
    def _matrix(self, node, B) -> np.ndarray:
        if B is None or np.ndim(B) != 2:
            self.refuse(node, f"must have a constant 2-d weight matrix, has shape {np.shape(B)}")
        return np.asarray(B, dtype=np.float64)

    def _vector(self, node, v, n: int) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if v.size == 1:
            return np.full(n, float(v.ravel()[0]))
        if v.size != n or (v.ndim > 1 and max(v.shape) != n):
            self.refuse(node, f"has a constant of shape {list(v.shape)} where a vector of {n} was expected")
        return v.ravel().copy()


def _load(onnx, path: Path, key: str):
    """The model with its external data (read from the model's folder)."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises several types for a bad file
        raise CaseError(key, f"must be a readable ONNX model ({type(err).__name__}: {err})", str(path)) from None
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    for t in external:
        location = {e.key: e.value for e in t.external_data}.get("location", "")
        if not (path.parent / location).is_file():
            raise CaseError(key, f"keeps its weights in the external data file {location!r}, which is missing: "
                                 f"copy it beside the model ({path.parent / location}); torch.onnx.export writes "
                                 "the two files together", str(path))
    if external:
        try:
            onnx.load_external_data_for_model(model, str(path.parent))
        except Exception as err:  # a truncated or misplaced data file
            raise CaseError(key, f"must have readable external data beside it ({type(err).__name__}: {err})",
                            str(path)) from None
    return model


def _probability_path(graph, key: str, path: str, hint: str) -> tuple[str, list]:
    """The tensor to read (the graph's one output, or a classifier's
    probabilities) and the nodes that compute it, in graph order."""
    outputs = [v.name for v in graph.output]
    producer = {out: node for node in graph.node for out in node.output}
    target = outputs[0] if len(outputs) == 1 else None
    if target is None:  # a classifier: labels and probabilities, maybe through a ZipMap
        zipped = [producer[o].input[0] for o in outputs if o in producer and producer[o].op_type == "ZipMap"]
        floats = [v.name for v in graph.output if v.type.HasField("tensor_type")
                  and v.type.tensor_type.elem_type in _FLOAT_TYPES]
        target = zipped[0] if len(zipped) == 1 else floats[0] if len(floats) == 1 else None
    if target is None:
        raise CaseError(key, f"must have one graph output, or a classifier's labels and probabilities; has "
                             f"{outputs}: export the one output mzpdf should propagate{hint}", path)
    needed, todo = set(), [target]
    while todo:
        node = producer.get(todo.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            todo.extend(name for name in node.input if name)
    return target, [node for node in graph.node if id(node) in needed]


def load_onnx(path, noise, key: str = "network.file", noise_key: str = "network.noise") -> Network:
    """The network of an ONNX model file.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file (read with ``onnx.load``; nothing in it is
        executed); its external data file, if any, beside it.
    noise : dict, NoiseLaw, None, or a list of them
        The additive noise after every layer, one law for all layers or a list
        of one per layer (``None`` or ``{"kind": "none"}``: deterministic).
    key, noise_key : str
        How messages name the file and the noise.

    Returns
    -------
    Network
        In float64; see the module docstring for how nodes become layers.

    Raises
    ------
    CaseError
        For a missing or unreadable file (or external data file), an
        unsupported node (named with its op type), a graph that is not a
        chain, or a noise list of the wrong length.
    """
    onnx = _onnx(key)
    path = Path(path)
    if not path.is_file():
        raise CaseError(key, "must name an existing .onnx file", str(path))
    model = _load(onnx, path, key)
    hint = _SKLEARN_HINT if model.producer_name == "skl2onnx" else ""
    target, nodes = _probability_path(model.graph, key, str(path), hint)
    reader = _Reader(onnx, model.graph, key, str(path), hint)
    reader.run(nodes, [target])
    if reader.stream != target:
        raise CaseError(key, f"must compute its output {target!r} by the chain of nodes from its input; the chain "
                             f"ends at {reader.stream!r}{hint}", str(path))
    return build_network(reader.specs, noise, key, noise_key)
