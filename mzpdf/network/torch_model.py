"""PyTorch models as mzpdf networks: :func:`from_torch` and :func:`load_torch`.

A ``torch.nn.Sequential`` (nested ``Sequential`` containers are flattened) is
read as a chain of layers, each a ``Linear`` module followed by at most one
activation module:

=====================  ==================================================
torch module           mzpdf layer
=====================  ==================================================
``Linear``             a dense layer ``W x + b`` (activation identity if
                       no activation module follows)
``Tanh``               activation ``tanh``
``Sigmoid``            activation ``sigmoid``
``ReLU``               activation ``relu``
``LeakyReLU(a)``       activation ``leaky_relu`` with ``slope = a``
``Softplus()``         activation ``softplus`` (``beta = 1`` only; torch
                       returns ``x`` itself above ``threshold = 20``, a
                       difference below 2.1e-9)
``GELU()``             activation ``gelu``, ``x Phi(x)``;
                       ``GELU(approximate="tanh")``: ``gelu_tanh``
``SiLU``               activation ``silu``, ``x / (1 + exp(-x))``
``ELU(a)``             activation ``elu`` with ``alpha = a``
``BatchNorm1d``        folded into the ``Linear`` just before it (it must
                       come before that layer's activation), with its
                       running statistics: the model must be in evaluation
                       mode (``model.eval()``); ``eps`` rounded to float32
                       in a float32 model, as torch adds it
``LayerNorm(n)``       a ``layernorm`` layer (gains ``weight``, ``bias``,
                       ``eps``; over the last axis only); an activation
                       module after it becomes that layer's activation
``Softmax(dim=-1)``    the output map (the last module but ``Dropout`` /
                       ``Identity``): the ``Linear`` before it becomes a
                       ``softmax`` layer (after an activation or a
                       ``LayerNorm``, a softmax layer with identity weights
                       is appended); the output is the class probabilities.
                       A model that applies ``F.softmax`` in its caller's
                       code: ``nn.Sequential(*model, nn.Softmax(-1))``
``Identity``,          skipped (``Dropout`` as in evaluation mode)
``Dropout``
``Residual(...)``      a residual layer ``x + step sigma(W x + b)`` (the
                       convention of case files; :func:`residual` builds one)
=====================  ==================================================

The noise of the stochastic network, ``X_{n+1} = F_n(X_n) + xi_n``, is not
part of a torch model and is given separately: one law for every layer, or a
list of one law per layer (``None`` or ``{"kind": "none"}``: deterministic).
Weights are copied in float64. Anything else in the model is refused with a
:class:`~mzpdf.errors.CaseError` that names the modules and their positions.

torch is an optional dependency (``pip install mzpdf[torch]``); it is imported
only when these functions run.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import CaseError
from ._importing import LayerSpec, append_softmax, build_network, layernorm_spec
from .network import Network

__all__ = ["from_torch", "load_torch", "residual", "SUPPORTED_MODULES"]

SUPPORTED_MODULES = ("Linear", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "Softplus", "GELU", "SiLU", "ELU",
                     "BatchNorm1d", "LayerNorm", "Softmax", "Identity", "Dropout", "Residual", "Sequential")


def _torch(key: str):
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise CaseError(key, "needs PyTorch, which is not installed (pip install 'mzpdf[torch]')") from None
    return torch


@lru_cache(maxsize=1)
def _residual_class():
    torch = _torch("residual")

    class Residual(torch.nn.Module):
        """``x + step * activation(linear(x))``: mzpdf's residual layer as a
        torch module (``linear`` must be square)."""

        def __init__(self, linear, activation, step: float = 1.0):
            super().__init__()
            self.linear, self.activation, self.step = linear, activation, float(step)

        def forward(self, x):
            return x + self.step * self.activation(self.linear(x))

    Residual.__module__ = __name__
    Residual.__qualname__ = "Residual"
    return Residual


def __getattr__(name):
    if name == "Residual":
        return _residual_class()
    raise AttributeError(name)


def residual(linear, activation, step: float = 1.0):
    """A torch module ``x + step * activation(linear(x))`` that
    :func:`from_torch` reads as a residual layer."""
    return _residual_class()(linear, activation, step)


def _flatten(module, torch, where: str = ""):
    """(position, module) pairs of a Sequential, nested ones expanded."""
    out = []
    for name, child in module.named_children():
        pos = f"{where}[{name}]"
        if isinstance(child, torch.nn.Sequential):
            out.extend(_flatten(child, torch, pos))
        else:
            out.append((pos, child))
    return out


def _activation(module, torch, pos: str, key: str):
    """(name, params) of an activation module, or None if ``module`` is not one."""
    nn = torch.nn
    if isinstance(module, nn.Tanh):
        return "tanh", {}
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", {}
    if isinstance(module, nn.ReLU):
        return "relu", {}
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", {"slope": float(module.negative_slope)}
    if isinstance(module, nn.Softplus):
        if float(module.beta) != 1.0:
            raise CaseError(key, f"holds Softplus(beta={module.beta}) at {pos}; only beta = 1 is supported",
                            repr(module))
        return "softplus", {}
    if isinstance(module, nn.GELU):
        if module.approximate not in ("none", "tanh"):
            raise CaseError(key, f"holds GELU(approximate={module.approximate!r}) at {pos}; only approximate = "
                                 "'none' (gelu) and 'tanh' (gelu_tanh) are supported", repr(module))
        return ("gelu" if module.approximate == "none" else "gelu_tanh"), {}
    if isinstance(module, nn.SiLU):
        return "silu", {}
    if isinstance(module, nn.ELU):
        return "elu", {"alpha": float(module.alpha)}
    return None


def _fold_batchnorm(spec: LayerSpec, bn, pos: str, key: str) -> None:
    """Fold an evaluation-mode ``BatchNorm1d`` into the affine map of ``spec``."""
    if bn.training:
        raise CaseError(key, f"holds BatchNorm1d at {pos} in training mode (it normalizes with batch statistics); "
                             "call model.eval() first", repr(bn))
    if bn.running_mean is None or bn.running_var is None:
        raise CaseError(key, f"holds BatchNorm1d at {pos} without running statistics (track_running_stats=False)",
                        repr(bn))
    if bn.num_features != spec.bias.size:
        raise CaseError(key, f"holds BatchNorm1d at {pos} over {bn.num_features} features after a Linear with "
                             f"{spec.bias.size} outputs", repr(bn))

    def arr(t, fill):
        return np.full(bn.num_features, fill) if t is None else t.detach().to("cpu").double().numpy()

    spec.fold_batchnorm(arr(bn.weight, 1.0), arr(bn.bias, 0.0), arr(bn.running_mean, 0.0),
                        arr(bn.running_var, 1.0), _eps(bn.eps, bn.running_var.dtype))


def _layernorm(ln, specs: list, pos: str, key: str, dtype) -> LayerSpec:
    """The layernorm layer of a ``LayerNorm`` module over the last axis."""
    shape = tuple(ln.normalized_shape)
    width = specs[-1].bias.size if specs else shape[-1]
    if len(shape) != 1 or shape[0] != width:
        raise CaseError(key, f"holds LayerNorm{list(shape)} at {pos}, which must normalize the {width} features "
                             "of the layer before it (one axis)", repr(ln))

    def arr(t, fill):
        return np.full(width, fill) if t is None else t.detach().to("cpu").double().numpy()

    weight = getattr(ln, "weight", None)
    return layernorm_spec(arr(weight, 1.0), arr(getattr(ln, "bias", None), 0.0),
                          _eps(ln.eps, dtype if weight is None else weight.dtype))


def _eps(eps: float, dtype) -> float:
    """A normalization's ``eps`` as torch adds it: in float32 for a float32
    module (so that a float32 model and its ONNX export, whose epsilon
    attributes are float32, give the same network), exactly otherwise."""
    torch = _torch("eps")
    return float(np.float32(eps)) if dtype == torch.float32 else float(eps)


def _linear_arrays(linear) -> tuple[np.ndarray, np.ndarray]:
    W = linear.weight.detach().to("cpu").double().numpy().copy()
    b = (linear.bias.detach().to("cpu").double().numpy().copy() if linear.bias is not None
         else np.zeros(W.shape[0]))
    return W, b


def from_torch(model, noise, key: str = "model", noise_key: str = "noise") -> Network:
    """The :class:`~mzpdf.Network` of a torch ``nn.Sequential``.

    Parameters
    ----------
    model : torch.nn.Sequential
        Linear layers, each followed by an optional ``BatchNorm1d`` (folded,
        evaluation mode) and at most one supported activation (see the module
        docstring), ``LayerNorm`` modules, mzpdf ``Residual`` blocks and a
        final ``Softmax``.
    noise : dict, NoiseLaw, None, or a list of them (one per layer)
        The additive noise after every layer, as in case files, for example
        ``{"kind": "gaussian", "std": 0.1}``; in a list, ``None`` or
        ``{"kind": "none"}`` makes that layer deterministic.
    key, noise_key : str
        How error messages name the model (``network.file`` for a case file)
        and the noise (``network.noise``).

    Raises
    ------
    CaseError
        For a model that is not a Sequential, unsupported modules (all of them
        are named with their positions), an activation or BatchNorm1d without
        a Linear before it, a BatchNorm1d in training mode, or a noise list of
        the wrong length.
    """
    torch = _torch(key)
    Residual = _residual_class()
    if not isinstance(model, torch.nn.Sequential):
        raise CaseError(key, "must be a torch.nn.Sequential", type(model).__name__)
    modules = _flatten(model, torch)
    bad = [f"{type(m).__name__} at {pos}" for pos, m in modules
           if type(m).__name__ not in SUPPORTED_MODULES and not isinstance(m, Residual)]
    if bad:
        raise CaseError(key, f"holds modules mzpdf cannot translate (supported: {', '.join(SUPPORTED_MODULES)})",
                        "; ".join(bad))
    specs: list[LayerSpec] = []
    softmax_at = None
    for pos, m in modules:
        if isinstance(m, (torch.nn.Identity, torch.nn.Dropout)):
            continue
        if softmax_at is not None:
            raise CaseError(key, f"holds {type(m).__name__} at {pos} after the Softmax at {softmax_at}: the softmax "
                                 "must be the output map (the last module)", type(m).__name__)
        if isinstance(m, torch.nn.Softmax):
            if m.dim not in (None, -1, 1):
                raise CaseError(key, f"holds Softmax(dim={m.dim}) at {pos}; only the softmax over the features "
                                     "(dim = -1 or 1) is supported", repr(m))
            if not specs:
                raise CaseError(key, f"holds a Softmax at {pos} that does not follow a Linear module", repr(m))
            append_softmax(specs)
            softmax_at = pos
            continue
        if isinstance(m, torch.nn.LayerNorm):
            if specs:
                specs[-1].closed = True
            dtype = next((p.dtype for p in model.parameters()), torch.float32)  # torch's default dtype
            specs.append(_layernorm(m, specs, pos, key, dtype))
            continue
        if isinstance(m, torch.nn.Linear):
            specs.append(LayerSpec("dense", *_linear_arrays(m)))
            continue
        if isinstance(m, Residual):
            if not isinstance(m.linear, torch.nn.Linear):
                raise CaseError(key, f"holds a Residual at {pos} whose linear part is not a Linear",
                                type(m.linear).__name__)
            act = _activation(m.activation, torch, pos, key)
            if act is None:
                raise CaseError(key, f"holds a Residual at {pos} with an unsupported activation",
                                type(m.activation).__name__)
            specs.append(LayerSpec("residual", *_linear_arrays(m.linear), *act, step=m.step, closed=True))
            continue
        if isinstance(m, torch.nn.BatchNorm1d):
            if not specs or specs[-1].closed:
                raise CaseError(key, f"holds BatchNorm1d at {pos}, which must directly follow a Linear (before its "
                                     "activation) to be folded into it", repr(m))
            _fold_batchnorm(specs[-1], m, pos, key)
            continue
        act = _activation(m, torch, pos, key)
        if not specs or specs[-1].closed:
            raise CaseError(key, f"holds an activation at {pos} that does not follow a Linear module",
                            type(m).__name__)
        specs[-1].activation, specs[-1].params, specs[-1].closed = act[0], act[1], True
    if not specs:
        raise CaseError(key, "must hold at least one Linear module", repr(model))
    return build_network(specs, noise, key, noise_key)


def load_torch(path, noise, key: str = "network.file", noise_key: str = "network.noise") -> Network:
    """The network of a model saved with ``torch.save(model, path)``.

    The file is read with ``torch.load(weights_only=True)`` and only the
    module classes mzpdf can translate allowed (``torch.serialization.
    safe_globals``): loading a file never runs code from it. ``noise`` is as
    in :func:`from_torch`.
    """
    torch = _torch(key)
    path = Path(path)
    if not path.is_file():
        raise CaseError(key, "must name an existing file", str(path))
    nn = torch.nn
    allowed = [nn.Sequential, nn.Linear, nn.Tanh, nn.Sigmoid, nn.ReLU, nn.LeakyReLU, nn.Softplus, nn.GELU,
               nn.SiLU, nn.ELU, nn.BatchNorm1d, nn.LayerNorm, nn.Softmax, nn.Identity, nn.Dropout,
               _residual_class()]
    try:
        with torch.serialization.safe_globals(allowed):
            model = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # an unpickling error names the refused class
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        detail = f"it holds {found.group(1)}" if found else (str(err).strip().splitlines() or [""])[0]
        raise CaseError(key, f"must be a torch model saved with torch.save(model) from the supported modules "
                             f"({', '.join(SUPPORTED_MODULES)}); {detail}", str(path)) from None
    if isinstance(model, dict):
        raise CaseError(key, "holds a state_dict, which has no architecture: save the whole model with "
                             "torch.save(model, path)", str(path))
    return from_torch(model, noise, key, noise_key)
