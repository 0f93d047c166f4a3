"""Figures of a result, one PNG each (matplotlib, Agg backend: no display needed).

=====================  =====================================================
file                   what it shows
=====================  =====================================================
``NAME.png``           overview: the outputs' marginals (every output up to
                       ``_MAX_CURVES``; Monte Carlo dots beside them, sampled
                       densities with their band of 2 standard errors), memory
                       norm and reduced marginals for a Mori-Zwanzig run,
                       depth-theory panels
``NAME-marginals.png`` ridgeline: every layer's marginal (input x_k, hidden
                       units, output y_k) of each coordinate (up to 6), Monte
                       Carlo histograms beneath; a layer without a density
                       shows its mean +- sd
``NAME-joint.png``     heat maps of the 2-D marginal of coordinates 0 and 1,
                       layer by layer (up to 6 layers)
``NAME-q0.png``        the conditional expectation q_0 at the case's points,
                       against the distance from the first point along the
                       line through them, with Monte Carlo means and 95 %
                       intervals drawn above the solver's (hollow) markers
``NAME-memory.png``    memory kernel norm against lag (log scale), one line
                       per layer, with the kappa bound's slope
``NAME-tails.png``     the survival function P(g(X_L) > t) at the case's
                       ``observable.thresholds`` on a log scale with the
                       quantiles marked, and the stored
                       ``/backward/exceedance_error`` relative to P, named
                       for what it is (an error estimate of a deterministic
                       solve, or a multiple of a sampling standard error)
=====================  =====================================================

Every figure keeps to a few rules a reviewer can rely on: at most four panels
a row and a bounded aspect ratio; titles wrapped to the width of their panel
(and the figure's title to the figure), so none runs into a neighbour or off
the figure; a legend entry for each thing drawn and for nothing that is not
(a slope that would fall outside the axes is stated in a note instead),
legends beside or below the data, never on it; reference dots beneath the
curves they check; colour tied to the layer, with a colour bar, where curves
of several layers share an axis; values below round-off (``_ROUND_OFF`` of the
largest) left out instead of drawn as structure; integer ticks on layer and
lag axes; and a visible note on the figure for every layer or output it skips,
why, and where to read it. matplotlib's own warnings never reach the user (a
legend is asked for only where something is labelled).

A figure is drawn only when the result holds its data. :func:`figures`
returns the matplotlib figures (for notebooks and tests), :func:`plot_results`
writes them.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .results import Results
from .solvers.qmc.plugin import TAIL_STDERRS

__all__ = ["figures", "plot_results"]

_MAX_NEURONS = 6
_MAX_LAYERS = 6
_MAX_CURVES = 20  # outputs on the overview: ten colours, solid then dashed
_MAX_COLS = 4  # panels a row
_MAX_WIDTH_IN = 16.0  # inches; with _MAX_ASPECT, no figure becomes a strip
_MAX_ASPECT = 3.0  # width / height of a figure
# Relative size below which a value is round-off, not structure: float64
# arithmetic leaves ~1e-16 of the largest norm behind in a kernel that vanishes
# exactly (linear-gaussian nets), far below any kernel a computation resolves.
_ROUND_OFF = 1e-12
_BAND_STDERRS = 2.0  # half-width of a sampled density's band, in its standard errors
_BAND = f"band: density \u00b1 {_BAND_STDERRS:g} standard errors"
_NOTE = {"fontsize": "small", "color": "0.25", "ha": "left", "va": "bottom"}
_REFERENCE_Z = 1.5  # Monte Carlo dots: above the fills (1), beneath the curves (2) they check


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


def _wrap(text, width_px: float, renderer) -> bool:
    """Break the lines of ``text`` (an artist) so that it is at most
    ``width_px`` wide; whether it changed."""
    if not text.get_text() or text.get_window_extent(renderer).width <= width_px:
        return False
    lines = text.get_text().split("\n")
    chars = max(12, int(max(map(len, lines)) * width_px / text.get_window_extent(renderer).width) - 1)
    wrapped = "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) for line in lines)
    text.set_text(wrapped)
    return wrapped != "\n".join(lines)


def _layout(fig, notes: list[str], right: float = 1.0, legend=None) -> None:
    """Notes at the bottom left (wrapped to the figure), a figure legend
    ``(handles, labels)`` in a row above them, then the panels fitted above
    both and left of ``right``, their titles wrapped to their width and the
    figure's title to the figure's, until every title fits."""
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    bottom = 0.0
    if notes:
        note = fig.text(0.01, 0.005, "\n".join(notes), gid="note", **_NOTE)
        _wrap(note, 0.97 * width, renderer)
        bottom = 0.005 + note.get_window_extent(renderer).height / height
    if legend is not None and legend[0]:
        for cols in range(min(len(legend[0]), 3), 0, -1):  # as many columns as the figure's width holds
            box = fig.legend(*legend, loc="lower left", bbox_to_anchor=(0.01, bottom), ncols=cols, fontsize="small",
                             frameon=False)
            if cols == 1 or box.get_window_extent(renderer).width <= 0.97 * width:
                break
            box.remove()
        bottom += box.get_window_extent(renderer).height / height
    suptitle = getattr(fig, "_suptitle", None)
    for _ in range(4):  # wrapping makes a title taller, the layout then narrows nothing: a few rounds settle
        fig.tight_layout(rect=(0, min(bottom + 0.01, 0.5), right, 1))
        changed = suptitle is not None and _wrap(suptitle, 0.97 * width, renderer)
        for ax in fig.axes:
            if ax.get_label() != "<colorbar>":
                changed |= _wrap(ax.title, ax.bbox.width, renderer)
        if not changed:
            break


def _legend(ax, **kwargs) -> None:
    """A legend, only where something is labelled (matplotlib warns otherwise)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


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


