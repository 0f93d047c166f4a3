"""Input laws p_0 of X_0, in a registry.

Each law knows its dimension, density, samples, moments, and the box that
holds all but ``tail`` of its mass per side and neuron (used by the grid
solvers). A :class:`PointInput` is an atom: the network is then conditioned
on one input and the first layer's density is the transition kernel itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .. import _special as special
from .._registry import Registry
from .._validate import per_neuron, positive, real_array
from ..errors import CaseError, SingularDensityError

__all__ = ["InputLaw", "GaussianInput", "UniformInput", "MixtureInput", "PointInput", "INPUT_LAWS", "make_input"]


class InputLaw:
    """Base class of input laws. Subclasses are frozen dataclasses."""

    kind: ClassVar[str] = ""
    is_atomic: ClassVar[bool] = False

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def pdf(self, points: np.ndarray) -> np.ndarray:
        """Density at ``points`` of shape ``(n_points, dim)``."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws, shape ``(n, dim)``."""
        raise NotImplementedError

    def mean(self) -> np.ndarray:
        raise NotImplementedError

    def cov(self) -> np.ndarray:
        raise NotImplementedError

    def marginal_pdf(self, k: int, x: np.ndarray) -> np.ndarray:
        """Density of coordinate ``k`` at the abscissae ``x``."""
        raise NotImplementedError

    def box(self, tail: float) -> np.ndarray:
        """``(dim, 2)`` box outside which each coordinate has mass <= ``tail`` per side."""
        raise NotImplementedError

    def tail_mass(self, box: np.ndarray) -> float:
        """Upper bound on the mass outside ``box`` (union bound over neurons)."""
        raise NotImplementedError


INPUT_LAWS: Registry[type] = Registry("input kind")

# The inputs of positive variance are tested on their correlation matrix R (scale-free: a small variance is
# never mistaken for a known input, only linear dependence is): R is positive semidefinite when its smallest
# eigenvalue is >= -PSD_RTOL x its largest, and its rank counts the eigenvalues above PSD_RTOL x the largest.
# eigvalsh's round-off is ~N eps x the largest (1e-15 for N <= 10), so 1e-10 leaves 5 orders of margin; a
# direction whose correlation eigenvalue is below 1e-10 (std 1e-5 of the inputs') is folded as known exactly.
PSD_RTOL = 1e-10


def _psd_factor(cov: np.ndarray) -> np.ndarray:
    """``A`` (N, r) with ``cov = A A^T`` (to round-off), ``r`` the rank.

    The inputs with variance 0 get zero rows; on the others, the Cholesky
    factor when their correlation matrix is regular (for a diagonal
    covariance the columns ``std_i e_i``, in the inputs' order), else
    ``D V W^(1/2)`` from the eigen-decomposition ``R = V W V^T`` of the
    correlation matrix restricted to its eigenvalues above :data:`PSD_RTOL`
    x the largest, ``D`` the diagonal of stds.

    Raises
    ------
    ValueError
        Saying why ``cov`` is not positive semidefinite.
    """
    n = cov.shape[0]
    d = np.diag(cov)
    if d.min() < 0:
        raise ValueError(f"its diagonal holds the variance {d.min():g} < 0")
    uncertain, known = np.flatnonzero(d > 0), np.flatnonzero(d == 0)
    if np.any(cov[known] != 0):
        raise ValueError(f"input {int(known[np.any(cov[known] != 0, axis=1)][0])} has variance 0 and a nonzero "
                         "covariance with another input")
    if uncertain.size == 0:
        return np.zeros((n, 0))
    block = cov[np.ix_(uncertain, uncertain)]
    std = np.sqrt(d[uncertain])
    w, v = np.linalg.eigh(block / np.outer(std, std))
    if w.min() < -PSD_RTOL * w.max():
        raise ValueError(f"its correlation matrix has the eigenvalue {w.min():.3g} < 0 (below -{PSD_RTOL:g} x "
                         "the largest)")
    keep = w > PSD_RTOL * w.max()
    part = std[:, None] * (v[:, keep] * np.sqrt(w[keep]))
    if np.all(keep):
        try:
            part = np.linalg.cholesky(block)
        except np.linalg.LinAlgError:  # regular to PSD_RTOL, not to Cholesky's pivots: keep the eigenvectors
            pass
    out = np.zeros((n, part.shape[1]))
    out[uncertain] = part
    return out


