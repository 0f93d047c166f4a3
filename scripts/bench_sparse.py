"""Sparse grids against full tensor grids: nodes and time to reach an error.

Nets (3 layers, gaussian noise, input N(0, 0.5 I)):

- tanh, widths 2, 3 and 4 (``sigma_w`` 0.6, noise std 0.4: the nets of
  tests/test_sparse_solver.py): the largest L1 error over layers against a
  converged tensor grid (48 nodes per neuron at widths 2 and 3, within ~1e-11
  of finer grids; 24 at width 4, itself within ~1e-6), for full grids of
  rising size, regular sparse grids of rising level and dimension-adaptive
  ones of falling tolerance;
- linear-gaussian, widths 4, 6 and 8: the last layer's mean and covariance
  against the closed form (full grids only at width 4: 16^6 nodes is beyond
  this machine).

Every time is one run on this machine; nodes are those of the largest layer
(a full grid has the same number on every layer).

Usage: python scripts/bench_sparse.py [--quick]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import mzpdf
from mzpdf.solvers.sparse.engine import SparseSolver
from mzpdf.solvers.sparse.options import SparseGridOptions as SparseOptions

TANH_REFERENCE = {2: 48, 3: 48, 4: 24}
TANH_RUNS = {  # full-grid nodes per neuron, sparse levels, adaptive tolerances
    2: ((16, 24, 32), (6, 8, 10), (1e-4, 1e-5, 1e-6)),
    3: ((16, 24, 32), (7, 8, 9), (1e-4, 1e-5, 1e-6)),
    4: ((12, 16, 20), (), (1e-3, 7e-4, 3e-4, 3e-5)),
}


def tanh_net(width: int):
    net = mzpdf.random_network([width] * 4, activation="tanh", sigma_w=0.6, sigma_b=0.3, seed=2,
                               noise={"kind": "gaussian", "std": 0.4})
    return net, mzpdf.GaussianInput(np.zeros(width), 0.5 * np.eye(width))


def _timed(fn):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
    return out, time.perf_counter() - start


def tanh_rows(width: int, quick: bool = False) -> list[tuple]:
    """Rows ``(method, resolution, nodes, seconds, L1 error)`` for the tanh net of ``width``."""
    net, law = tanh_net(width)
    ref = mzpdf.GridSolver(nodes=TANH_REFERENCE[width]).propagate(net, law).densities
    quad = 48 if width == 2 else (32 if width == 3 else 16)
    full, levels, tols = TANH_RUNS[width]
    if quick:
        full, levels, tols = full[:2], levels[:1], tols[:1]
    rows = []
    for nodes in full:
        sol, t = _timed(lambda: mzpdf.GridSolver(nodes=nodes).propagate(net, law))
        err = max(d.grid.weights @ np.abs(r.grid.interpolate(r.values, d.grid.points) - d.values)
                  for d, r in zip(sol.densities[1:], ref[1:]))
        rows.append(("full tensor grid", f"{nodes} per neuron", nodes ** width, t, err))
    runs = [(f"level {lv}", SparseOptions(level=lv, quadrature="tensor", quad_points=quad)) for lv in levels]
    runs += [(f"adaptive, tol {tol:.0e}", SparseOptions(adaptive_tol=tol, max_points=60_000, quadrature="tensor",
                                                         quad_points=quad)) for tol in tols]
    for label, opt in runs:
        sol, t = _timed(lambda: SparseSolver(opt).propagate(net, law))
        err = max(r.grid.weights @ np.abs(law_n.pdf(r.grid.points) - r.values)
                  for law_n, r in zip(sol.laws[1:], ref[1:]))
        rows.append(("sparse (log-density, CC)", label, int(np.max(sol.diagnostics["points"][1:])), t, err))
    return rows


def linear_rows(width: int) -> list[tuple]:
    """Rows ``(method, resolution, nodes, seconds, max relative moment error)``
    for a linear-gaussian net of ``width`` against the closed form."""
    rng = np.random.default_rng(0)
    layers = [mzpdf.Layer(rng.standard_normal((width, width)) / np.sqrt(width), 0.2 * rng.standard_normal(width),
                          "identity", {"kind": "gaussian", "std": 0.5}) for _ in range(3)]
    net = mzpdf.Network(tuple(layers))
    law = mzpdf.GaussianInput(0.3 * np.ones(width), 0.5 * np.eye(width))
    m, C = law.mean(), law.cov()
    for layer in net:
        m = layer.weights @ m + layer.bias
        C = layer.weights @ C @ layer.weights.T + np.diag(layer.noise.scale ** 2)

    def err(mean, cov):
        return max(np.abs(mean - m).max() / np.abs(m).max(), np.abs(cov - C).max() / np.abs(C).max())

    rows = []
    for nodes in ((8, 12, 16) if width <= 4 else ()):
        sol, t = _timed(lambda: mzpdf.GridSolver(nodes=nodes).propagate(net, law))
        rows.append(("full tensor grid", f"{nodes} per neuron", nodes ** width, t, err(*sol.densities[-1].moments()[1:])))
    for level in (2, 3):
        sol, t = _timed(lambda: SparseSolver(SparseOptions(level=level, quad_level=2)).propagate(net, law))
        rows.append(("sparse (log-density, CC)", f"level {level}", int(sol.diagnostics["points"][-1]), t,
                     err(*sol.laws[-1].moments()[1:])))
    return rows


def table(rows: list[tuple], error: str) -> str:
    lines = [f"| method | resolution | nodes (largest layer) | time [s] | {error} |", "| --- | --- | ---: | ---: | ---: |"]
    lines += [f"| {m} | {r} | {n} | {t:.2f} | {e:.1e} |" for m, r, n, t, e in rows]
    return "\n".join(lines)


def node_ratios(rows: list[tuple]) -> list[str]:
    """For each full-grid row: the sparse row with the fewest nodes at an error
    no larger, and the ratio of node counts."""
    full = [r for r in rows if r[0] == "full tensor grid"]
    sparse = [r for r in rows if r[0] != "full tensor grid"]
    out = []
    for _, res, nodes, _, err in full:
        ok = [r for r in sparse if r[4] <= err]
        if not ok:
            out.append(f"full grid {res} ({nodes} nodes, {err:.1e}): no sparse row as accurate")
            continue
        best = min(ok, key=lambda r: r[2])
        out.append(f"full grid {res} ({nodes} nodes, {err:.1e}): sparse {best[1]} ({best[2]} nodes, {best[4]:.1e}), "
                   f"nodes full / sparse = {nodes / best[2]:.1f}, time sparse / full = "
                   f"{best[3] / max(r[3] for r in full if r[2] == nodes):.1f}")
    return out


def report(quick: bool = False, echo=print) -> str:
    parts = []
    for width in ((2, 3) if quick else (2, 3, 4)):
        rows = tanh_rows(width, quick)
        section = [f"### tanh, {width} neurons (largest L1 error over layers against the converged grid)", "",
                   table(rows, "L1 error"), ""] + [f"- {line}" for line in node_ratios(rows)] + [""]
        parts += section
        echo("\n".join(section))
    for width in ((4,) if quick else (4, 6, 8)):
        rows = linear_rows(width)
        section = [f"### linear-gaussian, {width} neurons (last layer's moments against the closed form)", "",
                   table(rows, "max rel error"), ""] + [f"- {line}" for line in node_ratios(rows)] + [""]
        parts += section
        echo("\n".join(section))
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows (a smoke run)")
    args = ap.parse_args()
    report(args.quick)


if __name__ == "__main__":
    main()