def _unit(r: Results, n: int, k: int) -> str:
    """Coordinate ``k`` of layer ``n`` by its role: an input, a hidden unit, an output."""
    return f"input x_{k}" if n == 0 else f"output y_{k}" if n == r.depth else f"layer {n} hidden unit {k}"


def _has_density(layer, k: int | None = None) -> bool:
    pdf = layer.marginal_pdf if k is None else layer.marginal_pdf[k]
    return bool(np.all(np.isfinite(pdf)))


def _no_density(layer, n: int) -> str:
    """Why a layer has no density: a point (cov 0), or a deterministic image of the layer before."""
    if not np.any(np.asarray(layer.cov, dtype=float)):
        return "a point (cov 0)"
    return "no density stored" + (f" (deterministic image of layer {n - 1})" if n else "")


def _sd(layer) -> np.ndarray:
    return np.sqrt(np.clip(np.diag(np.atleast_2d(layer.cov)), 0.0, None))


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
    fig, axes = _panels(panels, 5.8, 3.9)  # the marginals' legend sits beside their axes
    notes = _marginals(axes[0], results)
    if results.mz is not None:
        notes += _memory(axes[1], results.mz)
        _reduced(axes[2], results)
    for ax, draw in zip(axes[panels - len(extra):], extra):
        draw(ax, a)
    fig.suptitle(f"{results.case_name} ({results.method}, {results.depth} layers)")
    _layout(fig, notes)
    return fig


