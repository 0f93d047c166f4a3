"""Reliability: generated invalid cases, random valid cases, the memory guard,
kill -9 and --resume, --strict, determinism.

Oracles: for an invalid case, the dotted key of the entry that was broken (the
mutation knows which entry it broke; the error must name it, or the table or
entry that holds it) and the exit-status contract of shared/INTERFACE.md; for
resume and determinism, bitwise equality with an uninterrupted run (every step
of the grid solve is deterministic, so anything short of equality is a bug);
for the memory guard, the refusal itself and its wall time.
"""
from __future__ import annotations

import copy
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mzpdf.cli import main
from mzpdf.errors import CaseError, MzpdfWarning
from mzpdf.io.case import loads_case
from mzpdf.solvers import check_memory, estimate_bytes

# A valid case touching every section; each mutation below breaks one entry.
BASE = {
    "case": {"name": "prop", "seed": 3},
    "network": {"layers": [
        {"kind": "dense", "weights": [[0.8, -0.3], [0.2, 0.9]], "bias": [0.1, 0.0], "activation": "tanh",
         "noise": {"kind": "gaussian", "std": 0.2}},
        {"kind": "dense", "weights": [[0.5, 0.5], [0.1, -0.2]], "activation": "leaky_relu", "slope": 0.1,
         "noise": {"kind": "uniform", "half_width": 0.5}},  # 32 nodes: quadrature mass error 3e-3
    ]},
    "input": {"kind": "gaussian", "mean": [0.0, 0.0], "std": 0.5},
    "solver": {"method": "grid", "nodes": 32, "tail": 1e-6, "kernel": "auto", "marginal_points": 11,
               "tol": 0.2},  # these tests check determinism and files, not accuracy (estimate 0.085 at 32 nodes)
    "observable": {"kind": "neuron", "index": 0, "points": [[0.0, 0.0]]},
    "projection": {"kind": "chorin", "keep": [0], "memory": 1},
    "montecarlo": {"samples": 100, "seed": 1},
    "output": {"path": "x.h5"},
}

L0, L1 = ("network", "layers", 0), ("network", "layers", 1)
# Entries and values that entry never accepts (wrong type, out of range, wrong shape).
BAD_VALUES = {
    ("case", "name"): [3, "", "a/b", [], {"x": 1}],
    ("case", "seed"): [-1, 1.5, "x", [1], True],
    L0 + ("kind",): ["conv", 1, []],
    L0 + ("weights",): ["w", [[1.0, "a"], [0.0, 1.0]], [[1.0, 2.0], [3.0]], [[math.nan, 0.0], [0.0, 1.0]], [], 2.0],
    L0 + ("bias",): [[0.1], "b", [math.nan, 0.0], [math.inf, 0.0], [[0.1, 0.0]]],
    L0 + ("activation",): ["swish", 3, ["tanh"]],
    L0 + ("noise", "kind"): ["cauchy", 0],
    L0 + ("noise", "std"): [0.0, -1.0, math.inf, math.nan, "s", [0.1, 0.1, 0.1], [0.1, -0.1]],
    L1 + ("slope",): ["s", math.nan, math.inf],
    L1 + ("noise", "half_width"): [0.0, -1.0, "h", math.nan],
    L1 + ("weights",): [[[0.5]], [[0.5, 0.5, 0.5], [0.1, 0.2, 0.3]], "w"],
    ("input", "kind"): ["beta", 2],
    ("input", "mean"): [[0.0], "m", [math.nan, 0.0], [[0.0, 0.0]]],
    ("input", "std"): [0.0, -1.0, "s", math.inf],
    ("solver", "method"): ["magic", 1, ["grid"]],
    ("solver", "nodes"): [1, 0, -5, 2.5, "n", True, [8]],
    ("solver", "tail"): [0.0, 1.0, -1.0, 2.0, "t", math.nan],
    ("solver", "kernel"): ["fast", 0],
    ("solver", "marginal_points"): [1, 0, "m", 3.5],
    ("observable", "kind"): ["energy", 7],
    ("observable", "index"): [-1, 5, 1.5, "i"],
    ("observable", "points"): [[[0.0]], "p", [[math.nan, 0.0]]],
    ("projection", "kind"): ["petrov", 0],
    ("projection", "keep"): [[7], [], "0", [0, 0], [-1]],
    ("projection", "memory"): [-1, "partial", 1.5],
    ("montecarlo", "samples"): [0, -1, 1.5, "s"],
    ("montecarlo", "seed"): [-1, "s", 0.5],
    ("output", "path"): ["", 3, []],
}
# Entries without a default.
REQUIRED = [("network",), ("input",), L0 + ("weights",), L0 + ("noise", "std"), L1 + ("noise", "half_width"),
            ("input", "mean"), ("observable", "index"), ("projection", "keep"), ("projection", "kind")]
