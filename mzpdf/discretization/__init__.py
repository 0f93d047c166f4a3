"""Discretizations of functions of N_n variables (SPEC 3): 1-D rules and tensor grids."""
from .grid import GridFunction, TensorGrid
from .rules import RULES, Rule1D, make_rule

__all__ = ["RULES", "Rule1D", "make_rule", "TensorGrid", "GridFunction"]
