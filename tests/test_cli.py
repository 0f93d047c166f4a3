"""The command line: exit codes (0 / 2 / 1), messages naming keys, the output
path rules, and no result file left behind by any failure.

Oracles: the exit codes and stderr contract of shared/INTERFACE.md; file
existence and bytes before/after; for the end-to-end runs, probability mass
conservation and the Monte Carlo standard error (tolerances below).
"""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from mzpdf.cli import main
from mzpdf.io.case import loads_case
from mzpdf.io.hdf5 import read_results


CASES = Path(__file__).resolve().parents[1] / "cases"

# 2 layers of 2 neurons, as small as a grid run gets.
TINY = """
[case]
name = "tiny"
[network]
[[network.layers]]
weights = [[0.8, -0.3], [0.2, 0.9]]
bias = [0.1, 0.0]
activation = "tanh"
noise = { kind = "gaussian", std = 0.2 }
[[network.layers]]
weights = [[0.5, 0.5], [-0.4, 0.7]]
bias = [0.0, 0.2]
activation = "tanh"
noise = { kind = "gaussian", std = 0.2 }
[input]
kind = "gaussian"
mean = [0.0, 0.0]
std = 0.5
[solver]
method = "grid"
nodes = 16
tol = 0.5
[observable]
kind = "neuron"
index = 0
points = [[0.0, 0.0], [0.5, -0.5]]
"""
# these tests check the command line, not accuracy: tol = 0.5 lets their 12-16 node grids exit 0 (the
# estimate at 12 nodes is 0.36); tests/test_grid_accuracy.py checks what tol means
TINY_MC = TINY.replace('method = "grid"\nnodes = 16\ntol = 0.5', 'method = "montecarlo"\nsamples = 2000')

# 12 nodes per neuron keep the mass of this smooth case to ~2e-5 (measured); a
# broken quadrature shifts it by O(1/nodes) ~ 0.1, so 1e-3 separates the two.
MASS_TOL = 1e-3
# E[g(X_L)] backward vs the forward mean of neuron 0: equal up to discretization
# error, ~1e-5 at 12 nodes (measured); same margin as the mass.
DUALITY_TOL = 1e-3
# Monte Carlo means: 6 standard errors (two-sided false alarm rate ~2e-9).
MC_SIGMAS = 6.0


@pytest.fixture
def case_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("mzpdf: error: "), err
    return err


# -- validate ------------------------------------------------------------------