# Tables that accept only their own keys (an unknown key is a typo to report).
TABLES = [(), ("case",), ("network",), L0, L1, L0 + ("noise",), L1 + ("noise",), ("input",), ("solver",),
          ("observable",), ("projection",), ("montecarlo",), ("output",)]
ENUMS = {L0 + ("kind",): {"dense", "residual"}, L0 + ("activation",): {"tanh", "sigmoid", "relu", "leaky_relu",
         "erf", "softplus", "identity"}, ("solver", "method"): {"grid", "sparse", "tt", "montecarlo"},
         ("input", "kind"): {"gaussian", "uniform", "mixture", "point"}, ("solver", "kernel"):
         {"auto", "dense", "windowed"}, ("observable", "kind"): {"neuron", "linear"}}
NUMERIC = [p for p in BAD_VALUES if p not in ENUMS and p not in {("case", "name"), ("output", "path")}]


def dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _get(table, path):
    for part in path:
        table = table[part]
    return table


def mutated(path, value=None, delete=False, add=None):
    case = copy.deepcopy(BASE)
    parent = _get(case, path[:-1]) if path else case
    if delete:
        del parent[path[-1]]
    elif add is not None:
        _get(case, path)[add] = 1
    else:
        parent[path[-1]] = value
    return case


def _toml_safe(value) -> bool:
    try:
        tomli_w.dumps({"v": value})
        return True
    except (TypeError, ValueError):
        return False


_garbage = st.one_of(st.text(max_size=8), st.dictionaries(st.text(min_size=1, max_size=3), st.integers(), max_size=2,
                                                           min_size=1), st.lists(st.text(max_size=3), max_size=2))
_key_name = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)


@st.composite
def invalid_cases(draw):
    """(case table, the dotted key the error must name)."""
    how = draw(st.sampled_from(["value", "type", "enum", "delete", "unknown"]))
    if how == "value":
        path = draw(st.sampled_from(sorted(BAD_VALUES, key=dotted)))
        return mutated(path, draw(st.sampled_from(BAD_VALUES[path]))), dotted(path)
    if how == "type":  # a string, table or list where a number belongs
        path = draw(st.sampled_from(NUMERIC))
        return mutated(path, draw(_garbage)), dotted(path)
    if how == "enum":  # a name not in the list, or not a string at all
        path = draw(st.sampled_from(sorted(ENUMS, key=dotted)))
        value = draw(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.booleans()))
        if value in ENUMS[path]:
            value = value + "_x"
        return mutated(path, value), dotted(path)
    if how == "delete":
        path = draw(st.sampled_from(REQUIRED))
        return mutated(path, delete=True), dotted(path)
    path = draw(st.sampled_from(TABLES))
    name = draw(_key_name.filter(lambda s: s not in _get(BASE, path)))
    return mutated(path, add=name), dotted(path + (name,))


def _names_entry(err_key: str, expected: str) -> bool:
    """The error names the broken entry, an entry inside it, or a table that holds it."""
    return bool(err_key) and (err_key == expected or err_key.startswith(expected + ".")
                              or err_key.startswith(expected + "[") or expected.startswith(err_key + ".")
                              or expected.startswith(err_key + "["))


def test_base_case_is_valid():
    """Otherwise every refusal below would prove nothing."""
    case = loads_case(tomli_w.dumps(BASE))
    assert list(case.network.widths) == [2, 2, 2]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(invalid_cases())
