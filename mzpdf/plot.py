"""Figures of a result: marginals of the last layer (with the Monte Carlo
reference when stored) and, for a Mori-Zwanzig run, memory norm against lag
and reduced against full kept marginals.

Matplotlib is imported here only, with the non-interactive Agg backend, so
that ``mzpdf plot`` works on machines without a display.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .results import Results

__all__ = ["plot_results"]


def plot_results(results: Results, path) -> Path:
    """Draw ``results`` into an image file at ``path`` (format from its suffix).

    Panels: every neuron's marginal density at the last layer (Monte Carlo
    histogram beside it when present); for a Mori-Zwanzig run also the memory
    kernel norm against lag per layer (log scale) and the kept marginals of
    the reduced equation against the full solution at the last layer; with
    ``[analysis]``, the distances to the reference layer against depth and
    the measured pre-activation variance against mean field's.
    """
    import matplotlib

    matplotlib.use("Agg")
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
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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

