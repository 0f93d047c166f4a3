"""The ``[solver]`` keys of ``method = "sparse"``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..._validate import integer, number
from ...errors import CaseError
from ...options import SolverOptions


@dataclass(frozen=True)
class SparseGridOptions(SolverOptions):
    """Sparse-grid solver (SPEC 3.2, :mod:`mzpdf.solvers.sparse.engine`): each
    layer's law is the mixture of the layer's kernel over the atoms of a
    positive rule for the layer before; its log-density, less the gaussian
    with its moments, is interpolated on a Leja sparse grid in coordinates
    standardized per neuron and tilted to keep the exact mean and
    covariance. A layer of up to 3 neurons with Laplace noise has no
    interpolant: it is kept as its mixture, and its atoms are the nodes of a
    lattice weighted by the mixture's density there, summed exactly
    (:class:`mzpdf.solvers.sparse.density.LatticeDensity`). Linear-gaussian layers
    to the atoms' rule: ~1e-8 relative in the covariances with
    Gauss-Hermite atoms, ~4e-5 with Sobol points (tests/test_sparse_solver.py).

    level : int or None
        Smolyak level of the Leja grids (:mod:`mzpdf.discretization.leja`); None
        (the default): by the layer's width, :data:`DEFAULT_SPARSE_LEVELS`.
    quadrature : "auto" | "gauss" | "trapezoid" | "sobol"
        The rule for the atoms of each layer's law (:mod:`mzpdf.solvers.sparse.rules`):
        tensor Gauss-Hermite, the trapezoid lattice with Richardson
        extrapolation (the Laplace kernel's kink), or scrambled Sobol points.
        ``auto``: gauss up to 4 neurons with gaussian noise, trapezoid up to 3
        neurons with Laplace noise, sobol beyond.
    quad_points : int or None
        Gauss-Hermite points per neuron; None: from the spread of the layer's
        map against its noise (16-48).
    quad_level : int
        The noise rule of a backward (Koopman) step has Smolyak level
        ``quad_level + 1``.
    sobol_points : int
        log2 of the number of Sobol points.
    trapezoid_step : float or None
        Lattice step of the trapezoid rules in whitened units (the Laplace
        layers' lattices: in standard deviations per neuron); None:
        automatic, finer as the next layer's map spreads wider against its
        noise.
    box : float or None
        Mahalanobis radius beyond which each log-density continues with
        gaussian tails; None: the radius holding all but 1e-5 of a gaussian.
    reference : "auto" | "marginals" | "gaussian"
        What the interpolated log-density is relative to: the product of the
        layer's exact 1-D marginals (the grid then holds the copula's
        log-density), or the gaussian with the layer's moments. ``auto``:
        marginals after Laplace noise (linear log-tails the grid would have
        to reproduce), gaussian after gaussian noise (measured: 4 tanh
        neurons, noise 0.3, level 6: marginals 1.4e-4 from a converged grid
        with the gaussian, 2.8e-3 with the marginals).
    adaptive_tol : float
        > 0: dimension-adaptive grids, refined until no block's indicator (its
        expected contribution to the log-density under the gaussian
        reference) exceeds it; 0: regular grids of ``level``.
    max_points : int
        Cap of an adaptive grid.
    tol : float
        The run fails its accuracy checks (exit 3) when a layer's
        ``error_estimate`` (an estimate of the L1 error of its marginals)
        exceeds it.
    marginal_points : int
        Abscissae per neuron at which marginals are stored.
    """

    level: int | None = None
    quadrature: str = "auto"
    quad_points: int | None = None
    quad_level: int = 3
    sobol_points: int = 16
    trapezoid_step: float | None = None
    box: float | None = None
    reference: str = "auto"
    adaptive_tol: float = 0.0
    max_points: int = 100_000
    tol: float = 0.05
    marginal_points: int = 201
    method: ClassVar[str] = "sparse"

    def __post_init__(self):
        k = self.key
        if self.level is not None:
            object.__setattr__(self, "level", integer(self.level, f"{k}.level", 1))
        if self.quadrature not in SPARSE_QUADRATURES:
            raise CaseError(f"{k}.quadrature", f"must be one of {list(SPARSE_QUADRATURES)}", self.quadrature)
        if self.quad_points is not None:
            object.__setattr__(self, "quad_points", integer(self.quad_points, f"{k}.quad_points", 2))
        object.__setattr__(self, "quad_level", integer(self.quad_level, f"{k}.quad_level", 1))
        object.__setattr__(self, "sobol_points", integer(self.sobol_points, f"{k}.sobol_points", 6))
        if self.sobol_points > 24:
            raise CaseError(f"{k}.sobol_points", "must be at most 24 (2^24 points)", self.sobol_points)
        if self.trapezoid_step is not None:
            object.__setattr__(self, "trapezoid_step", number(self.trapezoid_step, f"{k}.trapezoid_step", 0.0))
        if self.box is not None:
            object.__setattr__(self, "box", number(self.box, f"{k}.box", 0.0))
        if self.reference not in ("auto", "marginals", "gaussian"):
            raise CaseError(f"{k}.reference", "must be one of ['auto', 'marginals', 'gaussian']", self.reference)
        object.__setattr__(self, "adaptive_tol", number(self.adaptive_tol, f"{k}.adaptive_tol", 0.0, strict=False))
        object.__setattr__(self, "max_points", integer(self.max_points, f"{k}.max_points", 1))
        object.__setattr__(self, "tol", number(self.tol, f"{k}.tol", 0.0))
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))

    def level_for(self, dim: int) -> int:
        """The Smolyak level of a layer of ``dim`` neurons: ``level`` when
        given, else the first entry of :data:`DEFAULT_SPARSE_LEVELS` whose
        width bound covers ``dim``."""
        if self.level is not None:
            return self.level
        return next(level for width, level in DEFAULT_SPARSE_LEVELS if dim <= width)


SPARSE_QUADRATURES = ("auto", "gauss", "trapezoid", "sobol")

# (largest width, level) of the sparse solver's default levels (grid points: 1 neuron 25, 2 neurons 121,
# 3 neurons 377, 4 neurons 1289, 5-10 neurons 681-8361, beyond 10 level 3). On 4-neuron tanh nets (sigma_w 1,
# noise 0.3, 3 layers, seeds 0-2) the marginals' L1 distances from a 24-node tensor grid were 1.2e-4 to 4.7e-4
# at level 5, 3.6e-5 to 6.2e-4 at level 6 (always below the 20-node grid's 2.1e-4 to 8.2e-4), 1.4e-4 to 2.3e-4
# at level 7 (the 24-node grid is itself ~1e-4 from the truth). Measured on dense 8-neuron tanh
# nets (sigma_w 1, noise 0.4, 4 layers, seeds 0-2, sigma_b 0 and 0.3): level 3 leaves means up to 11.6
# standard errors of 1e6 Monte Carlo paths off and standard deviations up to 0.64 % off; level 4 at most
# 2.7 and 0.41 %, in 8-10 s (scripts/sparse_acceptance.py dense8 --set level=3|4).
DEFAULT_SPARSE_LEVELS = ((1, 12), (2, 10), (3, 8), (4, 6), (10, 4), (10**9, 3))
