"""Networks from a case's ``[network]`` table: built layer by layer
(``layers``), drawn at random (``random``) or read from a model file
(``file``: ``.npz`` weights here, ``.pt``/``.pth`` by
:mod:`~mzpdf.network.torch_model`, ``.onnx`` by
:mod:`~mzpdf.network.onnx_model`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CaseError
from .activations import Activation, make_activation
from .network import Layer, Network, make_layer, random_network
from .noise import NoiseLaw, layer_noises, make_noise
from .onnx_model import load_onnx
from .torch_model import load_torch

__all__ = ["load_npz", "make_network"]


def load_npz(
    path: str | Path,
    activation: str | Activation = "tanh",
    noise: dict | NoiseLaw | None = None,
    key: str = "network.file",
) -> Network:
    """A dense network from an ``.npz`` file holding ``W0, b0, W1, b1, ...``.

    ``noise`` is one law for every layer or a list of one per layer (``None``
    or ``{"kind": "none"}``: deterministic), named ``network.noise`` in messages.
    """
    path = Path(path)
    if not path.is_file():
        raise CaseError(key, "must name an existing .npz file", str(path))
    try:
        data = np.load(path)
    except Exception as err:  # numpy raises several types for a bad file
        raise CaseError(key, f"must be a readable .npz file ({err})", str(path)) from None
    with data:
        n_layers = 0
        while f"W{n_layers}" in data:
            n_layers += 1
        if n_layers == 0:
            raise CaseError(key, "must hold arrays W0, b0, W1, b1, ...", sorted(data.files))
        act = activation if isinstance(activation, Activation) else make_activation(activation, "network.activation")
        layers = []
        for n, (nz, nkey) in enumerate(layer_noises(noise, n_layers, "network.noise")):
            W = data[f"W{n}"]
            b = data[f"b{n}"] if f"b{n}" in data else np.zeros(W.shape[0])
            layers.append(Layer(W, b, act, make_noise(nz, W.shape[0], nkey), key=f"{key}:W{n}"))
    return Network(tuple(layers))


_NETWORK_KEYS = {"layers", "random", "file", "activation", "noise"}
_RANDOM_KEYS = {"widths", "activation", "sigma_w", "sigma_b", "seed", "noise", "init"}


def make_network(spec: dict | Network, key: str = "network", base_dir: Path | None = None) -> Network:
    """A :class:`Network` from the ``[network]`` table of a case file.

    Exactly one of ``layers``, ``random`` and ``file`` must be given.
    ``noise`` applies to a ``file`` network: one table for every layer or a
    list of one table per layer (``{kind = "none"}``: deterministic).
    ``activation`` applies to an ``.npz`` file only; ``.pt``/``.pth`` (PyTorch,
    :func:`~mzpdf.network.torch_model.load_torch`) and ``.onnx``
    (:func:`~mzpdf.network.onnx_model.load_onnx`) models hold their own.
    """
    if isinstance(spec, Network):
        return spec
    if not isinstance(spec, dict):
        raise CaseError(key, "must be a table", spec)
    for name in spec:
        if name not in _NETWORK_KEYS:
            raise CaseError(f"{key}.{name}", f"is not a network key (valid: {sorted(_NETWORK_KEYS)})", spec[name])
    given = [name for name in ("layers", "random", "file") if name in spec]
    if len(given) != 1:
        raise CaseError(key, "must give exactly one of 'layers', 'random' and 'file'", given)
    if given[0] != "file":
        for name in ("activation", "noise"):
            if name in spec:
                raise CaseError(f"{key}.{name}", "is only valid with network.file (set it per layer or in network.random)", spec[name])
    if "layers" in spec:
        layers = spec["layers"]
        if not isinstance(layers, list) or not layers:
            raise CaseError(f"{key}.layers", "must be a non-empty list of [[network.layers]] tables", layers)
        return Network(tuple(make_layer(s, f"{key}.layers[{i}]") for i, s in enumerate(layers)))
    if "random" in spec:
        r = spec["random"]
        if not isinstance(r, dict):
            raise CaseError(f"{key}.random", "must be a table", r)
        for name in r:
            if name not in _RANDOM_KEYS:
                raise CaseError(f"{key}.random.{name}", f"is not a key of network.random (valid: {sorted(_RANDOM_KEYS)})", r[name])
        if "widths" not in r:
            raise CaseError(f"{key}.random.widths", "is required")
        return random_network(
            r["widths"], r.get("activation", "tanh"), r.get("sigma_w", 1.0), r.get("sigma_b", 0.0),
            r.get("seed", 0), r.get("noise"), key=f"{key}.random", init=r.get("init", "gaussian"),
        )
    path = spec["file"]
    if not isinstance(path, str):
        raise CaseError(f"{key}.file", "must be a path string", path)
    p = Path(path)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if p.suffix in (".pt", ".pth", ".onnx"):
        if "activation" in spec:
            raise CaseError(f"{key}.activation", f"is not valid with a {p.suffix} model file (the model holds its "
                            "activations)", spec["activation"])
        if p.suffix == ".onnx":
            return load_onnx(p, spec.get("noise"), key=f"{key}.file", noise_key=f"{key}.noise")
        return load_torch(p, spec.get("noise"), key=f"{key}.file", noise_key=f"{key}.noise")
    return load_npz(p, spec.get("activation", "tanh"), spec.get("noise"), key=f"{key}.file")
