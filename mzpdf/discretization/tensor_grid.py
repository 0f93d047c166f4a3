"""Tensor grids: nodal values of a function of N variables on a product of
1-D rules (SPEC 3.1). Everything n-D is built from the 1-D rules.

Point sets are ``(n_points, ndim)``; nodal values are flat arrays of length
``grid.size`` in C order (last neuron fastest), or arrays of ``grid.shape``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .rules import Rule1D, make_rule

__all__ = ["TensorGrid", "GridFunction"]


@dataclass(frozen=True, eq=False)
class TensorGrid:
    """Product of 1-D rules, one per neuron.

    Parameters
    ----------
    rules : tuple of Rule1D
    """

    rules: tuple[Rule1D, ...]

    @classmethod
    def from_box(cls, box: np.ndarray, nodes: int, rule: str = "gauss_legendre") -> "TensorGrid":
        """A grid of ``nodes`` points per axis of ``rule`` on ``box`` (ndim, 2)."""
        box = np.asarray(box, dtype=np.float64).reshape(-1, 2)
        return cls(tuple(make_rule(rule, nodes, lo, hi) for lo, hi in box))

    @property
    def ndim(self) -> int:
        return len(self.rules)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(r.size for r in self.rules)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def box(self) -> np.ndarray:
        return np.array([[r.lo, r.hi] for r in self.rules])

    @property
    def axes(self) -> tuple[np.ndarray, ...]:
        """1-D nodes per neuron."""
        return tuple(r.nodes for r in self.rules)

    @cached_property
    def points(self) -> np.ndarray:
        """All nodes, ``(size, ndim)``, C order."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=1)

    @cached_property
    def weights(self) -> np.ndarray:
        """Product quadrature weights, ``(size,)``."""
        w = np.ones(1)
        for r in self.rules:
            w = np.multiply.outer(w, r.weights).reshape(-1)
        return w

    # -- operations on nodal values ----------------------------------------
    def integrate(self, values: np.ndarray) -> float:
        return float(self.weights @ np.asarray(values).reshape(-1))

    def marginal(self, values: np.ndarray, axes: int | tuple[int, ...]) -> np.ndarray:
        """Nodal values of the marginal onto ``axes`` (one neuron or several),
        shape ``tuple(shape[a] for a in axes)``."""
        keep = (axes,) if np.ndim(axes) == 0 else tuple(axes)
        v = np.asarray(values).reshape(self.shape)
        for axis in reversed(range(self.ndim)):
            if axis not in keep:
                v = np.tensordot(v, self.rules[axis].weights, axes=([axis], [0]))
        order = np.argsort(np.argsort(keep))  # v's axes are in increasing order of `keep`
        return np.transpose(v, order) if len(keep) > 1 else v

    def moments(self, values: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``(mass, mean, cov)`` of the density with these nodal values; mean and
        covariance are those of the normalized density."""
        wv = self.weights * np.asarray(values).reshape(-1)
        mass = float(wv.sum())
        mean = (self.points.T @ wv) / mass
        centred = self.points - mean
        cov = (centred.T * wv) @ centred / mass
        return mass, mean, cov

    def interpolate(self, values: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Tensor-product interpolation of nodal ``values`` at ``points`` (P, ndim);
        zero outside the box."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        mats = [r.interpolation_matrix(points[:, k]) for k, r in enumerate(self.rules)]
        v = np.asarray(values).reshape(self.shape)
        out = np.tensordot(mats[-1], v, axes=([1], [self.ndim - 1]))  # (P, m_0, ..., m_{N-2})
        for k in range(self.ndim - 2, -1, -1):
            out = np.einsum("p...i,pi->p...", out, mats[k])
        return out


@dataclass(frozen=True, eq=False)
class GridFunction:
    """A function (density or observable) given by its nodal values on a grid.

    Attributes
    ----------
    grid : TensorGrid
    values : (grid.size,) array
    """

    grid: TensorGrid
    values: np.ndarray

    def __post_init__(self):
        v = np.ascontiguousarray(self.values, dtype=np.float64).reshape(-1)
        if v.size != self.grid.size:
            raise ValueError(f"values must have grid.size = {self.grid.size} entries, got {v.size}")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.grid.interpolate(self.values, points)

    def integral(self) -> float:
        return self.grid.integrate(self.values)

    def moments(self):
        return self.grid.moments(self.values)

    def marginal(self, k: int, x: np.ndarray | None = None) -> np.ndarray:
        """Marginal density of neuron ``k`` at its nodes, or interpolated at ``x``."""
        nodal = self.grid.marginal(self.values, k)
        return nodal if x is None else self.grid.rules[k].interpolation_matrix(x) @ nodal
