"""Solution methods behind one interface (see :mod:`mzpdf.solvers.base` and
docs/architecture.md).

``SOLVERS`` (:mod:`mzpdf.solvers.registry`) maps each ``solver.method`` name
to its :class:`Solver` class; importing this package registers grid, tt,
sparse, montecarlo and qmc. Each method is one folder
(``solvers/<method>/``: its plugin, options, engine, kernels and
Mori-Zwanzig kernel assembly); importing its ``plugin`` here registers it.
"""
from .base import DIAGNOSTICS, Capabilities, CaseKeys, Solution, Solver
from .registry import SOLVERS, accepting, check_memory, estimate_bytes

# each method's plugin registers it in SOLVERS, in this order (a method's package itself imports nothing)
from .grid.plugin import Grid
from .montecarlo.plugin import MonteCarlo
from .qmc.plugin import QuasiMonteCarlo
from .sparse.plugin import Sparse
from .tt.plugin import TT

__all__ = ["DIAGNOSTICS", "SOLVERS", "Capabilities", "CaseKeys", "Solution", "Solver", "accepting", "check_memory",
           "estimate_bytes", "Grid", "MonteCarlo", "QuasiMonteCarlo", "Sparse", "TT"]
