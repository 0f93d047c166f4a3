"""The ``[solver]`` keys of ``method = "grid"``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..._validate import integer, real_array
from ...discretization.rules import RULES
from ...errors import CaseError
from ...options import SolverOptions, is_auto, tail_option


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
        RULES.get(self.rule, f"{k}.rule")
        if not is_auto(self.domain):
            dom = real_array(self.domain, f"{k}.domain", 1, (2,))
            if dom[1] <= dom[0]:
                raise CaseError(f"{k}.domain", "must be 'auto' or [lo, hi] with lo < hi", self.domain)
            object.__setattr__(self, "domain", [float(dom[0]), float(dom[1])])
        object.__setattr__(self, "tail", tail_option(self.tail, f"{k}.tail"))
        if self.kernel not in ("auto", "dense", "windowed"):
            raise CaseError(f"{k}.kernel", "must be one of ['auto', 'dense', 'windowed']", self.kernel)
        object.__setattr__(self, "marginal_points", integer(self.marginal_points, f"{k}.marginal_points", 2))