def test_invalid_cases_exit_2_naming_the_key(capsys, example):
    table, key = example
    try:
        text = tomli_w.dumps(table)
    except (TypeError, ValueError):  # not expressible in TOML: nothing for a user to write
        return
    with pytest.raises(CaseError) as info:
        loads_case(text)
    assert _names_entry(info.value.key, key), (info.value.key, key, str(info.value))
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp, "case.toml"), Path(tmp, "out.h5")
        path.write_text(text)
        capsys.readouterr()
        assert main(["run", str(path), "-o", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert info.value.key in err and err.count("\n") == 1, err
        assert sorted(os.listdir(tmp)) == ["case.toml"]  # no result, no checkpoint, no temporary


# -- random valid cases ---------------------------------------------------------

ACTIVATIONS = ["tanh", "sigmoid", "relu", "leaky_relu", "erf", "softplus", "identity"]
NOISES = [{"kind": "gaussian", "std": 0.3}, {"kind": "uniform", "half_width": 0.4}, {"kind": "laplace", "scale": 0.2}]


@st.composite
def valid_cases(draw):
    widths = draw(st.lists(st.integers(1, 2), min_size=2, max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers.append({"weights": rng.normal(0, 1, (n_out, n_in)).round(3).tolist(),
                       "bias": rng.normal(0, 0.3, n_out).round(3).tolist(),
                       "activation": draw(st.sampled_from(ACTIVATIONS)), "noise": draw(st.sampled_from(NOISES))})
    kind = draw(st.sampled_from(["gaussian", "uniform", "point"]))
    inp = {"gaussian": {"kind": "gaussian", "mean": [0.0] * widths[0], "std": 0.7},
           "uniform": {"kind": "uniform", "low": [-1.0] * widths[0], "high": [1.0] * widths[0]},
           "point": {"kind": "point", "x": [0.3] * widths[0]}}[kind]
    method = draw(st.sampled_from(["grid", "montecarlo"]))
    solver = {"method": "grid", "nodes": draw(st.integers(16, 24)), "marginal_points": 9} if method == "grid" else \
        {"method": "montecarlo", "samples": 2000, "marginal_points": 9}
    return {"case": {"name": "random", "seed": 1}, "network": {"layers": layers}, "input": inp, "solver": solver}


@settings(max_examples=25, deadline=None)
@given(valid_cases())
def test_random_valid_cases_run(table):
    """Every valid case runs, with its mass near 1 or a health warning in its
    diagnostics; none raises."""
    from mzpdf.pipeline import run

    case = loads_case(tomli_w.dumps(table))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MzpdfWarning)
        results = run(case)
    mass = results.diagnostics["mass"]
    assert np.all(np.isfinite(mass))
    if case.solver.method == "grid" and "warnings" not in results.diagnostics and results.accepted:
        # No silent inaccuracy: a grid too coarse for the noise (Laplace noise
        # of scale 0.2 on 16 nodes loses a third of the mass) must say so (a
        # warning, or exit 3 for an error estimate above solver.tol);
        # otherwise the mass is within the warning threshold of 1e-2 per layer.
        assert np.all(np.abs(mass - 1.0) < 1e-2 * len(mass)), mass
    for layer in results.forward:
        assert np.all(np.isfinite(layer.mean)) and np.all(np.isfinite(layer.cov))


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "mzpdf", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kw)


# -- memory guard ------------------------------------------------------------------

def _wide_case(nodes: int, width: int):
    eye = np.eye(width).tolist()
    table = {"network": {"layers": [{"weights": eye, "activation": "tanh", "noise": {"kind": "gaussian", "std": 0.1}}]},
             "input": {"kind": "gaussian", "mean": [0.0] * width, "std": 1.0},
             "solver": {"method": "grid", "nodes": nodes}}
    return table


def test_memory_guard_refuses_fast_with_estimate(tmp_path):
    """128 nodes on 8 neurons is 7.2e16 points: the whole command (a fresh
    interpreter, imports included; ~0.3 s measured) is refused within 1 s,
    naming solver.nodes and the estimate, before any allocation."""
    path, out = tmp_path / "wide.toml", tmp_path / "wide.h5"
    path.write_text(tomli_w.dumps(_wide_case(128, 8)))
    start = time.perf_counter()
    proc = _cli("run", str(path), "-o", str(out))
    _, err = proc.communicate(timeout=60)
    elapsed = time.perf_counter() - start
    err = err.decode()
    assert proc.returncode == 2 and elapsed < 1.0, (proc.returncode, elapsed, err)
    assert "solver.nodes" in err and "needs about" in err and ("PiB" in err or "EiB" in err), err
    assert "'tt'" in err and not out.exists()


def test_memory_estimate_scales_with_the_grid():
    """The estimate grows like nodes**width (here 2**3 = 8 when doubling the
    nodes of a 3-neuron layer), so it refuses the right cases."""
    small = estimate_bytes(loads_case(tomli_w.dumps(_wide_case(40, 3))))
    big = estimate_bytes(loads_case(tomli_w.dumps(_wide_case(80, 3))))
    base = estimate_bytes(loads_case(tomli_w.dumps(_wide_case(2, 1))))
    assert 6.0 < (big - base) / (small - base) < 8.5
    case = loads_case(tomli_w.dumps(_wide_case(40, 3)))
    assert check_memory(case) == small
    with pytest.raises(CaseError) as info:
        check_memory(case, available=small - 1)
    assert info.value.key == "solver.nodes"


# -- kill -9, --resume, determinism -------------------------------------------------

# 3 neurons x 8 layers at 30 nodes: ~1 s per layer on 2 cores, long enough to
# kill between layers.
LONG = {"case": {"name": "long"},
        "network": {"random": {"widths": [3] * 9, "sigma_w": 0.9, "seed": 5, "activation": "tanh",
                               "noise": {"kind": "gaussian", "std": 0.4}}},
        "input": {"kind": "gaussian", "mean": [0.0, 0.0, 0.0], "std": 0.5},
        "solver": {"method": "grid", "nodes": 30, "tail": 1e-8, "marginal_points": 21}}


def _forward_arrays(path):
    with h5py.File(path, "r") as f:
        out = {}
        f["forward"].visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset)
                                else None)
        for name in ("mass", "lost_mass", "duality_gap"):
            out["diagnostics/" + name] = f["diagnostics"][name][()]
        return out


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