def _marginals(ax, r: Results) -> list[str]:
    """The last layer's marginals, one curve an output (at most ``_MAX_CURVES``,
    the rest named in a note), with the stored band of a sampled density and
    Monte Carlo dots beneath; a layer without a density: mean +- sd of each
    output. The legend sits right of the axes. Returns notes for the figure."""
    last, L = r.forward[-1], r.depth
    width = last.marginal_x.shape[0]
    shown = range(min(width, _MAX_CURVES))
    notes = []
    if width > len(shown):
        notes.append(f"outputs y_{len(shown)} to y_{width - 1} not drawn ({len(shown)} of {width} shown): every "
                     f"output's marginal is in the result file, /forward/layer_{L:03d}/marginals "
                     f"(results.law({L}).marginal(k, x) in Python)")
    mc = r.montecarlo[-1] if r.montecarlo is not None else None
    if not _has_density(last):
        sd = _sd(last)
        ax.errorbar(last.mean[shown], list(shown), xerr=sd[shown], fmt="o", capsize=3, ls="none",
                    label="mean \u00b1 sd (stored mean and cov)")
        ax.set_yticks(list(shown), [f"y_{k}" for k in shown])
        ax.set(title=f"outputs of layer {L}: {_no_density(last, L)}", xlabel="value", ylabel="output")
        ax.invert_yaxis()
        _legend(ax, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return notes
    stderr = last.marginal_pdf_stderr
    for k in shown:
        x, pdf = last.marginal_x[k], last.marginal_pdf[k]
        line, = ax.plot(x, pdf, ls="-" if k < 10 else "--", color=f"C{k % 10}", label=f"output y_{k}")
        if stderr is not None:
            half = _BAND_STDERRS * stderr[k]
            ax.fill_between(x, pdf - half, pdf + half, color=line.get_color(), alpha=0.35, lw=0, gid="band",
                            label=_BAND if k == 0 else None)
        if mc is not None:
            ax.plot(mc.marginal_x[k], mc.marginal_pdf[k], ".", ms=2, color=line.get_color(), zorder=_REFERENCE_Z,
                    label="Monte Carlo histogram (dots)" if k == 0 else None)
    ax.set(title=f"output marginals, layer {L}", xlabel="value", ylabel="density")
    handles, labels = ax.get_legend_handles_labels()
    first = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("output"))  # outputs, then the rest
    ax.legend([handles[i] for i in first], [labels[i] for i in first], fontsize="x-small", loc="upper left",
              bbox_to_anchor=(1.01, 1.0), ncols=2 if len(shown) > 12 else 1)
    return notes


