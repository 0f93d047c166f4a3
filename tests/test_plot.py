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
# input (layer 0 has cov 0 and no density: ridgeline and joint must say they skip it), a layer of one
# neuron (the joint figure skips it), memory norms of 1e-16 (round-off, must not be drawn) beside real
# ones, a measured kappa >= 1 (no slope to draw: a note, not a legend entry) and a bound < 1 (a slope that
# must lie inside the axes), q0 with standard errors (error bars, no joining line), and depth analysis.
# Each check below fails on the figures as they were before issue 28 (stated per check).

from dataclasses import replace  # noqa: E402

from mzpdf.results import BackwardSummary, LayerSummary, MonteCarloLayer, MZSummary, Results  # noqa: E402
from mzpdf.plot import _BAND, _ROUND_OFF  # noqa: E402
from mzpdf.solvers.qmc.plugin import TAIL_STDERRS  # noqa: E402

HAND_WIDTHS = [2, 2, 1, 2, 2, 2, 2]  # layer 2 has one neuron
HAND_M = 41


def _layer(n: int, w: int, density: bool = True, stderr: bool = False) -> LayerSummary:
    """Layer ``n`` of the hand result: ``w`` standard gaussians shifted by 0.1 n (their 2-D marginal where
    ``w == 2``); without ``density``, NaN marginals and cov 0.5 I (a deterministic image of a spread law);
    with ``stderr``, the standard errors a sampling method stores."""
    x = np.tile(np.linspace(-3, 3, HAND_M), (w, 1))
    pdf = np.exp(-0.5 * (x - 0.1 * n) ** 2) / np.sqrt(2 * np.pi)
    g = np.linspace(-3, 3, 21)
    joint = (g, g, np.outer(np.exp(-g ** 2 / 2), np.exp(-g ** 2 / 2)) / (2 * np.pi)) if w == 2 else None
    if not density:
        return LayerSummary(np.full(w, 0.3), 0.5 * np.eye(w), 1.0, x, np.full((w, HAND_M), np.nan),
                            np.tile([-3.0, 3.0], (w, 1)))
    err = (0.02 * pdf + 1e-3, np.full(w, 0.01)) if stderr else (None, None)
    return LayerSummary(np.zeros(w), np.eye(w), 1.0, x, pdf, np.tile([-3.0, 3.0], (w, 1)), joint,
                        mean_stderr=err[1], marginal_pdf_stderr=err[0])


def _reference(layer: LayerSummary) -> MonteCarloLayer:
    w = layer.marginal_x.shape[0]
    pdf = np.nan_to_num(layer.marginal_pdf, nan=0.0, posinf=0.0) * 1.01  # beside the curve, not on it
    return MonteCarloLayer(layer.mean, np.full(w, 0.01), layer.cov, layer.marginal_x, pdf, np.full((w, HAND_M), 0.01),
                           1000)


def _hand_results(**changes) -> Results:
    rng = np.random.default_rng(28)
    forward = [_layer(n, w) for n, w in enumerate(HAND_WIDTHS)]
    w0 = HAND_WIDTHS[0]
    forward[0] = LayerSummary(np.zeros(w0), np.zeros((w0, w0)), 1.0, forward[0].marginal_x,
                              np.full((w0, HAND_M), np.inf), forward[0].box)  # a point input: cov 0, no density
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
    results = Results(case_name="hand", case_toml="", method="grid", forward=forward,
                      backward=BackwardSummary(points, rng.standard_normal(4), 0.1, q0_stderr=np.full(4, 0.02),
                                               thresholds=np.array([3.0, 1.0, 2.0, 4.0]),
                                               exceedance=np.array([1e-8, 1e-1, 1e-4, 0.0]),
                                               exceedance_error=np.array([1e-11, 1e-5, 1e-8, 1e-20]),
                                               quantile_levels=np.array([0.99]), quantiles=np.array([1.5])),
                      montecarlo=[_reference(layer) for layer in forward],
                      montecarlo_backward=BackwardSummary(points, rng.standard_normal(4), 0.1),
                      montecarlo_backward_stderr=np.full(4, 0.03), mz=mz, analysis=analysis)
    return replace(results, **changes)


