"""Case files: TOML in, a validated :class:`Case` out.

Each section is validated by the constructor that owns it (network, input,
solver options, observable); this module checks the section layout, applies
``section.key=value`` overrides, cross-checks widths, and keeps the effective
case (after overrides) as text for every result file.
"""
from __future__ import annotations

import datetime as _dt
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import tomli_w

from .._validate import integer, number, real_array
from ..errors import CaseError
from ..mz.spec import ProjectionSpec
from ..network import InputLaw, Network, make_input, make_network
from ..network.folding import Fold, fold_input
from ..observables import Observable, make_observable
from ..options import AUTO, BACKENDS, SolverOptions
from ..solvers import SOLVERS, CaseKeys
from ..solvers.auto import choose_method
from ..solvers.base import DEFAULT_MAX_LOST_MASS
from ..solvers.montecarlo.options import MonteCarloOptions, MonteCarloReferenceOptions
from ..tails import make_tails
from ..theory.analysis import AnalysisSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Case", "load_case", "loads_case", "parse_override", "apply_overrides", "remove_keys"]

SECTIONS = ("case", "network", "input", "solver", "observable", "projection", "analysis", "montecarlo", "output")


@dataclass(frozen=True, eq=False)
class Case:
    """A validated case.

    Attributes
    ----------
    name : str
    seed : int
    network : Network
        What the methods see (the first layer folded when inputs are known
        exactly, see ``fold``).
    input : InputLaw
    solver : SolverOptions
        Options of ``solver.method``.
    backend : str
    observable : Observable or None
    points : (P, N_0) array or None
        Inputs at which the conditional expectation q0 is reported (as ``z``,
        (P, r), with a ``fold``).
    montecarlo : MonteCarloOptions or None
        The ``[montecarlo]`` reference run beside the solution.
    output_path : str or None
    projection : ProjectionSpec or None
        The ``[projection]`` (Mori-Zwanzig reduction) to run after the solve.
    method_reason : str
        Why ``solver.method`` is what it is (chosen by ``"auto"``, or named).
    fold : Fold or None
        With inputs known exactly (a gaussian std of 0, a singular cov):
        ``network``, ``input`` and ``points`` are then what the methods see
        (the first layer folded, ``z ~ N(0, I_r)``, points as ``z``), and
        ``fold.network``, ``fold.input`` and ``fold.points`` the case's own
        (:mod:`mzpdf.network.folding`).
    max_lost_mass : float
        ``solver.max_lost_mass``: a run whose discretization cut off more of
        any layer's law fails its accuracy checks (exit status 3).
    tails : TailSpec or None
        ``observable.thresholds`` and ``observable.quantiles`` (:mod:`mzpdf.tails`).
    table : dict
        The effective case as plain data: the case after overrides, with the
        defaults of ``[case]``, ``[solver]`` and ``[montecarlo]`` written out
        (what was actually run; :attr:`toml` is its text).
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
    projection: ProjectionSpec | None = None
    analysis: object = None
    tails: object = None
    max_lost_mass: float = DEFAULT_MAX_LOST_MASS
    method_reason: str = ""
    fold: Fold | None = None

    @property
    def toml(self) -> str:
        """The effective case as TOML text."""
        return tomli_w.dumps(self.table)


def load_case(source, overrides=(), base_dir: Path | None = None, unset=()) -> Case:
    """Read and validate a case file (a path) or a case table (a dict).

    Parameters
    ----------
    source : str, Path or dict
        A TOML file, or the parsed table (plain data: tables, lists, strings,
        numbers, booleans; NumPy arrays are turned into lists).
    overrides : iterable of str
        ``"section.key=value"`` strings (see :func:`parse_override`), applied
        in order before validation.
    base_dir : Path, optional
        Directory against which relative paths in the case (``network.file``)
        are resolved; defaults to the case file's directory.
    unset : iterable of str
        Dotted keys (``"solver.max_rank"``, ``"network.layers[0].noise"``) to
        remove from the case before the overrides are applied and the case is
        validated (see :func:`remove_keys`).

    Returns
    -------
    Case

    Raises
    ------
    CaseError
        Naming the dotted key, the rule and the value.
    """
    if isinstance(source, dict):
        return _build(_plain(source, ""), overrides, base_dir, "case", unset)
    path = Path(source)
    try:
        text = path.read_text()
    except OSError as err:
        raise CaseError(str(path), f"must be a readable case file ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise CaseError(str(path), "must be a UTF-8 TOML text file") from None
    return _loads(text, overrides, base_dir or path.resolve().parent, path.stem, str(path), unset)


def loads_case(text: str, overrides=(), base_dir: Path | None = None, default_name: str = "case") -> Case:
    """Validate a case given as TOML text (``[case].name`` defaults to ``default_name``)."""
    return _loads(text, overrides, base_dir, default_name, "case text")


def _loads(text, overrides, base_dir, default_name: str, where: str, unset=()) -> Case:
    if not isinstance(text, str):
        raise CaseError(where, "must be TOML text", text)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CaseError(where, f"must be valid TOML ({err})") from None
    return _build(table, overrides, base_dir, default_name, unset)


_PATH_PART = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)$")  # a TOML bare key, then [i]...


def parse_override(text: str) -> tuple[list, object]:
    """``"a.b[2].c=value"`` -> (["a", "b", 2, "c"], parsed value).

    The value is read as a TOML value (``2`` is an int, ``[1, 2]`` a list,
    ``true`` a bool, ``{kind = "none"}`` a table) and taken as a plain string
    when it is not one (``case.name=hello``). The text is split at its first
    ``=``.

    Raises
    ------
    CaseError
        With key ``"--set"`` when there is no ``=`` or the key is not a dotted
        path of bare keys with optional ``[i]`` indices.
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
    """A copy of ``table`` with the overrides (``"section.key=value"`` strings,
    applied in order) set, creating tables as needed.

    Raises
    ------
    CaseError
        With key ``"--set"`` and the override's text as value, for a malformed
        override, a list index out of range, or a key below a non-table value.
    """
    if isinstance(overrides, str):  # one override given bare
        overrides = [overrides]
    table = _copy(table)
    for text in overrides:
        path, value = parse_override(text)
        node = table
        for i, part in enumerate(path[:-1]):
            _check_step(node, part, text)
            if isinstance(part, str) and part not in node:
                node[part] = [] if isinstance(path[i + 1], int) else {}
            node = node[part]
        _check_step(node, path[-1], text)
        node[path[-1]] = value
    return table


