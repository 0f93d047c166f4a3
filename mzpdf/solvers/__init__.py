"""Solution methods behind one interface (see :mod:`mzpdf.solvers.base` and
docs/architecture.md).

``SOLVERS`` maps each ``solver.method`` name to its :class:`Solver` class;
importing this package registers grid, tt, sparse, montecarlo and qmc (their
numerical modules are imported on first use, so that validating a case or a
refusal by the memory guard stays quick). A new method is one module with a
``Solver`` subclass registered under its name.
"""
from .base import (DIAGNOSTICS, SOLVERS, Capabilities, CaseKeys, Law, Solution, Solver, SummaryLaw, accepting,
                   check_memory, estimate_bytes)
from . import grid, montecarlo, qmc, sparse, tt  # noqa: F401  (registers the methods)

__all__ = ["DIAGNOSTICS", "SOLVERS", "Capabilities", "CaseKeys", "Law", "Solution", "Solver", "SummaryLaw",
           "accepting", "check_memory", "estimate_bytes"]
