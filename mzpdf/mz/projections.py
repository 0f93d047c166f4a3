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

Norms (stated once, used for memory kernels, kappa and the truncation
estimate; docs/theory.md section 5): both projections measure densities in
L2(1/mu), ``||p||^2 = sum_j w_j p_j^2 / mu_j``, equivalently observables in
L2(mu), with ``mu`` the layer's own discretized law, in which the Koopman
operator is a contraction (Jensen). A reduced vector ``r`` has the norm of its
density ``E r`` (Gram matrix :attr:`Projection.reduced_gram`). Mori's ``P`` is
the L2(mu)-orthogonal projection; Chorin's is orthogonal only when ``nu`` is
the conditional law of the dropped neurons, and :attr:`Projection.norm` says
how far it is from that.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import linalg

from ..discretization.tensor_grid import TensorGrid
from .spec import CHORIN_REFERENCES, MORI_BASES

__all__ = ["Projection", "ChorinProjection", "MoriProjection", "CHORIN_REFERENCES", "MORI_BASES",
           "build_projection"]

_MU_FLOOR = 1e-300  # nodal densities below this count as this (the L2(1/mu) norm divides by mu)
L2_NORM = "L2(1/mu) (densities), L2(mu) (observables); mu the layer's law"


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

    # -- the L2(1/mu) norm (module doc) --------------------------------------
    @cached_property
    def mu(self) -> np.ndarray:
        """The layer's nodal density, floored at a tiny positive value, (J,)."""
        return np.maximum(np.asarray(self.weight, dtype=np.float64).reshape(-1), _MU_FLOOR)

    @cached_property
    def mass(self) -> float:
        """``sum_j w_j mu_j``: the layer's mass on its grid."""
        return float(self.grid.weights @ np.asarray(self.weight, dtype=np.float64).reshape(-1))

    @property
    def reduced_gram(self) -> np.ndarray:
        """``G`` with ``r^T G r = ||E r||^2_{L2(1/mu)}``, (dim, dim)."""
        raise NotImplementedError

    @cached_property
    def _gram_factor(self) -> np.ndarray:
        return np.linalg.cholesky(self.reduced_gram)

    @property
    def norm(self) -> float:
        """``||P||`` (equal to ``||Q||``) on L2(mu) observables, equivalently
        on L2(1/mu) densities; 1 for an orthogonal projection, 0 for ``P = I``."""
        raise NotImplementedError

    def reduced_norm(self, r: np.ndarray) -> float:
        """``||E r||_{L2(1/mu)}`` of one reduced vector."""
        return float(np.linalg.norm(self._gram_factor.T @ np.asarray(r).reshape(-1)))

    @property
    def error_factor(self) -> float:
        """``c`` with ``l1(kept marginals of E a, E b) <= c ||a - b||`` in
        :meth:`reduced_norm`: ``sqrt(mass)`` (Cauchy-Schwarz against mu)."""
        return float(np.sqrt(max(self.mass, 0.0)))

    def kernel_norm(self, kernel: np.ndarray, source: "Projection") -> float:
        """Operator norm of a reduced density kernel from ``source``'s reduced
        space to this one's, both in :meth:`reduced_norm`:
        ``||L_out^T K L_in^-T||_2`` with ``G = L L^T``."""
        scaled = linalg.solve_triangular(source._gram_factor, np.asarray(kernel).T, lower=True).T
        return float(np.linalg.norm(self._gram_factor.T @ scaled, 2))

    def density_rows(self) -> np.ndarray:
        """``sqrt(w / mu)``: scales a nodal density so that the Euclidean norm
        is its L2(1/mu) norm, (J,)."""
        return np.sqrt(self.grid.weights / self.mu)

    def complement_fn_transpose(self, y: np.ndarray) -> np.ndarray:
        """``Q_f^T y = W Q_d W^-1 y`` (Euclidean transpose of :meth:`complement_fn`,
        from the quadrature adjointness of the two halves), on columns (J, B)."""
        w = self.grid.weights[:, None]
        return w * self.complement(y / w)


@dataclass(frozen=True, eq=False)
class ChorinProjection(Projection):
    """Marginal (Chorin) projection with reference density ``nu`` of the
    dropped neurons; reduced coordinates are the kept marginal's nodal values.

    Attributes
    ----------
    reference : (size of the dropped grid,)
        ``nu`` at the dropped grid's nodes, normalized so that its quadrature
        integral is exactly 1 (which makes ``P`` exactly idempotent).
    weight : (J,)
        ``mu``, the layer's nodal density (defines the norm, not ``P``).
    """

    reference: np.ndarray = None
    weight: np.ndarray = None

    norm_name = L2_NORM

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
        object.__setattr__(proj, "weight", np.clip(np.asarray(density, dtype=np.float64).reshape(-1), 0.0, None))
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

    @cached_property
    def _fibres(self) -> tuple[np.ndarray, np.ndarray]:
        """Per kept node: ``m = int mu dx~`` and ``c = int nu^2 / mu dx~``."""
        mu = self._split(self.mu[:, None])[:, :, 0]
        w = self.dropped_grid.weights
        return mu @ w, (1.0 / mu) @ (w * self.reference**2)

    @cached_property
    def reduced_gram(self):
        """Diagonal: ``||E a||^2 = sum_x^ w^ a^2 c(x^)``, ``c = int nu^2 / mu dx~``
        (``>= 1 / m(x^)``, with equality when nu is mu's conditional law)."""
        return np.diag(self.kept_grid.weights * self._fibres[1])

    @cached_property
    def _gram_factor(self):
        return np.sqrt(self.reduced_gram)

    @cached_property
    def norm(self):
        """``max_x^ sqrt(m(x^) c(x^))``: ``P`` acts fibre by fibre as the rank-one
        map ``u -> <u, nu>``, whose norm in L2(mu(.|x^)) is
        ``sqrt(1 + chi^2(nu || mu(.|x^)))``; 0 when nothing is dropped."""
        if not self.dropped:
            return 0.0
        m, c = self._fibres
        return float(np.sqrt(np.max(m * c)))

    def kernel_norm(self, kernel, source):
        g_out = np.sqrt(np.diag(self.reduced_gram))
        g_in = np.sqrt(np.diag(source.reduced_gram))
        return float(np.linalg.norm(g_out[:, None] * np.asarray(kernel) / g_in[None, :], 2))


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

    norm_name = L2_NORM

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

    @property
    def reduced_gram(self):
        """``||E a||^2_{L2(1/mu)} = a^T G a`` with ``G`` the Gram matrix."""
        return self.gram

    @property
    def norm(self):
        """1: ``P`` is the L2(mu)-orthogonal projection onto the basis."""
        return 1.0


def build_projection(spec, grid: TensorGrid, density: np.ndarray) -> "Projection":
    """The projection of one layer (its grid and nodal density) that the
    :class:`~mzpdf.mz.spec.ProjectionSpec` ``spec`` describes."""
    if spec.kind == "chorin":
        return ChorinProjection.build(grid, spec.keep, density, spec.reference)
    return MoriProjection.build(grid, spec.keep, density, spec.basis)