def remove_keys(table: dict, keys) -> dict:
    """A copy of ``table`` without the entries named by ``keys`` (dotted keys
    such as ``"solver.max_rank"`` or ``"network.layers[0].noise"``, removed in
    order; a table entry goes with everything below it).

    Raises
    ------
    CaseError
        With key ``"--unset"`` for a malformed key, and with the dotted key
        itself ("is not in the case") for a key the case does not hold.
    """
    if isinstance(keys, str):  # one key given bare
        keys = [keys]
    table = _copy(table)
    for text in keys:
        try:
            if not isinstance(text, str) or "=" in text:
                raise CaseError("--unset", "", text)
            path, _ = parse_override(f"{text}=0")
        except CaseError:
            raise CaseError("--unset", "must name a dotted key such as solver.max_rank or network.layers[0].noise",
                            text) from None
        node = table
        for part in path:
            held = node[part] if isinstance(part, str) and isinstance(node, dict) and part in node else (
                node[part] if isinstance(part, int) and isinstance(node, list) and part < len(node) else None)
            if held is None:
                raise CaseError(text.strip(), "is not in the case, so --unset cannot remove it")
            parent, node = node, held
        del parent[path[-1]]
    return table


def _check_step(node, part, text: str) -> None:
    if isinstance(part, int):
        if not isinstance(node, list):
            raise CaseError("--set", f"index [{part}] applies to a list, not to {type(node).__name__}", text)
        if part >= len(node):
            raise CaseError("--set", f"index [{part}] is out of range (the list has {len(node)} entries)", text)
    elif not isinstance(node, dict):
        raise CaseError("--set", f"{part!r} is not inside a table", text)


def _copy(obj):
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    return obj


