"""Quantities of interest g(X_L) for the backward (Koopman) solve, in a registry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._registry import Registry
from ._validate import integer, number, real_array
from .errors import CaseError

__all__ = ["Observable", "NeuronObservable", "LinearObservable", "ArgmaxObservable", "OBSERVABLES", "make_observable"]


class Observable:
    """Base class: ``g(y)`` at points ``y`` of shape ``(n_points, N_L)`` gives ``(n_points,)``."""

    kind: ClassVar[str] = ""

    def __call__(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def check_width(self, width: int, key: str = "observable") -> None:
        """Raise :class:`CaseError` if ``g`` cannot act on ``width`` output neurons."""

    def readout(self, width: int) -> tuple[np.ndarray, float]:
        """``(a, c)`` with ``g(y) = a . y + c`` on ``width`` neurons (what the
        closed-form tails of :mod:`mzpdf.tails` need); kinds that are not
        linear raise :class:`CaseError`."""
        raise CaseError("observable.kind", "must be a linear read-out (kind 'neuron' or 'linear') for "
                        "observable.thresholds and observable.quantiles", self.kind)


OBSERVABLES: Registry[type] = Registry("observable kind")


@OBSERVABLES.register("neuron")
@dataclass(frozen=True)
class NeuronObservable(Observable):
    """``g(y) = y[index]``."""

    index: int
    kind: ClassVar[str] = "neuron"

    def __call__(self, y):
        return np.asarray(y, dtype=float)[:, self.index]

    def check_width(self, width, key="observable"):
        if not 0 <= self.index < width:
            raise CaseError(f"{key}.index", f"must be in [0, {width - 1}] (the last layer has {width} neurons)", self.index)

    def readout(self, width):
        self.check_width(width)
        a = np.zeros(width)
        a[self.index] = 1.0
        return a, 0.0

    def to_dict(self):
        return {"kind": "neuron", "index": self.index}


@OBSERVABLES.register("linear")
@dataclass(frozen=True)
class LinearObservable(Observable):
    """``g(y) = coefficients . y + offset``."""

    coefficients: np.ndarray
    offset: float = 0.0
    kind: ClassVar[str] = "linear"

    def __post_init__(self):
        object.__setattr__(self, "coefficients", real_array(self.coefficients, "observable.coefficients", 1))

    def __call__(self, y):
        return np.asarray(y, dtype=float) @ self.coefficients + self.offset

    def check_width(self, width, key="observable"):
        if self.coefficients.size != width:
            raise CaseError(f"{key}.coefficients", f"must have {width} entries (the last layer's width)", self.coefficients.tolist())

    def readout(self, width):
        self.check_width(width)
        return self.coefficients.copy(), float(self.offset)

    def to_dict(self):
        return {"kind": "linear", "coefficients": self.coefficients.tolist(), "offset": self.offset}


@OBSERVABLES.register("argmax")
@dataclass(frozen=True)
class ArgmaxObservable(Observable):
    """``g(y) = 1`` where ``y[index]`` is the largest entry of ``y`` (the lowest
    index among ties), else 0: with a softmax output layer (or logits),
    ``E[g(X_L)]`` is the probability that the predicted class is ``index``.
    An indicator, not smooth: only the sampling methods (qmc, montecarlo)
    take it (``Capabilities.observables``)."""

    index: int
    kind: ClassVar[str] = "argmax"

    def __call__(self, y):
        return (np.argmax(np.asarray(y, dtype=float), axis=1) == self.index).astype(float)

    def check_width(self, width, key="observable"):
        if width < 2 or not 0 <= self.index < width:
            raise CaseError(f"{key}.index", f"must be in [0, {width - 1}] (the last layer has {width} neurons; an "
                            "argmax needs at least 2)", self.index)

    def to_dict(self):
        return {"kind": "argmax", "index": self.index}


def make_observable(spec: dict, key: str = "observable") -> Observable:
    """An observable from the ``[observable]`` table (without its ``points``)."""
    if not isinstance(spec, dict):
        raise CaseError(key, "must be a table with a 'kind'", spec)
    spec = dict(spec)
    kind = spec.pop("kind", None)
    OBSERVABLES.get(kind, f"{key}.kind")
    allowed = {"neuron": {"index"}, "linear": {"coefficients", "offset"}, "argmax": {"index"}}[kind]
    for name in spec:
        if name not in allowed:
            raise CaseError(f"{key}.{name}", f"is not a key of observable kind {kind!r} (valid: {sorted(allowed)})", spec[name])
    if kind in ("neuron", "argmax"):
        if "index" not in spec:
            raise CaseError(f"{key}.index", f"is required for kind = {kind!r}")
        cls = NeuronObservable if kind == "neuron" else ArgmaxObservable
        return cls(integer(spec["index"], f"{key}.index", 0))
    if "coefficients" not in spec:
        raise CaseError(f"{key}.coefficients", "is required for kind = 'linear'")
    return LinearObservable(spec["coefficients"], number(spec.get("offset", 0.0), f"{key}.offset"))
