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
    """Sparse-grid solver (SPEC 3.2): each layer's
    log-density in whitened coordinates on a Clenshaw-Curtis Smolyak grid
    (:mod:`mzpdf.sparse.solver`), normalized to mass 1 (``/diagnostics/mass``:
    the mass before). Exact for linear-gaussian layers; for nonlinear ones it
    converges only algebraically with level.

    level : int or None
        Smolyak level of the log-density grids; None (the default): by the
        layer's width, :data:`DEFAULT_SPARSE_LEVELS` (level 5 up to 3
        neurons, where level 3 leaves the means of saturating tanh layers
        0.02-0.03 off; level 3 from 4 neurons on, where higher levels cost
        minutes). See :meth:`level_for`.
    quadrature : "auto" | "tensor" | "smolyak"
        Rule for the expectations under each layer (transfer integrals,
        moments, marginals). ``tensor``: products of ``quad_points``-point
        Gauss-Hermite rules in whitened coordinates, the transfer a kernel sum
        over their nodes (uniform relative accuracy; ``quad_points^N`` nodes,
        so for N <= 3). ``smolyak``: Gauss-Hermite Smolyak rules of
        ``quad_level``, the transfer one rule per node centred on the
        integrand's mode (any N; slower convergence). ``auto``: tensor for
        layers of at most 3 neurons.
    quad_level : int
        Level of the Gauss-Hermite Smolyak rules.
    quad_points : int
        Gauss-Hermite points per neuron of the tensor rules.
    box : float
        Half-width of the grids in standard deviations.
    adaptive_tol : float
        > 0: dimension-adaptive grids, refined until no candidate's surplus
        (log units) exceeds it; 0: regular grids of ``level``.
    max_points : int
        Cap of an adaptive grid.
    marginal_points : int
        Abscissae per neuron at which marginals are stored.
    """

    level: int | None = None
    quadrature: str = "auto"
    quad_level: int = 3
    quad_points: int = 40
    box: float = 5.0
    adaptive_tol: float = 0.0
    max_points: int = 100_000
    marginal_points: int = 201
    method: ClassVar[str] = "sparse"

    def __post_init__(self):
        k = self.key
        if self.level is not None:
            object.__setattr__(self, "level", integer(self.level, f"{k}.level", 1))
        if self.quadrature not in ("auto", "tensor", "smolyak"):
            raise CaseError(f"{k}.quadrature", "must be one of ['auto', 'tensor', 'smolyak']", self.quadrature)
        object.__setattr__(self, "quad_level", integer(self.quad_level, f"{k}.quad_level", 1))
        object.__setattr__(self, "quad_points", integer(self.quad_points, f"{k}.quad_points", 2))
        object.__setattr__(self, "box", number(self.box, f"{k}.box", 0.0))
        object.__setattr__(self, "adaptive_tol", number(self.adaptive_tol, f"{k}.adaptive_tol", 0.0, strict=False))
        object.__setattr__(self, "max_points", integer(self.max_points, f"{k}.max_points", 1))
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))

    def quadrature_for(self, dim: int) -> str:
        """The transfer rule of a layer of ``dim`` neurons: ``quadrature``
        when given, else ``tensor`` up to 3 neurons and ``smolyak`` beyond."""
        if not is_auto(self.quadrature):
            return self.quadrature
        return "tensor" if dim <= 3 else "smolyak"

    def level_for(self, dim: int) -> int:
        """The Smolyak level of a layer of ``dim`` neurons: ``level`` when
        given, else the first entry of :data:`DEFAULT_SPARSE_LEVELS` whose
        width bound covers ``dim``."""
        if self.level is not None:
            return self.level
        return next(level for width, level in DEFAULT_SPARSE_LEVELS if dim <= width)


# (largest width, level) of the sparse solver's default levels. On 3-neuron
# tanh nets (orthogonal weights, sigma_w 1, noise 0.4, seeds 1-3) the last
# layer's means are 0.016-0.027 from the converged tensor grid at level 3,
# 0.005-0.007 at level 4 and 0.002-0.004 at level 5.
DEFAULT_SPARSE_LEVELS = ((3, 5), (10**9, 3))


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
