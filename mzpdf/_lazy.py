"""Lazy package attributes (PEP 562): a package lists which submodule defines
each public name, and the submodule is imported on first access. Keeps
``import mzpdf`` and the command line's refusals quick."""
from __future__ import annotations

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict, exports: dict[str, tuple[str, ...]]):
    """``(__getattr__, __dir__, __all__)`` for ``package`` whose public names
    are ``exports`` (submodule, relative to the package -> names)."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value  # later accesses skip this function
        return value

    def __dir__():
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__, sorted(where)
