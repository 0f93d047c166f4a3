"""ONNX models as mzpdf networks: :func:`load_onnx` (``network.file = "model.onnx"``).

The file is parsed with the ``onnx`` package (``onnx.load``: protocol
buffers, no code from the file runs) and its graph read as one chain of
nodes, each taking the output of the one before it; constant operands come
from the graph's initializers or ``Constant`` nodes. Tensors are read in
float64 (float32 weights are widened exactly).

===========================  ================================================
ONNX node                    mzpdf layer
===========================  ================================================
``Gemm``                     a new dense layer ``W x + b`` from
                             ``alpha op(A) op(B) + beta C`` (``transB``,
                             ``alpha``, ``beta``; ``transA = 0`` only)
``MatMul``                   a new dense layer ``W x`` (``x @ B``)
``Add`` (of a constant)      added to the bias of the layer just opened
``BatchNormalization``       folded into the affine map just opened
``Relu``, ``LeakyRelu``,     the activation of the layer just opened
``Tanh``, ``Sigmoid``,       (``relu``, ``leaky_relu`` with ``slope =
``Erf``, ``Softplus``        alpha``, ``tanh``, ``sigmoid``, ``erf``,
                             ``softplus``)
``Identity``, ``Flatten``,   skipped: no-ops on a float vector (``Flatten``
``Cast``, ``Reshape``        with ``axis = 1``, ``Cast`` to a float type,
                             ``Reshape`` to ``(batch, n)`` or ``(n,)``), as
                             skl2onnx writes them around an MLP
===========================  ================================================

A layer with no activation node after its affine map gets ``identity``. Any
other node, or a graph that branches, is refused with a
:class:`~mzpdf.errors.CaseError` naming the node and its op type.
The ``onnx`` package is an optional dependency (``pip install 'mzpdf[onnx]'``),
imported only when a file is read. A scikit-learn classifier exported with
skl2onnx ends in nodes that compute labels (``ArgMax``, ``ZipMap``, ...) and
is refused: read the classifier with :func:`mzpdf.from_sklearn` instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CaseError
from ._importing import LayerSpec, build_network
from .network import Network

__all__ = ["load_onnx", "SUPPORTED_OPS"]

_ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Erf": "erf",
                "Softplus": "softplus"}
_NO_OPS = ("Identity", "Flatten", "Cast", "Reshape")
SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "BatchNormalization", *_ACTIVATIONS, *_NO_OPS, "Constant")
_FLOAT_TYPES = (1, 10, 11, 16)  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
# ONNX float attributes are float32, their defaults too (BatchNormalization epsilon, LeakyRelu alpha).
_F32_1E_5, _F32_1E_2 = float(np.float32(1e-5)), float(np.float32(0.01))


def _onnx(key: str):
    try:
        import onnx
    except ImportError:  # pragma: no cover - exercised only without onnx
        raise CaseError(key, "names an ONNX model, which needs the onnx package (pip install 'mzpdf[onnx]')") \
            from None
    return onnx


class _Reader:
    """Walks the chain of nodes of one graph, building :class:`LayerSpec` s."""

    def __init__(self, onnx, graph, key: str, path: str):
        self.onnx, self.key, self.path = onnx, key, path
        self.const = {t.name: self._array(t) for t in graph.initializer}
        inputs = [v.name for v in graph.input if v.name not in self.const]
        if len(inputs) != 1:
            raise CaseError(key, f"must be a graph with one input (a float vector), has {len(inputs)} "
                                 f"({', '.join(inputs) or 'none'})", path)
        self.stream = inputs[0]  # the name of the tensor that carries x
        self.specs: list[LayerSpec] = []
        self.attrs: dict = {}

    def _array(self, tensor) -> np.ndarray:
        arr = self.onnx.numpy_helper.to_array(tensor)
        return arr.astype(np.float64) if arr.dtype.kind == "f" else arr

    def refuse(self, node, rule: str):
        raise CaseError(self.key, f"holds node {node.name!r} (op type {node.op_type}), which {rule}", self.path)

    # -- operands --------------------------------------------------------------
    def operands(self, node, inputs=None) -> list:
        """The constant operands of ``node`` (``None`` for an empty optional
        input), after checking that its first input is the stream and the
        others are constants."""
        inputs = list(node.input) if inputs is None else inputs
        data = [name for name in inputs if name and name not in self.const]
        if len(data) > 1:
            self.refuse(node, "combines two computed tensors (mzpdf reads a chain of layers, not a branching graph)")
        if data != [self.stream] or inputs[0] != self.stream:
            self.refuse(node, f"does not take the output of the node before it ({self.stream!r}) as its first "
                              "input (mzpdf reads a chain of layers)")
        return [self.const[name] if name else None for name in inputs[1:]]

    def open_layer(self, node) -> LayerSpec:
        if not self.specs or self.specs[-1].closed:
            self.refuse(node, "must directly follow a Gemm or MatMul to be folded into its affine map")
        return self.specs[-1]

    def close_open_layer(self) -> None:
        if self.specs:
            self.specs[-1].closed = True

    # -- nodes ---------------------------------------------------------------
    def read(self, node) -> None:
        op = node.op_type
        self.attrs = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            self.refuse(node, f"mzpdf cannot translate (supported op types: {', '.join(SUPPORTED_OPS)})")
        if op == "Constant":
            self.constant(node)
            return
        if len(node.output) != 1:
            self.refuse(node, f"has {len(node.output)} outputs (mzpdf reads nodes with one)")
        getattr(self, f"_{op.lower()}", self._activation)(node)
        self.stream = node.output[0]

    def constant(self, node) -> None:
        if "value" in self.attrs:
            self.const[node.output[0]] = self._array(self.attrs["value"])
            return
        for name in ("value_float", "value_floats", "value_int", "value_ints"):
            if name in self.attrs:
                self.const[node.output[0]] = np.asarray(self.attrs[name],
                                                        dtype=np.float64 if "float" in name else np.int64)
                return
        self.refuse(node, f"must hold a numeric tensor 'value' (found attributes {sorted(self.attrs)})")

    def _gemm(self, node) -> None:
        B, C = (self.operands(node) + [None])[:2]
        if self.attrs.get("transA", 0):
            self.refuse(node, "has transA = 1 (it would transpose the batch of inputs)")
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
            self.refuse(node, "has training_mode = 1 (only inference-mode normalization can be folded)")
        spec = self.open_layer(node)
        n = spec.bias.size
        spec.fold_batchnorm(*(self._vector(node, v, n) for v in (scale, shift, mean, var)),
                            self.attrs.get("epsilon", _F32_1E_5))

    def _activation(self, node) -> None:
        self.operands(node)
        if not self.specs or self.specs[-1].closed:
            self.refuse(node, "is an activation with no Gemm or MatMul before it")
        spec = self.specs[-1]
        spec.activation = _ACTIVATIONS[node.op_type]
        if node.op_type == "LeakyRelu":
            spec.params = {"slope": float(self.attrs.get("alpha", _F32_1E_2))}
        spec.closed = True

    def _identity(self, node) -> None:
        self.operands(node)

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


def load_onnx(path, noise, key: str = "network.file", noise_key: str = "network.noise") -> Network:
    """The network of an ONNX model file.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file (read with ``onnx.load``; nothing in it is executed).
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
        For a missing or unreadable file, an unsupported node (named with its
        op type), a graph that is not a chain, or a noise list of the wrong
        length.
    """
    onnx = _onnx(key)
    path = Path(path)
    if not path.is_file():
        raise CaseError(key, "must name an existing .onnx file", str(path))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises several types for a bad file
        raise CaseError(key, f"must be a readable ONNX model ({type(err).__name__}: {err})", str(path)) from None
    graph = model.graph
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in graph.initializer):
        raise CaseError(key, "keeps its weights in external data files, which mzpdf does not read (save the "
                             "model with the weights inside the .onnx file)", str(path))
    reader = _Reader(onnx, graph, key, str(path))
    for node in graph.node:
        reader.read(node)
    outputs = [v.name for v in graph.output]
    if outputs != [reader.stream]:
        raise CaseError(key, f"must have one graph output, the last node's ({reader.stream!r}); has {outputs}",
                        str(path))
    return build_network(reader.specs, noise, key, noise_key)
