"""The ``[solver]`` keys of ``method = "tt"``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..._validate import integer, number
from ...discretization.rules import RULES
from ...errors import CaseError
from ...options import SolverOptions, tail_option


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
        RULES.get(self.rule, f"{k}.rule")
        tol = number(self.tol, f"{k}.tol", 0.0)
        if tol >= 1.0:
            raise CaseError(f"{k}.tol", "must be in (0, 1)", self.tol)
        object.__setattr__(self, "tol", tol)
        object.__setattr__(self, "max_rank", integer(self.max_rank, f"{k}.max_rank", 1))
        object.__setattr__(self, "tail", tail_option(self.tail, f"{k}.tail"))
        object.__setattr__(self, "sweeps", integer(self.sweeps, f"{k}.sweeps", 1))
        object.__setattr__(self, "kick", integer(self.kick, f"{k}.kick", 0))
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))

