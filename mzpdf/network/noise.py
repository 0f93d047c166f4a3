"""Additive noise laws xi_n, separable over neurons, in a registry.

A noise law has one scale per neuron. Its density factorizes,
``rho(z) = prod_k rho_k(z_k)``, which is what lets the transfer operator
work one output neuron at a time. Each law carries an integer ``code`` that
the numba kernels use to evaluate the same 1-D density (see
:func:`mzpdf.solvers.grid._kernels.noise_pdf`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from .. import _special as special
from .._registry import Registry
from .._validate import per_neuron, positive
from ..errors import CaseError

__all__ = [
    "layer_noises",
    "NoiseLaw",
    "GaussianNoise",
    "UniformNoise",
    "LaplaceNoise",
    "NoNoise",
    "NOISE_LAWS",
    "make_noise",
]

# Kernel codes shared with mzpdf.solvers.grid._kernels.noise_pdf.
GAUSSIAN, UNIFORM, LAPLACE, NONE = 0, 1, 2, 3


@dataclass(frozen=True)
class NoiseLaw:
    """Base class: a separable additive noise with per-neuron ``scale``.

    ``scale`` may hold one value (any width) until :meth:`resolved` fixes the
    width of the layer it belongs to.
    """

    scale: np.ndarray = field(default_factory=lambda: np.ones(1))
    kind: ClassVar[str] = ""
    parameter: ClassVar[str] = ""
    code: ClassVar[int] = -1

    def __post_init__(self):
        key = f"noise.{self.parameter}" if self.parameter else "noise"
        arr = np.atleast_1d(np.asarray(self.scale, dtype=np.float64))
        if self.parameter:
            positive(arr, key, self.scale if np.ndim(self.scale) == 0 else arr.tolist())
        object.__setattr__(self, "scale", arr)

    # -- construction -------------------------------------------------------
    def resolved(self, width: int, key: str = "noise") -> "NoiseLaw":
        """This law with one scale per neuron of a layer of ``width`` neurons."""
        if self.scale.size == width:
            return self
        if self.scale.size == 1:
            return replace(self, scale=np.full(width, self.scale[0]))
        raise CaseError(f"{key}.{self.parameter}", f"must be a number or a list of {width} numbers", self.scale.tolist())

    @property
    def is_deterministic(self) -> bool:
        return False

    # -- the 1-D laws, vectorized over the last axis (one column per neuron) --
    def pdf(self, z: np.ndarray) -> np.ndarray:
        """Per-neuron densities ``rho_k(z[..., k])`` (not their product)."""
        raise NotImplementedError

    def cdf(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws, shape ``(n, width)``."""
        raise NotImplementedError

    def variance(self) -> np.ndarray:
        raise NotImplementedError

    def tail_radius(self, tail: float) -> np.ndarray:
        """Per-neuron ``r`` with ``P(xi_k > r) = tail`` (zero-mass tails give the support)."""
        raise NotImplementedError

    def window_radius(self) -> np.ndarray:
        """Per-neuron ``r`` beyond which ``rho_k(z) / rho_k(0) < 1e-16``: the
        windowed sums drop terms there, far below double-precision round-off."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        scale = self.scale.tolist()
        return {"kind": self.kind, self.parameter: scale[0] if len(set(scale)) == 1 else scale}


NOISE_LAWS: Registry[type[NoiseLaw]] = Registry("noise kind")

_LN_1E16 = 16.0 * np.log(10.0)


@NOISE_LAWS.register("gaussian")
@dataclass(frozen=True)
class GaussianNoise(NoiseLaw):
    """Centred gaussian noise with standard deviation ``scale`` (case key ``std``)."""

    kind: ClassVar[str] = "gaussian"
    parameter: ClassVar[str] = "std"
    code: ClassVar[int] = GAUSSIAN

    def pdf(self, z):
        s = self.scale
        return np.exp(-0.5 * (z / s) ** 2) / (np.sqrt(2.0 * np.pi) * s)

    def cdf(self, z):
        return special.ndtr(z / self.scale)

    def sample(self, rng, n):
        return rng.standard_normal((n, self.scale.size)) * self.scale

    def variance(self):
        return self.scale**2

    def tail_radius(self, tail):
        return -special.ndtri(tail) * self.scale

    def window_radius(self):
        return np.sqrt(2.0 * _LN_1E16) * self.scale


@NOISE_LAWS.register("uniform")
@dataclass(frozen=True)
class UniformNoise(NoiseLaw):
    """Noise uniform on ``[-scale, scale]`` (case key ``half_width``)."""

    kind: ClassVar[str] = "uniform"
    parameter: ClassVar[str] = "half_width"
    code: ClassVar[int] = UNIFORM

    def pdf(self, z):
        a = self.scale
        return np.where(np.abs(z) <= a, 0.5 / a, 0.0)

    def cdf(self, z):
        return np.clip((z + self.scale) / (2.0 * self.scale), 0.0, 1.0)

    def sample(self, rng, n):
        return rng.uniform(-1.0, 1.0, (n, self.scale.size)) * self.scale

    def variance(self):
        return self.scale**2 / 3.0

    def tail_radius(self, tail):
        return self.scale.copy()

    def window_radius(self):
        return self.scale.copy()


@NOISE_LAWS.register("laplace")
@dataclass(frozen=True)
class LaplaceNoise(NoiseLaw):
    """Laplace noise ``exp(-|z|/b) / 2b`` with ``b = scale`` (case key ``scale``)."""

    kind: ClassVar[str] = "laplace"
    parameter: ClassVar[str] = "scale"
    code: ClassVar[int] = LAPLACE

    def pdf(self, z):
        b = self.scale
        return np.exp(-np.abs(z) / b) / (2.0 * b)

    def cdf(self, z):
        b = self.scale
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0) / b), 1.0 - 0.5 * np.exp(-np.maximum(z, 0) / b))

    def sample(self, rng, n):
        return rng.laplace(0.0, 1.0, (n, self.scale.size)) * self.scale

    def variance(self):
        return 2.0 * self.scale**2

    def tail_radius(self, tail):
        return -np.log(2.0 * tail) * self.scale

    def window_radius(self):
        return _LN_1E16 * self.scale


@NOISE_LAWS.register("none")
@dataclass(frozen=True)
class NoNoise(NoiseLaw):
    """No noise: a deterministic layer. Densities after it may be singular."""

    kind: ClassVar[str] = "none"
    code: ClassVar[int] = NONE

    def __post_init__(self):
        object.__setattr__(self, "scale", np.zeros(np.atleast_1d(np.asarray(self.scale)).size))

    def resolved(self, width, key="noise"):
        return self if self.scale.size == width else NoNoise(np.zeros(width))

    @property
    def is_deterministic(self):
        return True

    def sample(self, rng, n):
        return np.zeros((n, self.scale.size))

    def variance(self):
        return np.zeros(self.scale.size)

    def tail_radius(self, tail):
        return np.zeros(self.scale.size)

    def window_radius(self):
        return np.zeros(self.scale.size)

    def to_dict(self):
        return {"kind": "none"}


def make_noise(spec: dict | NoiseLaw | None, width: int, key: str = "noise") -> NoiseLaw:
    """A noise law from a case-file table such as ``{"kind": "gaussian", "std": 0.1}``.

    Raises
    ------
    CaseError
        Naming ``key`` and the offending entry.
    """
    if isinstance(spec, NoiseLaw):
        return spec.resolved(width, key)
    if spec is None:
        spec = {"kind": "none"}
    if not isinstance(spec, dict):
        raise CaseError(key, "must be a table with a 'kind'", spec)
    spec = dict(spec)
    cls = NOISE_LAWS.get(spec.pop("kind", None), f"{key}.kind")
    if cls is NoNoise:
        if spec:
            raise CaseError(f"{key}.{next(iter(spec))}", "is not a key of noise kind 'none'", spec[next(iter(spec))])
        return NoNoise(np.zeros(width))
    if set(spec) != {cls.parameter}:
        extra = sorted(set(spec) - {cls.parameter})
        if extra:
            raise CaseError(f"{key}.{extra[0]}", f"is not a key of noise kind {cls.kind!r} (it takes {cls.parameter!r})", spec[extra[0]])
        raise CaseError(f"{key}.{cls.parameter}", f"is required for noise kind {cls.kind!r}")
    value = spec[cls.parameter]
    scale = positive(per_neuron(value, f"{key}.{cls.parameter}", width), f"{key}.{cls.parameter}", value)
    return cls(scale)


def layer_noises(noise, n_layers: int, key: str = "noise") -> list[tuple[object, str]]:
    """``(noise spec, key)`` for each of ``n_layers`` layers.

    Parameters
    ----------
    noise : dict, NoiseLaw, None, or a list or tuple of them
        One law for every layer, or one per layer (``None`` or
        ``{"kind": "none"}``: a deterministic layer).
    n_layers : int
    key : str
        How messages name the noise (``network.noise`` in a case file).

    Raises
    ------
    CaseError
        For a list whose length is not ``n_layers``.
    """
    if isinstance(noise, (list, tuple)):
        if len(noise) != n_layers:
            entries = f"{len(noise)} entr{'y' if len(noise) == 1 else 'ies'}"
            raise CaseError(key, f"has {entries}, the network has {n_layers} layers (give one noise "
                                 f"table for every layer, or a list of one per layer)", list(noise))
        return [(nz, f"{key}[{n}]") for n, nz in enumerate(noise)]
    return [(noise, key)] * n_layers
