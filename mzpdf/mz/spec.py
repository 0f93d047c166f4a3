"""The ``[projection]`` section: which Mori-Zwanzig reduction to run."""
from __future__ import annotations

from dataclasses import dataclass

from .._validate import integer, number
from ..errors import CaseError
from ..options import is_auto

# The names mzpdf.mz.projections implements (kept here so that reading a case
# does not import the projections and SciPy).
CHORIN_REFERENCES = ("marginal", "gaussian", "uniform")
MORI_BASES = ("constant", "linear", "quadratic")

__all__ = ["ProjectionSpec", "PROJECTION_KINDS"]

PROJECTION_KINDS = ("chorin", "mori")


@dataclass(frozen=True)
class ProjectionSpec:
    """A validated ``[projection]`` table.

    Parameters
    ----------
    kind : {"chorin", "mori"}
    keep : tuple of int
        Kept neurons (the same indices on every layer).
    reference : {"marginal", "gaussian", "uniform"}
        Chorin: reference density of the dropped neurons on each layer (the
        layer's own dropped marginal, the gaussian with its moments, uniform).
    basis : {"constant", "linear", "quadratic"}
        Mori: polynomial degree in the kept neurons; the weight is the layer's
        density from the forward solve.
    memory : int, None or "auto"
        Largest lag kept by the reduced recursion (0: no memory at all);
        ``None`` (``"full"``) keeps every lag and is exact; ``"auto"`` takes
        the shortest lag whose estimated truncation error (an upper bound on
        the L1 error of the kept marginals, :mod:`mzpdf.mz.norms`) is at most
        :attr:`tol`.
    tol : float
        Target L1 error of the kept marginals, > 0: for ``memory = "auto"``
        and for :attr:`min_memory` ("how shallow can this network be").
    """

    kind: str
    keep: tuple
    reference: str = "marginal"
    basis: str = "linear"
    memory: int | str | None = None
    tol: float = 1e-3

    KEYS = ("kind", "keep", "reference", "basis", "memory", "tol")

    @classmethod
    def from_table(cls, table: dict, widths, key: str = "projection") -> "ProjectionSpec":
        """Validate ``table`` for a network with layer ``widths`` (input first)."""
        if not isinstance(table, dict):
            raise CaseError(key, "must be a table", table)
        for name in table:
            if name not in cls.KEYS:
                raise CaseError(f"{key}.{name}", f"is not a key of [projection] (valid: {sorted(cls.KEYS)})",
                                table[name])
        kind = table.get("kind")
        if kind not in PROJECTION_KINDS:
            raise CaseError(f"{key}.kind", f"must be one of {list(PROJECTION_KINDS)}", kind)
        if "keep" not in table:
            raise CaseError(f"{key}.keep", "is required (a list of kept neuron indices)")
        raw = table["keep"]
        if not isinstance(raw, list) or not raw:
            raise CaseError(f"{key}.keep", "must be a non-empty list of neuron indices", raw)
        narrowest = min(widths)
        keep = [integer(i, f"{key}.keep", 0) for i in raw]
        if len(set(keep)) != len(keep) or max(keep) >= narrowest:
            raise CaseError(f"{key}.keep", f"must hold distinct indices below the narrowest width {narrowest}", raw)
        reference = table.get("reference", "marginal")
        if "reference" in table and kind != "chorin":
            raise CaseError(f"{key}.reference", "applies to kind = 'chorin' only", reference)
        if reference not in CHORIN_REFERENCES:
            raise CaseError(f"{key}.reference", f"must be one of {list(CHORIN_REFERENCES)}", reference)
        basis = table.get("basis", "linear")
        if "basis" in table and kind != "mori":
            raise CaseError(f"{key}.basis", "applies to kind = 'mori' only", basis)
        if basis not in MORI_BASES:
            raise CaseError(f"{key}.basis", f"must be one of {list(MORI_BASES)}", basis)
        memory = table.get("memory", "full")
        if memory == "full":
            memory = None
        elif is_auto(memory):
            pass
        elif isinstance(memory, str):
            raise CaseError(f"{key}.memory", "must be 'full', 'auto' or an integer lag >= 0", memory)
        elif isinstance(memory, bool) or not isinstance(memory, int) or memory < 0:
            raise CaseError(f"{key}.memory", "must be 'full', 'auto' or an integer lag >= 0", memory)
        tol = number(table.get("tol", 1e-3), f"{key}.tol", 0.0)
        return cls(kind, tuple(sorted(keep)), reference, basis, memory, tol)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "keep": list(self.keep)}
        out.update({"reference": self.reference} if self.kind == "chorin" else {"basis": self.basis})
        out["memory"] = "full" if self.memory is None else self.memory
        out["tol"] = self.tol
        return out

    def describe(self) -> str:
        detail = f"reference {self.reference}" if self.kind == "chorin" else f"basis {self.basis}"
        memory = ("full memory" if self.memory is None else
                  f"memory auto (tol {self.tol:g})" if is_auto(self.memory) else f"memory {self.memory}")
        return f"{self.kind} projection onto neurons {list(self.keep)}, {detail}, {memory}"
