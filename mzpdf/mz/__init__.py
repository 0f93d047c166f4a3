"""Mori-Zwanzig reduction of networks on tensor grids (SPEC 4): projections,
exact reduced equations with memory kernels, memory diagnostics."""
from .bounds import canonical_correlations, dobrushin_coefficient
from .projections import ChorinProjection, MoriProjection, Projection
from .reduction import MoriZwanzig, reduce_network
from .spec import ProjectionSpec

__all__ = ["ChorinProjection", "MoriProjection", "Projection", "MoriZwanzig", "reduce_network", "ProjectionSpec",
           "canonical_correlations", "dobrushin_coefficient"]
