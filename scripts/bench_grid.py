"""Benchmark of the grid transfer sum and of time-to-accuracy against Monte Carlo.

Part 1: one layer's transfer sum on the same nodes, computed four ways:
  numpy-direct   the readable vectorized NumPy Nystrom sum (kernel by broadcasting, then a matvec)
  numba-loop     the plain numba pair loop over precomputed factor tables
  blas-dense     the solver's dense path (factor tables + Khatri-Rao BLAS products)
  numba-window   the solver's windowed numba sum (only pairs within the noise window)
with pairs per second, the speed-up over numpy-direct, and agreement (max relative difference).

Part 2: the quickstart network; L1 error of the layer marginals (max over neurons and
layers) against a 128-node reference, for mzpdf at increasing nodes and for Monte
Carlo histograms at increasing samples; time for each to reach L1 = 1e-3.

Run:  python scripts/bench_grid.py            (about two minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

import mzpdf
from mzpdf.discretization import TensorGrid
from mzpdf.io.case import load_case
from mzpdf.solvers.montecarlo.engine import simulate
from mzpdf.solvers.grid import _kernels
from mzpdf.solvers.grid import _reference as ref
from mzpdf.solvers.grid.engine import GridSolver
from mzpdf.solvers.grid.transfer import assemble_transition

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, repeat=3):
    fn()  # warm-up (JIT compilation, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def kernel_problem(width: int, nodes: int, std: float):
    """One tanh layer between two tensor grids: (layer, source, target, coeffs,
    dense transition, windowed transition)."""
    rng = np.random.default_rng(0)
    layer = mzpdf.Layer(rng.standard_normal((width, width)), 0.1 * rng.standard_normal(width), "tanh",
                        mzpdf.GaussianNoise(np.array([std])))
    source = TensorGrid.from_box([[-2.5, 2.5]] * width, nodes, "trapezoid")
    target = TensorGrid.from_box([[-1.0 - 8 * std, 1.0 + 8 * std]] * width, nodes, "trapezoid")
    coeffs = source.weights * np.exp(-0.5 * (source.points**2).sum(axis=1))
    dense = assemble_transition(layer, source.points, source.weights, target, "dense")
    window = assemble_transition(layer, source.points, source.weights, target, "windowed")
    return layer, source, target, coeffs, dense, window


def factor_table_sum(layer, target, dense, coeffs) -> np.ndarray:
    """mzpdf's numba pair loop on a :func:`kernel_problem`: per-neuron factor
    tables, then the transfer sum over every (source, target) pair."""
    tables = np.empty((target.ndim, target.shape[0], dense.mapped.shape[0]))
    _kernels.fill_factor_tables(0, layer.noise.scale, np.stack(target.axes), dense.mapped, tables)
    out = np.empty(target.size)
    _kernels.transfer_dense_loop(tables, coeffs, out)
    return out


def bench_kernels(width: int, nodes: int, std: float):
    layer, source, target, coeffs, dense, window = kernel_problem(width, nodes, std)
    pairs = float(source.size) * target.size

    def numba_loop():
        return factor_table_sum(layer, target, dense, coeffs)

    rows = []
    t_np, ref_out = best_of(lambda: ref.transfer_sum(layer.noise, target.points, dense.mapped, coeffs), repeat=1)
    for name, fn in [("numpy-direct", None), ("numba-loop", numba_loop),
                     ("blas-dense", lambda: dense.forward_sum(coeffs)),
                     ("numba-window", lambda: window.forward_sum(coeffs))]:
        t, out = (t_np, ref_out) if fn is None else best_of(fn)
        diff = np.abs(out - ref_out).max() / np.abs(ref_out).max()
        rows.append((name, t, pairs / t, t_np / t, diff))
    lo, hi = window.windows
    frac = np.prod(hi - lo, axis=1).sum() / pairs
    print(f"\nTransfer sum, {width} -> {width} neurons, {nodes} nodes per neuron, noise std {std} "
          f"({pairs:.2e} pairs; windows hold {100 * frac:.1f}% of them; auto picks {assemble_transition(layer, source.points, source.weights, target).algorithm})")
    print(f"{'algorithm':<14}{'time [s]':>10}{'pairs/s':>12}{'vs numpy':>10}{'max rel diff':>14}")
    for name, t, rate, speed, diff in rows:
        print(f"{name:<14}{t:>10.4f}{rate:>12.3e}{speed:>10.1f}{diff:>14.1e}")
    return rows


def marginal_l1(x, pdf, ref_x, ref_pdf):
    """L1 distance per neuron between a density on abscissae x and the reference,
    on the reference's abscissae (trapezoid rule)."""
    errs = []
    for k in range(ref_x.shape[0]):
        f = np.interp(ref_x[k], x[k], pdf[k], left=0.0, right=0.0)
        errs.append(np.trapezoid(np.abs(f - ref_pdf[k]), ref_x[k]))
    return max(errs)


