"""Figures of a result, one PNG each (matplotlib, Agg backend: no display needed).

=====================  =====================================================
file                   what it shows
=====================  =====================================================
``NAME.png``           overview: the last layer's marginals (Monte Carlo
                       dots beside them), memory norm and reduced marginals
                       for a Mori-Zwanzig run, depth-theory panels
``NAME-marginals.png`` ridgeline: every layer's marginal of every neuron
                       (up to 6), Monte Carlo histograms overlaid
``NAME-joint.png``     heat maps of the 2-D marginal of neurons 0 and 1,
                       layer by layer (up to 6 layers)
``NAME-q0.png``        the conditional expectation q_0 at the case's points,
                       against the position along the line through them,
                       with Monte Carlo means and 95 % intervals
``NAME-memory.png``    memory kernel norm against lag (log scale), one line
                       per layer, with the kappa bound's slope
``NAME-tails.png``     the survival function P(g(X_L) > t) at the case's
                       ``observable.thresholds`` on a log scale, with its
                       error bound as a band and the quantiles marked
=====================  =====================================================

Every figure keeps to a few rules a reviewer can rely on: at most four panels
a row and a bounded aspect ratio; a legend entry for each thing drawn and for
nothing that is not (a slope that would fall outside the axes is stated in a
note instead); colour tied to the layer, with a colour bar, where curves of
several layers share an axis; values below round-off (``_ROUND_OFF`` of the
largest) left out instead of drawn as structure; integer ticks on layer and
lag axes; and a visible note on the figure for every layer it skips and why.

A figure is drawn only when the result holds its data. :func:`figures`
returns the matplotlib figures (for notebooks and tests), :func:`plot_results`
writes them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .results import Results

__all__ = ["figures", "plot_results"]

_MAX_NEURONS = 6
_MAX_LAYERS = 6
_MAX_COLS = 4  # panels a row
_MAX_WIDTH_IN = 16.0  # inches; with _MAX_ASPECT, no figure becomes a strip
_MAX_ASPECT = 3.0  # width / height of a figure
# Relative size below which a value is round-off, not structure: float64
# arithmetic leaves ~1e-16 of the largest norm behind in a kernel that vanishes
# exactly (linear-gaussian nets), far below any kernel a computation resolves.
_ROUND_OFF = 1e-12
_NOTE = {"fontsize": "small", "color": "0.25", "ha": "left", "va": "bottom"}


def _panels(n: int, width: float, height: float, **kwargs):
    """A figure of ``n`` panels, at most ``_MAX_COLS`` a row, each about
    ``width`` x ``height`` inches, the whole capped in width and aspect ratio.
    Returns the figure and the list of its ``n`` axes (spare cells removed)."""
    import matplotlib.pyplot as plt

    cols = max(1, min(n, _MAX_COLS))
    rows = -(-max(n, 1) // cols)
    w = min(width * cols + 0.6, _MAX_WIDTH_IN)
    h = max(height * rows + 0.9, w / _MAX_ASPECT)
    fig, axes = plt.subplots(rows, cols, figsize=(w, h), squeeze=False, **kwargs)
    for ax in axes.ravel()[n:]:
        fig.delaxes(ax)
    return fig, list(axes.ravel()[:n])


def _note(fig, lines: list[str]) -> None:
    """Write ``lines`` at the bottom left of ``fig`` (skipped layers, values
    left out), leaving room for them below the panels."""
    if lines:
        fig.text(0.01, 0.005, "\n".join(lines), gid="note", **_NOTE)


def _layout(fig, notes: list[str], right: float = 1.0) -> None:
    """Notes at the bottom, then the panels fitted above them and left of ``right``."""
    _note(fig, notes)
    fig.tight_layout(rect=(0, min(0.045 * len(notes), 0.3), right, 1))


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _above_roundoff(values, scale: float | None = None) -> np.ndarray:
    """Mask of the finite entries of ``values`` above ``_ROUND_OFF`` times
    ``scale`` (default: the largest finite magnitude)."""
    v = np.abs(np.asarray(values, dtype=float))
    ok = np.isfinite(v)
    if scale is None:
        scale = float(v[ok].max()) if ok.any() else 0.0
    return ok & (v > _ROUND_OFF * scale) & (v > 0)


def figures(results: Results) -> dict:
    """The figures of ``results``: a dict from suffix ("" for the overview,
    "marginals", "joint", "q0", "memory", "tails") to matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    out = {"": _overview(results), "marginals": _ridgeline(results)}
    if any(layer.joint is not None for layer in results.forward):
        out["joint"] = _joint(results)
    if results.backward is not None and len(results.backward.q0):
        out["q0"] = _q0(results)
    if results.mz is not None:
        out["memory"] = _memory_figure(results)
    back = results.backward
    if back is not None and getattr(back, "thresholds", None) is not None and np.size(back.thresholds):
        out["tails"] = _tails(results)
    return out


