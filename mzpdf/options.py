"""Solver options: one frozen dataclass per method owns the defaults and the
rules of its ``[solver]`` keys (declarative, as in pyro2's runparams).

``make_options(method, table)`` validates a case-file table: unknown keys are
errors naming ``solver.<key>``, and so are values that break a rule.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ._registry import Registry
from ._validate import integer, number, real_array
from .errors import CaseError

__all__ = ["SolverOptions", "GridOptions", "SparseGridOptions", "MonteCarloOptions", "QMCOptions", "METHODS", "BACKENDS", "make_options"]

BACKENDS = ("cpu", "cuda")

AUTO = "auto"  # the value of an option (domain, kernel, quadrature, ...) the solver chooses itself


def is_auto(value) -> bool:
    """Whether an option's value asks the solver to choose (``"auto"``)."""
    return isinstance(value, str) and value == AUTO


@dataclass(frozen=True)
class SolverOptions:
    """Base class; subclasses list their keys as dataclass fields with defaults."""

    method: ClassVar[str] = ""
    key: ClassVar[str] = "solver"

    @classmethod
    def from_dict(cls, table: dict, key: str = "solver") -> "SolverOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        for name, value in table.items():
            if name not in names:
                raise CaseError(f"{key}.{name}", f"is not an option of method {cls.method!r} (valid: {sorted(names)})", value)
        return cls(**table)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


METHODS: Registry[type[SolverOptions]] = Registry("solver method")


def _tail(value, key: str) -> float:
    tail = number(value, key, 0.0)
    if tail >= 0.01:
        raise CaseError(key, "must be in (0, 0.01)", value)
    return tail


@METHODS.register("grid")
@dataclass(frozen=True)
class GridOptions(SolverOptions):
    """Tensor-grid solver (SPEC 3.1).

    nodes : int
        1-D nodes per neuron and layer.
    rule : str
        1-D rule, a name from ``mzpdf.discretization.RULES``. The default,
        ``trapezoid`` (equispaced, trigonometric interpolation), is spectrally
        accurate on the automatic boxes, whose densities decay to ~0 at the ends.
    domain : "auto" or [lo, hi]
        Box per neuron: chosen per layer from the mapped support and the
        noise tails, or one fixed interval for every neuron of every layer.
    tail : float
        Probability mass per side and neuron that the automatic box may cut
        (input tails and noise tails); cut mass is reported as ``lost_mass``.
    kernel : "auto" | "dense" | "windowed"
        Transfer-sum algorithm; ``auto`` windows when the noise is narrow.
    marginal_points : int
        Abscissae per neuron at which marginals are stored.
    """

    nodes: int = 40
    rule: str = "trapezoid"
    domain: object = "auto"
    tail: float = 1e-12
    kernel: str = "auto"
    marginal_points: int = 201
    method: ClassVar[str] = "grid"

    def __post_init__(self):
        k = self.key
        object.__setattr__(self, "nodes", integer(self.nodes, f"{k}.nodes", 2))
        from .discretization.rules import RULES

        RULES.get(self.rule, f"{k}.rule")
        if not is_auto(self.domain):
            dom = real_array(self.domain, f"{k}.domain", 1, (2,))
            if dom[1] <= dom[0]:
                raise CaseError(f"{k}.domain", "must be 'auto' or [lo, hi] with lo < hi", self.domain)
            object.__setattr__(self, "domain", [float(dom[0]), float(dom[1])])
        object.__setattr__(self, "tail", _tail(self.tail, f"{k}.tail"))
        if self.kernel not in ("auto", "dense", "windowed"):
            raise CaseError(f"{k}.kernel", "must be one of ['auto', 'dense', 'windowed']", self.kernel)
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))


@METHODS.register("tt")
@dataclass(frozen=True)
class TTOptions(SolverOptions):
    """Tensor-train solver (SPEC 3.3) for layers of many neurons.

    nodes : int
        1-D nodes per neuron (pre-activation grid of each layer).
    rule : str
        1-D rule (see GridOptions); the default trapezoid rule is spectrally
        accurate on the automatic boxes.
    tol : float
        Relative accuracy of the cross approximation and of the rounding.
    max_rank : int
        Largest TT rank; a layer that needs more is capped and warned about.
    tail : float
        Mass per side and neuron that a layer's box may cut (gaussian tails
        of the exact first two moments).
    sweeps : int
        Most half-sweeps of the cross approximation per layer.
    kick : int
        Extra random fibers per core and half-sweep (how fast ranks grow).
    marginal_points : int
        Abscissae per neuron at which marginals are stored.
    """

    nodes: int = 32
    rule: str = "trapezoid"
    tol: float = 1e-8
    max_rank: int = 64
    tail: float = 1e-10
    sweeps: int = 12
    kick: int = 4
    marginal_points: int = 201
    method: ClassVar[str] = "tt"

    def __post_init__(self):
        k = self.key
        object.__setattr__(self, "nodes", integer(self.nodes, f"{k}.nodes", 4))
        from .discretization.rules import RULES

        RULES.get(self.rule, f"{k}.rule")
        tol = number(self.tol, f"{k}.tol", 0.0)
        if tol >= 1.0:
            raise CaseError(f"{k}.tol", "must be in (0, 1)", self.tol)
        object.__setattr__(self, "tol", tol)
        object.__setattr__(self, "max_rank", integer(self.max_rank, f"{k}.max_rank", 1))
        object.__setattr__(self, "tail", _tail(self.tail, f"{k}.tail"))
        object.__setattr__(self, "sweeps", integer(self.sweeps, f"{k}.sweeps", 1))
        object.__setattr__(self, "kick", integer(self.kick, f"{k}.kick", 0))
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))


