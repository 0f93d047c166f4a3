"""Solution methods behind one interface (see :mod:`mzpdf.solvers.base` and
docs/architecture.md).

``SOLVERS`` (:mod:`mzpdf.solvers.registry`) maps each ``solver.method`` name
to its :class:`Solver` class; importing this package registers grid, tt,
sparse, montecarlo and qmc. Each method is one folder
(``solvers/<method>/``: its plugin, options, engine, kernels and
Mori-Zwanzig kernel assembly) whose ``__init__`` registers it.
"""
from .base import DIAGNOSTICS, Capabilities, CaseKeys, Solution, Solver
from .registry import SOLVERS, accepting, check_memory, estimate_bytes
from . import grid, montecarlo, qmc, sparse, tt  # noqa: F401  (registers the methods)

__all__ = ["DIAGNOSTICS", "SOLVERS", "Capabilities", "CaseKeys", "Solution", "Solver", "accepting", "check_memory",
           "estimate_bytes"]
