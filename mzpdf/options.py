"""What every method's options share: one frozen dataclass per method
(``solvers/<method>/options.py``, the class a Solver names as its
``options_class``) owns the defaults and the rules of its ``[solver]`` keys
(declarative, as in pyro2's runparams).

``SomeOptions.from_dict(table)`` validates a case-file table: unknown keys
are errors naming ``solver.<key>`` (``key`` of the class: ``montecarlo`` for
the ``[montecarlo]`` reference), and so are values that break a rule.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ._validate import number
from .errors import CaseError

__all__ = ["AUTO", "BACKENDS", "SolverOptions", "is_auto", "tail_option"]

BACKENDS = ("cpu", "cuda")

AUTO = "auto"  # the value of an option (domain, kernel, quadrature, ...) the solver chooses itself


def is_auto(value) -> bool:
    """Whether an option's value asks the solver to choose (``"auto"``)."""
    return isinstance(value, str) and value == AUTO


@dataclass(frozen=True)
class SolverOptions:
    """Base class; subclasses list their keys as dataclass fields with defaults."""

    method: ClassVar[str] = ""
    key: ClassVar[str] = "solver"

    @classmethod
    def from_dict(cls, table: dict) -> "SolverOptions":
        """Validated options from a ``[solver]`` table (without ``method`` and ``backend``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        for name, value in table.items():
            if name not in names:
                raise CaseError(f"{cls.key}.{name}", f"is not an option of method {cls.method!r} "
                                f"(valid: {sorted(names)})", value)
        return cls(**table)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def tail_option(value, key: str) -> float:
    """A box's tail mass per side: a number in (0, 0.01)."""
    tail = number(value, key, 0.0)
    if tail >= 0.01:
        raise CaseError(key, "must be in (0, 0.01)", value)
    return tail

