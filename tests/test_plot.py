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


# --- Figures a reviewer can trust (issue 28) -----------------------------------------------------------
# A hand-built result, independent of any solver, holds every situation the rules are about: a point
# input (layer 0 has no density: ridgeline and joint must say they skip it), a layer of one neuron (the
# joint figure skips it), memory norms of 1e-16 (round-off, must not be drawn) beside real ones, a
# measured kappa >= 1 (no slope to draw: a note, not a legend entry) and a bound < 1 (a slope that must
# lie inside the axes), q0 with standard errors (error bars, no joining line), and depth analysis.
# Each check below fails on the figures as they were before issue 28 (stated per check).

from mzpdf.results import BackwardSummary, LayerSummary, MonteCarloLayer, MZSummary, Results  # noqa: E402
from mzpdf.plot import _ROUND_OFF  # noqa: E402

HAND_WIDTHS = [2, 2, 1, 2, 2, 2, 2]  # layer 2 has one neuron
HAND_M = 41


def _hand_results() -> Results:
    rng = np.random.default_rng(28)
    forward, mc = [], []
    for n, w in enumerate(HAND_WIDTHS):
        x = np.tile(np.linspace(-3, 3, HAND_M), (w, 1))
        pdf = np.exp(-0.5 * (x - 0.1 * n) ** 2) / np.sqrt(2 * np.pi)
        if n == 0:
            pdf = np.full((w, HAND_M), np.inf)  # a point input: no density
        g = np.linspace(-3, 3, 21)
        joint = (g, g, np.outer(np.exp(-g ** 2 / 2), np.exp(-g ** 2 / 2)) / (2 * np.pi)) if w == 2 and n else None
        forward.append(LayerSummary(np.zeros(w), np.eye(w), 1.0, x, pdf, np.tile([-3.0, 3.0], (w, 1)), joint))
        mc.append(MonteCarloLayer(np.zeros(w), np.full(w, 0.01), np.eye(w), x, np.nan_to_num(pdf, posinf=0.0),
                                  np.full((w, HAND_M), 0.01), 1000))
    L = len(HAND_WIDTHS) - 1
    norms = np.full((L, L), np.nan)
    for n in range(L):
        norms[n, : n + 1] = 0.8 * 0.4 ** np.arange(n + 1)
    norms[1, 1] = 3e-16  # round-off of a vanishing kernel
    norms[2, 1:3] = 1e-17
    points = np.array([[0.0, 0.0], [0.5, -0.5], [1.0, -1.0], [-1.0, 1.0]])
    mz = MZSummary(spec={"kind": "chorin", "keep": [0], "reference": "gaussian", "memory": "full", "tol": 1e-3},
                   kept=np.array([0]), norm="L1", memory_norm=norms, kappa=np.full(L, 1.7),
                   kappa_bound=np.full(L, 0.5), dobrushin=np.full(L, 0.5), canonical_correlation=np.full(L, np.nan),
                   decay_rate=0.4, reduced_x=[layer.marginal_x[:1] for layer in forward],
                   reduced_pdf=[layer.marginal_pdf[:1] for layer in forward], error=np.full(L + 1, 1e-4),
                   truncation_error=np.full((L, L + 1), 1e-4), min_memory=1)
    analysis = {"tv": np.linspace(1, 0, L + 1), "hellinger": np.linspace(0.8, 0, L + 1), "cutoff_depth": 3.0,
                "q_measured": np.linspace(0.5, 0.7, L), "q_mean_field": np.linspace(0.5, 0.75, L)}
    return Results(case_name="hand", case_toml="", method="grid", forward=forward,
                   backward=BackwardSummary(points, rng.standard_normal(4), 0.1, q0_stderr=np.full(4, 0.02),
                                            thresholds=np.array([3.0, 1.0, 2.0, 4.0]),
                                            exceedance=np.array([1e-8, 1e-1, 1e-4, 0.0]),
                                            exceedance_error=np.array([1e-11, 1e-5, 1e-8, 1e-20]),
                                            quantile_levels=np.array([0.99]), quantiles=np.array([1.5])),
                   montecarlo=mc, montecarlo_backward=BackwardSummary(points, rng.standard_normal(4), 0.1),
                   montecarlo_backward_stderr=np.full(4, 0.03), mz=mz, analysis=analysis)


@pytest.fixture(scope="module")
def hand_figures():
    figs = figures(_hand_results())
    yield figs
    for fig in figs.values():
        plt.close(fig)


def _panels_of(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _notes(fig) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


def test_hand_result_draws_every_figure(hand_figures):
    assert set(hand_figures) == {"", "marginals", "joint", "q0", "memory", "tails"}


@pytest.mark.parametrize("key", ["", "marginals", "joint", "q0", "memory", "tails"])
def test_at_most_four_panels_a_row_and_bounded_size(hand_figures, key):
    """Rows are the distinct panel tops; before, the overview of this result had 5 panels in one row
    and the ridgeline was 21 x 3.2 inches (the 2310 x 352 px of the issue)."""
    fig = hand_figures[key]
    tops = [round(ax.get_position().y1, 3) for ax in _panels_of(fig)]
    assert max(tops.count(t) for t in set(tops)) <= 4
    w, h = fig.get_size_inches()
    assert w <= 16.0 + 1e-9 and w / h <= 3.0 + 1e-9, (w, h)  # the caps of mzpdf.plot


@pytest.mark.parametrize("key", ["", "marginals", "joint", "q0", "memory", "tails"])
def test_axis_limits_finite(hand_figures, key):
    for ax in _panels_of(hand_figures[key]):
        assert np.all(np.isfinite(ax.get_xlim())) and np.all(np.isfinite(ax.get_ylim())), ax.get_title()


def _visible(artist, ax) -> bool:
    """Whether ``artist`` (a line) has a finite point inside the axes' limits."""
    x, y = (np.asarray(v, dtype=float) for v in artist.get_data())
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    return bool(np.any(np.isfinite(x) & np.isfinite(y) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)))