def bench_time_to_accuracy(target_l1: float):
    case = load_case(ROOT / "cases" / "quickstart.toml")
    net, law = case.network, case.input
    reference = GridSolver(nodes=128).propagate(net, law)
    ref_x = [np.stack([np.linspace(lo, hi, 2001) for lo, hi in d.grid.box]) for d in reference.densities]
    ref_pdf = [np.stack([d.marginal(k, ref_x[n][k]) for k in range(d.grid.ndim)])
               for n, d in enumerate(reference.densities)]

    def grid_error(nodes):
        t0 = time.perf_counter()
        sol = GridSolver(nodes=nodes).propagate(net, law)
        xs = [np.stack([np.linspace(lo, hi, 2001) for lo, hi in d.grid.box]) for d in sol.densities]
        pdfs = [np.stack([d.marginal(k, xs[n][k]) for k in range(d.grid.ndim)]) for n, d in enumerate(sol.densities)]
        t = time.perf_counter() - t0
        return t, max(marginal_l1(xs[n], pdfs[n], ref_x[n], ref_pdf[n]) for n in range(1, len(xs)))

    GridSolver(nodes=16).propagate(net, law)  # JIT warm-up
    print(f"\nQuickstart network ({net.widths}), L1 marginal error against a 128-node grid solution")
    print(f"{'mzpdf nodes':>12}{'time [s]':>10}{'L1 error':>12}")
    t_grid = None
    for nodes in (16, 20, 24, 28, 32, 40, 48):
        t, err = min((grid_error(nodes) for _ in range(3)), key=lambda r: r[0])
        print(f"{nodes:>12}{t:>10.4f}{err:>12.2e}")
        if t_grid is None and err <= target_l1:
            t_grid = (nodes, t)

    print(f"\n{'MC samples':>12}{'time [s]':>10}{'L1 error':>12}   (histogram, 2 n^(1/3) bins per neuron)")
    mc_rows = []
    for samples in (10**4, 10**5, 10**6, 10**7):
        bins = int(2 * samples ** (1 / 3))
        abscissae = [np.stack([np.linspace(lo, hi, bins) for lo, hi in d.grid.box]) for d in reference.densities]
        t0 = time.perf_counter()
        run = simulate(net, law, samples=samples, seed=1, abscissae=abscissae)
        t = time.perf_counter() - t0
        err = max(marginal_l1(run.layers[n].marginal_x, run.layers[n].marginal_pdf, ref_x[n], ref_pdf[n])
                  for n in range(1, len(abscissae)))
        mc_rows.append((samples, t, err))
        print(f"{samples:>12.0e}{t:>10.3f}{err:>12.2e}")
    n_arr, t_arr, e_arr = map(np.array, zip(*mc_rows))
    slope, intercept = np.polyfit(np.log(n_arr), np.log(e_arr), 1)
    n_needed = float(np.exp((np.log(target_l1) - intercept) / slope))
    t_needed = t_arr[-1] * n_needed / n_arr[-1]
    measured = [r for r in mc_rows if r[2] <= target_l1]
    print(f"\nMonte Carlo error ~ n^{slope:.2f}; L1 = {target_l1:g} needs "
          + (f"{measured[0][0]:.1e} samples, {measured[0][1]:.1f} s (measured)" if measured else
             f"about {n_needed:.1e} samples and {t_needed:.0f} s (extrapolated from the fit; time linear in samples)"))
    t_mc = measured[0][1] if measured else t_needed
    if t_grid:
        print(f"mzpdf reaches L1 = {target_l1:g} with {t_grid[0]} nodes in {t_grid[1]:.3f} s: "
              f"{t_mc / t_grid[1]:.0f}x faster than Monte Carlo")
    return {"grid": t_grid, "mc_rows": mc_rows, "slope": slope, "mc_samples": n_needed if not measured
            else measured[0][0], "mc_time": t_mc, "mc_measured": bool(measured)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller problems (a smoke test)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {mzpdf._numba.num_threads()} numba threads, "
          f"numpy {np.__version__}")
    if args.quick:
        bench_kernels(2, 24, 0.3)
        return
    bench_kernels(2, 64, 0.3)
    bench_kernels(2, 64, 0.05)
    bench_kernels(3, 20, 0.3)
    bench_time_to_accuracy(1e-3)


if __name__ == "__main__":
    main()
