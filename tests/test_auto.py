"""``solver.method = "auto"``, the default when [solver] names no method
(mzpdf.solvers.auto): it takes the first candidate by priority that accepts
the case, fits the memory guard and is estimated within AUTO_SECONDS, and
says which and why (Case.method_reason, /diagnostics attribute
method_reason, one stderr line from ``mzpdf run``).

Oracles: the registry's own answers (check_case, the memory guard), so each
test states which method must be chosen and why; the numbers of a chosen
method are those of the named method (same case, same options)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest

import mzpdf
from mzpdf.cli import main
from mzpdf.errors import CaseError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "cases" / "quickstart.toml"

WIDE = """
[case]
name = "wide"
[network.random]
widths = [4, 8, 8, 3]
activation = "tanh"
sigma_w = 1.0
sigma_b = 0.3
seed = 3
noise = { kind = "gaussian", std = 0.05 }
[input]
kind = "gaussian"
mean = [0.5, -0.3, 0.2, 0.1]
std = 0.1
"""


def test_a_small_net_gets_the_grid_with_the_same_numbers_as_named():
    auto = mzpdf.load_case(QUICKSTART, ["montecarlo.samples=1000"], unset=["solver.method"])
    named = mzpdf.load_case(QUICKSTART, ["montecarlo.samples=1000"])
    assert auto.solver.method == "grid" and "'auto' chose grid" in auto.method_reason
    assert named.method_reason == ""  # a named method needs no reason
    assert auto.solver == named.solver
    a, b = mzpdf.run(auto), mzpdf.run(named)
    np.testing.assert_array_equal(a.forward[-1].marginal_pdf, b.forward[-1].marginal_pdf)
    assert a.method_reason == auto.method_reason


def test_a_net_beyond_the_grid_gets_qmc_and_the_reason_names_the_guard():
    case = mzpdf.load_case(tomllib.loads(WIDE))
    assert case.solver.method == "qmc"
    assert "not grid: needs about" in case.method_reason and "PiB" in case.method_reason


def test_keys_of_one_method_restrict_the_choice():
    """[solver] nodes = 30 with no method: only methods with a 'nodes' key are candidates."""
    case = mzpdf.load_case(QUICKSTART, ["solver.nodes=30"], unset=["solver.method"])
    assert case.solver.method == "grid" and case.solver.nodes == 30
    with pytest.raises(CaseError, match="solver.method") as err:
        mzpdf.load_case(tomllib.loads(WIDE), ["solver.nodes=30"])  # grid too big, qmc has no 'nodes'
    assert "solver.nodes" in str(err.value) and "is not an option of method 'qmc'" in str(err.value)


def test_no_candidate_is_a_case_error_listing_each_refusal():
    table = tomllib.loads(WIDE)
    table["projection"] = {"kind": "chorin", "keep": [0]}
    with pytest.raises(CaseError, match="no registered method takes this case") as err:
        mzpdf.load_case(table)
    assert "grid: needs about" in str(err.value) and "qmc:" in str(err.value)


def test_the_command_line_says_which_and_why(tmp_path, capsys):
    path, out = tmp_path / "wide.toml", tmp_path / "wide.h5"
    path.write_text(WIDE + '\n[solver]\nsamples = 1024\nreplicates = 4\n')
    assert main(["run", str(path), "-o", str(out)]) == 0
    assert "mzpdf: note: solver.method = 'auto' chose qmc" in capsys.readouterr().err
    with h5py.File(out, "r") as f:
        assert f["diagnostics"].attrs["method"] == "qmc"
        assert "chose qmc" in f["diagnostics"].attrs["method_reason"]
    # the effective case in the file names the method chosen: rerunning it runs the same method
    with h5py.File(out, "r") as f:
        assert tomllib.loads(f["case"].attrs["toml"])["solver"]["method"] == "qmc"


def test_the_grid_refines_its_default_nodes_within_a_small_time_and_keeps_given_ones():
    """Grid.auto_refine: a 2-D net with no solver.nodes gets the finest AUTO_NODES (64: 0.2 s estimated);
    nodes the case gives are kept; a 3-D net whose finer grids are estimated above AUTO_REFINE_SECONDS keeps
    the default 40 (relu_3d: 64 nodes would be ~1e3 s)."""
    from mzpdf.solvers.grid.plugin import AUTO_NODES

    assert mzpdf.load_case(QUICKSTART, unset=["solver.method", "solver.nodes"]).solver.nodes == AUTO_NODES[0]
    assert mzpdf.load_case(QUICKSTART, unset=["solver.method"]).solver.nodes == 48
    relu = mzpdf.load_case(ROOT / "cases" / "relu_3d.toml", unset=["solver.method", "solver.nodes"])
    assert relu.solver.method == "grid" and relu.solver.nodes == 40
