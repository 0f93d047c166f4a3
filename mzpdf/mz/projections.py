"""Projections of one layer's densities and observables onto kept neurons
(SPEC 4), on tensor grids.

A projection ``P`` is stored through its two halves, a *restriction* ``R``
from full nodal values to reduced coordinates and an *extension* ``E`` back,
with ``R E = I`` so that ``P = E R`` is idempotent. Each projection acts on
densities and, as the adjoint under the quadrature pairing
``<u, p> = sum_j w_j u_j p_j``, on observables:

============  ===============================  ===================================
              density side                     observable side
============  ===============================  ===================================
Chorin        ``E m = m(x^) nu(x~)``,           ``E s = s(x^)`` (constant in x~),
              ``R p = int p dx~`` (marginal)    ``R u = int u nu dx~``
Mori          ``E a = mu phi^T a``,             ``E b = phi^T b``,
              ``R p = G^-1 <phi, p>``           ``R u = G^-1 <phi, u>_mu``
============  ===============================  ===================================

``pairing`` is the matrix ``H`` with ``<E_f s, E_d r> = s^T H r``; memory
kernels of the observable equation are ``H^-1 K^T H`` of the density ones.

Norms (stated once, used for memory kernels and kappa): Chorin uses L1 on
densities (its dual, the sup norm, on observables), under which ``P`` never
expands mass; Mori uses L2(1/mu) on densities, equivalently L2(mu) on
observables, in which ``P`` is the orthogonal projection.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import linalg

from ..discretization.grid import TensorGrid
from .spec import CHORIN_REFERENCES, MORI_BASES

__all__ = ["Projection", "ChorinProjection", "MoriProjection", "CHORIN_REFERENCES", "MORI_BASES"]



@dataclass(frozen=True, eq=False)
class Projection:
    """Common part: the layer grid and the kept neurons.

    Attributes
    ----------
    grid : TensorGrid
        The layer's grid.
    keep : tuple of int
        Kept neurons, increasing.
    """

    grid: TensorGrid
    keep: tuple

    norm_name = ""

    @cached_property
    def dropped(self) -> tuple:
        return tuple(k for k in range(self.grid.ndim) if k not in self.keep)

    @cached_property
    def kept_grid(self) -> TensorGrid:
        return TensorGrid(tuple(self.grid.rules[k] for k in self.keep))

    @property
    def dim(self) -> int:
        """Number of reduced coordinates."""
        raise NotImplementedError

    @property
    def pairing(self) -> np.ndarray:
        raise NotImplementedError

    # -- the four maps, on columns (J, B) <-> (dim, B) ----------------------
    def restrict(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def extend(self, r: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def restrict_fn(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def extend_fn(self, s: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def complement(self, p: np.ndarray) -> np.ndarray:
        """``Q p = p - E R p`` on densities."""
        return p - self.extend(self.restrict(p))

    def complement_fn(self, u: np.ndarray) -> np.ndarray:
        """``Q u = u - E R u`` on observables."""
        return u - self.extend_fn(self.restrict_fn(u))

    def kept_marginal(self, r: np.ndarray) -> np.ndarray:
        """Nodal values on :attr:`kept_grid` of the kept-neuron marginal of the
        density ``E r``, (kept_grid.size,) for one reduced vector."""
        full = self.extend(np.asarray(r).reshape(self.dim, 1))[:, 0]
        return np.asarray(self.grid.marginal(full, self.keep)).reshape(-1)

    def l1(self, a: np.ndarray, b: np.ndarray) -> float:
        """L1 distance of two kept marginals (nodal, on :attr:`kept_grid`)."""
        return float(self.kept_grid.weights @ np.abs(np.asarray(a) - b))

    def kept_pdf(self, nodal: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``(kept, m)``: the 1-D marginals of a nodal kept marginal,
        interpolated at abscissae ``rows[i]`` for kept neuron i."""
        grid = self.kept_grid
        return np.stack([grid.rules[i].interpolation_matrix(rows[i]) @ grid.marginal(nodal, i)
                         for i in range(grid.ndim)])

    def kernel_norm(self, kernel: np.ndarray, source: "Projection") -> float:
        """Operator norm of a reduced density kernel from ``source``'s reduced
        space to this one's, in this projection's norm (:attr:`norm_name`)."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class ChorinProjection(Projection):
    """Marginal (Chorin) projection with reference density ``nu`` of the
    dropped neurons; reduced coordinates are the kept marginal's nodal values.

    Attributes
    ----------
    reference : (size of the dropped grid,)
        ``nu`` at the dropped grid's nodes, normalized so that its quadrature
        integral is exactly 1 (which makes ``P`` exactly idempotent).
    """

    reference: np.ndarray = None

    norm_name = "L1 (densities)"

    @classmethod
    def build(cls, grid: TensorGrid, keep, density: np.ndarray, reference: str = "marginal") -> "ChorinProjection":
        """The projection of one layer, ``nu`` chosen by ``reference``: the
        layer's own dropped marginal, the gaussian with its mean and covariance,
        or uniform on the dropped box."""
        proj = cls(grid, tuple(sorted(keep)), np.ones(1))
        drop = proj.dropped_grid
        if not proj.dropped:
            nu = np.ones(1)
        elif reference == "uniform":
            nu = np.ones(drop.size)
        else:
            nu = np.asarray(grid.marginal(density, proj.dropped)).reshape(-1)
            if reference == "gaussian":
                _, mean, cov = drop.moments(nu)
                centred = drop.points - mean
                nu = np.exp(-0.5 * np.einsum("pi,ij,pj->p", centred, np.linalg.inv(cov), centred))
            elif reference != "marginal":
                raise ValueError(f"reference must be one of {CHORIN_REFERENCES}, got {reference!r}")
        nu = np.clip(nu, 0.0, None)
        object.__setattr__(proj, "reference", nu / (drop.weights @ nu))
        return proj

    @cached_property
    def dropped_grid(self) -> TensorGrid:
        return TensorGrid(tuple(self.grid.rules[k] for k in self.dropped))

    @property
    def dim(self) -> int:
        return self.kept_grid.size

    @cached_property
    def pairing(self) -> np.ndarray:
        return np.diag(self.kept_grid.weights)

    @cached_property
    def _order(self) -> tuple:
        return self.keep + self.dropped

    def _split(self, v: np.ndarray) -> np.ndarray:
        """(J, B) -> (kept size, dropped size, B)."""
        b = v.shape[1]
        t = v.reshape(self.grid.shape + (b,)).transpose(self._order + (self.grid.ndim,))
        return t.reshape(self.kept_grid.size, self.dropped_grid.size, b)

    def _join(self, t: np.ndarray) -> np.ndarray:
        b = t.shape[2]
        shape = tuple(self.grid.shape[k] for k in self._order) + (b,)
        inverse = tuple(np.argsort(self._order)) + (self.grid.ndim,)
        return t.reshape(shape).transpose(inverse).reshape(self.grid.size, b)

    def restrict(self, p):
        return np.einsum("keb,e->kb", self._split(p), self.dropped_grid.weights)

    def extend(self, r):
        return self._join(r[:, None, :] * self.reference[None, :, None])

    def restrict_fn(self, u):
        return np.einsum("keb,e->kb", self._split(u), self.dropped_grid.weights * self.reference)

    def extend_fn(self, s):
        return self._join(np.broadcast_to(s[:, None, :], (s.shape[0], self.dropped_grid.size, s.shape[1])))

    def kept_marginal(self, r):
        return np.asarray(r).reshape(-1)

    @cached_property
    def node_split(self) -> tuple[np.ndarray, np.ndarray]:
        """For every full node j: its kept-grid index and the product of its
        dropped-axis weights (the restriction of the unit vector e_j)."""
        multi = np.unravel_index(np.arange(self.grid.size), self.grid.shape)
        weight = np.ones(self.grid.size)
        for k in self.dropped:
            weight *= self.grid.rules[k].weights[multi[k]]
        return self._flat_index(multi, self.keep), weight

    @cached_property
    def dropped_index(self) -> np.ndarray:
        """For every full node j: its index in the dropped grid."""
        return self._flat_index(np.unravel_index(np.arange(self.grid.size), self.grid.shape), self.dropped)

    def _flat_index(self, multi, axes) -> np.ndarray:
        if not axes:
            return np.zeros(self.grid.size, dtype=np.int64)
        return np.ravel_multi_index(tuple(multi[k] for k in axes), tuple(self.grid.shape[k] for k in axes))

    def kernel_norm(self, kernel, source):
        """``max_i sum_r v_r |K_ri| / w_i``: the L1 operator norm (exact, as the
        unit ball's extreme points are the scaled nodal unit vectors)."""
        cols = self.kept_grid.weights @ np.abs(kernel)
        return float(np.max(cols / source.kept_grid.weights))


@dataclass(frozen=True, eq=False)
class MoriProjection(Projection):
    """Finite-rank (Mori) projection onto polynomials of the kept neurons,
    orthogonal in L2(mu) with mu the layer's density.

    Attributes
    ----------
    weight : (J,)
        ``mu`` at the layer's nodes.
    basis : (J, d)
        Basis functions at the nodes (monomials of the standardized kept
        neurons, which span the same space as those of the raw ones).
    """

    weight: np.ndarray = None
    basis: np.ndarray = None

    norm_name = "L2(1/mu) (densities), L2(mu) (observables)"

    @classmethod
    def build(cls, grid: TensorGrid, keep, density: np.ndarray, basis: str = "linear") -> "MoriProjection":
        keep = tuple(sorted(keep))
        mu = np.clip(np.asarray(density, dtype=np.float64).reshape(-1), 0.0, None)
        _, mean, cov = grid.moments(mu)
        z = (grid.points[:, keep] - mean[list(keep)]) / np.sqrt(np.diag(cov)[list(keep)])
        columns = [np.ones(grid.size)]
        if basis in ("linear", "quadratic"):
            columns += [z[:, i] for i in range(len(keep))]
        if basis == "quadratic":
            columns += [z[:, i] * z[:, j] for i in range(len(keep)) for j in range(i, len(keep))]
        if basis not in MORI_BASES:
            raise ValueError(f"basis must be one of {MORI_BASES}, got {basis!r}")
        return cls(grid, keep, mu, np.stack(columns, axis=1))

    @property
    def dim(self) -> int:
        return self.basis.shape[1]

    @cached_property
    def _wmu(self) -> np.ndarray:
        return self.grid.weights * self.weight

    @cached_property
    def gram(self) -> np.ndarray:
        """``G_ij = <phi_i, phi_j>_mu``."""
        return self.basis.T @ (self._wmu[:, None] * self.basis)

    @cached_property
    def _cho(self):
        return linalg.cho_factor(self.gram)

    @property
    def pairing(self) -> np.ndarray:
        return self.gram

    def restrict(self, p):
        return linalg.cho_solve(self._cho, self.basis.T @ (self.grid.weights[:, None] * p))

    def extend(self, r):
        return self.weight[:, None] * (self.basis @ r)

    def restrict_fn(self, u):
        return linalg.cho_solve(self._cho, self.basis.T @ (self._wmu[:, None] * u))

    def extend_fn(self, s):
        return self.basis @ s

    def kernel_norm(self, kernel, source):
        """``||L_out^T K L_in^-T||_2`` with ``G = L L^T``: the operator norm for
        ``||a|| = ||E a||_{L2(1/mu)} = sqrt(a^T G a)``."""
        l_out = np.linalg.cholesky(self.gram)
        l_in = np.linalg.cholesky(source.gram)
        return float(np.linalg.norm(l_out.T @ linalg.solve_triangular(l_in, kernel.T, lower=True).T, 2))