@INPUT_LAWS.register("gaussian")
@dataclass(frozen=True)
class GaussianInput(InputLaw):
    """Gaussian input with ``mean`` (dim,) and covariance ``cov`` (dim, dim).

    ``cov`` may be singular (positive semidefinite to :data:`PSD_RTOL`): an
    input of variance 0 is known exactly, and the law is ``mean + A z`` with
    ``z ~ N(0, I_rank)`` (:attr:`factor`). A case folds such an input into the
    first layer (:mod:`mzpdf.network.folding`), so that the methods see the
    dimension of the uncertainty; it has no density on ``R^dim`` (``pdf``
    raises :class:`~mzpdf.errors.SingularDensityError`).
    """

    mean_: np.ndarray
    cov_: np.ndarray
    kind: ClassVar[str] = "gaussian"
    _factor: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        m = real_array(self.mean_, "input.mean", 1)
        c = real_array(self.cov_, "input.cov", 2, (m.size, m.size))
        if not np.allclose(c, c.T, rtol=1e-12, atol=0):
            raise CaseError("input.cov", "must be symmetric", c.tolist())
        try:
            factor = _psd_factor(c)
        except ValueError as err:
            raise CaseError("input.cov", f"must be positive semidefinite ({err})", c.tolist()) from None
        object.__setattr__(self, "mean_", m)
        object.__setattr__(self, "cov_", c)
        object.__setattr__(self, "_factor", factor)

    @property
    def dim(self):
        return self.mean_.size

    @property
    def factor(self) -> np.ndarray:
        """``A`` (dim, rank) with ``cov = A A^T``: ``x = mean + A z``, ``z ~ N(0, I_rank)`` (a copy)."""
        return self._factor.copy()

    @property
    def rank(self) -> int:
        """The dimension of the uncertainty (``dim`` for a regular gaussian)."""
        return self._factor.shape[1]

    @property
    def is_singular(self) -> bool:
        """Whether some input or direction is known exactly (``rank < dim``)."""
        return self.rank < self.dim

    @property
    def known(self) -> np.ndarray:
        """Indices of the inputs known exactly (variance 0)."""
        return np.flatnonzero(np.diag(self.cov_) == 0)

    def pdf(self, points):
        if self.is_singular:
            raise SingularDensityError(f"the gaussian input has rank {self.rank} < {self.dim} (inputs known exactly): "
                                       f"it has no density on R^{self.dim}; a case folds it into the first layer")
        from scipy import stats  # imported on use: keeps `mzpdf` quick to import

        return stats.multivariate_normal(self.mean_, self.cov_).pdf(np.atleast_2d(points)).reshape(-1)

    def sample(self, rng, n):
        if self.is_singular:
            return self.mean_ + rng.standard_normal((n, self.rank)) @ self._factor.T
        return rng.multivariate_normal(self.mean_, self.cov_, size=n, method="cholesky")

    def mean(self):
        return self.mean_.copy()

    def cov(self):
        return self.cov_.copy()

    def marginal_pdf(self, k, x):
        s = np.sqrt(self.cov_[k, k])
        if s == 0:
            raise SingularDensityError(f"input {k} is known exactly (the point {self.mean_[k]:g}): it has no density")
        return np.exp(-0.5 * ((np.asarray(x) - self.mean_[k]) / s) ** 2) / (np.sqrt(2.0 * np.pi) * s)

    def box(self, tail):
        r = -special.ndtri(tail) * np.sqrt(np.diag(self.cov_))
        return np.column_stack([self.mean_ - r, self.mean_ + r])

    def tail_mass(self, box):
        s = np.sqrt(np.diag(self.cov_))
        known = s == 0
        outside = (box[:, 0] > self.mean_) | (box[:, 1] < self.mean_)  # a known input: all or nothing
        safe = np.where(known, 1.0, s)
        cut = special.ndtr((box[:, 0] - self.mean_) / safe) + special.ndtr((self.mean_ - box[:, 1]) / safe)
        return float(np.sum(np.where(known, outside.astype(np.float64), cut)))

    def to_dict(self):
        return {"kind": "gaussian", "mean": self.mean_.tolist(), "cov": self.cov_.tolist()}