@pytest.fixture(scope="module")
def hand_figures():
    figs = figures(_hand_results())
    yield figs
    for fig in figs.values():
        plt.close(fig)


def _panels_of(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _flat(text: str) -> str:
    """``text`` with the line breaks of wrapping undone."""
    return " ".join(text.split())


def _notes(fig) -> str:
    return _flat(" ".join(t.get_text() for t in fig.texts))


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


def _legends(fig) -> list:
    """Every legend of ``fig`` with the panels whose artists it may name (a figure legend: all)."""
    return ([(ax.get_legend(), [ax]) for ax in _panels_of(fig) if ax.get_legend() is not None]
            + [(legend, _panels_of(fig)) for legend in fig.legends])


@pytest.mark.parametrize("key", ["", "marginals", "q0", "memory", "tails"])
def test_every_legend_entry_is_drawn(hand_figures, key):
    """Each legend text is non-empty and names a line (or error-bar container, or band) with a point inside
    the axes. Before, the kappa >= 1 entry had an empty line (plot([], [])) and the slopes ran off-scale."""
    legends = _legends(hand_figures[key])
    assert legends
    for legend, axes in legends:
        texts = [t.get_text() for t in legend.get_texts()]
        assert texts and all(t.strip() for t in texts)
        drawn = set()
        for ax in axes:
            drawn |= {line.get_label() for line in ax.lines if _visible(line, ax)}
            drawn |= {c.get_label() for c in ax.containers}  # error bars: their points are lines above
            drawn |= {c.get_label() for c in ax.collections if len(c.get_paths())}  # bands
        assert set(texts) <= drawn, (axes[0].get_title(), set(texts) - drawn)


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


@pytest.mark.parametrize("key, expected", [("joint", ["layer 0 not drawn: a point (cov 0)",
                                                      "layer 2 not drawn: one coordinate"]),
                                           ("marginals", ["layer 0: a point (cov 0); its value marked"])])
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


# --- Figures that say what they show (issue 39) ----------------------------------------------------------
# Variants of the hand result, each holding one defect a reviewer found in the example cases' figures. The
# checks read the matplotlib artists (text extents, legend boxes against line data, zorder, labels, bands),
# not pixels; each fails on the figures as they were before issue 39 (stated per check).

LONG_NORM = "L2(1/mu) (densities), L2(mu) (observables); mu the layer's law"  # the norm a grid MZ run stores


def _variant(name: str) -> Results:
    r = _hand_results()
    if name == "long titles":  # mz_reduce_tanh's overview and -memory; surrogate_uq-joint: one panel
        forward = [layer if n == 1 else replace(layer, joint=None) for n, layer in enumerate(r.forward)]
        return replace(r, case_name="surrogate_uq_with_a_long_name", mz=replace(r.mz, norm=LONG_NORM),
                       forward=forward)
    if name == "plateau":  # the output's density flat across the panel: nowhere left for a legend on it
        top = r.forward[-1]
        x = top.marginal_x
        top = replace(top, marginal_pdf=np.exp(-(x / 2.6) ** 16) / 5.2)
        return replace(r, forward=r.forward[:-1] + [top], montecarlo=r.montecarlo[:-1] + [_reference(top)])
    if name.startswith("outputs "):  # a classifier with that many outputs
        width = int(name.split()[1])
        top = _layer(len(HAND_WIDTHS) - 1, width)
        return replace(r, forward=r.forward[:-1] + [top], montecarlo=r.montecarlo[:-1] + [_reference(top)])
    if name == "input only":  # noiseless layers: only the (sampled) input has a density, later layers mean and cov
        forward = [_layer(0, 2, stderr=True)] + [_layer(n, w, density=False) for n, w in enumerate(HAND_WIDTHS) if n]
        return replace(r, forward=forward, montecarlo=[_reference(layer) for layer in forward],
                       montecarlo_backward=None, mz=None)
    if name == "sampled":  # a qmc-like result: standard errors of every density, q0 and the tails
        forward = [_layer(n, w, stderr=True) for n, w in enumerate(HAND_WIDTHS)]
        return replace(r, method="qmc", forward=forward, diagnostics={"replicates": np.int64(8)})
    raise KeyError(name)


@pytest.fixture(scope="module")
def variant_figures():
    """``get(name)``: the figures of ``_variant(name)``, kept while the tests ask for the same variant (one at a
    time: matplotlib warns past 20 open figures)."""
    made = {}

    def get(name: str) -> dict:
        if name not in made:
            for figs in made.values():
                for fig in figs.values():
                    plt.close(fig)
            made.clear()
            made[name] = figures(_variant(name))
        return made[name]

    yield get
    for figs in made.values():
        for fig in figs.values():
            plt.close(fig)


def _all_texts(fig) -> str:
    """Every text of ``fig``: titles, axis labels, tick labels, legends, notes."""
    return _flat(" ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text)))


def _overlap(a, b) -> bool:
    """Whether display boxes ``a`` and ``b`` share more than a pixel's width."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1


@pytest.mark.parametrize("key", ["", "memory", "joint", "marginals", "q0", "tails"])
def test_titles_inside_the_figure_and_clear_of_their_neighbours(variant_figures, key):
    """Each panel title and the figure title lie inside the figure, and a panel title overlaps neither
    another panel (colour bars included) nor another title. Before, the long memory-norm name ran over the
    next panel's title in the overview and off both edges of the -memory figure, and the one-panel joint
    figure's title was clipped at both edges (mz_reduce_tanh, surrogate_uq)."""
    figs = variant_figures("long titles")
    fig = figs[key]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    titles = [(ax, ax.title) for ax in _panels_of(fig) if ax.get_title()]
    if fig._suptitle is not None:  # matplotlib keeps the figure title there
        titles.append((None, fig._suptitle))
    assert titles
    boxes = [(ax, text.get_window_extent(renderer)) for ax, text in titles]
    for ax, box in boxes:
        assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y1 <= page.y1 + 1, \
            (key, ax and ax.get_title(), box, page)
        for other, other_box in boxes:
            assert other is ax or not _overlap(box, other_box), (key, ax and ax.get_title())
        for other in fig.axes:
            if other is not ax and ax is not None:
                assert not _overlap(box, other.get_window_extent(renderer)), (key, ax.get_title())


def _data_points(ax) -> np.ndarray:
    """Display coordinates (n, 2) of the points of ``ax``'s lines inside its view limits."""
    out = []
    for line in ax.lines:
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        keep = np.isfinite(x) & np.isfinite(y) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        if keep.any():
            out.append(ax.transData.transform(np.column_stack([x[keep], y[keep]])))
    return np.concatenate(out) if out else np.zeros((0, 2))


@pytest.mark.parametrize("variant", ["plateau", "input only", "sampled"])
@pytest.mark.parametrize("key", ["", "marginals"])
def test_legends_cover_no_curve(variant_figures, key, variant):
    """Every legend lies inside the figure, and no data point of any marginal curve or Monte Carlo dot lies
    under it. Before, the ridgeline's legend sat at the top left of the first panel, over the output's
    curve where it is wide (the plateau)."""
    figs = variant_figures(variant)
    fig = figs[key]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = _legends(fig)
    assert legends
    panels = _panels_of(fig) if key else _panels_of(fig)[:1]  # the overview's marginals panel
    for legend, _ in legends:
        box = legend.get_window_extent(renderer)
        page = fig.bbox
        assert box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1, (key, box, page)
        for ax in panels:
            xy = _data_points(ax)
            inside = (xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)
            assert not inside.any(), (key, ax.get_title(), int(inside.sum()))


@pytest.mark.parametrize("key", ["", "marginals"])
def test_monte_carlo_dots_beneath_the_curves(hand_figures, key):
    """The Monte Carlo histogram (dots, marker '.') is drawn beneath the density curves it checks (lower
    zorder), so it shows where they differ without hiding them. Before, the dots came last (same zorder)."""
    checked = 0
    for ax in _panels_of(hand_figures[key])[:1 if not key else None]:
        dots = [line.get_zorder() for line in ax.lines if line.get_marker() == "."]
        curves = [line.get_zorder() for line in ax.lines if line.get_marker() in ("None", "", None)]
        if dots and curves:
            assert max(dots) < min(curves), ax.get_title()
            checked += 1
    assert checked


def test_q0_axis_is_the_distance_from_the_first_point(hand_figures):
    """The x axis says "distance from A along the line to B", and the drawn x of each point is its
    distance from A (the hand points lie on one line, so it is exact; 1e-12: round-off of an SVD). Before,
    the label said "from A to B" but 0 was the points' centroid (x < 0 at A)."""
    r = _hand_results()  # the result hand_figures drew (a seeded generator)
    ax = _panels_of(hand_figures["q0"])[0]
    solver = [c for c in ax.containers if c.get_label().startswith("grid solver")][0]
    x, y = (np.asarray(v, dtype=float) for v in solver.lines[0].get_data())
    drawn = [int(np.argmin(np.abs(r.backward.q0 - v))) for v in y]  # q0 values are distinct: each names its point
    a = r.backward.points[drawn[int(np.argmin(x))]]
    assert np.min(x) == 0.0 and str(np.round(a, 2).tolist()) in ax.get_xlabel()
    assert ax.get_xlabel().startswith("distance from A")
    np.testing.assert_allclose(x, np.linalg.norm(r.backward.points[drawn] - a, axis=1), atol=1e-12)


def test_q0_monte_carlo_bars_drawn_above_hollow_solver_markers(hand_figures):
    """Every artist of the Monte Carlo error bars (points, bars, caps) is above the solver's markers, and the
    solver's markers are hollow, so a Monte Carlo interval shorter than a marker still shows. Before, the
    Monte Carlo bars (zorder 1.9) hid under the solver's filled dots (zorder 2)."""
    ax = _panels_of(hand_figures["q0"])[0]
    solver = [c for c in ax.containers if c.get_label().startswith("grid solver")][0]
    mc = [c for c in ax.containers if c.get_label().startswith("Monte Carlo")][0]
    marker = solver.lines[0]
    assert marker.get_markerfacecolor() == "none"
    mc_artists = [mc.lines[0], *mc.lines[1], *mc.lines[2]]
    assert min(a.get_zorder() for a in mc_artists) > marker.get_zorder()


def test_coordinates_named_input_hidden_output(hand_figures):
    """No figure calls a coordinate "neuron": the ridgeline's layer ticks name the input and the output
    rows, its panel titles say x_k, hidden unit k and y_k; the overview's legend names outputs y_k; the
    joint figure's axes name the layer's role. Before, every panel and curve said "neuron k"."""
    for key in ("", "marginals", "joint"):
        assert "neuron" not in _all_texts(hand_figures[key]), key
    ridge = _panels_of(hand_figures["marginals"])[0]
    ticks = [t.get_text() for t in ridge.get_yticklabels()]
    assert ticks[0] == "0 input" and ticks[-1] == f"{len(HAND_WIDTHS) - 1} output"
    assert _flat(ridge.get_title()) == "input x_0, hidden unit 0, output y_0"
    overview = _panels_of(hand_figures[""])[0]
    assert [t.get_text() for t in overview.get_legend().get_texts()][:2] == ["output y_0", "output y_1"]
    joint = {ax.get_title(): ax for ax in _panels_of(hand_figures["joint"])}
    assert joint["layer 1 (hidden units)"].get_xlabel() == "layer 1 hidden unit 0"
    assert joint[f"layer {len(HAND_WIDTHS) - 1} (outputs)"].get_ylabel() == "output y_1"


@pytest.mark.parametrize("width", [10, 30])
def test_every_output_drawn_or_the_rest_named(variant_figures, width):
    """A 10-output model's overview draws all 10 curves (before: "first 8 of 10", nothing said where the
    rest are); 30 outputs draw 20 and a note names y_20 to y_29 and where the file keeps them."""
    figs = variant_figures(f"outputs {width}")
    ax = _panels_of(figs[""])[0]
    curves = [line.get_label() for line in ax.lines if line.get_label().startswith("output y_")]
    shown = min(width, 20)
    assert curves == [f"output y_{k}" for k in range(shown)]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:shown] == curves
    notes = _notes(figs[""])
    if width > shown:
        assert f"outputs y_{shown} to y_{width - 1} not drawn ({shown} of {width} shown)" in notes
        assert f"/forward/layer_{len(HAND_WIDTHS) - 1:03d}/marginals" in notes
    else:
        assert "outputs y_" not in notes and "first" not in _all_texts(figs[""])


def test_layers_without_a_density_draw_mean_and_sd_and_warn_nothing():
    """Only the input has a density (a noiseless net): every panel still draws something, the overview and
    the ridgeline show each output's mean +- sd from the stored mean and cov (bars of half-length sqrt(0.5):
    identity), the notes say "no density stored (deterministic image ...)", never "point" (cov 0.5 I is no
    point), and matplotlib warns nothing (errors here). Before: an empty overview axis, matplotlib's "No
    artists with labels found to put in legend", and "a point law" in the joint figure."""
    import warnings

    r = _variant("input only")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = figures(r)
    try:
        for key, fig in figs.items():
            for ax in _panels_of(fig):
                assert _drawn(ax) + len(ax.containers) > 0, (key, ax.get_title())
        ax = _panels_of(figs[""])[0]
        bars = ax.containers[0]
        np.testing.assert_allclose(bars.lines[0].get_xdata(), r.forward[-1].mean)
        half = [s[1, 0] - s[0, 0] for s in bars.lines[2][0].get_segments()]
        np.testing.assert_allclose(half, 2 * np.sqrt(0.5))
        assert "no density stored (deterministic image of layer 5)" in _flat(ax.get_title())
        legend = [t.get_text() for t in figs["marginals"].legends[0].get_texts()]
        assert "mean \u00b1 sd (layer without a density)" in legend
        for key in ("marginals", "joint"):
            notes = _notes(figs[key])
            assert "layer 1" in notes and "no density stored (deterministic image of layer 0)" in notes, key
            assert "point" not in notes, key
    finally:
        for f in figs.values():
            plt.close(f)


def test_sampled_densities_drawn_with_their_stored_band(variant_figures):
    """A sampling method's stored pdf_stderr is drawn as a band of +-2 standard errors (a PolyCollection
    whose edges are pdf -+ 2 stderr: identity, to float round-off) on the overview and the ridgeline, and
    the legends say so. Before: no band, the stored standard errors were not drawn."""
    r = _variant("sampled")
    figs = variant_figures("sampled")
    ax = _panels_of(figs[""])[0]
    last = r.forward[-1]
    bands = [c for c in ax.collections if c.get_gid() == "band"]
    assert len(bands) == last.marginal_x.shape[0]
    for k, band in enumerate(bands):
        y = band.get_paths()[0].vertices[:, 1]
        hi, lo = last.marginal_pdf[k] + 2 * last.marginal_pdf_stderr[k], last.marginal_pdf[k] - 2 * \
            last.marginal_pdf_stderr[k]
        assert np.isclose(y.max(), hi.max(), rtol=1e-12) and np.isclose(y.min(), lo.min(), rtol=1e-12)
    assert _BAND in [t.get_text() for t in ax.get_legend().get_texts()]
    assert _BAND in [t.get_text() for t in figs["marginals"].legends[0].get_texts()]
    ridge = [c for c in _panels_of(figs["marginals"])[0].collections if c.get_gid() == "band"]
    assert len(ridge) == len(HAND_WIDTHS)  # one band a layer of coordinate 0


@pytest.mark.parametrize("variant, meaning", [("sampled", f"{TAIL_STDERRS:g} standard errors"),
                                              ("deterministic", "error estimate")])
def test_tail_error_named_for_what_the_file_stores(variant_figures, hand_figures, variant, meaning):
    """/backward/exceedance_error is drawn under its own name with what it is: a sampled result's is
    TAIL_STDERRS standard errors over the replicates (qmc), a deterministic solve's an error estimate; no
    text calls either an "error bound". Before: "relative error bound", "error bound / P" for both."""
    figs = variant_figures("sampled") if variant == "sampled" else hand_figures
    fig = figs["tails"]
    rel = _panels_of(fig)[1]
    assert [t.get_text() for t in rel.get_legend().get_texts()] == [f"exceedance_error / P ({meaning})"]
    assert rel.get_ylabel() == "exceedance_error / P"
    assert "error bound" not in _all_texts(fig)
    if variant == "sampled":
        assert "over the 8 replicates" in _notes(fig)
