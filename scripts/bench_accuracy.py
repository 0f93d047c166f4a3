"""Time to accuracy on the quickstart net (cases/quickstart.toml): grid
against conditional-density RQMC (``method = "qmc"``) and plain histogram
Monte Carlo (``method = "montecarlo"``).

Every setting is timed as the whole call a user makes, in this one process
after a JIT warm-up: ``mzpdf.load_case`` (the case's [montecarlo] and
[observable] removed) + ``mzpdf.run`` + ``law(n).marginal(k, x)`` for every
layer n = 1..5 and neuron k, on the abscissae ``x`` of a 128-node grid
solve (its stored marginals are the reference). The error of a setting is
the largest L1 distance (trapezoid on those abscissae) over layers and
neurons. A setting's time is the best of ``--repeats`` calls (sampling
methods: one call; their error is that call's).

For each target L1 the tables give the fastest setting of each method that
reached it, or "not reached within N s" (N the longest call tried) — the
ladders are not extrapolated. Ratios are the faster of qmc (scrambled Sobol)
and conditional MC (the same estimators on pseudo-random points) / grid time.

    python scripts/bench_accuracy.py            # ~3-4 minutes on 2 cores
    python scripts/bench_accuracy.py --quick    # a smoke run
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np

import mzpdf

CASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cases", "quickstart.toml")
UNSET = ["montecarlo", "observable"]
TARGETS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
REFERENCE_NODES = 128
INTRO = [
    "cases/quickstart.toml (2 neurons, 5 tanh layers, gaussian noise 0.15), its [montecarlo] and [observable]",
    "removed. Each time is the whole call a user makes, in one process after JIT warm-up: `mzpdf.load_case` +",
    "`mzpdf.run` + `law(n).marginal(k, x)` for every layer 1..5 and neuron (grid: best of 3 calls; sampling",
    "methods: one call). Error: the largest L1 distance (trapezoid) over layers and neurons to a 128-node grid",
    "solve, on its stored abscissae. qmc is randomized QMC with conditional densities (the last noise",
    "integrated exactly; 8 scramblings, `joint_points = 2` so that no 81 x 81 joint is estimated); montecarlo",
    "is the plain histogram estimator; conditional MC is the qmc method with pseudo-random points",
    "(`sequence = \"random\"`: the same conditional densities). Each ladder stops after its first call over 40 s;",
    "\"not reached\" means no setting tried reached the target (nothing is extrapolated). Ratio: the faster of",
    "qmc and conditional MC (the strongest baseline) / grid time.",
]
GRID_NODES = [24, 28, 32, 36, 40, 44, 48, 56, 64]
QMC_LOG2 = list(range(10, 21))  # samples per replicate, x 8 replicates
MC_SAMPLES = [10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]


def reference():
    case = mzpdf.load_case(CASE, [f"solver.nodes={REFERENCE_NODES}"], unset=UNSET)
    res = mzpdf.run(case)
    L = len(res.forward) - 1
    return [(res.forward[n].marginal_x, res.forward[n].marginal_pdf) for n in range(1, L + 1)]


def call(overrides, unset, ref):
    """The whole user call; returns (seconds, marginals per layer)."""
    start = time.perf_counter()
    res = mzpdf.run(mzpdf.load_case(CASE, overrides, unset=UNSET + unset))
    out = []
    for n, (xs, _) in enumerate(ref, start=1):
        law = res.law(n)
        out.append([law.marginal(k, xs[k]) for k in range(xs.shape[0])])
    return time.perf_counter() - start, out


def l1_error(marginals, ref):
    """The largest L1 error and where it is: (error, "layer n neuron k")."""
    worst, where = -1.0, ""
    for n, (got, (xs, pdf)) in enumerate(zip(marginals, ref), start=1):
        for k in range(xs.shape[0]):
            err = float(np.trapezoid(np.abs(got[k] - pdf[k]), xs[k]))
            if err > worst:
                worst, where = err, f"layer {n} neuron {k}"
    return worst, where


def ladder(name, settings, ref, repeats, budget):
    """Run settings in order of cost; stop once one call exceeds ``budget`` s."""
    rows = []
    for label, overrides, unset in settings:
        best, err, where = np.inf, None, ""
        for _ in range(repeats):
            seconds, marginals = call(overrides, unset, ref)
            best = min(best, seconds)
            err, where = l1_error(marginals, ref)
        rows.append((label, best, err, where))
        print(f"  {name:10s} {label:>22s}  {best:8.3f} s  L1 {err:.2e} ({where})", flush=True)
        if best > budget:
            break
    return rows


def fastest(rows, target):
    hits = [(t, label) for label, t, err, _ in rows if err <= target]
    return min(hits) if hits else None


def cell(hit, rows):
    if hit is None:
        return f"not reached within {max(row[1] for row in rows):.1f} s"
    return f"{hit[0]:.3g} s ({hit[1]})"


def measure(quick: bool = False, budget: float = 40.0) -> list[str]:
    """Run the ladders (progress on stdout) and return the Markdown lines of
    the tables (used by ``scripts/bench.py`` for docs/benchmarks.md)."""
    grid_nodes, qmc_log2, mc_samples, repeats = GRID_NODES, QMC_LOG2, MC_SAMPLES, 3
    if quick:
        grid_nodes, qmc_log2, mc_samples, repeats = [24, 40], [10, 12], [10_000], 1

    t0 = time.perf_counter()
    ref = reference()
    # JIT warm-up of every method's kernels (and first-use imports)
    call(["solver.nodes=24"], [], ref)
    call(["solver.method=qmc", "solver.samples=1024", "solver.joint_points=2"], ["solver.nodes"], ref)
    call(["solver.method=montecarlo", "solver.samples=10000"], ["solver.nodes"], ref)
    print(f"reference ({REFERENCE_NODES} nodes) and warm-up: {time.perf_counter() - t0:.1f} s", flush=True)

    grid = ladder("grid", [(f"{n} nodes", [f"solver.nodes={n}"], []) for n in grid_nodes], ref, repeats, budget)
    qmc = ladder("qmc", [(f"2^{p} x 8 points", ["solver.method=qmc", f"solver.samples={2**p}",
                                                 "solver.joint_points=2"], ["solver.nodes"]) for p in qmc_log2],
                 ref, 1, budget)
    cmc = ladder("conditional MC", [(f"2^{p} x 8 points", ["solver.method=qmc", f"solver.samples={2**p}",
                                                           "solver.joint_points=2", "solver.sequence='random'"],
                                      ["solver.nodes"]) for p in qmc_log2], ref, 1, budget)
    mc = ladder("montecarlo", [(f"{s:.0e} samples", ["solver.method=montecarlo", f"solver.samples={s}"],
                                ["solver.nodes"]) for s in mc_samples], ref, 1, budget)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"Measured {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, "
             f"load average {load:.1f} at the end; total {time.perf_counter() - t0:.0f} s "
             "(`python scripts/bench_accuracy.py`).", "",
             "| target L1 | grid | qmc (RQMC, conditional densities) | conditional MC (pseudo-random) | "
             "montecarlo (histogram) | best baseline / grid |",
             "|---|---|---|---|---|---|"]
    for target in TARGETS:
        g, q, c, m = fastest(grid, target), fastest(qmc, target), fastest(cmc, target), fastest(mc, target)
        best = min((h for h in (q, c) if h), key=lambda h: h[0], default=None)
        ratio = f"{best[0] / g[0]:.0f}x" if g and best else ("grid only" if g else "-")
        lines.append(f"| {target:.0e} | {cell(g, grid)} | {cell(q, qmc)} | {cell(c, cmc)} | {cell(m, mc)} | {ratio} |")
    lines += ["", "| method | setting | time (s) | L1 (max over layers 1-5, neurons) | largest at |",
              "|---|---|---|---|---|"]
    for name, rows in (("grid", grid), ("qmc", qmc), ("conditional MC", cmc), ("montecarlo", mc)):
        for label, seconds, err, where in rows:
            lines.append(f"| {name} | {label} | {seconds:.3g} | {err:.2e} | {where} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short ladders (a smoke run, not the tables)")
    parser.add_argument("--budget", type=float, default=40.0, help="stop a ladder after a call longer than this (s)")
    args = parser.parse_args()
    lines = measure(args.quick, args.budget)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