@pytest.mark.parametrize("key", ["", "marginals", "q0", "memory", "tails"])
def test_every_legend_entry_is_drawn(hand_figures, key):
    """Each legend text is non-empty and names a line (or error-bar container) with a point inside the
    axes. Before, the kappa >= 1 entry had an empty line (plot([], [])) and the slopes ran off-scale."""
    legends = 0
    for ax in _panels_of(hand_figures[key]):
        legend = ax.get_legend()
        if legend is None:
            continue
        legends += 1
        texts = [t.get_text() for t in legend.get_texts()]
        assert texts and all(t.strip() for t in texts)
        drawn = {line.get_label() for line in ax.lines if _visible(line, ax)}
        drawn |= {c.get_label() for c in ax.containers}  # error bars: their points are lines above
        assert set(texts) <= drawn, (ax.get_title(), set(texts) - drawn)
    assert legends >= 1


def test_kappa_slope_inside_the_axes_and_kappa_above_one_is_a_note(hand_figures):
    fig = hand_figures["memory"]
    ax = _panels_of(fig)[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("a-priori bound 0.5") for t in texts)
    assert not any("measured kappa" in t for t in texts)
    assert "measured kappa 1.7: no decay promised" in _notes(fig)


def test_round_off_is_not_drawn(hand_figures):
    """No memory-norm point below _ROUND_OFF of the largest norm (0.8) is drawn; before, 3e-16 and 1e-17
    were plotted on the log axis as if they were structure. The note counts the three left out."""
    for key in ("", "memory"):
        fig = hand_figures[key]
        memory_axes = [ax for ax in _panels_of(fig) if ax.get_xlabel() == "lag"]
        assert memory_axes
        for ax in memory_axes:
            for line in ax.lines:
                y = np.asarray(line.get_ydata(), dtype=float)
                assert np.all(y > _ROUND_OFF * 0.8), line.get_label()
        assert "3 memory norms below round-off" in _notes(fig)


def test_lag_and_layer_ticks_are_integers(hand_figures):
    """MaxNLocator(integer=True) on lag and layer axes: every tick inside the limits is an integer."""
    checked = 0
    for fig in hand_figures.values():
        for ax in _panels_of(fig):
            if ax.get_xlabel() in ("lag", "layer"):
                lo, hi = sorted(ax.get_xlim())
                ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
                assert ticks and np.allclose(ticks, np.round(ticks)), (ax.get_title(), ticks)
                checked += 1
    assert checked >= 3  # two memory panels and the depth panels


def test_layers_coloured_with_a_colour_bar(hand_figures):
    """Ridgeline: each layer's curve has its own colour, shared across neurons, and a colour bar says
    which; before, colours cycled per line with no bar."""
    fig = hand_figures["marginals"]
    assert any(ax.get_label() == "<colorbar>" and ax.get_ylabel() == "layer" for ax in fig.axes)
    first = _panels_of(fig)[0]
    colours = [tuple(line.get_color()) for line in first.lines if line.get_marker() in ("None", "", None)]
    assert len(set(colours)) == len(colours) == len(HAND_WIDTHS) - 1  # layer 0 is a point law, skipped


@pytest.mark.parametrize("key, expected", [("joint", ["layer 0 not drawn: a point law",
                                                      "layer 2 not drawn: one neuron"]),
                                           ("marginals", ["layer 0 not drawn: no density (a point law"])])
def test_skipped_layers_are_noted(hand_figures, key, expected):
    notes = _notes(hand_figures[key])
    for text in expected:
        assert text in notes


def test_q0_points_with_error_bars_not_joined(hand_figures):
    """q0 is drawn as points with 95 % bars (1.96 x the stored stderr), never joined by a line."""
    ax = _panels_of(hand_figures["q0"])[0]
    solver = [c for c in ax.containers if c.get_label().startswith("grid solver")]
    assert len(solver) == 1 and solver[0].has_yerr
    for line in ax.lines:
        assert line.get_linestyle() in ("None", "none", ""), line.get_label()
    segments = solver[0].lines[2][0].get_segments()
    assert np.allclose([s[1, 1] - s[0, 1] for s in segments], 2 * 1.96 * 0.02)


def test_tails_on_a_log_scale_in_threshold_order_with_zero_probabilities_noted(hand_figures):
    """The survival function is drawn against sorted thresholds on a log axis; P = 0 (t = 4 here) cannot be
    drawn there and is named in a note; the relative bound is error / P."""
    fig = hand_figures["tails"]
    left, right = _panels_of(fig)
    assert left.get_yscale() == "log" and right.get_yscale() == "log"
    x, y = left.lines[0].get_data()
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(y, [1e-1, 1e-4, 1e-8])
    np.testing.assert_allclose(right.lines[0].get_data()[1], [1e-4, 1e-4, 1e-3])
    assert "t = [4.0]" in _notes(fig)