@METHODS.register("sparse")
@dataclass(frozen=True)
class SparseGridOptions(SolverOptions):
    """Sparse-grid solver (SPEC 3.2, :mod:`mzpdf.sparse.solver`): each
    layer's law is the mixture of the layer's kernel over the atoms of a
    positive rule for the layer before; its log-density, less the gaussian
    with its moments, is interpolated on a Leja sparse grid in coordinates
    standardized per neuron and tilted to keep the exact mean and
    covariance. A layer of up to 3 neurons with Laplace noise has no
    interpolant: it is kept as its mixture, and its atoms are the nodes of a
    lattice weighted by the mixture's density there, summed exactly
    (:class:`mzpdf.sparse.density.LatticeDensity`). Linear-gaussian layers
    to the atoms' rule: ~1e-8 relative in the covariances with
    Gauss-Hermite atoms, ~4e-5 with Sobol points (tests/test_sparse_solver.py).

    level : int or None
        Smolyak level of the Leja grids (:mod:`mzpdf.sparse.smolyak`); None
        (the default): by the layer's width, :data:`DEFAULT_SPARSE_LEVELS`.
    quadrature : "auto" | "gauss" | "trapezoid" | "sobol"
        The rule for the atoms of each layer's law (:mod:`mzpdf.sparse.rules`):
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


@METHODS.register("montecarlo")
@dataclass(frozen=True)
class MonteCarloOptions(SolverOptions):
    """Monte Carlo sampling (SPEC 3.4), alone (``method = "montecarlo"``) or
    beside another method (the ``[montecarlo]`` section).

    samples : int
        Number of sample paths.
    seed : int or None
        Seed of NumPy's PCG64; ``None`` takes ``[case].seed``.
    chunk : int
        Paths pushed through the network at once (memory ~ chunk x width).
    marginal_points : int
        Histogram bins per neuron when the method runs alone.
    """

    samples: int = 1_000_000
    seed: object = None
    chunk: int = 65_536
    marginal_points: int = 201
    method: ClassVar[str] = "montecarlo"

    def __post_init__(self):
        k = self.key
        object.__setattr__(self, "samples", integer(self.samples, f"{k}.samples", 2))
        if self.seed is not None:
            object.__setattr__(self, "seed", integer(self.seed, f"{k}.seed", 0))
        object.__setattr__(self, "chunk", integer(self.chunk, f"{k}.chunk", 1))
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))


@METHODS.register("qmc")
@dataclass(frozen=True)
class QMCOptions(SolverOptions):
    """Randomized quasi-Monte Carlo with conditional densities (SPEC 3.4,
    :mod:`mzpdf.montecarlo.qmc`).

    samples : int
        Scrambled Sobol points per replicate, a power of two (the balance of
        Sobol points holds at 2^k points; others are refused, not rounded).
    replicates : int
        Independent scramblings (>= 2); estimates are their average and the
        standard errors their spread over ``sqrt(replicates)``.
    seed : int or None
        Seed of the scramblings; ``None`` takes ``[case].seed``.
    chunk : int
        Points pushed through the network at once (memory ~ chunk x (Sobol
        dimension + width)); used as the largest power of two <= chunk.
    marginal_points : int
        Abscissae per neuron at which marginals are stored.
    joint_points : int
        Abscissae per axis of the stored joint of neurons 0 and 1.
    tail : float
        Noise mass per side and neuron that the abscissae may leave beyond
        the sampled range of each layer's map (reported as ``lost_mass``).
    sequence : "sobol" | "random"
        Scrambled Sobol points (randomized QMC), or pseudo-random points: the
        same conditional-density estimators as plain Monte Carlo. On nets
        with sharp layers (the quickstart net's last layer) scrambled Sobol
        points in 10 dimensions can do worse than pseudo-random ones at
        1e5-1e6 points (docs/benchmarks.md): compare both.
    """

    samples: int = 16_384
    replicates: int = 8
    seed: object = None
    chunk: int = 8192
    marginal_points: int = 201
    joint_points: int = 81
    tail: float = 1e-6
    sequence: str = "sobol"
    method: ClassVar[str] = "qmc"

    def __post_init__(self):
        k = self.key
        samples = integer(self.samples, f"{k}.samples", 1)
        if samples & (samples - 1):
            low = 1 << (samples.bit_length() - 1)
            raise CaseError(f"{k}.samples", f"must be a power of two (Sobol points per replicate; nearest: {low} "
                            f"or {2 * low})", self.samples)
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "replicates", integer(self.replicates, f"{k}.replicates", 2))
        if self.seed is not None:
            object.__setattr__(self, "seed", integer(self.seed, f"{k}.seed", 0))
        object.__setattr__(self, "chunk", integer(self.chunk, f"{k}.chunk", 1))
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))
        object.__setattr__(self, "joint_points", integer(self.joint_points, f"{k}.joint_points", 2))
        object.__setattr__(self, "tail", _tail(self.tail, f"{k}.tail"))
        if self.sequence not in ("sobol", "random"):
            raise CaseError(f"{k}.sequence", "must be one of ['sobol', 'random']", self.sequence)


def make_options(method: object, table: dict, key: str = "solver") -> SolverOptions:
    """Validated options for ``method`` from a ``[solver]`` table (without
    ``method`` and ``backend``)."""
    cls = METHODS.get(method, f"{key}.method")
    try:
        return cls.from_dict(table, key)
    except CaseError as err:
        if key != "solver" and err.key.startswith("solver."):
            raise CaseError(key + err.key[len("solver"):], err.rule, err.value) from None
        raise
