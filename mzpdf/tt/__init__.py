"""Tensor trains (SPEC 3.3): functions of many neurons in TT format, a
rank-adaptive cross approximation, and the TT layer solver."""
from .._lazy import lazy_exports

_EXPORTS = {
    "tensor": ("TTFunction", "tt_round", "contract_rows"),
    "cross": ("cross", "maxvol", "CrossResult"),
    "solver": ("TTSolver", "TTSolution"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
