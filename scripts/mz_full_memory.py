"""Issue 27, acceptance point 3: full memory is exact on tensor trains and sparse grids.

The contractive net of the issue (3 tanh neurons, 6 layers, weights
0.6/sqrt(N) N(0, 1), gaussian noise 0.5 on every layer, input N(0, 0.5^2 I)),
Chorin projection onto neuron 0 with full memory, run as a user runs it
(``mzpdf run case.toml``) with ``method = "tt"`` and ``method = "sparse"`` and
default solver options, one random seed of the weights after another. Per
run: the largest ``/mz/error`` (the L1 distance, per layer, between the kept
marginals of the full-memory reduced recursion and the solution's own; the
MZ identity, so round-off is all it may be), the wall time of the whole run (solve,
reduction, summaries, file), and whether the solve passed its own accuracy
checks (the identity holds either way).

Usage: python scripts/mz_full_memory.py [--methods tt,sparse] [--seeds 0,1,2] [--set solver.tol=1e-4 ...]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from mzpdf.cli import main as mzpdf_main

CASE = """
[case]
name = "mz_full_memory_{method}_{seed}"
seed = 0

[network.random]
widths = [3, 3, 3, 3, 3, 3, 3]
activation = "tanh"
sigma_w = 0.6
sigma_b = 0.0
seed = {seed}
noise = {{ kind = "gaussian", std = 0.5 }}

[input]
kind = "gaussian"
mean = [0.0, 0.0, 0.0]
std = 0.5

[solver]
method = "{method}"

[projection]
kind = "chorin"
keep = [0]
memory = "full"
"""


def run(method: str, seed: int, overrides: list, folder: Path) -> dict:
    case = folder / f"{method}_{seed}.toml"
    case.write_text(CASE.format(method=method, seed=seed))
    out = folder / f"{method}_{seed}.h5"
    args = ["run", str(case), "-o", str(out), "--quiet", "--accept-inaccurate", "--overwrite"]
    for item in overrides:
        args += ["--set", item]
    start = time.perf_counter()
    code = mzpdf_main(args)
    seconds = time.perf_counter() - start
    with h5py.File(out, "r") as f:
        error = float(np.max(f["mz/error"][()]))
        accepted = int(f["diagnostics"].attrs.get("accepted", 1))
    return {"method": method, "seed": seed, "code": code, "error": error, "seconds": seconds, "accepted": accepted}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="tt,sparse")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", action="append", default=[], help="section.key=value, as mzpdf run --set")
    args = parser.parse_args(argv)
    print("| method | seed | largest /mz/error (full memory) | wall time (s) | solve accepted |")
    print("| --- | ---: | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                r = run(method, seed, args.set, Path(tmp))
                print(f"| {r['method']} | {r['seed']} | {r['error']:.1e} | {r['seconds']:.1f} | "
                      f"{'yes' if r['accepted'] else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
