"""Exceptions and warnings raised by mzpdf.

Every error that a user can cause names the place (a dotted case key or an
argument), the rule that was broken and the value found, so that the message
alone says what to fix.
"""
from __future__ import annotations

__all__ = [
    "MzpdfError",
    "CaseError",
    "SingularDensityError",
    "ResultFileError",
    "MzpdfWarning",
    "MassLossWarning",
    "NumericalHealthWarning",
    "TTTruncationWarning",
]


class MzpdfError(Exception):
    """Base class of every error raised on purpose by mzpdf."""


class CaseError(MzpdfError, ValueError):
    """An invalid case, argument or parameter.

    Parameters
    ----------
    key : str
        Dotted name of the offending entry, e.g. ``"network.layers[2].noise.std"``.
    rule : str
        What the entry must satisfy, e.g. ``"must be > 0"``.
    value : object, optional
        The value found. Omit it when the key is missing.
    """

    _MISSING = object()

    def __init__(self, key: str, rule: str, value: object = _MISSING):
        self.key = key
        self.rule = rule
        self.value = value
        text = f"{key} {rule}"
        if value is not CaseError._MISSING:
            text += f", got {_short_repr(value)}"
        super().__init__(text)

    def under(self, prefix: str) -> "CaseError":
        """The same error with its key placed under ``prefix`` (``prefix.key``)."""
        key = f"{prefix}.{self.key}" if self.key and not self.key.startswith("[") else f"{prefix}{self.key}"
        if self.value is CaseError._MISSING:
            return CaseError(key, self.rule)
        return CaseError(key, self.rule, self.value)


class SingularDensityError(MzpdfError):
    """A density that does not exist as a function (e.g. after a noiseless layer)."""


class ResultFileError(MzpdfError):
    """A result file that is missing, corrupt, foreign or of an unknown schema."""


class CheckpointError(MzpdfError):
    """A layer checkpoint that ``--resume`` cannot use (another case's, or an
    unreadable layer file): never ignored, never silently overwritten."""


class MzpdfWarning(UserWarning):
    """Base class of recoverable numerical trouble; each is also stored as a diagnostic."""


class MassLossWarning(MzpdfWarning):
    """More probability mass left a layer's box than the requested tail tolerance."""


class NumericalHealthWarning(MzpdfWarning):
    """NaN, Inf, or negative density mass found in a computed layer."""


class TTTruncationWarning(MzpdfWarning):
    """A tensor train whose ranks hit ``solver.max_rank`` with an error above
    ``solver.tol``, or whose cross approximation did not reach its tolerance."""


class BackendWarning(UserWarning):
    """A requested backend is not usable here (``solver.backend = "cuda"``
    without a GPU); the run goes on with the CPU, and says so in
    ``/diagnostics/backend``. Not a numerical-health warning."""


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
