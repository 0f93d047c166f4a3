"""Acceptance 1 of issue 24: qmc on a width-64 dense noisy tanh net against
plain Monte Carlo.

The net: ``[network.random]`` widths [64] * 6 (5 layers), tanh, sigma_w 1.1,
sigma_b 0.1, gaussian noise std 0.25 on every layer; input gaussian, mean 0,
std 0.5 (64 Sobol coordinates for the input, 64 per sampled noise: 320 in all).

1. Every last-layer mean of qmc (``--samples`` x ``--replicates`` points) lies
   within 5 joint standard errors, z = (m_qmc - m_mc) / sqrt(se_qmc^2 + se_mc^2),
   of an independent ``--mc-samples``-path plain Monte Carlo run (the
   montecarlo method, another seed).
2. qmc's stated standard errors are no larger (median over the neurons of each
   layer) than plain Monte Carlo's at the same number of points (the
   montecarlo method run with samples x replicates paths).

Prints the numbers and timings; exits 1 if either check fails.

Run:  python scripts/check_qmc_wide.py   (a few minutes on 2 busy cores)
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

import mzpdf

CASE = {
    "case": {"name": "qmc_wide", "seed": 24},
    "network": {"random": {"widths": [64] * 6, "activation": "tanh", "sigma_w": 1.1, "sigma_b": 0.1, "seed": 3,
                           "noise": {"kind": "gaussian", "std": 0.25}}},
    "input": {"kind": "gaussian", "mean": [0.0] * 64, "std": 0.5},
}
Z_MAX = 5.0  # joint standard errors allowed for every last-layer mean


def run(overrides: list[str]):
    case = mzpdf.load_case(CASE, overrides)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = mzpdf.run(case)
    return results, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2**14, help="Sobol points per replicate (a power of two)")
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--mc-samples", type=int, default=1_000_000, help="paths of the independent reference")
    args = parser.parse_args(argv)
    points = args.samples * args.replicates

    qmc, t_qmc = run(["solver.method=qmc", f"solver.samples={args.samples}", f"solver.replicates={args.replicates}",
                      "solver.seed=1"])
    print(f"qmc: {args.samples} x {args.replicates} = {points} points, {t_qmc:.1f} s "
          f"(per layer: {np.round(qmc.diagnostics['time_per_layer_s'], 2).tolist()} s)")
    ref, t_ref = run(["solver.method=montecarlo", f"solver.samples={args.mc_samples}", "solver.seed=2"])
    print(f"reference Monte Carlo: {args.mc_samples} paths, {t_ref:.1f} s")
    same, t_same = run(["solver.method=montecarlo", f"solver.samples={points}", "solver.seed=3"])
    print(f"plain Monte Carlo at equal points: {points} paths, {t_same:.1f} s")

    last = qmc.depth
    q, r = qmc.forward[last], ref.forward[last]
    z = (q.mean - r.mean) / np.sqrt(q.mean_stderr**2 + r.mean_stderr**2)
    ok_z = bool(np.all(np.abs(z) < Z_MAX))
    print(f"\n1. last layer ({q.mean.size} means): max |z| = {np.max(np.abs(z)):.2f}, RMS z = "
          f"{np.sqrt(np.mean(z**2)):.2f}, #|z| >= {Z_MAX:g}: {int(np.sum(np.abs(z) >= Z_MAX))} -> "
          f"{'pass' if ok_z else 'FAIL'}")
    print(f"   median stderr: qmc {np.median(q.mean_stderr):.2e}, reference ({args.mc_samples} paths) "
          f"{np.median(r.mean_stderr):.2e}")

    print(f"\n2. stderr of the means, qmc vs plain Monte Carlo at {points} points (median over neurons):")
    print(f"{'layer':>5}{'qmc':>11}{'plain MC':>11}{'MC / qmc':>10}")
    ok_se = True
    for n in range(1, last + 1):
        sq, sm = np.median(qmc.forward[n].mean_stderr), np.median(same.forward[n].mean_stderr)
        ok_se &= bool(sq <= sm)
        print(f"{n:>5}{sq:>11.2e}{sm:>11.2e}{sm / sq:>10.1f}")
    se_q, se_m = qmc.forward[last].mean_stderr, same.forward[last].mean_stderr
    print(f"   last layer, per neuron: MC / qmc between {np.min(se_m / se_q):.1f} and {np.max(se_m / se_q):.1f}"
          f" -> {'pass' if ok_se else 'FAIL'}")
    print(f"\ntimings: qmc {t_qmc:.1f} s, plain MC at equal points {t_same:.1f} s, reference {t_ref:.1f} s")
    return 0 if ok_z and ok_se else 1


if __name__ == "__main__":
    sys.exit(main())
