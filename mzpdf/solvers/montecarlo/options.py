"""The ``[solver]`` keys of ``method = "montecarlo"`` and of the ``[montecarlo]`` reference."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..._validate import integer
from ...options import SolverOptions


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



@dataclass(frozen=True)
class MonteCarloReferenceOptions(MonteCarloOptions):
    """The ``[montecarlo]`` section: a Monte Carlo reference beside another
    method (the keys of :class:`MonteCarloOptions`, named ``montecarlo.*``)."""

    key: ClassVar[str] = "montecarlo"
