"""Sparse-grid solver (see :mod:`mzpdf.sparse.solver`) and
Gauss-Hermite quadrature (tensor and Smolyak)."""
from .hermite import GaussRule, hermite_rule, hermite_smolyak, hermite_tensor

__all__ = ["GaussRule", "hermite_rule", "hermite_smolyak", "hermite_tensor"]
