"""What the model importers (PyTorch, ONNX, scikit-learn, ``.npz``) share.

An importer reads a model into a list of :class:`LayerSpec` (an affine map
with the activation that follows it), folds batch normalization into the
affine map before it, and hands the list with the noise to
:func:`build_network`. A model carries no noise: the noise of the stochastic
network ``X_{n+1} = F_n(X_n) + xi_n`` is given beside it, one law for every
layer or a list of one law per layer (:func:`layer_noises`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CaseError
from .activations import make_activation
from .network import LAYERNORM_EPS, Layer, Network
from .noise import layer_noises, make_noise

__all__ = ["LayerSpec", "append_softmax", "build_network", "layernorm_spec"]


@dataclass
class LayerSpec:
    """One layer read off a model: ``activation(weights @ x + bias)`` (dense),
    ``x + step activation(weights @ x + bias)`` (residual), ``activation(
    weights @ normalize(x) + bias)`` with diagonal weights (layernorm) or
    ``softmax(weights @ x + bias)`` (softmax); see :class:`~mzpdf.network.Layer`.

    ``closed`` is set once the activation is known; until then normalization
    may still be folded into the affine map.
    """

    kind: str
    weights: np.ndarray
    bias: np.ndarray
    activation: str = "identity"
    params: dict = field(default_factory=dict)
    step: float = 1.0
    closed: bool = False
    eps: float = LAYERNORM_EPS

    def fold_batchnorm(self, scale, shift, mean, var, eps: float) -> None:
        """Fold ``y = scale (z - mean) / sqrt(var + eps) + shift``, applied to
        the output ``z = W x + b`` of this layer's affine map, into ``W, b``
        (all arrays of shape ``(n_out,)``, in float64)."""
        s = np.asarray(scale, dtype=np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + float(eps))
        self.weights = s[:, None] * self.weights
        self.bias = s * (self.bias - np.asarray(mean, dtype=np.float64)) + np.asarray(shift, dtype=np.float64)


def layernorm_spec(gain, shift, eps: float) -> LayerSpec:
    """A layer normalization with gains ``gain`` and shifts ``shift`` (n,),
    open for the activation that may follow it."""
    gain = np.asarray(gain, dtype=np.float64).ravel()
    return LayerSpec("layernorm", np.diag(gain), np.asarray(shift, dtype=np.float64).ravel().copy(), eps=float(eps))


def append_softmax(specs: list[LayerSpec]) -> None:
    """Make the softmax the model's output map: the last affine map, while
    no activation follows it yet, becomes a softmax layer; otherwise (after an
    activation or a normalization) a softmax layer with identity weights is
    appended."""
    last = specs[-1]
    if last.kind == "dense" and not last.closed and last.activation == "identity":
        last.kind, last.closed = "softmax", True
        return
    n = last.bias.size
    last.closed = True
    specs.append(LayerSpec("softmax", np.eye(n), np.zeros(n), closed=True))


def build_network(specs: list[LayerSpec], noise, key: str = "model", noise_key: str = "noise") -> Network:
    """The :class:`Network` of ``specs`` with ``noise`` (see :func:`layer_noises`).

    ``key`` names the model in messages (``network.file``), ``noise_key``
    the noise (``network.noise``).
    """
    if not specs:
        raise CaseError(key, "must hold at least one affine layer")
    layers = []
    for n, (spec, (nz, nkey)) in enumerate(zip(specs, layer_noises(noise, len(specs), noise_key))):
        act = make_activation(spec.activation, f"{key}.layers[{n}].activation", **spec.params)
        W = np.ascontiguousarray(spec.weights, dtype=np.float64)
        b = np.ascontiguousarray(spec.bias, dtype=np.float64)
        layers.append(Layer(W, b, act, make_noise(nz, W.shape[0], nkey), kind=spec.kind, step=spec.step,
                            eps=spec.eps, key=f"{key}.layers[{n}]"))
    return Network(tuple(layers))
