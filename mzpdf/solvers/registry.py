"""The method registry: ``SOLVERS`` maps each ``solver.method`` name to its
:class:`~mzpdf.solvers.base.Solver` class, and the questions asked of all
methods at once (which take a case, how much memory a case needs)."""
from __future__ import annotations

from .._registry import Registry
from ..errors import CaseError
from ..memory import BASE_BYTES, available_bytes, format_bytes

__all__ = ["SOLVERS", "accepting", "check_memory", "estimate_bytes", "with_tails"]

SOLVERS: Registry = Registry("solver method")


def with_tails() -> list[str]:
    """Names of the methods that compute exceedance probabilities and quantiles."""
    return [name for name in SOLVERS if SOLVERS.get(name).capabilities.tails]


def accepting(case) -> list[str]:
    """Names of the registered methods whose capabilities take ``case``
    (memory aside)."""
    return [name for name in SOLVERS if SOLVERS.get(name).problem(case) is None]


def estimate_bytes(case) -> int:
    """Peak memory of running ``case`` (a validated Case), in bytes: the
    method's solve, the Monte Carlo reference and the interpreter."""
    total = BASE_BYTES + SOLVERS.get(case.solver.method, "solver.method").estimate_bytes(case)
    if case.montecarlo is not None:
        total += SOLVERS.get(case.montecarlo.method).reference_bytes(case.montecarlo, case)
    return total


def check_memory(case, available: int | None = None) -> int:
    """Raise a CaseError naming the key to change if ``case`` needs more
    memory than is available; return the estimate otherwise. Costs
    microseconds (nothing is allocated or imported)."""
    need = estimate_bytes(case)
    have = available_bytes() if available is None else available
    if need <= have:
        return need
    cls = SOLVERS.get(case.solver.method)
    if cls.estimate_bytes(case) + BASE_BYTES <= have and case.montecarlo is not None:
        key, advice, value = "montecarlo.chunk", "lower the chunk", case.montecarlo.chunk
    else:
        key, advice, value = cls.memory_key(case)
    raise CaseError(key, f"needs about {format_bytes(need)}, more than the {format_bytes(have)} available: {advice}",
                    value)
