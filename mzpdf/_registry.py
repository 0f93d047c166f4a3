"""Registries of named choices (activations, noise laws, rules, methods...).

A registry maps a name used in case files to the object that implements it.
Looking up an unknown name raises a :class:`~mzpdf.errors.CaseError` that lists
the valid names, so a typo in a case file is a one-line fix.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import CaseError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> implementation table with helpful lookup errors.

    Parameters
    ----------
    what : str
        What the names denote, used in messages ("activation", "noise law").
    """

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its argument under ``name``."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for plugins registered for a while, as in tests)."""
        del self._items[name]

    def get(self, name: object, key: str | None = None) -> T:
        """The implementation registered as ``name``.

        Raises
        ------
        CaseError
            If ``name`` is not registered; ``key`` names the case entry.
        """
        try:
            return self._items[name]  # type: ignore[index]
        except (KeyError, TypeError):
            raise CaseError(key or self.what, f"must be one of {self.names()}", name) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
