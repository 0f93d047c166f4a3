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
=====================  =====================================================

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


def figures(results: Results) -> dict:
    """The figures of ``results``: a dict from suffix ("" for the overview,
    "marginals", "joint", "q0", "memory") to matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    out = {"": _overview(results), "marginals": _ridgeline(results)}
    if any(layer.joint is not None for layer in results.forward):
        out["joint"] = _joint(results)
    if results.backward is not None and len(results.backward.q0):
        out["q0"] = _q0(results)
    if results.mz is not None:
        out["memory"] = _memory_figure(results)
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
    import matplotlib.pyplot as plt

    a = results.analysis or {}
    extra = [f for f, key in ((_distances, "tv"), (_variance, "q_measured")) if key in a]
    panels = 1 + (2 if results.mz is not None else 0) + len(extra)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.0), squeeze=False)
    axes = axes[0]
    _marginals(axes[0], results)
    if results.mz is not None:
        _memory(axes[1], results.mz)
        _reduced(axes[2], results)
    for ax, draw in zip(axes[panels - len(extra):], extra):
        draw(ax, a)
    fig.suptitle(f"{results.case_name} ({results.method}, {results.depth} layers)")
    fig.tight_layout()
    return fig


def _ridgeline(r: Results):
    """One column per neuron; layers stacked upward, each scaled to its own peak."""
    import matplotlib.pyplot as plt

    width = max(layer.marginal_x.shape[0] for layer in r.forward)
    cols = min(width, _MAX_NEURONS)
    fig, axes = plt.subplots(1, cols, figsize=(3.4 * cols + 0.6, 1.0 + 0.55 * (r.depth + 1)), squeeze=False,
                             sharey=True)
    for k, ax in enumerate(axes[0]):
        for n, layer in enumerate(r.forward):
            if k >= layer.marginal_x.shape[0] or not np.all(np.isfinite(layer.marginal_pdf[k])):
                continue
            x, pdf = layer.marginal_x[k], layer.marginal_pdf[k]
            scale = 0.9 / max(float(pdf.max()), 1e-300)
            line, = ax.plot(x, n + scale * pdf, lw=1.2)
            ax.fill_between(x, n, n + scale * pdf, color=line.get_color(), alpha=0.25)
            if r.montecarlo is not None and n < len(r.montecarlo):
                mc = r.montecarlo[n]
                hit = mc.marginal_pdf[k] > 0
                ax.plot(mc.marginal_x[k][hit], n + scale * mc.marginal_pdf[k][hit], ".", ms=1.5, color="k")
        ax.set(title=f"neuron {k}", xlabel="x")
        ax.set_yticks(range(r.depth + 1))
    axes[0][0].set_ylabel("layer")
    note = "; dots: Monte Carlo" if r.montecarlo is not None else ""
    more = f", first {cols} of {width} neurons" if width > cols else ""
    fig.suptitle(f"{r.case_name}: marginal densities by layer, each scaled to its peak{more}{note}")
    fig.tight_layout()
    return fig


def _joint(r: Results):
    import matplotlib.pyplot as plt

    layers = [(n, layer) for n, layer in enumerate(r.forward) if layer.joint is not None]
    if len(layers) > _MAX_LAYERS:  # the first, the last, and evenly spaced ones between
        pick = np.unique(np.linspace(0, len(layers) - 1, _MAX_LAYERS).round().astype(int))
        layers = [layers[i] for i in pick]
    cols = min(len(layers), 3)
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 0.6, 3.2 * rows + 0.4), squeeze=False)
    for ax in axes.ravel()[len(layers):]:
        ax.set_axis_off()
    for ax, (n, layer) in zip(axes.ravel(), layers):
        x, y, pdf = layer.joint
        mesh = ax.pcolormesh(x, y, np.maximum(pdf, 0.0).T, shading="auto", cmap="viridis")
        ax.set(title=f"layer {n}", xlabel="neuron 0", ylabel="neuron 1")
        fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"{r.case_name}: 2-D marginal density of neurons 0 and 1")
    fig.tight_layout()
    return fig


def _q0(r: Results):
    """q0 against the position along the line through the points (their
    projection on the first principal direction), Monte Carlo beside it."""
    import matplotlib.pyplot as plt

    pts, q0 = r.backward.points, r.backward.q0
    centred = pts - pts.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0] if len(pts) > 1 else np.ones(pts.shape[1])
    s = centred @ direction
    order = np.argsort(s)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot(s[order], q0[order], "o-", label=f"{r.method} solver")
    mc = r.montecarlo_backward
    if mc is not None and len(mc.q0) == len(q0):
        err = 1.96 * r.montecarlo_backward_stderr if r.montecarlo_backward_stderr is not None else None
        ax.errorbar(s[order], mc.q0[order], yerr=None if err is None else err[order], fmt="s", ms=4, capsize=3,
                    mfc="none", label="Monte Carlo (95 % interval)")
    start, end = pts[order[0]], pts[order[-1]]
    ax.set(title=f"{r.case_name}: q0(x) = E[g(X_L) | X_0 = x] along the points",
           xlabel=f"position along the line from {np.round(start, 2).tolist()} to {np.round(end, 2).tolist()}",
           ylabel="q0")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _memory_figure(r: Results):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    _memory(ax, r.mz)
    norms = r.mz.memory_norm
    first = norms[-1, 1] if norms.shape[0] > 1 else np.nan
    if np.isfinite(first) and first > 0:  # slopes kappa^(lag - 1) through the deepest layer's lag-1 norm
        lags = np.arange(1, norms.shape[0])
        for values, style, what in ((r.mz.kappa, "k--", "measured kappa"), (r.mz.kappa_bound, "k:", "a-priori bound")):
            v = np.asarray(values, dtype=float)
            v = v[np.isfinite(v)]
            if v.size and v.max() < 1.0:
                ax.semilogy(lags, first * v.max() ** (lags - 1), style, label=f"{what} {v.max():.2g}")
            elif v.size:
                ax.plot([], [], style, label=f"{what} {v.max():.2g} (>= 1: no decay promised)")
        ax.legend(fontsize="x-small", ncol=2)
    fig.suptitle(r.case_name)
    fig.tight_layout()
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


def _memory(ax, mz) -> None:
    norms = mz.memory_norm
    for n in range(norms.shape[0]):
        lags = np.arange(1, n + 1)
        row = norms[n, 1 : n + 1]
        ok = np.isfinite(row) & (row > 0)
        if ok.any():
            ax.semilogy(lags[ok], row[ok], "o-", ms=3, label=f"layer {n + 1}")
    ax.set(title=f"memory kernel norm ({mz.norm}); fitted rate {mz.decay_rate:.2g}", xlabel="lag",
           ylabel="norm")
    if norms.shape[0] > 1:
        ax.legend(fontsize="x-small", ncol=2)


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
    ax.legend(fontsize=8)


def _variance(ax, a: dict) -> None:
    depth = np.arange(1, len(a["q_measured"]) + 1)
    ax.plot(depth, a["q_measured"], "o-", label="this width (solver)")
    ax.plot(depth, a["q_mean_field"], "s--", label="mean field")
    ax.set(title="pre-activation variance q_l", xlabel="layer", ylabel="q")
    ax.legend(fontsize=8)