def test_validate_ok(case_file, capsys):
    assert main(["validate", str(case_file)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{case_file}: valid") and "[2, 2, 2]" in out and "method grid" in out


def test_validate_applies_overrides(case_file, capsys):
    assert main(["validate", str(case_file), "--set", "network.layers[1].weights=[[0.5, 0.5]]",
                 "--set", "network.layers[1].bias=[0.0]"]) == 0
    assert "network widths [2, 2, 1]" in capsys.readouterr().out


@pytest.mark.parametrize("override,key", [("network.layers[0].noise.std=-0.1", "network.layers[0].noise.std"),
                                          ("solver.backend=gpu", "solver.backend"),
                                          ("solver.nodes", "--set")])
def test_validate_invalid_exits_2_naming_the_key(case_file, capsys, override, key):
    assert main(["validate", str(case_file), "--set", override]) == 2
    assert key in _one_error_line(capsys.readouterr().err)


def test_missing_case_file_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("name", ["quickstart", "linear_gaussian", "relu_3d", "residual_2d"])
def test_example_cases_validate(name):
    assert main(["validate", str(CASES / f"{name}.toml")]) == 0


# -- argument errors -------------------------------------------------------------

@pytest.mark.parametrize("argv", [["frobnicate"], [], ["run"], ["info"], ["run", "x.toml", "--bogus"]])
def test_argument_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "mzpdf: error:" in capsys.readouterr().err


def test_version_exits_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("mzpdf ")


# -- run -------------------------------------------------------------------------

def test_invalid_case_exits_2_names_key_and_writes_nothing(case_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    code = main(["run", str(case_file), "-o", str(out), "--set", "network.layers[0].noise.std=-0.1"])
    err = _one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "network.layers[0].noise.std" in err and "> 0" in err and "-0.1" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_run_grid_end_to_end(case_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    assert main(["run", str(case_file), "-o", str(out), "--set", "solver.nodes=12"]) == 0
    summary = capsys.readouterr().out
    assert "'tiny'" in summary and "method grid" in summary
    r = read_results(out)
    assert r.method == "grid" and r.depth == 2 and [s.mean.size for s in r.forward] == [2, 2, 2]
    for layer in r.forward:
        assert abs(layer.mass - 1.0) < MASS_TOL
    assert r.backward.q0.shape == (2,) and r.backward.points.shape == (2, 2)
    assert abs(r.backward.mean - r.forward[-1].mean[0]) < DUALITY_TOL
    effective = loads_case(r.case_toml)  # the effective case, overrides included, is in the file
    assert effective.solver.nodes == 12 and effective.name == "tiny"


def test_run_montecarlo_end_to_end(tmp_path, capsys):
    case_file = tmp_path / "mc.toml"
    case_file.write_text(TINY_MC)
    out = tmp_path / "mc.h5"
    assert main(["run", str(case_file), "-o", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    r = read_results(out)
    assert r.method == "montecarlo" and r.depth == 2 and r.backward.q0.shape == (2,)
    # layer 0 holds samples of N(0, 0.5^2 I): its mean is within MC_SIGMAS standard errors of 0
    stderr = 0.5 / np.sqrt(2000)
    assert np.all(np.abs(r.forward[0].mean) < MC_SIGMAS * stderr)


def test_existing_output_is_refused_before_computing(case_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.h5"
    out.write_bytes(b"precious")
    calls = []
    monkeypatch.setattr(sys.modules["mzpdf.pipeline"], "run", lambda *a, **k: calls.append(1))
    assert main(["run", str(case_file), "-o", str(out), "--quiet"]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert "--overwrite" in err and str(out) in err and "--output" in err
    assert calls == [] and out.read_bytes() == b"precious"


def test_overwrite_replaces(case_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    out.write_bytes(b"old")
    assert main(["run", str(case_file), "-o", str(out), "--quiet", "--overwrite", "--set", "solver.nodes=12"]) == 0
    assert read_results(out).case_name == "tiny"


def test_output_path_from_case_then_default_name(case_file, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # relative [output].path and the default are relative to the current directory
    args = ["run", str(case_file), "--quiet", "--set", "solver.nodes=12"]
    assert main(args + ["--set", "output.path=res/a.h5"]) == 0
    assert (work / "res" / "a.h5").is_file()
    assert main(args) == 0
    assert (work / "tiny.h5").is_file()
    assert main(args) == 2  # the default path exists now
    assert "output.path" in _one_error_line(capsys.readouterr().err)


def test_failed_run_leaves_no_file(case_file, tmp_path, capsys, monkeypatch):
    def boom(case, progress=False, **kwargs):
        raise RuntimeError("solver\nexploded")

    monkeypatch.setattr(sys.modules["mzpdf.pipeline"], "run", boom)
    out = tmp_path / "out.h5"
    assert main(["run", str(case_file), "-o", str(out)]) == 1
    err = _one_error_line(capsys.readouterr().err)
    assert "RuntimeError" in err and "solver exploded" in err and "Traceback" not in err
    assert not out.exists()


def test_failed_write_leaves_no_file(case_file, tmp_path, capsys, monkeypatch):
    real_run = sys.modules["mzpdf.pipeline"].run

    def unwritable(case, progress=False):
        results = real_run(case)
        return dataclasses.replace(results, diagnostics={"bad": np.array([object()], dtype=object)})

    monkeypatch.setattr(sys.modules["mzpdf.pipeline"], "run", unwritable)
    out = tmp_path / "out.h5"
    assert main(["run", str(case_file), "-o", str(out), "--quiet", "--set", "solver.nodes=12"]) == 1
    _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_debug_env_shows_the_traceback(case_file, tmp_path, monkeypatch):
    def boom(case, progress=False, **kwargs):
        raise RuntimeError("exploded")

    monkeypatch.setattr(sys.modules["mzpdf.pipeline"], "run", boom)
    monkeypatch.setenv("MZPDF_DEBUG", "1")
    with pytest.raises(RuntimeError, match="exploded"):
        main(["run", str(case_file), "-o", str(tmp_path / "out.h5")])


# -- info ------------------------------------------------------------------------

def test_info_on_a_result(case_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    assert main(["run", str(case_file), "-o", str(out), "--quiet", "--set", "solver.nodes=12"]) == 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "'tiny'" in text and "schema 1" in text and "E[g(X_L)]" in text


def test_run_prints_one_line_and_info_the_table(case_file, tmp_path, capsys):
    """The README's first command runs then asks info: the summary table comes
    once, from info. run prints the file, the case, the method and the
    accuracy verdict in one line and how to see the summary in a second; info
    prints a row a layer with the means and the standard deviations, which
    are the square roots of the stored covariances' diagonals."""
    out = tmp_path / "out.h5"
    assert main(["run", str(case_file), "-o", str(out), "--set", "solver.nodes=12"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and printed[1] == f"summary: mzpdf info {out}"
    assert printed[0].startswith(f"wrote {out}: ") and "'tiny'" in printed[0] and "method grid" in printed[0]
    assert "accepted" in printed[0] and "NOT" not in printed[0]
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(k for k, line in enumerate(lines) if line.split()[:1] == ["layer"])
    assert lines[header].split() == ["layer", "mass", "lost", "mass", "mean", "std"]
    for n, layer in enumerate(read_results(out).forward):
        row = lines[header + 1 + n]
        assert row.split()[0] == str(n)
        for sd in np.sqrt(np.diag(layer.cov)):
            assert f"{sd:.4f}".rstrip("0") in row, (row, sd)
    assert sum("lost mass" in line for line in lines) == 1  # the table once


def test_info_of_a_sampling_run_gives_standard_errors(tmp_path, capsys):
    """A sampling method stores mean_stderr: info shows each mean with ± its
    standard error (rounded to the error's first digit) and calls the share of
    samples outside the stored abscissae what it is, not lost mass."""
    case_file = tmp_path / "mc.toml"
    case_file.write_text(TINY_MC)
    out = tmp_path / "mc.h5"
    assert main(["run", str(case_file), "-o", str(out), "--quiet"]) == 0
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lost mass" not in text and "beyond x" in text and "it is not lost" in text
    lines = text.splitlines()
    header = next(k for k, line in enumerate(lines) if line.split()[:1] == ["layer"])
    assert "mean ± standard error" in lines[header]
    r = read_results(out)
    for n, layer in enumerate(r.forward):
        row = lines[header + 1 + n]
        assert row.count("±") == layer.mean.size
        for e in layer.mean_stderr:
            assert f"± {e:.1g}" in row, (row, e)
    assert f"E[g(X_L)] = {r.backward.mean:.8g} ± {float(r.diagnostics['mean_stderr']):.1g}" in text


@pytest.mark.parametrize("content", ["text", "missing"])
def test_info_on_foreign_file_exits_1_with_one_line(tmp_path, capsys, content):
    bad = tmp_path / "x.h5"
    if content == "text":
        bad.write_text("hello")
    assert main(["info", str(bad)]) == 1
    captured = capsys.readouterr()
    assert str(bad) in _one_error_line(captured.err) and captured.out == ""


# -- --unset and one-line warnings (issue 28) -------------------------------------

def test_unset_removes_a_key_before_validation(case_file, capsys):
    """Oracle: the case without [observable] is valid and `validate` no longer lists it; the same key
    removed through load_case(unset=) leaves a case whose observable is None."""
    assert main(["validate", str(case_file)]) == 0
    assert ", observable" in capsys.readouterr().out
    assert main(["validate", str(case_file), "--unset", "observable"]) == 0
    assert "observable" not in capsys.readouterr().out
    from mzpdf.io.case import load_case
    assert load_case(case_file, unset=["observable"]).observable is None


def test_unset_then_set_replaces_an_option(case_file, tmp_path, capsys):
    """--unset solver.nodes lets a method without that option run (the case file's nodes would be
    refused by method montecarlo, exit 2, without it); the run writes its file."""
    out = tmp_path / "mc.h5"
    argv = ["run", str(case_file), "-o", str(out), "--quiet", "--set", 'solver.method="montecarlo"',
            "--set", "solver.samples=2000"]
    assert main(argv) == 2 and "solver.nodes" in capsys.readouterr().err and not out.exists()
    assert main(argv + ["--unset", "solver.nodes", "--unset", "solver.tol"]) == 0
    assert read_results(out).method == "montecarlo"


@pytest.mark.parametrize("key", ["solver.no_such_key", "montecarlo", "network.layers[5].bias"])
def test_unset_of_a_missing_key_exits_2_naming_it(case_file, capsys, key):
    assert main(["validate", str(case_file), "--unset", key]) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert key in err and "not in the case" in err


def test_unset_of_a_malformed_key_exits_2(case_file, capsys):
    assert main(["validate", str(case_file), "--unset", "solver.nodes=3"]) == 2
    assert "--unset" in _one_error_line(capsys.readouterr().err)


def test_warnings_are_one_line_without_paths(case_file, tmp_path, capsys):
    """A run asking for the CUDA backend on a machine without a usable GPU warns (BackendWarning; skipped
    where a GPU is usable); each warning is printed as exactly
    `mzpdf: warning: <message>` with no file path, line number or source line, and Python's own
    warnings.showwarning is back in place after main returns (the Python API is unchanged)."""
    import warnings

    from mzpdf.solvers.grid.cuda import cuda_status

    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code = main(["run", str(case_file), "-o", str(tmp_path / "w.h5"), "--quiet", "--set",
                     'solver.backend="cuda"'])
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    if not lines and cuda_status()[0]:
        pytest.skip("a usable GPU: the CUDA backend runs without a warning")
    assert lines, "the run was expected to warn (no usable GPU)"
    for line in lines:
        assert line.startswith("mzpdf: warning: "), line
        assert ".py" not in line and "warnings.warn" not in line, line
    assert warnings.showwarning is before
