"""Small checks shared by every constructor: they turn values into arrays or
raise a :class:`~mzpdf.errors.CaseError` naming the key, the rule and the value."""
from __future__ import annotations

import numpy as np

from .errors import CaseError


def real_array(value, key: str, ndim: int, shape: tuple | None = None) -> np.ndarray:
    """``value`` as a finite float64 array with ``ndim`` axes (and ``shape`` if given,
    ``None`` entries matching any length)."""
    if not _numeric_leaves(value):  # NumPy would parse "0" as 0.0 and True as 1.0
        raise CaseError(key, f"must be a {_noun(ndim)} of numbers", value)
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CaseError(key, f"must be a {_noun(ndim)} of numbers", value) from None
    if arr.ndim != ndim:
        raise CaseError(key, f"must be a {_noun(ndim)} of numbers", value)
    if arr.size == 0:
        raise CaseError(key, f"must be a non-empty {_noun(ndim)} of numbers", value)
    if shape is not None:
        for axis, (want, got) in enumerate(zip(shape, arr.shape)):
            if want is not None and want != got:
                raise CaseError(key, f"must have shape {_shape_text(shape)} (axis {axis} has length {got})", value)
    if not np.all(np.isfinite(arr)):
        raise CaseError(key, "must hold finite numbers", value)
    return arr


def _numeric_leaves(value) -> bool:
    """Whether every leaf of nested lists/tuples (or an array) is a real number."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf"
    if isinstance(value, (list, tuple)):
        return all(_numeric_leaves(v) for v in value)
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def per_neuron(value, key: str, width: int) -> np.ndarray:
    """A scalar broadcast to ``width`` neurons, or a vector of that length."""
    if np.ndim(value) == 0:
        return np.full(width, float(real_array(value, key, 0)))
    return real_array(value, key, 1, (width,))


def positive(arr: np.ndarray, key: str, value=None) -> np.ndarray:
    if np.any(arr <= 0):
        raise CaseError(key, "must be > 0", arr.tolist() if value is None else value)
    return arr


def integer(value, key: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CaseError(key, "must be an integer", value)
    if minimum is not None and value < minimum:
        raise CaseError(key, f"must be >= {minimum}", value)
    return int(value)


def number(value, key: str, lower: float | None = None, *, strict: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CaseError(key, "must be a number", value)
    value = float(value)
    if not np.isfinite(value):
        raise CaseError(key, "must be finite", value)
    if lower is not None and (value <= lower if strict else value < lower):
        raise CaseError(key, f"must be {'>' if strict else '>='} {lower:g}", value)
    return value


def _noun(ndim: int) -> str:
    return {0: "number", 1: "list", 2: "list of lists"}.get(ndim, f"{ndim}-d array")


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