@INPUT_LAWS.register("uniform")
@dataclass(frozen=True)
class UniformInput(InputLaw):
    """Input uniform on the box ``[low, high]``."""

    low: np.ndarray
    high: np.ndarray
    kind: ClassVar[str] = "uniform"

    def __post_init__(self):
        lo = real_array(self.low, "input.low", 1)
        hi = real_array(self.high, "input.high", 1, (lo.size,))
        if np.any(hi <= lo):
            raise CaseError("input.high", "must be > input.low in every coordinate", hi.tolist())
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    @property
    def dim(self):
        return self.low.size

    def pdf(self, points):
        points = np.atleast_2d(points)
        inside = np.all((points >= self.low) & (points <= self.high), axis=1)
        return inside / np.prod(self.high - self.low)

    def sample(self, rng, n):
        return self.low + (self.high - self.low) * rng.random((n, self.dim))

    def mean(self):
        return 0.5 * (self.low + self.high)

    def cov(self):
        return np.diag((self.high - self.low) ** 2 / 12.0)

    def marginal_pdf(self, k, x):
        x = np.asarray(x)
        return ((x >= self.low[k]) & (x <= self.high[k])) / (self.high[k] - self.low[k])

    def box(self, tail):
        return np.column_stack([self.low, self.high])

    def tail_mass(self, box):
        inner_lo = np.maximum(box[:, 0], self.low)
        inner_hi = np.minimum(box[:, 1], self.high)
        frac = np.clip(inner_hi - inner_lo, 0, None) / (self.high - self.low)
        return float(1.0 - np.prod(frac))

    def to_dict(self):
        return {"kind": "uniform", "low": self.low.tolist(), "high": self.high.tolist()}


@INPUT_LAWS.register("mixture")
@dataclass(frozen=True)
class MixtureInput(InputLaw):
    """A finite mixture of :class:`GaussianInput` components with ``weights``."""

    weights: np.ndarray
    components: tuple[GaussianInput, ...]
    kind: ClassVar[str] = "mixture"

    def __post_init__(self):
        w = positive(real_array(self.weights, "input.weights", 1), "input.weights")
        comps = tuple(self.components)
        if len(comps) != w.size or w.size == 0:
            raise CaseError("input.weights", f"must have one entry per component ({len(comps)})", w.tolist())
        dims = {c.dim for c in comps}
        if len(dims) != 1:
            raise CaseError("input.components", "must all have the same dimension", sorted(dims))
        for i, c in enumerate(comps):
            if c.is_singular:
                raise CaseError(f"input.components[{i}].cov", "must be positive definite (inputs known exactly, a "
                                "std of 0 or a singular cov, are folded for kind = 'gaussian' only)", c.cov_.tolist())
        object.__setattr__(self, "weights", w / w.sum())
        object.__setattr__(self, "components", comps)

    @property
    def dim(self):
        return self.components[0].dim

    def pdf(self, points):
        return sum(w * c.pdf(points) for w, c in zip(self.weights, self.components))

    def sample(self, rng, n):
        counts = rng.multinomial(n, self.weights)
        parts = [c.sample(rng, k) for c, k in zip(self.components, counts)]
        out = np.concatenate(parts, axis=0)
        return out[rng.permutation(n)]

    def mean(self):
        return sum(w * c.mean_ for w, c in zip(self.weights, self.components))

    def cov(self):
        m = self.mean()
        return sum(w * (c.cov_ + np.outer(c.mean_ - m, c.mean_ - m)) for w, c in zip(self.weights, self.components))

    def marginal_pdf(self, k, x):
        return sum(w * c.marginal_pdf(k, x) for w, c in zip(self.weights, self.components))

    def box(self, tail):
        boxes = np.stack([c.box(tail) for c in self.components])
        return np.column_stack([boxes[:, :, 0].min(axis=0), boxes[:, :, 1].max(axis=0)])

    def tail_mass(self, box):
        return float(sum(w * c.tail_mass(box) for w, c in zip(self.weights, self.components)))

    def to_dict(self):
        return {
            "kind": "mixture",
            "weights": self.weights.tolist(),
            "components": [{k: v for k, v in c.to_dict().items() if k != "kind"} for c in self.components],
        }


@INPUT_LAWS.register("point")
@dataclass(frozen=True)
class PointInput(InputLaw):
    """A fixed input ``x``: the network conditioned on ``X_0 = x``."""

    x: np.ndarray
    kind: ClassVar[str] = "point"
    is_atomic: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "x", real_array(self.x, "input.x", 1))

    @property
    def dim(self):
        return self.x.size

    def pdf(self, points):
        raise CaseError("input.kind", "'point' has no density (it is an atom)", "point")

    def sample(self, rng, n):
        return np.broadcast_to(self.x, (n, self.dim)).copy()

    def mean(self):
        return self.x.copy()

    def cov(self):
        return np.zeros((self.dim, self.dim))

    def box(self, tail):
        return np.column_stack([self.x, self.x])

    def tail_mass(self, box):
        return 0.0

    def to_dict(self):
        return {"kind": "point", "x": self.x.tolist()}