def figure_paths(path, names) -> dict:
    """Where each figure of :func:`figures` goes, for the overview at ``path``."""
    path = Path(path)
    return {name: path if not name else path.with_name(f"{path.stem}-{name}{path.suffix}") for name in names}


def plot_results(results: Results, path) -> list[Path]:
    """Write every figure of ``results``: the overview at ``path`` (format
    from its suffix) and the others beside it as ``STEM-NAME.SUFFIX``.
    Returns the paths written."""
    import matplotlib.pyplot as plt

    figs = figures(results)
    paths = figure_paths(path, figs)
    for name, fig in figs.items():
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    return list(paths.values())


def _overview(results: Results):
    a = results.analysis or {}
    extra = [f for f, key in ((_distances, "tv"), (_variance, "q_measured")) if key in a]
    panels = 1 + (2 if results.mz is not None else 0) + len(extra)
    fig, axes = _panels(panels, 5.0, 3.9)
    notes = []
    _marginals(axes[0], results)
    if results.mz is not None:
        notes += _memory(axes[1], results.mz)
        _reduced(axes[2], results)
    for ax, draw in zip(axes[panels - len(extra):], extra):
        draw(ax, a)
    fig.suptitle(f"{results.case_name} ({results.method}, {results.depth} layers)")
    _layout(fig, notes)
    return fig


