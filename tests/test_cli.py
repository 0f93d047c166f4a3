"""The command line: exit codes, messages naming keys, no file left by a failure."""
from pathlib import Path

import pytest

from mzpdf.cli import main

from test_case import VALID

CASES = Path(__file__).resolve().parents[1] / "cases"


@pytest.fixture
def case_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(VALID)
    return path


def test_validate_ok(case_file, capsys):
    assert main(["validate", str(case_file)]) == 0
    assert "valid" in capsys.readouterr().out


def test_invalid_case_exits_2_names_key_and_writes_nothing(case_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    code = main(["run", str(case_file), "-o", str(out), "--set", "network.layers[0].noise.std=-0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "network.layers[0].noise.std" in err and "> 0" in err and "-0.1" in err
    assert not out.exists()


def test_run_info_and_no_overwrite(case_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    assert main(["run", str(case_file), "-o", str(out), "--quiet", "--set", "solver.nodes=12"]) == 0
    assert out.exists() and capsys.readouterr().out == ""
    before = out.read_bytes()
    assert main(["run", str(case_file), "-o", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["info", str(out)]) == 0
    assert "tiny" in capsys.readouterr().out


def test_montecarlo_method_runs(tmp_path):
    case_file = tmp_path / "mc.toml"
    case_file.write_text(VALID.replace("method = \"grid\"\nnodes = 16", "method = \"montecarlo\"\nsamples = 5000"))
    out = tmp_path / "mc.h5"
    assert main(["run", str(case_file), "-o", str(out), "--quiet"]) == 0
    from mzpdf import read_results

    r = read_results(out)
    assert r.method == "montecarlo" and r.backward.q0.shape == (1,)


def test_info_on_foreign_file_exits_1_with_one_line(tmp_path, capsys):
    bad = tmp_path / "x.h5"
    bad.write_text("hello")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err


def test_unknown_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


@pytest.mark.parametrize("name", ["quickstart", "linear_gaussian", "relu_3d", "residual_2d"])
def test_example_cases_validate(name):
    assert main(["validate", str(CASES / f"{name}.toml")]) == 0
