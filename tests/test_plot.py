"""``mzpdf plot`` on every example case (issue 7, item 2).

Oracles: each figure has the axes, labels and titles it promises, draws data
(lines, images), and its PNG is not blank (enough pixels differ from the
background); the stored 2-D marginal integrates to the stored 1-D marginal.
The cases run with fewer nodes and samples than their files ask for: the
figures, not the numbers, are under test here.
"""
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mzpdf  # noqa: E402
from mzpdf.plot import figures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p.stem for p in (ROOT / "cases").glob("*.toml"))
FAST = {  # overrides that keep each case to a few seconds
    "quickstart": ["solver.nodes=32"],
    "relu_3d": ["solver.nodes=20"],
    "mz_reduce_tanh": ["solver.nodes=14"],
    "tt_tanh": ["solver.tol=1e-5"],
    "tt_wide_tanh": ["network.random.widths=[8, 8, 8, 8]", "input.mean=[0, 0, 0, 0, 0, 0, 0, 0]"],
    "mz_tt_wide": ["network.random.widths=[4, 4, 4, 4]", "input.mean=[0, 0, 0, 0]", "input.cov=[[0.3, 0.05, 0.05, 0.05], [0.05, 0.3, 0.05, 0.05], [0.05, 0.05, 0.3, 0.05], [0.05, 0.05, 0.05, 0.3]]"],
    "torch_classifier": ["solver.nodes=24"],
    "torch_regression": ["solver.nodes=24"],
}


def _fast(name):
    case_text = (ROOT / "cases" / f"{name}.toml").read_text()
    extra = ["montecarlo.samples=20000"] if "[montecarlo]" in case_text else []
    return FAST.get(name, []) + extra


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = {}
    for name in CASES:
        case = mzpdf.load_case(ROOT / "cases" / f"{name}.toml", overrides=_fast(name))
        out[name] = mzpdf.run(case)
    return out


def test_every_case_is_covered():
    assert len(CASES) >= 10 and {"torch_regression", "torch_classifier", "quickstart"} <= set(CASES)


def _drawn(ax) -> int:
    return len(ax.lines) + len(ax.collections) + len(ax.images)


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_figures_have_labelled_axes_and_data(results, name):
    r = results[name]
    figs = figures(r)
    try:
        assert "" in figs and "marginals" in figs
        assert ("joint" in figs) == any(layer.joint is not None for layer in r.forward)
        assert ("q0" in figs) == (r.backward is not None and len(r.backward.q0) > 0)
        assert ("memory" in figs) == (r.mz is not None)
        for key, fig in figs.items():
            axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.axison]
            assert fig.texts or any(ax.get_title() for ax in axes), key
            for ax in axes:
                assert ax.get_xlabel() and ax.get_title(), (key, ax.get_title())
                assert _drawn(ax) > 0, (key, ax.get_title())
        ridge = figs["marginals"].axes[0]
        assert ridge.get_ylabel().startswith("layer")
        if "q0" in figs and r.montecarlo_backward is not None:
            assert any("Monte Carlo" in t.get_text() for t in figs["q0"].axes[0].get_legend().get_texts())
    finally:
        for fig in figs.values():
            plt.close(fig)


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_mzpdf_plot_writes_non_blank_pngs(results, name, tmp_path):
    mzpdf.write_results(results[name], tmp_path / "r.h5")
    out = subprocess.run([sys.executable, "-m", "mzpdf", "plot", str(tmp_path / "r.h5"), "-o",
                          str(tmp_path / "fig.png")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    written = sorted(tmp_path.glob("fig*.png"))
    assert len(written) == len(out.stdout.strip().splitlines()) >= 3
    for path in written:
        img = mpimg.imread(path)[..., :3]
        background = np.median(img.reshape(-1, 3), axis=0)
        differ = np.mean(np.any(np.abs(img - background) > 0.1, axis=-1))
        assert differ > 0.03, f"{path.name}: only {differ:.1%} of pixels drawn"
    # a second call refuses to overwrite, and writes nothing
    again = subprocess.run([sys.executable, "-m", "mzpdf", "plot", str(tmp_path / "r.h5"), "-o",
                            str(tmp_path / "fig.png")], capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart", "tt_tanh", "torch_classifier"])
def test_joint_marginal_integrates_to_the_one_dimensional_marginal(results, name):
    for layer in results[name].forward[1:]:
        x, y, pdf = layer.joint
        m0 = np.trapezoid(pdf, y, axis=1)
        ref = np.interp(x, layer.marginal_x[0], layer.marginal_pdf[0])
        # trapezoid on 81 points and linear interpolation: ~1e-3 of the peak
        assert np.max(np.abs(m0 - ref)) < 5e-3 * ref.max()
