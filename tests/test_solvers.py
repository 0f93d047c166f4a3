"""The one Solver/Solution interface (mzpdf.solvers): every method behind the
registry, ``law(n)`` the same for each, checkpoints and --resume through the
base class, the memory guard in the Python API, and a method added from a test."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import h5py
import numpy as np
import pytest

import mzpdf
from mzpdf.errors import CaseError, MzpdfError
from mzpdf.io.case import loads_case
from mzpdf.options import SolverOptions
from mzpdf.laws import SummaryLaw
from mzpdf.solvers import SOLVERS, Capabilities, Solver
from mzpdf.solvers.march import LayerMarch, network_steps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from resume_check import case_text  # noqa: E402

TANH3 = """
[case]
name = "tanh3"
seed = 5
[network.random]
widths = [3, 3, 3, 3]
activation = "tanh"
sigma_w = 1.0
sigma_b = 0.2
init = "orthogonal"
seed = {seed}
noise = {{ kind = "gaussian", std = 0.4 }}
[input]
kind = "gaussian"
mean = [0.2, -0.1, 0.0]
std = 0.5
"""


def test_registry_lists_the_methods_with_their_capabilities():
    assert {"grid", "tt", "sparse", "montecarlo"} <= set(SOLVERS.names())
    for name in SOLVERS:
        cls = SOLVERS.get(name)
        assert cls.name == name and isinstance(cls.capabilities, Capabilities)
    assert mzpdf.SOLVERS is SOLVERS


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_law_is_the_same_interface_for_every_method(seed):
    """Oracle: the grid solution (48 nodes per neuron, error < 1e-6 on this
    net) and 1e6 Monte Carlo paths (standard error of a mean ~4e-4). Every
    method's last-layer law has the shapes of the interface, its marginal
    integrates to 1 (trapezoid on 4001 points over +-6: quadrature error
    < 1e-6, the methods' own mass errors are < 2e-3), and its means agree
    within 0.01 (the issue's tolerance). Every method runs with its default
    options (sparse: level 5 on 3-neuron layers, 0.002-0.004 off here and on
    seed 3; its former default level 3 was 0.02-0.03 off)."""
    means = {}
    for name in ("grid", "tt", "sparse", "montecarlo"):
        case = mzpdf.load_case(tomllib.loads(TANH3.format(seed=seed)), [f"solver.method={name}"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = mzpdf.run(case)
        law = results.law(3)
        assert law.mean.shape == (3,) and law.cov.shape == (3, 3)
        x = np.linspace(-6, 6, 4001)
        assert abs(np.trapezoid(law.marginal(0, x), x) - 1.0) < 2e-3, name
        assert law.marginal(1, x.reshape(4001, 1)).shape == (4001, 1)
        means[name] = law.mean
    for name, mean in means.items():
        assert np.max(np.abs(mean - means["grid"])) < 0.01, (name, mean, means["grid"])


def test_law_of_a_grid_run_matches_its_summaries():
    """Identity: the stored summaries and law(n) are two views of one
    density (marginals agree to round-off; the joint of 0 and 1 matches the
    stored joint), and a results file read back gives SummaryLaw views of
    the same numbers."""
    case = mzpdf.load_case(ROOT / "cases" / "quickstart.toml", ["montecarlo.samples=1000"])
    results = mzpdf.run(case)
    for n in range(results.depth + 1):
        law, layer = results.law(n), results.forward[n]
        np.testing.assert_allclose(law.mean, layer.mean, rtol=0, atol=1e-14)
        np.testing.assert_allclose(law.marginal(1, layer.marginal_x[1]), layer.marginal_pdf[1], rtol=1e-10,
                                   atol=1e-13)
    x, y, pdf = results.forward[2].joint
    np.testing.assert_allclose(results.law(2).joint(0, 1, x, y), pdf, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(results.law(2).joint(1, 0, y, x), pdf.T, rtol=1e-10, atol=1e-13)
    stored = SummaryLaw(results.forward[-1])
    xs = results.forward[-1].marginal_x[0]
    np.testing.assert_allclose(stored.marginal(0, xs), results.forward[-1].marginal_pdf[0], rtol=0, atol=1e-15)
    with pytest.raises(IndexError):
        results.law(2).marginal(5, xs)


# -- checkpoints and --resume ------------------------------------------------------------------

KILLER = textwrap.dedent("""
    import os, signal, sys
    from mzpdf.io import checkpoint
    save = checkpoint.Checkpoint.save
    saved = []
    def save_and_die(self, n, state):
        save(self, n, state)
        saved.append(n)
        if len(saved) == 3:  # SIGKILL right after the third layer checkpoint
            os.kill(os.getpid(), signal.SIGKILL)
    checkpoint.Checkpoint.save = save_and_die
    from mzpdf.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _resume_case(method: str, noiseless: int = 0) -> str:
    """A 12-layer tanh net (orthogonal weights) whose first ``noiseless``
    layers have no noise (scripts/resume_check.py's, which kills from outside)."""
    return case_text(method, noiseless)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["grid", "tt", "sparse"])
@pytest.mark.parametrize("noiseless", [0, 2])
def test_sigkill_after_third_checkpoint_then_resume_gives_identical_numbers(tmp_path, method, noiseless):
    """Identity: a 12-layer run killed by SIGKILL right after its third
    layer checkpoint and rerun with --resume stores the same numbers as an
    uninterrupted run (<= 1e-12; every step is deterministic, so they are
    equal to the bit in practice), and says where it resumed. With the first
    two layers noiseless, the first step computes layer 3 (the two noiseless
    layers are composed with it), so the checkpoints are layers 3, 4, 5 and
    the run resumes after layer 5."""
    path = tmp_path / "case.toml"
    path.write_text(_resume_case(method, noiseless))
    whole, resumed = tmp_path / "whole.h5", tmp_path / "resumed.h5"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    subprocess.run([sys.executable, "-m", "mzpdf", "run", str(path), "-o", str(whole), "--quiet"], check=True,
                   env=env, capture_output=True)
    killed = subprocess.run([sys.executable, "-c", KILLER, "run", str(path), "-o", str(resumed), "--quiet"],
                            env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()
    ckpt = tmp_path / ".resumed.h5.checkpoint"
    first = 1 + noiseless  # the network index of the layer the first step computes
    assert sorted(p.name for p in ckpt.glob("layer_*.npz")) == [f"layer_{n:03d}.npz" for n in range(first, first + 3)]
    assert not resumed.exists()
    subprocess.run([sys.executable, "-m", "mzpdf", "run", str(path), "-o", str(resumed), "--resume", "--quiet"],
                   check=True, env=env, capture_output=True)
    with h5py.File(whole) as a, h5py.File(resumed) as b:
        for n in range(13):
            for name in ("mean", "cov", "marginals/pdf"):
                g = f"forward/layer_{n:03d}/{name}"
                np.testing.assert_allclose(b[g][()], a[g][()], rtol=0, atol=1e-12, err_msg=g)
        for name in ("mass", "lost_mass"):
            np.testing.assert_allclose(b[f"diagnostics/{name}"][()], a[f"diagnostics/{name}"][()], rtol=0, atol=1e-12)
        assert a["diagnostics"].attrs["resumed_from_layer"] == 0
        assert b["diagnostics"].attrs["resumed_from_layer"] == first + 2
    assert not ckpt.exists()


def test_resume_with_an_unusable_checkpoint_is_an_error_not_a_restart(tmp_path):
    """A checkpoint whose layer state cannot be restored (here: the nodal
    values of a grid of another size) stops the run with exit 2, naming the
    layer; the checkpoint is left as it was."""
    path = tmp_path / "case.toml"
    path.write_text(_resume_case("grid").replace("nodes = 24", "nodes = 8"))
    out = tmp_path / "out.h5"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    killed = subprocess.run([sys.executable, "-c", KILLER, "run", str(path), "-o", str(out), "--quiet"],
                            env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()
    ckpt = tmp_path / ".out.h5.checkpoint"
    layer = ckpt / "layer_002.npz"
    with np.load(layer) as data:
        state = {name: data[name] for name in data.files}
    state["values"] = state["values"][:-1]
    np.savez(layer, **state)
    proc = subprocess.run([sys.executable, "-m", "mzpdf", "run", str(path), "-o", str(out), "--resume"],
                          env=env, capture_output=True)
    assert proc.returncode == 2, proc.stderr.decode()
    assert "layer 2" in proc.stderr.decode() and str(ckpt) in proc.stderr.decode()
    assert sorted(p.name for p in ckpt.glob("layer_*.npz")) == ["layer_001.npz", "layer_002.npz", "layer_003.npz"]
    assert not out.exists()


def test_resume_is_refused_where_a_method_cannot(tmp_path):
    path = tmp_path / "mc.toml"
    path.write_text(_resume_case("grid").replace('method = "grid"\nnodes = 24', 'method = "montecarlo"\n'
                                                                                 'samples = 1000'))
    proc = subprocess.run([sys.executable, "-m", "mzpdf", "run", str(path), "-o", str(tmp_path / "x.h5"),
                           "--resume"], capture_output=True)
    assert proc.returncode == 2 and "--resume" in proc.stderr.decode(), proc.stderr.decode()
    assert not (tmp_path / "x.h5").exists()


# -- the memory guard -----------------------------------------------------------------------

def test_memory_guard_refuses_in_the_python_api_before_allocating():
    """128 nodes on 8 neurons (7e16 points): GridSolver.propagate and
    mzpdf.run refuse within a second, giving the estimate and naming the
    other methods that take the case."""
    net = mzpdf.random_network([8, 8], seed=0)
    law = mzpdf.GaussianInput(np.zeros(8), np.eye(8))
    start = time.perf_counter()
    with pytest.raises(MzpdfError, match=r"needs about [0-9.e+]+ (PiB|EiB)"):
        mzpdf.GridSolver(nodes=128).propagate(net, law)
    assert time.perf_counter() - start < 1.0
    case = mzpdf.load_case(loads_case(TANH3.format(seed=1)).table,
                           ["network.random.widths=[8, 8]", "input.mean=[0, 0, 0, 0, 0, 0, 0, 0]",
                            "solver.nodes=128"])
    start = time.perf_counter()
    with pytest.raises(CaseError, match="needs about") as err:
        mzpdf.run(case)
    assert err.value.key == "solver.nodes" and time.perf_counter() - start < 1.0
    assert "'qmc'" in str(err.value) and "'grid'" not in str(err.value)  # the methods that take the case


def test_validate_runs_the_memory_guard(tmp_path):
    path = tmp_path / "wide.toml"
    path.write_text(TANH3.format(seed=1).replace("[3, 3, 3, 3]", "[8, 8]").replace("[0.2, -0.1, 0.0]", str([0.0] * 8))
                    + "[solver]\nnodes = 128\n")
    proc = subprocess.run([sys.executable, "-m", "mzpdf", "validate", str(path)], capture_output=True)
    assert proc.returncode == 2 and "needs about" in proc.stderr.decode(), proc.stderr.decode()


# -- a method added from outside the package ------------------------------------------------------

@dataclass(frozen=True)
class MomentOptions(SolverOptions):
    method: ClassVar[str] = "moments"


class MomentMarch(LayerMarch):
    """One layer a step: the gaussian's mean and covariance."""

    def __init__(self, network, input_law):
        self.network, self.steps, self.depth = network, network_steps(network), network.depth
        self.laws = [(input_law.mean(), input_law.cov())]

    def advance(self, k):
        mean, cov = self.laws[-1]
        layer = self.network[k]
        J = layer.weights  # identity activations only: the map is affine
        self.laws.append((J @ mean + layer.bias, J @ cov @ J.T + np.diag(layer.noise.scale ** 2)))
        return {"mean": self.laws[-1][0], "cov": self.laws[-1][1]}

    def restore(self, k, state):
        self.laws.append((state["mean"], state["cov"]))

    def finish(self, seconds):
        return self.laws


class MomentClosure(Solver):
    """A test-only method: propagates the gaussian with the layer's
    linearization at the mean (exact for identity activations and gaussian
    noise). It is what docs/architecture.md's "how to add a method" shows."""

    name = "moments"
    options_class = MomentOptions
    capabilities = Capabilities(noise_kinds=("gaussian",), densities=True, backward=False)

    def _march(self, report):
        return MomentMarch(self.case.network, self.case.input)

    def _summarize(self, laws):
        from mzpdf.results import LayerSummary

        out = []
        for mean, cov in laws:
            sd = np.sqrt(np.diag(cov))
            xs = np.stack([np.linspace(m - 8 * s, m + 8 * s, 201) for m, s in zip(mean, sd)])
            pdf = np.exp(-0.5 * ((xs - mean[:, None]) / sd[:, None]) ** 2) / (np.sqrt(2 * np.pi) * sd[:, None])
            out.append(LayerSummary(mean, cov, 1.0, xs, pdf, xs[:, [0, -1]]))
        return out

    def _diagnostics(self, laws):
        L = len(laws) - 1
        return {"mass": np.ones(L + 1), "lost_mass": np.zeros(L + 1), "duality_gap": np.full(L, np.nan),
                "time_per_layer_s": np.zeros(L)}


def test_a_method_registered_from_a_test_runs_through_the_pipeline():
    """Oracle: the closed form of a linear-gaussian net (the grid solver
    matches it to ~1e-9, cases/linear_gaussian.toml); the plugin is exact."""
    table = tomllib.loads((ROOT / "cases" / "linear_gaussian.toml").read_text())
    plain = {k: v for k, v in table.items() if k not in ("solver", "observable", "montecarlo")}
    SOLVERS.register("moments")(MomentClosure)
    try:
        grid = mzpdf.run(mzpdf.load_case(table))
        with pytest.raises(CaseError, match="not an option"):  # the method's own [solver] keys
            mzpdf.load_case(table, ["solver.method=moments"])
        results = mzpdf.run(mzpdf.load_case(plain, ["solver.method=moments"]))
        assert results.method == "moments"
        for n in range(grid.depth + 1):
            np.testing.assert_allclose(results.law(n).mean, grid.law(n).mean, atol=1e-8)
            np.testing.assert_allclose(results.law(n).cov, grid.law(n).cov, atol=1e-8)
        with pytest.raises(CaseError) as err:  # an observable: refused, naming the methods that take it
            mzpdf.load_case({**plain, "observable": {"kind": "neuron", "index": 0}}, ["solver.method=moments"])
        assert err.value.key == "observable" and "grid" in err.value.rule
    finally:
        SOLVERS.unregister("moments")
    assert "moments" not in SOLVERS


# -- no method logic outside mzpdf/solvers ---------------------------------------------------------

def test_no_method_name_is_compared_outside_the_solvers_package():
    names = "|".join(SOLVERS.names())
    pattern = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=|\bin\b)""")
    hits = []
    for path in (ROOT / "mzpdf").rglob("*.py"):
        if "solvers" in path.relative_to(ROOT / "mzpdf").parts:
            continue
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    assert not hits, "\n".join(hits)
