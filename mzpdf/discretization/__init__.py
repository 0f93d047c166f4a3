"""Discretizations of functions of N_n variables (SPEC 3): 1-D rules, tensor grids
and Smolyak sparse grids."""
from .grid import GridFunction, TensorGrid
from .rules import RULES, Rule1D, make_rule
from .sparse import SparseGrid, adaptive_grid

__all__ = ["RULES", "Rule1D", "make_rule", "TensorGrid", "GridFunction", "SparseGrid", "adaptive_grid"]