def _ridgeline(r: Results):
    """One panel per neuron; layers stacked upward, each scaled to its own peak
    and coloured by layer (colour bar)."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    width = max(layer.marginal_x.shape[0] for layer in r.forward)
    # neurons with a density on some layer (a layer after a noiseless one, or a point law, has none)
    drawable = [k for k in range(width) if any(k < layer.marginal_x.shape[0] and
                                               np.all(np.isfinite(layer.marginal_pdf[k])) for layer in r.forward)]
    neurons = (drawable or [0])[:_MAX_NEURONS]
    cols = len(neurons)
    fig, axes = _panels(cols, 3.4, 0.9 + 0.45 * (r.depth + 1), sharey=True)
    cmap, norm = plt.get_cmap("viridis"), Normalize(0, max(r.depth, 1))
    skipped = {}
    for k, ax in zip(neurons, axes):
        for n, layer in enumerate(r.forward):
            if k >= layer.marginal_x.shape[0]:
                continue
            if not np.all(np.isfinite(layer.marginal_pdf[k])):
                skipped[n] = "no density (a point law, or the output of a noiseless layer)"
                continue
            x, pdf = layer.marginal_x[k], layer.marginal_pdf[k]
            scale = 0.9 / max(float(pdf.max()), 1e-300)
            colour = cmap(norm(n))
            ax.plot(x, n + scale * pdf, lw=1.2, color=colour, label="density" if n == r.depth else None)
            ax.fill_between(x, n, n + scale * pdf, color=colour, alpha=0.25)
            if r.montecarlo is not None and n < len(r.montecarlo):
                mc = r.montecarlo[n]
                hit = mc.marginal_pdf[k] > 0
                ax.plot(mc.marginal_x[k][hit], n + scale * mc.marginal_pdf[k][hit], ".", ms=1.5, color="k",
                        label="Monte Carlo histogram" if n == r.depth else None)
        ax.set(title=f"neuron {k}", xlabel="x")
        ax.set_yticks(range(r.depth + 1))
        ax.set_ylim(-0.1, r.depth + 1.3)  # headroom for the legend above the top layer
        if axes.index(ax) % _MAX_COLS == 0:
            ax.set_ylabel("layer")
    axes[0].legend(fontsize="x-small", loc="upper left")
    more = f", {cols} of {width} neurons" if width > cols else ""
    fig.suptitle(f"{r.case_name}: marginal densities by layer, each scaled to its peak{more}")
    notes = [f"layer {n} not drawn: {why}" for n, why in sorted(skipped.items())]
    if len(drawable) < width:
        notes.append(f"{width - len(drawable)} neurons not drawn: no layer gives them a density")
    _layout(fig, notes, right=0.92)
    bottom = axes[-1].get_position().y0
    cax = fig.add_axes((0.935, bottom, 0.012, axes[0].get_position().y1 - bottom), label="<colorbar>")
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, label="layer")
    _integer_ticks(bar.ax.yaxis)
    return fig


def _joint(r: Results):
    layers, notes = [], []
    for n, layer in enumerate(r.forward):
        if layer.joint is not None:
            layers.append((n, layer))
        else:
            why = ("one neuron" if layer.marginal_x.shape[0] < 2 else
                   "a point law" if not np.all(np.isfinite(layer.marginal_pdf)) else "no 2-D marginal stored")
            notes.append(f"layer {n} not drawn: {why}")
    if len(layers) > _MAX_LAYERS:  # the first, the last, and evenly spaced ones between
        pick = np.unique(np.linspace(0, len(layers) - 1, _MAX_LAYERS).round().astype(int))
        left = [n for i, (n, _) in enumerate(layers) if i not in set(pick)]
        notes.append(f"layer{'s' if len(left) > 1 else ''} {', '.join(map(str, left))} not drawn: {len(pick)} of "
                     f"{len(layers)} layers shown")
        layers = [layers[i] for i in pick]
    fig, axes = _panels(len(layers), 3.6, 3.2)
    for ax, (n, layer) in zip(axes, layers):
        x, y, pdf = layer.joint
        mesh = ax.pcolormesh(x, y, np.maximum(pdf, 0.0).T, shading="auto", cmap="viridis")
        ax.set(title=f"layer {n}", xlabel="neuron 0", ylabel="neuron 1")
        fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04, label="density")
    fig.suptitle(f"{r.case_name}: 2-D marginal density of neurons 0 and 1")
    _layout(fig, notes)
    return fig


def _q0(r: Results):
    """q0 against the position along the line through the points (their
    projection on the first principal direction), as points (with 95 %
    intervals where the method gives a standard error), Monte Carlo beside it."""
    pts, q0 = r.backward.points, r.backward.q0
    centred = pts - pts.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0] if len(pts) > 1 else np.ones(pts.shape[1])
    s = centred @ direction
    order = np.argsort(s)
    fig, (ax,) = _panels(1, 6.0, 3.6)
    err = _stderr(getattr(r.backward, "q0_stderr", None), r.diagnostics.get("q0_stderr"), q0)
    if err is None:
        ax.plot(s[order], q0[order], "o", ls="none", label=f"{r.method} solver")
    else:
        ax.errorbar(s[order], q0[order], yerr=1.96 * err[order], fmt="o", ls="none", capsize=3,
                    label=f"{r.method} solver (95 % interval)")
    mc = r.montecarlo_backward
    if mc is not None and len(mc.q0) == len(q0):
        mc_err = _stderr(r.montecarlo_backward_stderr, None, mc.q0)
        ax.errorbar(s[order], mc.q0[order], yerr=None if mc_err is None else 1.96 * mc_err[order], fmt="s", ms=4,
                    ls="none", capsize=3, mfc="none",
                    label="Monte Carlo" + ("" if mc_err is None else " (95 % interval)"))
    start, end = pts[order[0]], pts[order[-1]]
    ax.set(title=f"{r.case_name}: q0(x) = E[g(X_L) | X_0 = x] at the points",
           xlabel=f"position along the line from {np.round(start, 2).tolist()} to {np.round(end, 2).tolist()}",
           ylabel="q0")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _tails(r: Results):
    """Left: P(g(X_L) > t) against t on a log scale (the solver's values as
    points joined by a line: a smooth function of t), the quantiles as points
    on the curve (t_q at P = 1 - q). Right: the error bound relative to the
    probability (a band on the left panel would be invisible at the 1e-3
    relative bounds the grid gives). Thresholds whose probability is 0 or not
    finite are left out and said so."""
    back = r.backward
    t, p = np.asarray(back.thresholds, float), np.asarray(back.exceedance, float)
    err = np.asarray(back.exceedance_error, float) if back.exceedance_error is not None else np.full_like(p, np.nan)
    order = np.argsort(t)
    t, p, err = t[order], p[order], err[order]
    shown = np.isfinite(p) & (p > 0)
    fig, (ax, rel) = _panels(2, 4.6, 3.8)
    notes = []
    if (~shown).any():
        notes.append(f"left out: P = 0 or not finite at t = {np.round(t[~shown], 4).tolist()}")
    ax.semilogy(t[shown], p[shown], "o-", ms=4, label=f"P(g > t), {r.method} solver")
    levels, quantiles = getattr(back, "quantile_levels", None), getattr(back, "quantiles", None)
    if quantiles is not None and np.size(quantiles):  # t_q is where P(g > t) = 1 - q: a point on the curve
        upper = 1.0 - np.asarray(levels, dtype=float)
        ax.plot(quantiles, upper, "x", ms=8, color="C3", label="quantile t_q at P = 1 - q")
        for q, tq, u in zip(levels, quantiles, upper):
            ax.annotate(f"q = {q:g}", (tq, u), textcoords="offset points", xytext=(5, 5), fontsize="x-small")
    ax.set(title=f"{r.case_name}: exceedance probabilities", xlabel="threshold t", ylabel="P(g(X_L) > t)")
    ax.legend(fontsize="small")
    bounded = shown & np.isfinite(err) & (err > 0)
    if bounded.any():
        rel.semilogy(t[bounded], err[bounded] / p[bounded], "s-", ms=4, color="C1", label="error bound / P")
        rel.legend(fontsize="small")
    else:
        notes.append("no error bound stored")
    rel.set(title="relative error bound", xlabel="threshold t", ylabel="bound / P")
    notes.append("no Monte Carlo reference of the tail is stored (the [montecarlo] reference has moments and "
                 "marginals)")
    _layout(fig, notes)
    return fig


def _stderr(first, second, like) -> np.ndarray | None:
    """The first of ``first``, ``second`` that is a finite array shaped like ``like``."""
    for err in (first, second):
        if err is not None and np.shape(err) == np.shape(like) and np.all(np.isfinite(err)):
            return np.asarray(err, dtype=float)
    return None


def _memory_figure(r: Results):
    fig, (ax,) = _panels(1, 6.0, 4.0)
    notes = _memory(ax, r.mz, slopes=True)
    fig.suptitle(r.case_name)
    _layout(fig, notes)
    return fig


def _marginals(ax, r: Results) -> None:
    last = r.forward[-1]
    width = last.marginal_x.shape[0]
    shown = range(min(width, 8))
    for k in shown:
        line, = ax.plot(last.marginal_x[k], last.marginal_pdf[k], label=f"neuron {k}")
        if r.montecarlo is not None:
            mc = r.montecarlo[-1]
            ax.plot(mc.marginal_x[k], mc.marginal_pdf[k], ".", ms=2, color=line.get_color())
    note = " (dots: Monte Carlo)" if r.montecarlo is not None else ""
    more = f", first 8 of {width}" if width > 8 else ""
    ax.set(title=f"marginals of layer {r.depth}{more}{note}", xlabel="x", ylabel="density")
    ax.legend(fontsize="small")


def _memory(ax, mz, slopes: bool = False) -> list[str]:
    """Memory kernel norms against lag (log scale), one colour per layer with a
    colour bar; norms below round-off of the largest norm (lag 0 included) are
    left out. With ``slopes``, the lines kappa^(lag - 1) through the deepest
    layer's lag-1 norm, kept inside the axes. Returns notes for the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    norms = np.asarray(mz.memory_norm, dtype=float)
    L = norms.shape[0]
    finite = np.abs(norms[np.isfinite(norms)])
    scale = float(finite.max()) if finite.size else 0.0
    cmap, norm = plt.get_cmap("viridis"), Normalize(1, max(L, 2))
    notes, shown, below = [], [], 0
    for n in range(L):
        lags = np.arange(1, n + 1)
        row = norms[n, 1 : n + 1]
        ok = _above_roundoff(row, scale)
        below += int(np.sum(np.isfinite(row) & ~ok))
        if ok.any():
            ax.semilogy(lags[ok], row[ok], "o-", ms=3, color=cmap(norm(n + 1)))
            shown.append(row[ok])
    ax.set(title=f"memory kernel norm ({mz.norm}); fitted rate {mz.decay_rate:.2g}", xlabel="lag",
           ylabel="norm")
    _integer_ticks(ax.xaxis)
    if L > 1:
        bar = ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="layer", fraction=0.05, pad=0.02)
        _integer_ticks(bar.ax.yaxis)
    if below:
        notes.append(f"{below} memory norms below round-off ({_ROUND_OFF:g} of the largest, {scale:.2g}) not drawn")
    if not shown:
        ax.set_xlim(0.5, max(L - 0.5, 1.5))
        if below and scale > 0:  # where round-off starts, so that the empty panel says what it left out
            level = _ROUND_OFF * scale
            ax.axhline(level, color="grey", ls=":", label=f"round-off level ({_ROUND_OFF:g} of {scale:.2g})")
            ax.set_ylim(level / 1e3, level * 1e3)
            ax.legend(fontsize="x-small")
        else:
            ax.set_yscale("linear")
            ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "every memory kernel is below round-off" if below else "no memory kernel (one layer)",
                transform=ax.transAxes, ha="center", va="center")
        return notes
    data = np.concatenate(shown)
    low, high = float(data.min()), float(data.max())
    if slopes and L > 1:
        first = norms[-1, 1]
        lags = np.arange(1, L)
        for values, style, what in ((mz.kappa, "k--", "measured kappa"), (mz.kappa_bound, "k:", "a-priori bound")):
            v = np.asarray(values, dtype=float)
            v = v[np.isfinite(v)]
            if not v.size:
                continue
            if not (v.max() < 1.0 and np.isfinite(first) and first > _ROUND_OFF * scale):
                notes.append(f"{what} {v.max():.2g}: " + ("no decay promised (>= 1)" if v.max() >= 1.0 else
                                                            "no lag-1 norm of the deepest layer to start its slope"))
                continue
            line = first * v.max() ** (lags - 1)
            keep = line >= low / 10  # a slope is drawn where it meets the data's decades, not far below them
            ax.semilogy(lags[keep], line[keep], style, label=f"{what} {v.max():.2g}: slope kappa^(lag-1)")
            high = max(high, float(line[keep].max()))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    ax.set_ylim(low / 3, high * 3)
    return notes


