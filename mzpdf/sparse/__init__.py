"""Sparse-grid solver (experimental; see :mod:`mzpdf.sparse.solver`) and
Gauss-Hermite Smolyak quadrature."""
from .hermite import hermite_rule, hermite_smolyak

__all__ = ["hermite_rule", "hermite_smolyak"]
