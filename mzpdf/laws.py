"""The law of one layer, as every result offers it (``law(n)``).

:class:`Law` is the interface: ``mean`` (N,), ``cov`` (N, N), ``mass``,
``marginal(i, x)`` and ``joint(i, j, x, y)``. A method's Solution gives a
:class:`FunctionLaw` (its own functions), an :class:`AtomLaw` (a point) or a
:class:`MomentLaw` (moments, no density); results read from a file give a
:class:`SummaryLaw` (the stored summary, interpolated).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import SingularDensityError

__all__ = ["Law", "FunctionLaw", "AtomLaw", "SummaryLaw", "MomentLaw"]


class Law:
    """The law of one layer: ``mean`` (N,), ``cov`` (N, N), ``mass``,
    ``marginal(i, x)`` (density of neuron i at the points ``x``, any shape)
    and ``joint(i, j, x, y)`` (the 2-D marginal on the grid ``x`` by ``y``)."""

    mean: np.ndarray
    cov: np.ndarray
    mass: float

    def marginal(self, i: int, x) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def joint(self, i: int, j: int, x, y) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def _check(self, *neurons: int) -> None:
        for i in neurons:
            if not 0 <= int(i) < self.mean.size:
                raise IndexError(f"neuron {i} out of range for a layer of {self.mean.size} neurons")


class FunctionLaw(Law):
    """A law given by its moments and two functions: ``marginal_fn(i, x)``
    for 1-D arrays ``x`` and ``joint_fn(i, j, x, y)`` (or None)."""

    def __init__(self, mass, mean, cov, marginal_fn: Callable, joint_fn: Callable | None = None, what: str = ""):
        self.mass, self.mean, self.cov = float(mass), np.asarray(mean), np.asarray(cov)
        self._marginal, self._joint, self._what = marginal_fn, joint_fn, what

    def marginal(self, i, x):
        self._check(i)
        x = np.asarray(x, dtype=np.float64)
        return np.asarray(self._marginal(int(i), x.ravel())).reshape(x.shape)

    def joint(self, i, j, x, y):
        self._check(i, j)
        if self._joint is None:
            raise NotImplementedError(f"{self._what}: no 2-D marginals of neurons {i} and {j}")
        return self._joint(int(i), int(j), np.asarray(x, dtype=np.float64).ravel(),
                           np.asarray(y, dtype=np.float64).ravel())


class AtomLaw(Law):
    """The law of a layer that is one point (after a point input)."""

    def __init__(self, x0: np.ndarray):
        self.mean, self.cov, self.mass = np.asarray(x0), np.zeros((x0.size, x0.size)), 1.0

    def marginal(self, i, x):
        raise SingularDensityError(f"the layer is the point {self.mean.tolist()}: it has no density")

    joint = marginal


class SummaryLaw(Law):
    """A layer's law from its stored summary (a result file, or a sampling
    method): moments as stored, densities linearly interpolated between the
    stored abscissae (cubic splines with ``cubic``, clipped at 0: for smooth
    densities on fine abscissae, whose linear interpolation error ~h^2 f''/8
    is ~5e-4 in L1 for a peak of width 0.15 on 201 points) and 0 outside them."""

    def __init__(self, layer, cubic: bool = False):
        self.mean, self.cov, self.mass, self._layer = layer.mean, layer.cov, float(layer.mass), layer
        self._cubic = cubic

    def marginal(self, i, x):
        self._check(i)
        x = np.asarray(x, dtype=np.float64)
        xs, pdf = self._layer.marginal_x[i], self._layer.marginal_pdf[i]
        if np.all(np.isinf(pdf)):  # stored so by results.atom_summary
            return AtomLaw(self.mean).marginal(i, x)
        if not np.all(np.isfinite(pdf)):  # NaN: a layer stored without a density
            raise SingularDensityError(f"layer with mean {np.round(self.mean, 6).tolist()} has no density: it is "
                                       "a deterministic map of the layer before it (a noiseless layer), so only "
                                       "its mean and covariance were stored")
        if not self._cubic:
            return np.interp(x.ravel(), xs, pdf, left=0.0, right=0.0).reshape(x.shape)
        from scipy.interpolate import CubicSpline  # on use: reading a result file stays quick (0.25 s)

        t = x.ravel()
        out = np.maximum(CubicSpline(xs, pdf)(t), 0.0)
        out[(t < xs[0]) | (t > xs[-1])] = 0.0
        return out.reshape(x.shape)

    def joint(self, i, j, x, y):
        self._check(i, j)
        if self._layer.joint is None or (int(i), int(j)) != (0, 1):
            raise NotImplementedError(f"the stored results hold the joint of neurons 0 and 1 only "
                                      f"(asked for {i} and {j})")
        from scipy.interpolate import RegularGridInterpolator  # on use (above)

        gx, gy, pdf = self._layer.joint
        X, Y = np.meshgrid(np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel(),
                           indexing="ij")
        f = RegularGridInterpolator((gx, gy), pdf, bounds_error=False, fill_value=0.0)
        return f(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)



class MomentLaw(SummaryLaw):
    """A layer whose law has moments but no density (the push-forward of the
    layer before it through a noiseless layer): ``marginal`` and ``joint``
    raise :class:`~mzpdf.errors.SingularDensityError` saying ``why``."""

    def __init__(self, layer, why: str):
        super().__init__(layer)
        self._why = why

    def marginal(self, i, x):
        self._check(i)
        raise SingularDensityError(self._why)

    def joint(self, i, j, x, y):
        self._check(i, j)
        return self.marginal(i, x)
