"""Case files: TOML in, a validated :class:`Case` out.

Each section is validated by the constructor that owns it (network, input,
solver options, observable); this module checks the section layout, applies
``section.key=value`` overrides, cross-checks widths, and keeps the effective
case (after overrides) as text for every result file.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomli_w

from .._validate import integer, real_array
from ..errors import CaseError
from ..network import InputLaw, Network, make_input, make_network
from ..observables import Observable, make_observable
from ..options import BACKENDS, MonteCarloOptions, SolverOptions, make_options

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Case", "load_case", "loads_case", "parse_override", "apply_overrides"]

SECTIONS = ("case", "network", "input", "solver", "observable", "projection", "montecarlo", "output")


@dataclass(frozen=True, eq=False)
class Case:
    """A validated case.

    Attributes
    ----------
    name : str
    seed : int
    network : Network
    input : InputLaw
    solver : SolverOptions
        Options of ``solver.method``.
    backend : str
    observable : Observable or None
    points : (P, N_0) array or None
        Inputs at which the conditional expectation q0 is reported.
    montecarlo : MonteCarloOptions or None
        The ``[montecarlo]`` reference run beside the solution.
    output_path : str or None
    table : dict
        The effective case (after overrides) as plain data.
    """

    name: str
    seed: int
    network: Network
    input: InputLaw
    solver: SolverOptions
    backend: str = "cpu"
    observable: Observable | None = None
    points: np.ndarray | None = None
    montecarlo: MonteCarloOptions | None = None
    output_path: str | None = None
    table: dict = field(default_factory=dict)

    @property
    def toml(self) -> str:
        """The effective case as TOML text."""
        return tomli_w.dumps(self.table)


def load_case(source, overrides=(), base_dir: Path | None = None) -> Case:
    """Read and validate a case file (a path) or a case table (a dict).

    Parameters
    ----------
    source : str, Path or dict
    overrides : iterable of str
        ``"section.key=value"`` strings, applied before validation.
    base_dir : Path, optional
        Directory against which relative paths in the case (``network.file``)
        are resolved; defaults to the case file's directory.

    Raises
    ------
    CaseError
        Naming the dotted key, the rule and the value.
    """
    if isinstance(source, dict):
        return _build(_copy(source), overrides, base_dir, "case")
    path = Path(source)
    try:
        text = path.read_text()
    except OSError as err:
        raise CaseError("CASE", f"must be a readable TOML file ({err.strerror})", str(path)) from None
    return loads_case(text, overrides, base_dir or path.resolve().parent, default_name=path.stem)


def loads_case(text: str, overrides=(), base_dir: Path | None = None, default_name: str = "case") -> Case:
    """Validate a case given as TOML text."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CaseError("CASE", f"must be valid TOML ({err})") from None
    return _build(table, overrides, base_dir, default_name)


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def parse_override(text: str) -> tuple[list, object]:
    """``"a.b[2].c=value"`` -> (["a", "b", 2, "c"], parsed value).

    The value is read as a TOML value (``2`` is an int, ``[1, 2]`` a list,
    ``true`` a bool) and taken as a plain string when it is not one.
    """
    if not isinstance(text, str) or "=" not in text:
        raise CaseError("--set", "must have the form section.key=value", text)
    key, raw = text.split("=", 1)
    path: list = []
    for part in key.strip().split("."):
        match = _PATH_PART.match(part)
        if not match:
            raise CaseError("--set", "must name a dotted key such as solver.nodes or network.layers[0].bias", text)
        path.append(match.group(1))
        path.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(table: dict, overrides) -> dict:
    """A copy of ``table`` with the overrides applied (creating tables as needed)."""
    table = _copy(table)
    for text in overrides:
        path, value = parse_override(text)
        node = table
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise CaseError("--set", f"index [{part}] is out of range", text)
            elif not isinstance(node, dict):
                raise CaseError("--set", f"{part!r} is not inside a table", text)
            elif part not in node:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        last = path[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise CaseError("--set", f"index [{last}] is out of range", text)
        elif not isinstance(node, dict):
            raise CaseError("--set", f"{last!r} is not inside a table", text)
        node[last] = value
    return table


def _copy(obj):
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


def _section(table: dict, name: str, required: bool = False) -> dict | None:
    if name not in table:
        if required:
            raise CaseError(name, "is a required section")
        return None
    value = table[name]
    if not isinstance(value, dict):
        raise CaseError(name, "must be a table", value)
    return value


def _only(section: dict, name: str, allowed: tuple) -> None:
    for key in section:
        if key not in allowed:
            raise CaseError(f"{name}.{key}", f"is not a key of [{name}] (valid: {sorted(allowed)})", section[key])


def _build(table: dict, overrides, base_dir, default_name: str) -> Case:
    table = apply_overrides(table, overrides)
    for name in table:
        if name not in SECTIONS:
            raise CaseError(name, f"is not a case section (valid: {list(SECTIONS)})", table[name])
    meta = _section(table, "case") or {}
    _only(meta, "case", ("name", "seed"))
    name = meta.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise CaseError("case.name", "must be a non-empty string", name)
    seed = integer(meta.get("seed", 0), "case.seed", 0)

    network = make_network(_section(table, "network", required=True), "network", base_dir)
    law = make_input(_section(table, "input", required=True), "input")
    if law.dim != network.widths[0]:
        raise CaseError("input", f"must have dimension {network.widths[0]} (the network's input width), "
                        f"has {law.dim}", law.to_dict())

    solver_table = dict(_section(table, "solver") or {})
    method = solver_table.pop("method", "grid")
    backend = solver_table.pop("backend", "cpu")
    if backend == "cuda":
        raise CaseError("solver.backend", "'cuda' is not available in this version (use 'cpu')", backend)
    if backend not in BACKENDS:
        raise CaseError("solver.backend", f"must be one of {list(BACKENDS)}", backend)
    solver = make_options(method, solver_table, "solver")
    if method != "montecarlo":
        for n, layer in enumerate(network):
            if layer.noise.is_deterministic:
                raise CaseError(f"network.layers[{n}].noise.kind",
                                f"must not be 'none' with solver.method = {method!r}: the density after a noiseless "
                                "layer is singular (use method = 'montecarlo', or give the layer noise)", "none")

    observable = points = None
    obs = _section(table, "observable")
    if obs is not None:
        obs = dict(obs)
        raw_points = obs.pop("points", None)
        observable = make_observable(obs, "observable")
        observable.check_width(network.widths[-1])
        if raw_points is not None:
            points = real_array(raw_points, "observable.points", 2, (None, network.widths[0]))

    if _section(table, "projection") is not None:
        raise CaseError("projection", "is not supported by this version yet (the Mori-Zwanzig reduction is planned)",
                        table["projection"])

    mc = _section(table, "montecarlo")
    montecarlo = make_options("montecarlo", dict(mc), "montecarlo") if mc is not None else None

    out = _section(table, "output") or {}
    _only(out, "output", ("path",))
    output_path = out.get("path")
    if output_path is not None and (not isinstance(output_path, str) or not output_path):
        raise CaseError("output.path", "must be a non-empty path string", output_path)
    return Case(name, seed, network, law, solver, backend, observable, points, montecarlo, output_path, table)
