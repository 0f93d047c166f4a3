"""Layers and networks: X_{n+1} = F_n(X_n) + xi_n.

A :class:`Layer` is a frozen, validated description of one transition; a
:class:`Network` is a validated chain of layers whose widths agree. Builders
turn case-file tables, ``.npz`` weight files and random-network
specifications into networks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .._validate import integer, number, real_array
from ..errors import CaseError
from .activations import Activation, make_activation
from .noise import NoiseLaw, make_noise

__all__ = ["ComposedLayer", "LAYER_KINDS", "Layer", "Network", "make_layer", "normalize", "random_network", "softmax"]

LAYER_KINDS = ("dense", "residual", "layernorm", "softmax")
LAYERNORM_EPS = 1e-5  # torch.nn.LayerNorm's and ONNX LayerNormalization's default epsilon
_NORMALIZING = {"layernorm": "it normalizes the whole layer vector", "softmax": "its output map couples the neurons"}


@dataclass(frozen=True)
class Layer:
    """One layer, followed by additive noise:

    * ``dense``: ``F(x) = sigma(W x + b)``;
    * ``residual``: ``F(x) = x + h sigma(W x + b)``;
    * ``layernorm``: ``F(x) = sigma(W z + b)`` with ``z = (x - mean x) /
      sqrt(var x + eps)`` (mean and biased variance over the layer's
      neurons) and ``W = diag(weight)``: torch's ``LayerNorm`` and ONNX's
      ``LayerNormalization`` (with an activation after it where the model has
      one);
    * ``softmax``: ``F(x) = softmax(W x + b)``, the output map of a classifier
      to its class probabilities (the last layer only, activation identity).

    ``layernorm`` and ``softmax`` map the whole layer vector, not neuron by
    neuron: the sampling methods (qmc, montecarlo) take them, the
    discretizations (grid, sparse, tt) refuse them (``Capabilities.layer_kinds``).

    Parameters
    ----------
    weights : array_like, shape (n_out, n_in)
        Diagonal (the gains ``weight``) for a layernorm layer.
    bias : array_like, shape (n_out,)
    activation : Activation or str
    noise : NoiseLaw
        Resolved to one scale per output neuron at construction.
    kind : {"dense", "residual", "layernorm", "softmax"}
    step : float
        Residual step ``h`` (residual layers only).
    eps : float
        The variance offset of a layernorm layer (> 0).
    """

    weights: np.ndarray
    bias: np.ndarray
    activation: Activation
    noise: NoiseLaw
    kind: str = "dense"
    step: float = 1.0
    eps: float = LAYERNORM_EPS
    key: str = field(default="layer", repr=False, compare=False)

    def __post_init__(self):
        k = self.key
        W = real_array(self.weights, f"{k}.weights", 2)
        b = real_array(self.bias, f"{k}.bias", 1, (W.shape[0],))
        act = self.activation
        if isinstance(act, str):
            act = make_activation(act, f"{k}.activation")
        if self.kind not in LAYER_KINDS:
            raise CaseError(f"{k}.kind", f"must be one of {list(LAYER_KINDS)}", self.kind)
        if self.kind in ("residual", "layernorm") and W.shape[0] != W.shape[1]:
            raise CaseError(f"{k}.weights", f"must be square for a {self.kind} layer (n_out == n_in)", list(W.shape))
        if self.kind == "layernorm" and np.any(W != np.diag(np.diagonal(W))):
            raise CaseError(f"{k}.weights", "must be diagonal for a layernorm layer (its gains: weight = [..])",
                            W.tolist())
        if self.kind == "softmax":
            if act.name != "identity":
                raise CaseError(f"{k}.activation", "must be 'identity' with kind = 'softmax' (the softmax is the "
                                "layer's output map)", act.name)
            if W.shape[0] < 2:
                raise CaseError(f"{k}.weights", "must have at least 2 rows (classes) for a softmax layer",
                                list(W.shape))
        step = number(self.step, f"{k}.step", 0.0)
        eps = number(self.eps, f"{k}.eps", 0.0)
        noise = make_noise(self.noise, W.shape[0], f"{k}.noise")
        W.setflags(write=False)
        b.setflags(write=False)
        for name, value in (("weights", W), ("bias", b), ("activation", act), ("noise", noise), ("step", step),
                            ("eps", eps)):
            object.__setattr__(self, name, value)

    @property
    def n_in(self) -> int:
        return self.weights.shape[1]

    @property
    def n_out(self) -> int:
        return self.weights.shape[0]

    @property
    def elementwise(self) -> bool:
        """Whether ``F`` is an affine map followed by an elementwise
        activation (dense, residual): what the discretizations propagate."""
        return self.kind not in _NORMALIZING

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The noiseless map ``F(x)`` at points ``x`` of shape ``(n_points, n_in)``."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "layernorm":
            return self.activation(normalize(x, self.eps) * np.diagonal(self.weights) + self.bias)
        if self.kind == "softmax":
            return softmax(x @ self.weights.T + self.bias)
        z = self.activation(x @ self.weights.T + self.bias)
        return x + self.step * z if self.kind == "residual" else z

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.kind == "layernorm":
            d.update(weight=np.diagonal(self.weights).tolist(), bias=self.bias.tolist(), eps=self.eps)
        else:
            d.update(weights=self.weights.tolist(), bias=self.bias.tolist())
        d.update(activation=self.activation.name, noise=self.noise.to_dict())
        d.update(self.activation.params)
        if self.kind == "residual":
            d["step"] = self.step
        return d


def normalize(x: np.ndarray, eps: float) -> np.ndarray:
    """``(x - mean x) / sqrt(var x + eps)`` of each row of ``x`` (n_points, n),
    with the biased variance (torch's and ONNX's layer normalization)."""
    centred = x - x.mean(axis=1, keepdims=True)
    return centred / np.sqrt(np.mean(centred * centred, axis=1, keepdims=True) + eps)


def softmax(z: np.ndarray) -> np.ndarray:
    """``exp(z) / sum exp(z)`` of each row of ``z`` (n_points, n), shifted by
    the row's maximum so that no exponential overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Network:
    """A chain of :class:`Layer` objects with matching widths."""

    layers: tuple[Layer, ...]

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise CaseError("network.layers", "must hold at least one layer", [])
        for n in range(1, len(layers)):
            if layers[n].n_in != layers[n - 1].n_out:
                raise CaseError(
                    f"network.layers[{n}].weights",
                    f"must have {layers[n - 1].n_out} columns to follow layer {n - 1} (widths must chain)",
                    list(layers[n].weights.shape),
                )
        for layer in layers[:-1]:
            if layer.kind == "softmax":
                raise CaseError(f"{layer.key}.kind", "may be 'softmax' only on the last layer (the output map to "
                                "class probabilities)", "softmax")
        object.__setattr__(self, "layers", layers)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def widths(self) -> list[int]:
        """``[N_0, N_1, ..., N_L]``."""
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, n: int) -> Layer:
        return self.layers[n]

    def __iter__(self):
        return iter(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The noiseless network map at points ``(n_points, N_0)``."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    @property
    def has_noiseless(self) -> bool:
        """Whether some layer has noise kind ``none``."""
        return any(layer.noise.is_deterministic for layer in self.layers)

    def segments(self) -> list[tuple[int, int]]:
        """The runs ``[start, stop)`` of layers that end at a noisy layer
        (or at the end of the net): a run of noiseless layers and the noisy
        layer after it is one transition ``y = G(x) + xi`` with
        ``G = F_{stop-1} o ... o F_start`` (SPEC 1). Without noiseless layers
        every run is one layer."""
        out, start = [], 0
        for n, layer in enumerate(self.layers):
            if not layer.noise.is_deterministic or n == len(self.layers) - 1:
                out.append((start, n + 1))
                start = n + 1
        return out

    def collapsed(self) -> "Network":
        """One transition per run of :meth:`segments`: the layer itself for a
        run of one layer (so a net without noiseless layers is returned as
        is), else a :class:`ComposedLayer`."""
        if not self.has_noiseless:
            return self
        return Network(tuple(self.layers[a] if b - a == 1 else ComposedLayer(self.layers[a:b])
                             for a, b in self.segments()))

    @property
    def state_widths(self) -> list[int]:
        """The widths of the laws that have densities: the input's and each
        noisy layer's (``widths`` of :meth:`collapsed`); what a density
        discretization's cost depends on, not the hidden widths."""
        return self.collapsed().widths

    def to_dict(self) -> dict:
        return {"layers": [layer.to_dict() for layer in self.layers]}


@dataclass(frozen=True)
class ComposedLayer:
    """A run of noiseless layers and the layer after it as one transition:
    ``Y = G(X) + xi`` with ``G = F_m o ... o F_k`` and ``xi`` the last layer's
    noise, so that the kernel is ``k(y | x) = rho_m(y - G(x))`` (SPEC 1).

    Offers what a transition needs of a layer: ``forward``, ``n_in``,
    ``n_out``, ``noise``, ``kind`` and ``activation`` (the last layer's: ``G``
    takes values in its range).

    Parameters
    ----------
    layers : tuple of Layer
        Every layer but the last has noise kind ``none``.
    """

    layers: tuple

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("a composed layer needs at least one layer")
        for n, layer in enumerate(layers[:-1]):
            if not layer.noise.is_deterministic:
                raise ValueError(f"layer {n} of a composed layer has noise {layer.noise.kind!r}: only the last "
                                 "layer of a composition may be noisy")
        for n in range(1, len(layers)):
            if layers[n].n_in != layers[n - 1].n_out:
                raise ValueError(f"layer {n} of a composed layer takes {layers[n].n_in} inputs, layer {n - 1} "
                                 f"gives {layers[n - 1].n_out}")
        object.__setattr__(self, "layers", layers)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def noise(self) -> NoiseLaw:
        return self.layers[-1].noise

    @property
    def kind(self) -> str:
        return self.layers[-1].kind

    @property
    def activation(self) -> Activation:
        return self.layers[-1].activation

    @property
    def hidden_width(self) -> int:
        """The widest intermediate output (evaluated at every source node)."""
        return max((layer.n_out for layer in self.layers[:-1]), default=0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``G(x)`` at points ``x`` of shape ``(n_points, n_in)``."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def partial(self, x: np.ndarray):
        """Yield ``F_j o ... o F_k (x)`` for each layer ``j`` but the last:
        the noiseless intermediate layers at the points ``x``."""
        for layer in self.layers[:-1]:
            x = layer.forward(x)
            yield x


_LAYER_KEYS = {"kind", "weights", "weight", "bias", "activation", "slope", "alpha", "step", "eps", "noise"}
_ACTIVATION_PARAMS = {"slope": "leaky_relu", "alpha": "elu"}  # layer key -> the activation that takes it
_KIND_KEYS = {"step": "residual", "weight": "layernorm", "eps": "layernorm"}  # layer key -> the kind that takes it


def make_layer(spec: dict, key: str = "network.layers[0]") -> Layer:
    """A :class:`Layer` from a ``[[network.layers]]`` table.

    ``kind = "layernorm"`` takes ``weight`` (one gain a neuron), ``bias``,
    ``eps`` (default 1e-5) and an optional ``activation`` (default identity)
    instead of ``weights``; ``kind = "softmax"`` takes ``weights`` and
    ``bias`` (the logits ``W x + b``) and no activation but ``identity``.
    """
    if not isinstance(spec, dict):
        raise CaseError(key, "must be a table", spec)
    for name in spec:
        if name not in _LAYER_KEYS:
            raise CaseError(f"{key}.{name}", f"is not a layer key (valid: {sorted(_LAYER_KEYS)})", spec[name])
    kind = spec.get("kind", "dense")
    if kind not in LAYER_KINDS:
        raise CaseError(f"{key}.kind", f"must be one of {list(LAYER_KINDS)}", kind)
    for name, owner in _KIND_KEYS.items():
        if name in spec and kind != owner:
            raise CaseError(f"{key}.{name}", f"is only valid with kind = '{owner}'", spec[name])
    if kind == "layernorm":
        if "weights" in spec:
            raise CaseError(f"{key}.weights", "is not a key of a layernorm layer: it takes weight = [..], one gain "
                            "a neuron", spec["weights"])
        if "weight" not in spec:
            raise CaseError(f"{key}.weight", "is required for kind = 'layernorm' (one gain a neuron; 1.0 for none)")
        W = np.diag(real_array(spec["weight"], f"{key}.weight", 1))
    else:
        if "weights" not in spec:
            raise CaseError(f"{key}.weights", "is required")
        W = real_array(spec["weights"], f"{key}.weights", 2)
    if "activation" not in spec and kind in ("dense", "residual"):
        raise CaseError(f"{key}.activation", "is required")
    activation = spec.get("activation", "identity")
    bias = spec.get("bias", [0.0] * W.shape[0])
    params = {name: spec[name] for name in _ACTIVATION_PARAMS if name in spec}
    for name in params:
        if activation != _ACTIVATION_PARAMS[name]:
            raise CaseError(f"{key}.{name}", f"is only valid with activation = '{_ACTIVATION_PARAMS[name]}'",
                            spec[name])
    act = make_activation(activation, f"{key}.activation", **params)
    noise = make_noise(spec.get("noise"), W.shape[0], f"{key}.noise")
    return Layer(W, bias, act, noise, kind, spec.get("step", 1.0), spec.get("eps", LAYERNORM_EPS), key=key)


def _brick_wall(width: int, rng: np.random.Generator) -> np.ndarray:
    """``G_odd G_even``: Givens rotations of neighbouring neurons by uniform
    angles, first the pairs (0, 1), (2, 3), ..., then (1, 2), (3, 4), ..."""
    W = np.eye(width)
    for first in (0, 1):
        G = np.eye(width)
        for i in range(first, width - 1, 2):
            c, s = np.cos(t := rng.uniform(0.0, 2.0 * np.pi)), np.sin(t)
            G[i, i], G[i, i + 1], G[i + 1, i], G[i + 1, i + 1] = c, -s, s, c
        W = G @ W
    return W


def random_network(
    widths: Sequence[int],
    activation: str | Activation = "tanh",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    seed: int = 0,
    noise: dict | NoiseLaw | None = None,
    key: str = "network.random",
    init: str = "gaussian",
) -> Network:
    """A dense network with ``W_ij ~ N(0, sigma_w^2 / N_in)`` (``init =
    "gaussian"``), or ``W = sigma_w Q`` with ``Q`` a Haar-random matrix with
    orthonormal rows or columns (``init = "orthogonal"``: every singular value
    equals ``sigma_w``), or ``W = sigma_w G_odd G_even`` with ``G_even`` rotating
    the neuron pairs (0, 1), (2, 3), ... and ``G_odd`` the pairs (1, 2), (3, 4),
    ... by independent uniform angles (``init = "local"``, square layers only:
    orthogonal, banded, each neuron coupled to its 1-D neighbours -- a
    one-channel convolution-like layer), and ``b_i ~ N(0, sigma_b^2)``.

    The weights depend only on ``seed`` (NumPy's PCG64), so a case file
    reproduces the same network everywhere.
    """
    if not isinstance(widths, (list, tuple)) or len(widths) < 2:
        raise CaseError(f"{key}.widths", "must be a list [N_0, ..., N_L] of at least two widths", widths)
    widths = [integer(w, f"{key}.widths[{i}]", 1) for i, w in enumerate(widths)]
    sigma_w = number(sigma_w, f"{key}.sigma_w", 0.0, strict=False)
    sigma_b = number(sigma_b, f"{key}.sigma_b", 0.0, strict=False)
    seed = integer(seed, f"{key}.seed", 0)
    act = activation if isinstance(activation, Activation) else make_activation(activation, f"{key}.activation")
    if init not in ("gaussian", "orthogonal", "local"):
        raise CaseError(f"{key}.init", "must be 'gaussian', 'orthogonal' or 'local'", init)
    if init == "local" and len(set(widths)) != 1:
        raise CaseError(f"{key}.widths", "must all be equal with init = 'local' (it builds square layers)", list(widths))
    rng = np.random.default_rng(seed)
    layers = []
    for n, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        W = rng.standard_normal((n_out, n_in)) * sigma_w / np.sqrt(n_in)
        if init == "orthogonal":
            tall = W.T if n_out < n_in else W
            q, r = np.linalg.qr(tall)
            q = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # Haar measure
            W = sigma_w * (q.T if n_out < n_in else q)
        elif init == "local":
            W = sigma_w * _brick_wall(n_in, rng)
        b = rng.standard_normal(n_out) * sigma_b
        layers.append(Layer(W, b, act, make_noise(noise, n_out, f"{key}.noise"), key=f"{key}.layers[{n}]"))
    return Network(tuple(layers))
