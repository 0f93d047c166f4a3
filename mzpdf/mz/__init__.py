"""Mori-Zwanzig reduction of networks on tensor grids (SPEC 4): projections,
exact reduced equations with memory kernels, memory diagnostics.

Submodules load on first use (PEP 562): reading a case's ``[projection]``
needs only :mod:`mzpdf.mz.spec`."""
import importlib

_EXPORTS = {
    "bounds": ("canonical_correlations", "dobrushin_coefficient"),
    "projections": ("ChorinProjection", "MoriProjection", "Projection"),
    "reduction": ("MoriZwanzig", "reduce_network"),
    "spec": ("ProjectionSpec",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mzpdf.mz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