def _reduced(ax, r: Results) -> None:
    mz, last = r.mz, r.forward[-1]
    for i, k in enumerate(np.asarray(mz.kept, dtype=int)):
        line, = ax.plot(last.marginal_x[k], last.marginal_pdf[k], label=f"neuron {k}, full")
        ax.plot(mz.reduced_x[-1][i], mz.reduced_pdf[-1][i], "--", color=line.get_color(),
                label=f"neuron {k}, reduced")
    ax.set(title=f"kept marginals, memory {mz.spec.get('memory')}: L1 error {mz.error[-1]:.1e}", xlabel="x",
           ylabel="density")
    ax.legend(fontsize="small")


def _distances(ax, a: dict) -> None:
    depth = np.arange(len(a["tv"]))
    for name in ("tv", "hellinger"):
        ax.plot(depth, a[name], "o-", label={"tv": "total variation", "hellinger": "Hellinger"}[name])
    if "cutoff_depth" in a and np.isfinite(a["cutoff_depth"]):
        ax.axvline(a["cutoff_depth"], color="grey", ls=":", label=f"cut-off {a['cutoff_depth']:.2g}")
    ax.set(title="distance to the reference layer (largest over neurons)", xlabel="layer", ylabel="distance",
           ylim=(0, 1.05))
    _integer_ticks(ax.xaxis)
    ax.legend(fontsize=8)


def _variance(ax, a: dict) -> None:
    depth = np.arange(1, len(a["q_measured"]) + 1)
    ax.plot(depth, a["q_measured"], "o-", label="this width (solver)")
    ax.plot(depth, a["q_mean_field"], "s--", label="mean field")
    ax.set(title="pre-activation variance q_l", xlabel="layer", ylabel="q")
    _integer_ticks(ax.xaxis)
    ax.legend(fontsize=8)

