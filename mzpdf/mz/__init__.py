"""Mori-Zwanzig reduction of networks (SPEC 4): projections, exact reduced
equations with memory kernels, memory diagnostics -- on tensor grids
(:mod:`~mzpdf.mz.reduction`), tensor trains (:mod:`~mzpdf.solvers.tt.mz`) and sparse
grids (:mod:`~mzpdf.solvers.sparse.mz`), each through its solver's own layer operator.

Submodules load on first use (PEP 562): reading a case's ``[projection]``
needs only :mod:`mzpdf.mz.spec`."""
from .._lazy import lazy_exports

_EXPORTS = {
    "bounds": ("canonical_correlations", "dobrushin_coefficient"),
    "projections": ("ChorinProjection", "MoriProjection", "Projection", "build_projection"),
    "reduction": ("MoriZwanzig",),
    "spec": ("ProjectionSpec",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
