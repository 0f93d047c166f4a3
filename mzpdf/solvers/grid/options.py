"""The ``[solver]`` keys of ``method = "grid"``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..._validate import integer, number, real_array
from ...discretization.rules import RULES
from ...errors import CaseError
from ...options import SolverOptions, is_auto, tail_option


@dataclass(frozen=True)
class GridOptions(SolverOptions):
    """Tensor-grid solver (SPEC 3.1).

    nodes : int or "auto"
        1-D nodes per neuron and layer. ``auto`` (the default) starts from
        the most nodes a quick solve affords and refines until the run's own
        error estimate meets ``tol`` (:mod:`mzpdf.solvers.grid.accuracy`); a
        number fixes the resolution, and the estimate still says whether it
        met ``tol``.
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
    tol : float
        The accuracy asked (``solver.tol``'s one meaning, docs/validation.md):
        on every layer, a bound of the largest L1 distance of a neuron's
        marginal to the true one and of each mean's and standard deviation's
        error relative to that standard deviation.
    max_seconds : float
        Time the refinement of ``nodes = "auto"`` may spend: a finer level
        forecast to end later is not started (the run then reports its
        estimate, and exits 3 where it misses ``tol``).
    """

    nodes: object = "auto"
    rule: str = "trapezoid"
    domain: object = "auto"
    tail: float = 1e-12
    kernel: str = "auto"
    marginal_points: int = 201
    tol: float = 1e-3
    max_seconds: float = 60.0
    method: ClassVar[str] = "grid"

    def __post_init__(self):
        k = self.key
        if not is_auto(self.nodes):
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
        tol = number(self.tol, f"{k}.tol", 0.0)
        if tol >= 1.0:
            raise CaseError(f"{k}.tol", "must be in (0, 1)", self.tol)
        object.__setattr__(self, "tol", tol)
        object.__setattr__(self, "max_seconds", number(self.max_seconds, f"{k}.max_seconds", 0.0, strict=False))