def _gaussian_from(spec: dict, key: str, allow_uncertain: bool = True) -> GaussianInput:
    spec = dict(spec)
    _only(spec, {"mean", "cov", "std", "uncertain"} if allow_uncertain else {"mean", "cov", "std"}, key)
    if "mean" not in spec:
        raise CaseError(f"{key}.mean", "is required for a gaussian")
    mean = real_array(spec["mean"], f"{key}.mean", 1)
    if ("cov" in spec) == ("std" in spec):
        raise CaseError(f"{key}.cov", "give exactly one of 'cov' and 'std'", {k: spec.get(k) for k in ("cov", "std")})
    uncertain = np.arange(mean.size)
    if "uncertain" in spec:
        uncertain = _indices(spec["uncertain"], f"{key}.uncertain", mean.size)
    where = "" if "uncertain" not in spec else " (one per input.uncertain entry)"
    if "std" in spec:
        std = per_neuron(spec["std"], f"{key}.std", uncertain.size)
        for i in np.flatnonzero(std < 0):
            raise CaseError(f"{key}.std" + (f"[{i}]" if np.ndim(spec["std"]) else ""),
                            f"must be >= 0 (0 marks an input known exactly){where}", float(std[i]))
        block = np.diag(std**2)
    else:
        block = real_array(spec["cov"], f"{key}.cov", 2, (uncertain.size, uncertain.size))
    cov = np.zeros((mean.size, mean.size))
    cov[np.ix_(uncertain, uncertain)] = block
    try:
        return GaussianInput(mean, cov)
    except CaseError as err:
        value = block.tolist() if err.key == "input.cov" else err.value
        raise CaseError(err.key.replace("input", key, 1), err.rule, value) from None


def _indices(value, key: str, width: int) -> np.ndarray:
    """``input.uncertain``: distinct input indices in [0, width), as an array."""
    if not isinstance(value, (list, tuple)) or not value:
        raise CaseError(key, "must be a non-empty list of input indices (the inputs that are uncertain)", value)
    for i, k in enumerate(value):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise CaseError(f"{key}[{i}]", "must be an integer (an input index)", k)
        if not 0 <= k < width:
            raise CaseError(f"{key}[{i}]", f"must be an input index in [0, {width}) (the input has {width} "
                            "coordinates)", k)
    if len(set(value)) != len(value):
        raise CaseError(key, "must not repeat an index", list(value))
    return np.array(value, dtype=np.int64)  # std and cov entries follow this order


def _only(spec: dict, allowed: set, key: str) -> None:
    for name in spec:
        if name not in allowed:
            raise CaseError(f"{key}.{name}", f"is not a valid key here (valid: {sorted(allowed)})", spec[name])


def make_input(spec: dict | InputLaw, key: str = "input") -> InputLaw:
    """An input law from a case-file table (see the case-file reference)."""
    if isinstance(spec, InputLaw):
        return spec
    if not isinstance(spec, dict):
        raise CaseError(key, "must be a table with a 'kind'", spec)
    spec = dict(spec)
    kind = spec.pop("kind", "gaussian")
    INPUT_LAWS.get(kind, f"{key}.kind")
    if kind == "gaussian":
        return _gaussian_from(spec, key)
    if kind == "uniform":
        _only(spec, {"low", "high"}, key)
        for name in ("low", "high"):
            if name not in spec:
                raise CaseError(f"{key}.{name}", "is required for a uniform input")
        return UniformInput(spec["low"], spec["high"])
    if kind == "point":
        _only(spec, {"x"}, key)
        if "x" not in spec:
            raise CaseError(f"{key}.x", "is required for a point input")
        return PointInput(spec["x"])
    # mixture
    _only(spec, {"weights", "components"}, key)
    comps = spec.get("components")
    if not isinstance(comps, list) or not comps or not all(isinstance(c, dict) for c in comps):
        raise CaseError(f"{key}.components", "must be a non-empty list of tables {mean, cov|std}", comps)
    gauss = tuple(_gaussian_from(c, f"{key}.components[{i}]", False) for i, c in enumerate(comps))
    weights = spec.get("weights", [1.0] * len(gauss))
    return MixtureInput(weights, gauss)