_TOML_SCALARS = (str, bool, int, float, _dt.datetime, _dt.date, _dt.time)


def _plain(obj, key: str):
    """A deep copy of ``obj`` made of TOML values only (NumPy arrays and scalars
    become lists and Python numbers); anything else is a CaseError at ``key``."""
    here = key or "case"
    if isinstance(obj, dict):
        out = {}
        for name, value in obj.items():
            if not isinstance(name, str):
                raise CaseError(here, "must have string keys", name)
            out[name] = _plain(value, f"{key}.{name}" if key else name)
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{here}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist(), key)
    if isinstance(obj, np.generic):
        return _plain(obj.item(), key)
    if isinstance(obj, _TOML_SCALARS):
        return obj
    raise CaseError(here, "must be a TOML value (table, list, string, number, boolean or date)", obj)


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


def _build(table: dict, overrides, base_dir, default_name: str, unset=()) -> Case:
    table = apply_overrides(remove_keys(table, unset), overrides)
    for name in table:
        if name not in SECTIONS:
            raise CaseError(name, f"is not a case section (valid: {list(SECTIONS)})", table[name])
    meta = _section(table, "case") or {}
    _only(meta, "case", ("name", "seed"))
    name = meta.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\\0"):
        raise CaseError("case.name", "must be a non-empty string without '/', '\\' or NUL "
                        "(it names the default result file <name>.h5)", name)
    seed = integer(meta.get("seed", 0), "case.seed", 0)

    network = make_network(_section(table, "network", required=True), "network", base_dir)
    law = make_input(_section(table, "input", required=True), "input")
    if law.dim != network.widths[0]:
        raise CaseError("input", f"must have dimension {network.widths[0]} (the network's input width), "
                        f"has {law.dim}", law.to_dict())
    if law.is_atomic and all(layer.noise.is_deterministic for layer in network):
        raise CaseError("input.kind", "must not be 'point' when every layer's noise is 'none': the network has no "
                        "uncertainty anywhere, so there is no law to propagate (give the input a law, e.g. kind = "
                        "'gaussian', or a layer noise)", "point")
    fold = _fold(network, law, table["input"])

    solver_table = dict(_section(table, "solver") or {})
    method = solver_table.pop("method", AUTO)
    backend = solver_table.pop("backend", "cpu")
    max_lost_mass = number(solver_table.pop("max_lost_mass", DEFAULT_MAX_LOST_MASS), "solver.max_lost_mass", 0.0,
                           strict=False)
    if max_lost_mass >= 1.0:
        raise CaseError("solver.max_lost_mass", "must be in [0, 1) (the largest mass a layer's discretization may "
                        "cut off before the run fails its accuracy checks)", max_lost_mass)
    if backend not in BACKENDS:
        raise CaseError("solver.backend", f"must be one of {list(BACKENDS)}", backend)

    observable = points = tails = None
    obs = _section(table, "observable")
    if obs is not None:
        obs = dict(obs)
        raw_points = obs.pop("points", None)
        tails = make_tails(obs.pop("thresholds", None), obs.pop("quantiles", None), "observable")
        if tails is not None and "kind" not in obs:
            raise CaseError("observable.kind", f"is required with {tails.key}: the exceedance probabilities "
                            "are those of an observable g(X_L) ('neuron' or 'linear')")
        observable = make_observable(obs, "observable")
        observable.check_width(network.widths[-1])
        if raw_points is not None:
            points = real_array(raw_points, "observable.points", 2, (None, network.widths[0]))
        if fold is not None:
            try:
                fold = fold.with_points(points)
            except ValueError as err:
                raise CaseError("observable.points", f"must lie on the input law's support: {err}") from None
            points = fold.reduced_points

    projection = None
    proj_table = _section(table, "projection")
    if proj_table is not None:
        projection = ProjectionSpec.from_table(proj_table, network.widths, "projection")
        if law.is_atomic:
            raise CaseError("input.kind", "must not be 'point' when [projection] is given (the reduction "
                            "projects the input density)", "point")
        if fold is not None:
            key = _known_key(table["input"])
            raise CaseError(key, "must mark no input as known exactly (a std of 0, a singular cov) when [projection] "
                            "is given: the reduction projects the input density, which has none",
                            table["input"].get(key[6:]))

    analysis = None
    analysis_table = _section(table, "analysis")
    if analysis_table is not None:
        analysis = AnalysisSpec.from_table(analysis_table, table["network"], list(network.widths))
        if fold is not None and analysis.distances != "none":
            key = _known_key(table["input"])
            raise CaseError(key, f"must mark no input as known exactly (a std of 0, a singular cov) with "
                            f"analysis.distances = {analysis.distances!r}: the input has no density to compare",
                            table["input"].get(key[6:]))

    mc = _section(table, "montecarlo")
    montecarlo = MonteCarloReferenceOptions.from_dict(dict(mc)) if mc is not None else None

    out = _section(table, "output") or {}
    _only(out, "output", ("path",))
    output_path = out.get("path")
    if output_path is not None and (not isinstance(output_path, str) or not output_path):
        raise CaseError("output.path", "must be a non-empty path string", output_path)

    def build(method_name, defaults=None) -> Case:  # method_name's case (options: defaults < the case's keys)
        method_cls = SOLVERS.get(method_name, "solver.method")
        if backend not in method_cls.capabilities.backends:
            runs = [n for n in SOLVERS if backend in SOLVERS.get(n).capabilities.backends]
            raise CaseError("solver.backend", f"{backend!r} runs the {', '.join(runs)} method only (solver.method "
                                              f"= {method_name!r}: use 'cpu')", backend)
        solver = method_cls.options_class.from_dict({**(defaults or {}), **solver_table})
        effective = _effective(table, {"name": name, "seed": seed}, {"method": method_name, "backend": backend,
                                                                 "max_lost_mass": max_lost_mass}, solver,
                               montecarlo, projection, analysis)
        case = Case(name, seed, network if fold is None else fold.folded_network,
                    law if fold is None else fold.folded_input, solver, backend, observable, points, montecarlo,
                    output_path, effective, projection, analysis, tails=tails, max_lost_mass=max_lost_mass,
                    fold=fold)
        method_cls.check_case(case, CaseKeys(table["network"]))
        return case

    case = choose_method(method, build)
    if fold is not None:  # say so beside the method's reason (stderr of mzpdf run, /diagnostics method_reason)
        case = replace(case, method_reason="; ".join(r for r in (case.method_reason, fold.describe()) if r))
    return case