@pytest.mark.slow
def test_kill_9_then_resume_gives_identical_densities(tmp_path):
    case = tmp_path / "long.toml"
    case.write_text(tomli_w.dumps(LONG))
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    assert _cli("run", str(case), "-o", str(ref), "--quiet").wait(timeout=300) == 0
    checkpoint = tmp_path / ".out.h5.checkpoint"
    proc = _cli("run", str(case), "-o", str(out), "--quiet")
    deadline = time.monotonic() + 240
    while not (checkpoint / "layer_003.npz").exists():  # killed after 3 of 8 layers
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = sorted(p.name for p in checkpoint.glob("layer_*.npz"))
    assert 3 <= len(done) < 8, done
    resumed = _cli("run", str(case), "-o", str(out), "--quiet", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert not checkpoint.exists()  # cleared once the result is written
    _assert_identical(_forward_arrays(ref), _forward_arrays(out))


def test_same_case_twice_gives_identical_numbers(tmp_path):
    """Determinism: grid solve, backward solve and the seeded Monte Carlo
    reference are bitwise repeatable."""
    table = copy.deepcopy(BASE)
    del table["output"]
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(table))
    for name in ("a.h5", "b.h5"):
        assert main(["run", str(path), "-o", str(tmp_path / name), "--quiet"]) == 0
    a, b = _forward_arrays(tmp_path / "a.h5"), _forward_arrays(tmp_path / "b.h5")
    _assert_identical(a, b)
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        for name in ("backward/q0", "backward/mean", "mz/memory_norm", "montecarlo/layer_002/mean"):
            assert np.array_equal(fa[name][()], fb[name][()], equal_nan=True), name


def test_resume_of_another_case_is_refused(tmp_path):
    """A checkpoint of a different case is never reused, nor silently
    replaced: --resume stops with exit 2 naming it; without --resume the
    run starts afresh (and says so)."""
    from mzpdf.io.checkpoint import Checkpoint

    table = copy.deepcopy(BASE)
    del table["output"], table["projection"], table["montecarlo"]
    path, out = tmp_path / "c.toml", tmp_path / "c.h5"
    path.write_text(tomli_w.dumps(table))
    stale = Checkpoint(tmp_path / ".c.h5.checkpoint", "other case")
    stale.start()
    stale.save(1, {"box": np.zeros((2, 2)), "values": np.zeros(64)})
    assert main(["run", str(path), "-o", str(out), "--quiet", "--resume"]) == 2
    assert stale.directory.exists() and not out.exists()
    assert main(["run", str(path), "-o", str(out), "--quiet"]) == 0
    assert not stale.directory.exists()
    with h5py.File(out) as f:
        assert abs(f["forward/layer_001/mass"][()] - 1.0) < 1e-3  # not the stale zeros


# -- numerical health, --strict --------------------------------------------------------

def _lossy_case(tmp_path):
    """A fixed box [-1, 1] around noise of std 1: most mass leaves it."""
    table = copy.deepcopy(BASE)
    del table["output"], table["projection"], table["montecarlo"], table["observable"]
    table["solver"] = {"method": "grid", "nodes": 8, "domain": [-1.0, 1.0]}
    table["network"]["layers"][0]["noise"] = {"kind": "gaussian", "std": 1.0}
    path = tmp_path / "lossy.toml"
    path.write_text(tomli_w.dumps(table))
    return path


@pytest.mark.filterwarnings("ignore::mzpdf.errors.MzpdfWarning")  # the run's own (stored and checked below)
def test_strict_fails_on_mass_loss_and_writes_nothing(tmp_path, capsys):
    path, out = _lossy_case(tmp_path), tmp_path / "lossy.h5"
    code = main(["run", str(path), "-o", str(out), "--quiet", "--strict"])
    err = capsys.readouterr().err
    assert code == 1 and "MassLossWarning" in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.filterwarnings("ignore::mzpdf.errors.MzpdfWarning")  # the run's own (stored and checked below)
def test_health_warnings_are_stored_in_diagnostics(tmp_path):
    path, out = _lossy_case(tmp_path), tmp_path / "lossy.h5"
    # most of the mass leaves the box: the run fails its accuracy check (exit 3) and keeps its warnings
    assert main(["run", str(path), "-o", str(out), "--quiet"]) == 3
    with h5py.File(out) as f:
        text = f["diagnostics/warnings"][()].decode()
    assert text.startswith("MassLossWarning: layer 1")
