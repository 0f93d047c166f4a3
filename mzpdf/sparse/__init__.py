"""Sparse-grid solver (:mod:`mzpdf.sparse.solver`): Leja sparse grids
(:mod:`mzpdf.sparse.smolyak`), positive rules (:mod:`mzpdf.sparse.rules`),
the mixture transfer (:mod:`mzpdf.sparse.transfer`), the layers' laws
(:mod:`mzpdf.sparse.density`) and Gauss-Hermite quadrature (tensor and Smolyak)."""
from .hermite import GaussRule, hermite_rule, hermite_smolyak, hermite_tensor, laplace_rule
from .smolyak import LejaGrid, leja_nodes

__all__ = ["GaussRule", "LejaGrid", "hermite_rule", "hermite_smolyak", "hermite_tensor", "laplace_rule", "leja_nodes"]