def _fold(network, law, spec: dict):
    """The :class:`~mzpdf.network.folding.Fold` of a gaussian input with
    inputs known exactly (None otherwise); a CaseError naming the [input] key
    that marks them when they cannot be folded."""
    key = _known_key(spec)
    try:
        fold = fold_input(network, law)
    except ValueError as err:
        raise CaseError(key, str(err), spec.get(key[6:])) from None
    if fold is not None and fold.rank == 0 and all(layer.noise.is_deterministic for layer in network):
        raise CaseError(key, "must not mark every input as known exactly when every layer's noise is 'none': the "
                        "network has no uncertainty anywhere, so there is no law to propagate", spec.get(key[6:]))
    return fold


def _known_key(spec: dict) -> str:
    """The [input] key that marks inputs as known exactly."""
    return "input." + next((k for k in ("uncertain", "std", "cov") if k in spec), "cov")


def _effective(table: dict, meta: dict, solver_head: dict, solver: SolverOptions, montecarlo, projection,
               analysis=None) -> dict:
    """The case as run: ``table`` with the defaults of [case], [solver],
    [projection] and [montecarlo] written out, sections in canonical order. Validating it again
    gives the same case (and the same table)."""
    def options(opt) -> dict:
        return _plain({k: v for k, v in opt.to_dict().items() if v is not None}, opt.key)

    out = _copy(table)
    out["case"] = {**out.get("case", {}), **meta}
    out["solver"] = {**solver_head, **options(solver)}
    if montecarlo is not None:
        out["montecarlo"] = options(montecarlo)
    if projection is not None:
        out["projection"] = projection.to_dict()
    if analysis is not None:
        out["analysis"] = analysis.to_dict()
    return {name: out[name] for name in SECTIONS if name in out}
