"""The transfer (Perron-Frobenius) and Koopman operators of one layer on
tensor grids: an adjoint pair sharing one discretized transition.

Discretely, with source nodes x_j, weights w_j and target nodes y_i, v_i,

    (N p)_i = sum_j K_ij w_j p_j,        (M u)_j = sum_i K_ij v_i u_i,
    K_ij = prod_k rho_k(y_ik - F_k(x_j)),

so that sum_j w_j p_j (M u)_j = sum_i v_i u_i (N p)_i holds to round-off.

Two algorithms compute the sums. ``dense`` factorizes the kernel over output
neurons and contracts it with BLAS matrix products (a Khatri-Rao structure);
``windowed`` visits, for each source node, only the target nodes within the
noise's window (where rho > 1e-16 rho(0)), with numba kernels. ``cuda`` runs
the whole pair sum on the GPU (:mod:`mzpdf.solvers.grid.cuda`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ..._numba import num_threads
from ..._threads import one_blas_thread
from ...discretization.tensor_grid import TensorGrid
from ...errors import SingularDensityError
from ...network.network import Layer
from ...options import is_auto
from ._kernels import factor_tables_serial, fill_factor_tables, koopman_windowed, transfer_windowed
from .cuda import pair_sum

__all__ = ["GridTransition", "TransferOperator", "KoopmanOperator", "assemble_transition"]

# Elements of the largest temporary block of the dense algorithm (64 MiB).
_DENSE_BLOCK = 8 * 2**20
# A visited pair of the windowed numba sum costs about this many times more than a
# dense BLAS pair
# on the benchmark machine (scripts/bench_grid.py); "auto" windows only when
# the windows cut the work by more than this factor.
WINDOW_ADVANTAGE = 10.0
# Kernel pairs (target size x sources) up to which the dense sums run on one
# thread (serial factor tables, one-thread BLAS): below it, waking a BLAS or
# numba thread team costs more than the sum (on a loaded 2-core machine, 100x
# more for a 40 x 1600 x 40 product); 2^24 pairs take ~10 ms. The numbers are
# the same bits either way (OpenBLAS splits a product over its rows and
# columns, never over the summed index), which the stored references need:
# the automatic boxes amplify round-off (solve.GridSolver._target_box).
SERIAL_PAIRS = 2**24
# Factor-table entries (8 bytes each) a small transition keeps for its sums
# and duality check (8 MiB; quickstart at 64 nodes: 2 x 64 x 4096).
KEPT_TABLES = 2**20


@dataclass(frozen=True, eq=False)
class GridTransition:
    """One layer's transition kernel discretized between a set of source nodes
    and a target tensor grid.

    Attributes
    ----------
    layer : Layer or ComposedLayer
        Its ``forward``, ``n_out`` and (not ``none``) ``noise`` are used.
    source_points : (J, n_in)
    source_weights : (J,)
        Quadrature weights of the source nodes (1 for an atom).
    target : TensorGrid
    algorithm : {"dense", "windowed"}
    """

    layer: Layer
    source_points: np.ndarray
    source_weights: np.ndarray
    target: TensorGrid
    algorithm: str = "auto"

    def __post_init__(self):
        if self.layer.noise.is_deterministic:
            raise SingularDensityError(
                "a layer with noise kind 'none' maps densities to singular measures that no grid can hold: "
                "compose it with the noisy layer after it (Network.collapsed, as GridSolver.propagate does), "
                "give the layer noise, or use method = 'qmc'"
            )
        if self.algorithm not in ("auto", "dense", "windowed", "cuda"):
            raise ValueError(f"algorithm must be 'auto', 'dense', 'windowed' or 'cuda', got {self.algorithm!r}")
        if self.target.ndim != self.layer.n_out:
            raise ValueError(f"target grid has {self.target.ndim} axes, the layer {self.layer.n_out} outputs")
        if len(set(self.target.shape)) != 1:
            raise ValueError("target grids must have the same number of nodes on every axis")
        if is_auto(self.algorithm):
            object.__setattr__(self, "algorithm", self._choose_algorithm())

    @cached_property
    def mapped(self) -> np.ndarray:
        """``F(x_j)``, shape (J, n_out)."""
        return np.ascontiguousarray(self.layer.forward(self.source_points))

    @cached_property
    def _ynodes(self) -> np.ndarray:
        return np.ascontiguousarray(np.stack(self.target.axes))

    @cached_property
    def windows(self) -> tuple[np.ndarray, np.ndarray]:
        """Per source and output neuron, the half-open range of target node
        indices where the noise density is not negligible: (lo, hi), (J, n_out)."""
        r = self.layer.noise.window_radius()
        lo = np.empty(self.mapped.shape, dtype=np.int64)
        hi = np.empty(self.mapped.shape, dtype=np.int64)
        for k, axis in enumerate(self.target.axes):
            lo[:, k] = np.searchsorted(axis, self.mapped[:, k] - r[k], side="left")
            hi[:, k] = np.searchsorted(axis, self.mapped[:, k] + r[k], side="right")
        return lo, hi

    def _choose_algorithm(self) -> str:
        lo, hi = self.windows
        window_pairs = float(np.prod(hi - lo, axis=1, dtype=np.float64).sum())
        dense_pairs = float(self.target.size) * self.mapped.shape[0]
        return "windowed" if window_pairs * WINDOW_ADVANTAGE < dense_pairs else "dense"

    @cached_property
    def inbox_mass(self) -> np.ndarray:
        """Exact probability that ``F(x_j) + xi`` falls in the target box, (J,)."""
        box = self.target.box
        noise = self.layer.noise
        return np.prod(noise.cdf(box[:, 1] - self.mapped) - noise.cdf(box[:, 0] - self.mapped), axis=1)

    # -- the two sums -------------------------------------------------------
    def forward_sum(self, coeffs: np.ndarray) -> np.ndarray:
        """``out_i = sum_j K_ij coeffs_j``, (target.size,)."""
        coeffs = np.ascontiguousarray(coeffs, dtype=np.float64)
        if self.algorithm == "cuda":
            return pair_sum(self.layer.noise.code, self.layer.noise.scale, self.target.points, self.mapped, coeffs)
        if self.algorithm == "windowed":
            lo, hi = self.windows
            out = np.zeros((num_threads(), self.target.size))
            noise = self.layer.noise
            transfer_windowed(noise.code, noise.scale, self._ynodes, self.mapped, coeffs, lo, hi, out)
            return out.sum(axis=0)
        return self._dense(coeffs, transpose=False)

    @property
    def is_small(self) -> bool:
        """Whether the kernel has at most :data:`SERIAL_PAIRS` pairs (one thread pays)."""
        return float(self.target.size) * self.mapped.shape[0] <= SERIAL_PAIRS

    def backward_sum(self, zvalues: np.ndarray) -> np.ndarray:
        """``out_j = sum_i K_ij zvalues_i``, (J,)."""
        zvalues = np.ascontiguousarray(zvalues, dtype=np.float64).reshape(-1)
        if self.algorithm == "cuda":
            return pair_sum(self.layer.noise.code, self.layer.noise.scale, self.mapped, self.target.points, zvalues)
        if self.algorithm == "windowed":
            lo, hi = self.windows
            out = np.empty(self.mapped.shape[0])
            noise = self.layer.noise
            koopman_windowed(noise.code, noise.scale, self._ynodes, self.mapped, zvalues, lo, hi, out)
            return out
        return self._dense(zvalues, transpose=True)

    # -- many vectors at once --------------------------------------------------
    def kernel_blocks(self, max_elements: int = _DENSE_BLOCK):
        """Yield ``(j0, j1, K[:, j0:j1])``: the kernel matrix ``K_ij`` of shape
        (target.size, J) in blocks of source columns, each at most
        ``max_elements`` entries (built from the per-neuron factor tables)."""
        n_dim, m = self.target.ndim, self.target.shape[0]
        n_src = self.mapped.shape[0]
        step = max(1, max_elements // self.target.size)
        noise = self.layer.noise
        for j0 in range(0, n_src, step):
            j1 = min(j0 + step, n_src)
            tables = np.empty((n_dim, m, j1 - j0))
            fill_factor_tables(noise.code, noise.scale, self._ynodes, self.mapped[j0:j1], tables)
            block = tables[0]
            for k in range(1, n_dim):  # Khatri-Rao product, C order over output neurons
                block = (block[:, None, :] * tables[k][None, :, :]).reshape(-1, j1 - j0)
            yield j0, j1, block

    def forward_matmat(self, coeffs: np.ndarray) -> np.ndarray:
        """``out[:, b] = sum_j K_ij coeffs[j, b]`` for a block of vectors: (J, B) -> (target.size, B).

        The kernel is formed block by block and applied with one matrix
        product per block, so B vectors cost little more than one."""
        coeffs = np.asarray(coeffs, dtype=np.float64)
        out = np.zeros((self.target.size, coeffs.shape[1]))
        for j0, j1, block in self.kernel_blocks():
            out += block @ coeffs[j0:j1]
        return out

    def backward_matmat(self, zvalues: np.ndarray) -> np.ndarray:
        """``out[j, b] = sum_i K_ij zvalues[i, b]``: (target.size, B) -> (J, B)."""
        zvalues = np.asarray(zvalues, dtype=np.float64)
        out = np.empty((self.mapped.shape[0], zvalues.shape[1]))
        for j0, j1, block in self.kernel_blocks():
            out[j0:j1] = block.T @ zvalues
        return out

    def _dense(self, vec: np.ndarray, transpose: bool) -> np.ndarray:
        if self.is_small:
            with one_blas_thread():
                return self._dense_blocks(vec, transpose, factor_tables_serial)
        return self._dense_blocks(vec, transpose, fill_factor_tables)

    @property
    def keeps_tables(self) -> bool:
        """Whether the factor tables ``rho_k(y_ki - F_k(x_j))``, (N, M, J), are
        filled once (on one thread) and kept for the sums and the solver's
        duality check: small kernels (:attr:`is_small`) whose tables hold at
        most :data:`KEPT_TABLES` numbers."""
        return self.is_small and self.target.ndim * self.target.shape[0] * self.mapped.shape[0] <= KEPT_TABLES

    @cached_property
    def kept_tables(self) -> np.ndarray:
        """The kept factor tables (see :attr:`keeps_tables`), (N, M, J)."""
        return self._fill_serial()

    def _fill_serial(self) -> np.ndarray:
        tables = np.empty((self.target.ndim, self.target.shape[0], self.mapped.shape[0]))
        noise = self.layer.noise
        factor_tables_serial(noise.code, noise.scale, self._ynodes, self.mapped, tables)
        return tables

    def _dense_blocks(self, vec: np.ndarray, transpose: bool, fill) -> np.ndarray:
        n_dim, m = self.target.ndim, self.target.shape[0]
        n_src = self.mapped.shape[0]
        rows = m ** (n_dim - 1)  # Khatri-Rao rows over all output neurons but the last
        step = max(1, _DENSE_BLOCK // max(rows, n_dim * m))
        noise = self.layer.noise
        out = np.zeros(n_src) if transpose else np.zeros((rows, m))
        z = vec.reshape(rows, m) if transpose else None
        for j0 in range(0, n_src, step):
            j1 = min(j0 + step, n_src)
            if fill is factor_tables_serial and self.keeps_tables:  # the same numbers, kept
                tables = self.kept_tables[:, :, j0:j1]
            else:
                tables = np.empty((n_dim, m, j1 - j0))
                fill(noise.code, noise.scale, self._ynodes, self.mapped[j0:j1], tables)
            kr = np.ones((1, j1 - j0))
            for k in range(n_dim - 1):  # Khatri-Rao product, C order over neurons 0..N-2
                kr = (kr[:, None, :] * tables[k][None, :, :]).reshape(-1, j1 - j0)
            if transpose:
                out[j0:j1] = np.einsum("rj,rj->j", kr, z @ tables[-1])
            else:
                out += (kr * vec[j0:j1]) @ tables[-1].T
        return out.reshape(-1)


def assemble_transition(layer: Layer, source_points, source_weights, target: TensorGrid, algorithm="auto") -> GridTransition:
    """Discretize ``layer`` between source nodes and a target grid."""
    return GridTransition(
        layer,
        np.ascontiguousarray(np.atleast_2d(source_points), dtype=np.float64),
        np.ascontiguousarray(source_weights, dtype=np.float64).reshape(-1),
        target,
        algorithm,
    )


@dataclass(frozen=True, eq=False)
class TransferOperator:
    """Perron-Frobenius operator of one layer on nodal densities:
    ``(N p)(y_i) = sum_j K_ij w_j p(x_j)``."""

    transition: GridTransition

    def __call__(self, density: np.ndarray) -> np.ndarray:
        t = self.transition
        return t.forward_sum(t.source_weights * np.asarray(density, dtype=np.float64).reshape(-1))

    @property
    def adjoint(self) -> "KoopmanOperator":
        """The Koopman operator, adjoint in the quadrature inner products."""
        return KoopmanOperator(self.transition)

    def as_linear_operator(self) -> LinearOperator:
        """This operator as a SciPy ``LinearOperator`` of shape (target.size, J)."""
        t = self.transition
        shape = (t.target.size, t.source_points.shape[0])
        return LinearOperator(shape, matvec=self, rmatvec=lambda u: t.source_weights * t.backward_sum(u), dtype=float)


@dataclass(frozen=True, eq=False)
class KoopmanOperator:
    """Koopman operator of one layer on nodal observables:
    ``(M u)(x_j) = sum_i K_ij v_i u(y_i) = E[u(X_{n+1}) | X_n = x_j]``."""

    transition: GridTransition

    def __call__(self, observable: np.ndarray) -> np.ndarray:
        t = self.transition
        return t.backward_sum(t.target.weights * np.asarray(observable, dtype=np.float64).reshape(-1))

    def at(self, points: np.ndarray, observable: np.ndarray) -> np.ndarray:
        """``(M u)(x)`` at arbitrary inputs ``points`` (P, n_in), by the same
        Nystrom sum (no interpolation)."""
        t = self.transition
        at_points = assemble_transition(t.layer, points, np.ones(len(points)), t.target, t.algorithm)
        return KoopmanOperator(at_points)(observable)

    @property
    def adjoint(self) -> TransferOperator:
        return TransferOperator(self.transition)

    def as_linear_operator(self) -> LinearOperator:
        t = self.transition
        shape = (t.source_points.shape[0], t.target.size)
        return LinearOperator(shape, matvec=self, rmatvec=lambda p: t.target.weights * t.forward_sum(p), dtype=float)
