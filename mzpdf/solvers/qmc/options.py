"""The ``[solver]`` keys of ``method = "qmc"``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..._validate import integer, number
from ...errors import CaseError
from ...options import SolverOptions, tail_option


OUTER_RULES = ("auto", "sobol", "quadrature")


@dataclass(frozen=True)
class QMCOptions(SolverOptions):
    """Randomized quasi-Monte Carlo with conditional densities (SPEC 3.4,
    :mod:`mzpdf.solvers.qmc.engine`).

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
    tol : float
        The error contract (``solver.tol``): the error estimate of every layer
        (``/diagnostics/error_estimate``, at confidence 0.95 from the
        replicates) must not exceed it. qmc doubles ``samples`` while it does
        and the doubled run is expected to end within ``max_seconds`` of the
        start; a run that still misses it is flagged (accepted = 0, exit 3).
    max_seconds : float
        Time budget of that doubling (0: never double).
    outer : "auto" | "sobol" | "quadrature"
        The outer rule of preintegration (the densities after noiseless
        layers, :mod:`mzpdf.solvers.qmc.pushforward`): scrambled Sobol
        points, or composite Gauss-Legendre (deterministic; at most 2 outer
        dimensions: a gaussian input of dimension <= 3 and no noise before
        the layer); ``auto`` takes quadrature where it may.
    directions : int
        Most input directions integrated exactly, one per group of neurons
        (each neuron takes the one that carries most of its gradient).
    threads : int
        Threads of the preintegration kernels (0: every core).
    """

    samples: int = 16_384
    replicates: int = 8
    seed: object = None
    chunk: int = 8192
    marginal_points: int = 201
    joint_points: int = 81
    tail: float = 1e-6
    sequence: str = "sobol"
    tol: float = 1e-3
    max_seconds: float = 30.0
    outer: str = "auto"
    directions: int = 3
    threads: int = 0
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
        object.__setattr__(self, "tail", tail_option(self.tail, f"{k}.tail"))
        if self.sequence not in ("sobol", "random"):
            raise CaseError(f"{k}.sequence", "must be one of ['sobol', 'random']", self.sequence)
        object.__setattr__(self, "tol", number(self.tol, f"{k}.tol", 0.0))
        object.__setattr__(self, "max_seconds", number(self.max_seconds, f"{k}.max_seconds", 0.0, strict=False))
        if self.outer not in OUTER_RULES:
            raise CaseError(f"{k}.outer", f"must be one of {list(OUTER_RULES)}", self.outer)
        object.__setattr__(self, "directions", integer(self.directions, f"{k}.directions", 1))
        object.__setattr__(self, "threads", integer(self.threads, f"{k}.threads", 0))

