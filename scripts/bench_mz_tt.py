"""Mori-Zwanzig reduction of TT solutions: time and accuracy against width.

The tanh nets of scripts/bench_tt.py with local weights (``init = "local"``,
noise std 0.5, input N(0, 0.5^2 I)), solved in TT format at ``--tol``, then
reduced with a Chorin projection onto one or two kept neurons
(:mod:`mzpdf.solvers.tt.mz`). Per row: the forward and the reduction times (one run,
this machine), the largest L1 error over layers of the kept marginals from
the full-memory recursion against the TT solution's (the MZ identity, which
holds to round-off), the same error with memory truncated at
h = 0..3, and the last layer's memory norms against lag.

Usage: python scripts/bench_mz_tt.py [--widths 8,16] [--keeps 0/3,4] [--depth 8] [--tol 1e-3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench_tt import tanh_net
from mzpdf.mz import ProjectionSpec
from mzpdf.solvers.tt.mz import reduce_tt
from mzpdf.solvers.tt.options import TTOptions
from mzpdf.solvers.tt.engine import TTSolver


def run(width: int, keep: list, depth: int, tol: float) -> dict:
    net, law = tanh_net(width, depth, "local")
    opt = TTOptions(tol=tol, nodes=16)
    start = time.perf_counter()
    sol = TTSolver(opt).propagate(net, law)
    forward = time.perf_counter() - start
    start = time.perf_counter()
    mz = reduce_tt(sol, ProjectionSpec.from_table({"kind": "chorin", "keep": keep}, net.widths), opt)
    seconds = time.perf_counter() - start
    trunc = np.max(mz.truncation_error(), axis=1)
    return {"width": width, "keep": keep, "depth": depth, "forward_s": forward, "mz_s": seconds,
            "steps": len(mz.extras["cross_error"]), "full": float(np.max(mz.marginal_error())),
            "truncated": [float(trunc[h]) if h < trunc.size else float("nan") for h in range(4)],
            "last_norms": mz.memory_norm()[-1]}


def table(rows: list, tol: float) -> str:
    lines = [f"Tanh nets with local weights, TT tol {tol:g}, Chorin projection (one run on this machine; "
             "`python scripts/bench_mz_tt.py`):", "",
             "| width | kept | layers | forward (s) | reduction (s) | layer steps | full memory: L1 error | "
             "h = 0 | h = 1 | h = 2 | h = 3 | last layer's memory norm, lag 1..3 |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        norms = ", ".join(f"{v:.2g}" for v in r["last_norms"][1:4])
        lines.append(f"| {r['width']} | {r['keep']} | {r['depth']} | {r['forward_s']:.1f} | {r['mz_s']:.1f} | "
                     f"{r['steps']} | {r['full']:.1e} | " + " | ".join(f"{v:.1e}" for v in r["truncated"])
                     + f" | {norms} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="8,16")
    parser.add_argument("--keeps", default="0/3,4", help="kept-neuron lists separated by '/'")
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--tol", type=float, default=1e-3)
    args = parser.parse_args(argv)
    rows = []
    for width in (int(w) for w in args.widths.split(",")):
        for keep in args.keeps.split("/"):
            row = run(width, [int(k) for k in keep.split(",")], args.depth, args.tol)
            print(f"width {width} keep {row['keep']}: {row['mz_s']:.1f} s, full-memory error {row['full']:.2e}",
                  flush=True)
            rows.append(row)
    print(table(rows, args.tol))


if __name__ == "__main__":
    main()
