"""The mathematics every method draws on (SPEC 3), free of networks and
methods: 1-D rules (``rules``), tensor grids (``tensor_grid``), Clenshaw-Curtis
sparse grids (``sparse_grid``), Leja sparse grids (``leja``), Gauss-Hermite
and Gauss-Laplace rules (``gauss``), tensor trains (``tensor_train``) and their
cross approximation (``cross``); Numba kernels in ``_kernels``."""
from .rules import RULES, Rule1D, make_rule
from .sparse_grid import SparseGrid, adaptive_grid
from .tensor_grid import GridFunction, TensorGrid

__all__ = ["RULES", "Rule1D", "make_rule", "TensorGrid", "GridFunction", "SparseGrid", "adaptive_grid"]
