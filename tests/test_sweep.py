"""``mzpdf sweep`` on a local Dask cluster (issue 6, item 2).

Oracles: every point's result equals a plain ``mzpdf run`` of the same case
with the same overrides (bitwise: the solvers are deterministic); a sweep
killed midway and rerun leaves the finished files untouched (same inode and
modification time) and computes exactly the missing ones; a failing point is
reported while the others finish.
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mzpdf
from mzpdf.errors import CaseError
from mzpdf.sweep import plan_sweep, split_values

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "cases" / "quickstart.toml")
TWELVE = ["--param", "network.random.noise.std=0.1,0.15,0.2,0.25", "--param", "solver.nodes=24,28,32",
          "--param", "montecarlo.samples=2000"]


def _sweep(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mzpdf", "sweep", *args], capture_output=True, text=True, **kw)


def _summary(path):
    with open(path / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_values_split_outside_brackets():
    assert split_values("0.1, 0.2,0.3") == ["0.1", "0.2", "0.3"]
    assert split_values('[1, 2],[3, 4],"a,b"') == ["[1, 2]", "[3, 4]", '"a,b"']


def test_every_point_is_validated_before_anything_runs(tmp_path):
    with pytest.raises(CaseError, match="--param"):
        plan_sweep(QUICK, ["solver.nodes"], tmp_path / "a")
    with pytest.raises(CaseError, match=r"solver.nodes.*sweep point 1: solver.nodes=1"):
        plan_sweep(QUICK, ["solver.nodes=24,1"], tmp_path / "b")
    with pytest.raises(CaseError, match="given twice"):
        plan_sweep(QUICK, ["solver.nodes=24", "solver.nodes=32"], tmp_path / "c")
    out = _sweep(QUICK, "--param", "solver.nodes=24,1", "-o", str(tmp_path / "d"))
    assert out.returncode == 2 and "solver.nodes" in out.stderr and not (tmp_path / "d").exists()


@pytest.mark.slow
def test_twelve_points_killed_midway_rerun_computes_only_the_missing(tmp_path):
    out_dir = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "mzpdf", "sweep", QUICK, *TWELVE, "--workers", "2", "-o",
                             str(out_dir), "--quiet"], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out_dir.glob("point_*.h5"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its Dask workers, without warning
    proc.wait()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out_dir.glob("point_*.h5")}
    assert 3 <= len(before) < 12, f"{len(before)} points were done when the sweep was killed"

    again = _sweep(QUICK, *TWELVE, "--workers", "2", "-o", str(out_dir))
    assert again.returncode == 0, again.stderr
    rows = _summary(out_dir)
    assert len(rows) == 12 and {r["status"] for r in rows} <= {"done", "skipped"}
    assert {r["file"] for r in rows if r["status"] == "skipped"} == set(before)
    for name, stamp in before.items():
        p = out_dir / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp, f"{name} was recomputed"
    assert not list(out_dir.glob(".*tmp*"))

    # a point equals a plain run of the same case
    row = rows[7]
    overrides = [f"{k}={row[k]}" for k in ("network.random.noise.std", "solver.nodes", "montecarlo.samples")]
    plain = mzpdf.run(mzpdf.load_case(QUICK, overrides))
    stored = mzpdf.read_results(out_dir / row["file"])
    assert np.array_equal(stored.forward[-1].marginal_pdf, plain.forward[-1].marginal_pdf)
    assert stored.backward.mean == plain.backward.mean

    # a third run has nothing to do
    third = _sweep(QUICK, *TWELVE, "-o", str(out_dir))
    assert third.returncode == 0 and "0 computed, 12 already done" in third.stdout


@pytest.mark.slow
def test_a_failing_point_is_reported_while_the_others_finish(tmp_path):
    out = _sweep(str(ROOT / "cases" / "relu_3d.toml"), "--param", "solver.nodes=8,900,10", "--param",
                 "montecarlo.samples=1000", "--workers", "2", "-o", str(tmp_path / "s"))
    assert out.returncode == 1
    rows = _summary(tmp_path / "s")
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert "solver.nodes" in rows[1]["message"] and "GiB" in rows[1]["message"]
    assert "point 1" in out.stderr
    assert sorted(p.name for p in (tmp_path / "s").glob("point_*.h5")) == ["point_0000.h5", "point_0002.h5"]


def test_a_directory_of_another_sweep_is_refused(tmp_path):
    out_dir = tmp_path / "s"
    out_dir.mkdir()
    results = mzpdf.run(mzpdf.load_case(QUICK, ["solver.nodes=16", "montecarlo.samples=100"]))
    mzpdf.write_results(results, out_dir / "point_0000.h5")
    with pytest.raises(CaseError, match="different case"):
        plan_sweep(QUICK, ["solver.nodes=24"], out_dir)
    _, points = plan_sweep(QUICK, ["solver.nodes=24"], out_dir, overwrite=True)
    assert points[0].status == "pending"
    _, points = plan_sweep(QUICK, ["solver.nodes=16", "montecarlo.samples=100"], out_dir)
    assert points[0].status == "done"


def test_scheduler_address_that_does_not_answer_exits_2(tmp_path):
    out = _sweep(QUICK, "--param", "solver.nodes=16", "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "s"))
    assert out.returncode == 2 and "--scheduler" in out.stderr


@pytest.mark.slow
def test_runs_on_an_existing_scheduler(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        out = _sweep(QUICK, "--param", "solver.nodes=16,20", "--param", "montecarlo.samples=500", "--scheduler",
                     cluster.scheduler_address, "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert [r["status"] for r in _summary(tmp_path / "s")] == ["done", "done"]


def test_a_rerun_clears_the_temporary_files_of_a_killed_sweep(tmp_path):
    # a sweep killed while writing summary.csv or a point leaves these behind (seen in CI)
    out_dir = tmp_path / "s"
    out_dir.mkdir()
    for name in (".summary.csv.tmp-999999", ".point_0000.h5.tmp-999999"):
        (out_dir / name).write_text("partial")
    results = mzpdf.run(mzpdf.load_case(QUICK, ["solver.nodes=16", "montecarlo.samples=100"]))
    mzpdf.write_results(results, out_dir / "point_0000.h5")
    out = _sweep(QUICK, "--param", "solver.nodes=16", "--param", "montecarlo.samples=100", "-o", str(out_dir))
    assert out.returncode == 0 and "0 computed, 1 already done" in out.stdout, out.stderr
    assert not list(out_dir.glob(".*tmp*"))
