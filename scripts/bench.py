"""Benchmark report: writes docs/benchmarks.md from one run on one machine.

Sections (every ratio is measured in this run, on this machine):

1. Transfer pair rates on the same nodes: the vectorized NumPy sum, a minimal
   numba pair loop (the kernel computed on the fly, the loop a textbook would
   write), mzpdf's numba kernels (the factor-table pair loop and the windowed
   sum), the BLAS dense path, and the CUDA kernel when a GPU is present.
2. Time to accuracy on the quickstart net: grid against conditional-density
   RQMC (method qmc) and histogram Monte Carlo at L1 1e-2 ... 1e-6, each the
   whole user call, nothing extrapolated (scripts/bench_accuracy.py).
3. TT solver time and largest rank against width (tanh and linear-gaussian, local and dense weights),
   and the Mori-Zwanzig reduction of TT solutions (scripts/bench_mz_tt.py).
4. The sparse-grid solver against full tensor grids: nodes,
   time and error on tanh nets of 2-4 neurons and linear-gaussian nets of
   4-8 neurons (scripts/bench_sparse.py).

    python scripts/bench.py [--quick] [-o docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from mzpdf._numba import jit_parallel, num_threads, prange
from mzpdf.solvers.grid import _reference as ref
from mzpdf.solvers.grid.cuda import cuda_status, pair_sum

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import bench_accuracy  # noqa: E402
import bench_grid  # noqa: E402
import bench_mz_tt  # noqa: E402
import bench_sparse  # noqa: E402
import bench_tt  # noqa: E402


@jit_parallel
def minimal_loop(targets, mapped, inv_s, coeffs, out):
    """The transfer sum as the plain loop: out_i = sum_j c_j prod_k N(y_ik - F_jk; s_k) / norm."""
    n_out, n_dim = targets.shape
    for i in prange(n_out):
        acc = 0.0
        for j in range(mapped.shape[0]):
            e = 0.0
            for k in range(n_dim):
                d = (targets[i, k] - mapped[j, k]) * inv_s[k]
                e += d * d
            acc += coeffs[j] * math.exp(-0.5 * e)
        out[i] = acc


def pair_rates(width: int, nodes: int, std: float) -> tuple[str, list]:
    layer, source, target, coeffs, dense, window = bench_grid.kernel_problem(width, nodes, std)
    pairs = float(source.size) * target.size
    norm = float(np.prod(1.0 / (math.sqrt(2 * math.pi) * layer.noise.scale)))
    inv_s = 1.0 / layer.noise.scale
    targets = np.ascontiguousarray(target.points)

    def minimal():
        out = np.empty(target.size)
        minimal_loop(targets, dense.mapped, inv_s, coeffs, out)
        return out * norm

    def table_loop():
        return bench_grid.factor_table_sum(layer, target, dense, coeffs)

    t_np, ref_out = bench_grid.best_of(lambda: ref.transfer_sum(layer.noise, target.points, dense.mapped, coeffs), repeat=1)
    rows = [("NumPy, vectorized", t_np, ref_out)]
    for name, fn in (("numba, minimal pair loop", minimal), ("mzpdf numba pair loop (factor tables)", table_loop),
                     ("mzpdf numba windowed", lambda: window.forward_sum(coeffs)),
                     ("mzpdf BLAS dense", lambda: dense.forward_sum(coeffs))):
        t, out = bench_grid.best_of(fn)
        rows.append((name, t, out))
    usable, how = cuda_status()
    if usable and how == "gpu":
        t, out = bench_grid.best_of(lambda: pair_sum(0, layer.noise.scale, target.points, dense.mapped, coeffs))
        rows.append(("mzpdf CUDA pair kernel", t, out))
    title = f"{width} -> {width} neurons, {nodes} nodes per neuron, noise std {std} ({pairs:.2e} pairs)"
    table = [(name, t, pairs / t, np.abs(out - ref_out).max() / np.abs(ref_out).max()) for name, t, out in rows]
    return title, table


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable, how = cuda_status()
    gpu = how if usable else "none"
    return (f"{cpu}; {os.cpu_count()} cores, {num_threads()} numba threads; Python {platform.python_version()}, "
            f"numpy {np.__version__}; GPU: {gpu}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small problems only (a smoke test)")
    p.add_argument("-o", "--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    started = time.perf_counter()
    lines = ["# Benchmarks", "",
             f"Written by `python scripts/bench.py` on {dt.date.today().isoformat()}. Machine: {machine()}.",
             "Every ratio below was measured in that one run, on that machine.", ""]

    lines += ["## Transfer pair rates", "",
              "One layer's transfer sum on the same nodes; pairs/s counts every (source, target) pair, also for",
              "the windowed sum, which visits only those within the noise window. The minimal numba loop",
              "computes the gaussian kernel on the fly, one exponential per pair.", ""]
    cases = [(2, 24, 0.3)] if args.quick else [(2, 64, 0.3), (3, 20, 0.3), (2, 64, 0.05)]
    ratios = []
    for width, nodes, std in cases:
        title, table = pair_rates(width, nodes, std)
        lines += [f"**{title}**", "", "| algorithm | time [s] | pairs/s | vs NumPy | max rel diff |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        t_np = table[0][1]
        for name, t, rate, diff in table:
            lines.append(f"| {name} | {t:.4f} | {rate:.3e} | {t_np / t:.1f}x | {diff:.1e} |")
        minimal = next(r for r in table if r[0].startswith("numba, minimal"))[2]
        ours = next(r for r in table if r[0].startswith("mzpdf numba pair loop"))[2]
        ratios.append(ours / minimal)
        lines += ["", f"mzpdf's numba pair loop runs at {100 * ours / minimal:.0f} % of the minimal loop's pair rate.",
                  ""]
    usable, how = cuda_status()
    if not (usable and how == "gpu"):
        lines += ["No GPU on this machine: the CUDA pair kernel (`backend = \"cuda\"`) was not timed here; its",
                  "logic is tested on numba's CUDA simulator (`tests/test_cuda.py`).", ""]

    if not args.quick:
        lines += ["## Time to accuracy (quickstart net)", ""] + bench_accuracy.INTRO + [""]
        lines += bench_accuracy.measure() + [""]

        lines += ["## Tensor-train solver against width", "",
                  "4 square layers, gaussian noise 0.5; tol 1e-3 (tanh) and 1e-6 (linear-gaussian). Local weights:",
                  "`init = \"local\"` (neighbouring neurons coupled by Givens rotations); dense: Haar orthogonal.",
                  "A family stops after its first width slower than 60 s per layer; dense weights run up to width",
                  "16. Errors: the cross's a-posteriori estimate, and for linear-gaussian nets the largest",
                  "relative error of the layer",
                  "means and covariances against the closed form (`scripts/bench_tt.py`, which also compares the",
                  "cross approximation with teneva's).", "",
                  "| family | width | seconds per layer | largest rank | cross error | mean error | cov error |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        tol = {f: 1e-3 if f.startswith("tanh") else 1e-6 for f in bench_tt.FAMILIES}
        rows = bench_tt.table(bench_tt.FAMILIES, (4, 8, 16, 32, 64), 4, tol, 60.0, echo=lambda line: print(line, flush=True))
        for r in rows:
            if "skipped" in r and r["skipped"][0] == "dense":
                lines.append(f"| {r['family']} | {r['width']} | not run (dense weights: widths up to "
                             f"{r['skipped'][1]}) | | | | |")
            elif "skipped" in r and r["skipped"][0] == r["width"]:
                lines.append(f"| {r['family']} | {r['width']} | stopped after {r['skipped'][1] * 4:.0f} s "
                             "(over budget) | | | | |")
            elif "skipped" in r:
                lines.append(f"| {r['family']} | {r['width']} | skipped (width {r['skipped'][0]}: "
                             f"{r['skipped'][1]:.0f} s per layer) | | | | |")
            else:
                lines.append(f"| {r['family']} | {r['width']} | {r['seconds']:.2f} | {r['rank']} | {r['cross_error']:.1e} "
                             f"| {r['mean_error']:.1e} | {r['cov_error']:.1e} |".replace("nan", "-"))
        lines += ["", "Time per layer against width, fitted to c N^a over widths >= 8: " + "; ".join(
            f"{f} a = {bench_tt.growth(rows, f):.2f}" for f in bench_tt.FAMILIES) + ".", ""]
        lines += ["## Mori-Zwanzig reduction on tensor trains", ""]
        mz_rows = [bench_mz_tt.run(8, keep, 8, 1e-3) for keep in ([0], [3, 4])]
        lines += [bench_mz_tt.table(mz_rows, 1e-3), ""]
        lines += ["## Sparse grids against full tensor grids", "",
                  "The sparse solver (`mzpdf.solvers.sparse.engine`, `python scripts/bench_sparse.py`): each",
                  "layer's log-density in whitened coordinates on a Clenshaw-Curtis Smolyak grid, exact for gaussian",
                  "layers; tensor Gauss-Hermite transfer rules on the tanh nets.", "",
                  bench_sparse.report(echo=lambda text: print(text, flush=True))]
        lines.append("")
    lines.append(f"Total benchmark time: {time.perf_counter() - started:.0f} s.")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}; numba pair loop / minimal loop: " + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
