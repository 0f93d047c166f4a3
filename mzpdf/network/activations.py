"""Elementwise activation functions sigma, in a registry.

Each :class:`Activation` knows its values, its derivative and its range
``(lo, hi)`` (infinite where unbounded); the range is used to choose the
per-layer box of the grid solvers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import _special as special
from .._registry import Registry
from .._validate import number
from ..errors import CaseError

__all__ = ["Activation", "ACTIVATIONS", "make_activation"]


@dataclass(frozen=True)
class Activation:
    """An elementwise function with its derivative and range.

    Parameters
    ----------
    name : str
        Registry name ("tanh", "relu", ...).
    fn, derivative : callable
        Vectorized NumPy functions of one array.
    range : tuple of float
        Closure of the image, ``(lo, hi)``; ``-inf``/``inf`` where unbounded.
    params : dict
        Parameters the activation was built with (e.g. ``{"slope": 0.01}``).
    monotone : bool
        Whether ``fn`` is nondecreasing (``gelu`` and ``silu`` are not: the
        image of an interval is then not spanned by its end points' values).
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    derivative: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    range: tuple[float, float]
    params: dict = field(default_factory=dict)
    monotone: bool = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


ACTIVATIONS: Registry[Callable[..., Activation]] = Registry("activation")


@ACTIVATIONS.register("tanh")
def _tanh() -> Activation:
    return Activation("tanh", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, (-1.0, 1.0))


@ACTIVATIONS.register("sigmoid")
def _sigmoid() -> Activation:
    def d(x):
        s = special.expit(x)
        return s * (1.0 - s)

    return Activation("sigmoid", special.expit, d, (0.0, 1.0))


@ACTIVATIONS.register("relu")
def _relu() -> Activation:
    return Activation("relu", lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float), (0.0, np.inf))


@ACTIVATIONS.register("leaky_relu")
def _leaky_relu(slope: float = 0.01) -> Activation:
    a = number(slope, "slope", 0.0, strict=False)
    return Activation(
        "leaky_relu",
        lambda x: np.where(x > 0, x, a * x),
        lambda x: np.where(x > 0, 1.0, a),
        (-np.inf if a > 0 else 0.0, np.inf),
        {"slope": a},
    )


@ACTIVATIONS.register("erf")
def _erf() -> Activation:
    return Activation("erf", special.erf, lambda x: 2.0 / np.sqrt(np.pi) * np.exp(-x * x), (-1.0, 1.0))


@ACTIVATIONS.register("softplus")
def _softplus() -> Activation:
    return Activation("softplus", lambda x: np.logaddexp(0.0, x), special.expit, (0.0, np.inf))


@ACTIVATIONS.register("identity")
def _identity() -> Activation:
    return Activation("identity", lambda x: np.asarray(x, dtype=float), np.ones_like, (-np.inf, np.inf))


# The minima of x Phi(x), x / (1 + exp(-x)) and the tanh-approximate GELU, found with scipy.optimize.minimize_scalar
# (tol 1e-14) and rounded down at the 12th digit, so that the ranges below enclose the images.
_GELU_MIN = -0.169971207480
_SILU_MIN = -0.278464542762
_GELU_TANH_MIN = -0.170040750572
_GELU_TANH_C = float(np.sqrt(2.0 / np.pi))  # the tanh approximation's constants (torch, ONNX Gelu)
_GELU_TANH_A = 0.044715


@ACTIVATIONS.register("gelu")
def _gelu() -> Activation:
    """``x Phi(x)`` with ``Phi`` the standard normal CDF (torch's exact GELU)."""
    def d(x):
        return special.ndtr(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)

    return Activation("gelu", lambda x: x * special.ndtr(x), d, (_GELU_MIN, np.inf), monotone=False)


@ACTIVATIONS.register("gelu_tanh")
def _gelu_tanh() -> Activation:
    """``x (1 + tanh(u)) / 2`` with ``u = sqrt(2 / pi) (x + 0.044715 x^3)``: the tanh
    approximation of GELU (torch's ``GELU(approximate="tanh")``, ONNX ``Gelu`` with
    ``approximate = "tanh"``), evaluated as ``x sigmoid(2 u)`` (the same function,
    without the cancellation of ``1 + tanh u`` where ``u`` is very negative)."""
    def inner(x):
        return _GELU_TANH_C * (x + _GELU_TANH_A * x**3)

    def d(x):
        s = special.expit(2.0 * inner(x))
        return s + 2.0 * x * s * (1.0 - s) * _GELU_TANH_C * (1.0 + 3.0 * _GELU_TANH_A * x * x)

    return Activation("gelu_tanh", lambda x: x * special.expit(2.0 * inner(x)), d, (_GELU_TANH_MIN, np.inf),
                      monotone=False)


@ACTIVATIONS.register("silu")
def _silu() -> Activation:
    """``x / (1 + exp(-x))`` (also called swish)."""
    def d(x):
        s = special.expit(x)
        return s * (1.0 + x * (1.0 - s))

    return Activation("silu", lambda x: x * special.expit(x), d, (_SILU_MIN, np.inf), monotone=False)


@ACTIVATIONS.register("elu")
def _elu(alpha: float = 1.0) -> Activation:
    """``x`` for ``x > 0``, ``alpha (exp(x) - 1)`` otherwise."""
    a = number(alpha, "alpha", 0.0, strict=False)
    return Activation(
        "elu",
        lambda x: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
        lambda x: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0))),
        (-a, np.inf),
        {"alpha": a},
    )


def make_activation(name: str, key: str = "activation", **params) -> Activation:
    """The activation registered as ``name`` built with ``params``.

    Raises
    ------
    CaseError
        For an unknown name, or a parameter the activation does not take.
    """
    factory = ACTIVATIONS.get(name, key)
    try:
        return factory(**params)
    except TypeError:
        raise CaseError(key, f"{name!r} takes no parameters {sorted(params)}", name) from None
    except CaseError as err:  # a parameter's key sits beside the activation's
        parent = key.rpartition(".")[0]
        raise (err.under(parent) if parent else err) from None