def _ridgeline(r: Results):
    """One panel per coordinate k (input x_k, the hidden units k, output y_k);
    layers stacked upward, each scaled to its own peak and coloured by layer
    (colour bar); a layer without a density shows its mean +- sd. The legend
    goes below the panels."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    width = max(layer.marginal_x.shape[0] for layer in r.forward)
    neurons = list(range(min(width, _MAX_NEURONS)))
    fig, axes = _panels(len(neurons), 3.4, 0.9 + 0.45 * (r.depth + 1), sharey=True)
    cmap, norm = plt.get_cmap("viridis"), Normalize(0, max(r.depth, 1))
    skipped, legend = {}, {}
    for k, ax in zip(neurons, axes):
        roles = []
        for n, layer in enumerate(r.forward):
            if k >= layer.marginal_x.shape[0]:
                continue
            roles.append(_unit(r, n, k).replace(f"layer {n} hidden", "hidden"))
            colour = cmap(norm(n))
            mc = r.montecarlo[n] if r.montecarlo is not None and n < len(r.montecarlo) else None
            if _has_density(layer, k):
                x, pdf = layer.marginal_x[k], layer.marginal_pdf[k]
                scale = 0.9 / max(float(pdf.max()), 1e-300)
                what = "density (scaled to its peak)"
                legend.setdefault(what, ax.plot(x, n + scale * pdf, lw=1.2, color=colour, label=what)[0])
                ax.fill_between(x, n, n + scale * pdf, color=colour, alpha=0.2, lw=0)
                if layer.marginal_pdf_stderr is not None:
                    half = _BAND_STDERRS * layer.marginal_pdf_stderr[k]
                    legend.setdefault(_BAND, ax.fill_between(x, n + scale * (pdf - half), n + scale * (pdf + half),
                                                             color=colour, alpha=0.5, lw=0, gid="band",
                                                             label=_BAND))
            else:
                skipped[n] = _no_density(layer, n)
                point = skipped[n].startswith("a point")
                what = "point (cov 0)" if point else "mean \u00b1 sd (layer without a density)"
                bars = ax.errorbar(layer.mean[k], n + 0.3, xerr=_sd(layer)[k], fmt="x" if point else "o",
                                   color=colour, capsize=3, ls="none", label=what)
                legend.setdefault(what, bars)
            hit = mc.marginal_pdf[k] > 0 if mc is not None else np.zeros(0, dtype=bool)
            if hit.any():
                if not _has_density(layer, k):  # no curve to scale by: the histogram's own peak
                    scale = 0.9 / float(mc.marginal_pdf[k].max())
                legend.setdefault("Monte Carlo histogram (dots)", ax.plot(
                    mc.marginal_x[k][hit], n + scale * mc.marginal_pdf[k][hit], ".", ms=1.5, color="0.35",
                    zorder=_REFERENCE_Z, label="Monte Carlo histogram (dots)")[0])
        ax.set(title=", ".join(dict.fromkeys(roles)), xlabel="value")
        ax.set_yticks(range(r.depth + 1), [f"{n} input" if n == 0 else f"{n} output" if n == r.depth else str(n)
                                           for n in range(r.depth + 1)])
        ax.set_ylim(-0.1, r.depth + 1.0)
        if axes.index(ax) % _MAX_COLS == 0:
            ax.set_ylabel("layer")
    more = f", {len(neurons)} of {width} coordinates" if width > len(neurons) else ""
    fig.suptitle(f"{r.case_name}: marginal densities by layer, each scaled to its peak{more}")
    notes = [f"layer {n}: {why}; " + ("its value marked" if why.startswith("a point") else "its mean \u00b1 sd drawn")
             for n, why in sorted(skipped.items())]
    if width > len(neurons):
        notes.append(f"coordinates {len(neurons)} to {width - 1} not drawn: their marginals are in the result file, "
                     "/forward/layer_NNN/marginals (results.law(n).marginal(k, x) in Python)")
    _layout(fig, notes, right=0.92, legend=(list(legend.values()), list(legend)))
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
            why = ("one coordinate" if layer.marginal_x.shape[0] < 2 else
                   _no_density(layer, n) if not _has_density(layer) else "no 2-D marginal stored")
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
        role = "inputs" if n == 0 else "outputs" if n == r.depth else "hidden units"
        ax.set(title=f"layer {n} ({role})", xlabel=_unit(r, n, 0), ylabel=_unit(r, n, 1))
        fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04, label="density")
    fig.suptitle(f"{r.case_name}: 2-D marginal density of coordinates 0 and 1")
    _layout(fig, notes)
    return fig


def _q0(r: Results):
    """q0 against the distance from the first point A along the line through
    the points (their projection on the first principal direction, 0 at A),
    as hollow markers (with 95 % intervals where the method gives a standard
    error), the Monte Carlo means and intervals drawn above them."""
    pts, q0 = r.backward.points, r.backward.q0
    centred = pts - pts.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0] if len(pts) > 1 else np.ones(pts.shape[1])
    s = centred @ direction
    order = np.argsort(s)
    off = float(np.max(np.linalg.norm(centred - np.outer(s, direction), axis=1))) if len(pts) > 1 else 0.0
    s = s - s[order[0]]  # 0 at the first point, A
    fig, (ax,) = _panels(1, 6.0, 3.6)
    err = _stderr(getattr(r.backward, "q0_stderr", None), r.diagnostics.get("q0_stderr"), q0)
    solver = {"fmt": "o", "ms": 8, "mfc": "none", "ls": "none", "zorder": 2}
    if err is None:
        ax.errorbar(s[order], q0[order], label=f"{r.method} solver", **solver)
    else:
        ax.errorbar(s[order], q0[order], yerr=1.96 * err[order], capsize=4, label=f"{r.method} solver (95 % interval)",
                    **solver)
    mc = r.montecarlo_backward
    if mc is not None and len(mc.q0) == len(q0):
        mc_err = _stderr(r.montecarlo_backward_stderr, None, mc.q0)
        ax.errorbar(s[order], mc.q0[order], yerr=None if mc_err is None else 1.96 * mc_err[order], fmt="s", ms=3,
                    ls="none", capsize=3, color="C1", zorder=3,  # bars (zorder - 0.1) above the solver's markers
                    label="Monte Carlo" + ("" if mc_err is None else " (95 % interval)"))
    start, end = (np.round(pts[i], 2).tolist() for i in (order[0], order[-1]))
    scale = float(np.max(np.abs(centred))) if len(pts) > 1 else 0.0
    notes = []
    if off > 1e-9 * max(scale, 1e-300):
        notes.append(f"the points are up to {off:.2g} off the line: each is drawn at its projection on the points' "
                     f"principal direction {np.round(direction, 2).tolist()}")
    ax.set(title=f"{r.case_name}: q0(x) = E[g(X_L) | X_0 = x] at the points",
           xlabel=f"distance from A = {start} along the line to B = {end}", ylabel="q0")
    _legend(ax, fontsize="small")
    _layout(fig, notes)
    return fig


def _tails(r: Results):
    """Left: P(g(X_L) > t) against t on a log scale (the solver's values as
    points joined by a line: a smooth function of t), the quantiles as points
    on the curve (t_q at P = 1 - q). Right: the stored exceedance_error
    relative to P (a band on the left panel would be invisible at the 1e-3
    relative errors the grid gives), named for what it is: a sampled result's
    is ``TAIL_STDERRS`` standard errors, a deterministic solve's an error
    estimate. Thresholds whose probability is 0 or not finite are left out
    and said so."""
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
    _legend(ax, fontsize="small")
    sampled = r.forward[-1].mean_stderr is not None or r.forward[-1].marginal_pdf_stderr is not None
    if sampled:
        replicates = r.diagnostics.get("replicates")
        over = f"the {int(replicates)} replicates" if replicates is not None else "the replicates"
        what = f"{TAIL_STDERRS:g} standard errors"
        notes.append(f"exceedance_error (as stored): {what} of P over {over}, a statistical error bar (two-sided "
                     "normal coverage 1 - 6e-5 where the replicates' mean is normal), not a bound")
    else:
        what = "error estimate"
        notes.append("exceedance_error (as stored): the solver's a-posteriori error estimate of P (the difference to "
                     "a coarser solve, plus the mass its boxes cut and a round-off allowance)")
    bounded = shown & np.isfinite(err) & (err > 0)
    if bounded.any():
        rel.semilogy(t[bounded], err[bounded] / p[bounded], "s-", ms=4, color="C1",
                     label=f"exceedance_error / P ({what})")
        rel.legend(fontsize="small")
    else:
        notes.append("no exceedance_error stored")
    rel.set(title="stored exceedance_error relative to P", xlabel="threshold t", ylabel="exceedance_error / P")
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
        line, = ax.plot(last.marginal_x[k], last.marginal_pdf[k], label=f"output y_{k}, full")
        ax.plot(mz.reduced_x[-1][i], mz.reduced_pdf[-1][i], "--", color=line.get_color(),
                label=f"output y_{k}, reduced")
    ax.set(title=f"kept marginals, memory {mz.spec.get('memory')}: L1 error {mz.error[-1]:.1e}", xlabel="value",
           ylabel="density")
    _legend(ax, fontsize="small")


def _distances(ax, a: dict) -> None:
    depth = np.arange(len(a["tv"]))
    for name in ("tv", "hellinger"):
        ax.plot(depth, a[name], "o-", label={"tv": "total variation", "hellinger": "Hellinger"}[name])
    if "cutoff_depth" in a and np.isfinite(a["cutoff_depth"]):
        ax.axvline(a["cutoff_depth"], color="grey", ls=":", label=f"cut-off {a['cutoff_depth']:.2g}")
    ax.set(title="distance to the reference layer (largest over units)", xlabel="layer", ylabel="distance",
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

