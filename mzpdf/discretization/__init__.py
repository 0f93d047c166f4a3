"""Discretizations of functions of N_n variables (SPEC 3): 1-D rules, tensor grids
and Smolyak sparse grids (imported on first use: they pull in Numba and SciPy)."""
from .._lazy import lazy_exports
from .grid import GridFunction, TensorGrid
from .rules import RULES, Rule1D, make_rule

_EXPORTS = {"sparse": ("SparseGrid", "adaptive_grid")}
__getattr__, __dir__, _lazy_all = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = ["RULES", "Rule1D", "make_rule", "TensorGrid", "GridFunction", *_lazy_all]
