"""Issue 26's acceptance nets for the sparse solver, each run as a user runs it.

1. ``dense8``: a dense 8-neuron tanh net of 4 layers (sigma_w 1, noise 0.4,
   input N(0, 0.5^2 I)), default sparse options: the last layer's means in
   standard errors of a 1e6-path Monte Carlo, its standard deviations'
   relative errors (%), and the wall time of ``mzpdf.run``.
2. ``laplace3``: Laplace noise (scale 0.2; ``--scale``) on a 3-neuron tanh
   net of 3 layers (sigma_w 1): the largest L1 distance of every layer's
   marginals from a 64-node tensor grid's, and of both from a converged
   reference: conditional-density randomized QMC with 2^20 points
   (``method = "qmc"``: each marginal is the mean of the last noise's
   exact density over the points of the layer before, stored on 201
   abscissae and linearly interpolated between them; on these smooth
   marginals it agrees with the sparse lattice to 7e-5 and, on seed 0,
   with a 96-node grid to 1.5e-4).
3. ``tanh4``: a 4-neuron tanh net of 3 layers (sigma_w 1, noise 0.3): the
   largest L1 distance of the marginals from a 24-node tensor grid, for the
   sparse default and a 20-node tensor grid, and the times of both.

Marginal L1 distances: trapezoid sums of |p - q| on 2001 abscissae over the
reference's mean +- 8 standard deviations (per layer and neuron).

Usage: python scripts/sparse_acceptance.py [dense8|laplace3|tanh4 ...] [--seeds 0,1] [--sigma-b 0.0] [--scale 0.2]
       [--set level=4 ...]   (sparse solver options; the default options otherwise)
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import mzpdf


def case(width: int, depth: int, seed: int, noise: dict, method: str, sigma_b: float = 0.0, solver=None):
    table = {
        "case": {"name": f"sparse_acceptance_{width}_{seed}"},
        "network": {"random": {"widths": [width] * (depth + 1), "activation": "tanh", "sigma_w": 1.0,
                               "sigma_b": sigma_b, "seed": seed, "noise": noise}},
        "input": {"kind": "gaussian", "mean": [0.0] * width, "std": 0.5},
        "solver": {"method": method, **(solver or {})},
    }
    return mzpdf.load_case(table)


def timed_run(c):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = mzpdf.run(c)
    return results, time.perf_counter() - start


def monte_carlo(c, paths: int = 10**6, seed: int = 12345):
    rng = np.random.default_rng(seed)
    x = c.input.sample(rng, paths)
    for layer in c.network:
        x = layer.forward(x) + layer.noise.sample(rng, paths)
    return x


def marginal_l1(results, reference) -> float:
    """Largest L1 distance, over layers >= 1 and neurons, of the marginals of ``results`` from ``reference``'s."""
    worst = 0.0
    for n in range(1, reference.depth + 1):
        ref = reference.law(n)
        law = results.law(n)
        sd = np.sqrt(np.diag(ref.cov))
        for i in range(sd.size):
            x = np.linspace(ref.mean[i] - 8 * sd[i], ref.mean[i] + 8 * sd[i], 2001)
            worst = max(worst, float(np.trapezoid(np.abs(law.marginal(i, x) - ref.marginal(i, x)), x)))
    return worst


SPARSE_OPTIONS: dict = {}
LAPLACE_SCALE = 0.2


def dense8(seed: int, sigma_b: float) -> None:
    c = case(8, 4, seed, {"kind": "gaussian", "std": 0.4}, "sparse", sigma_b, SPARSE_OPTIONS)
    results, seconds = timed_run(c)
    x = monte_carlo(c)
    law = results.law(c.network.depth)
    mean, sd = x.mean(axis=0), x.std(axis=0)
    z = (law.mean - mean) / (sd / np.sqrt(x.shape[0]))
    rel = 100 * (np.sqrt(np.diag(law.cov)) / sd - 1)
    accepted = "yes" if results.accepted else "no"
    print(f"dense8 seed {seed} sigma_b {sigma_b} {SPARSE_OPTIONS or ''}: {seconds:.1f} s, largest |z| {np.max(np.abs(z)):.2f}, "
          f"largest |sd error| {np.max(np.abs(rel)):.3f} %, accepted {accepted}", flush=True)
    print("  z", np.round(z, 2).tolist(), "\n  sd %", np.round(rel, 3).tolist(), flush=True)


def laplace3(seed: int, sigma_b: float) -> None:
    noise = {"kind": "laplace", "scale": LAPLACE_SCALE}
    grid, t_grid = timed_run(case(3, 3, seed, noise, "grid", sigma_b, {"nodes": 64}))
    results, seconds = timed_run(case(3, 3, seed, noise, "sparse", sigma_b, SPARSE_OPTIONS))
    qmc, _ = timed_run(case(3, 3, seed, noise, "qmc", sigma_b, {"samples": 2**20}))
    print(f"laplace3 scale {LAPLACE_SCALE} seed {seed} sigma_b {sigma_b}: sparse {seconds:.1f} s (accepted "
          f"{'yes' if results.accepted else 'no'}, largest error estimate "
          f"{max(results.diagnostics['error_estimate']):.1e}), L1 from the 64-node grid ({t_grid:.1f} s) "
          f"{marginal_l1(results, grid):.2e}; from 2^20-point QMC: sparse {marginal_l1(results, qmc):.2e}, "
          f"64-node grid {marginal_l1(grid, qmc):.2e}", flush=True)


def tanh4(seed: int, sigma_b: float) -> None:
    noise = {"kind": "gaussian", "std": 0.3}
    reference, t24 = timed_run(case(4, 3, seed, noise, "grid", sigma_b, {"nodes": 24}))
    grid20, t20 = timed_run(case(4, 3, seed, noise, "grid", sigma_b, {"nodes": 20}))
    results, seconds = timed_run(case(4, 3, seed, noise, "sparse", sigma_b, SPARSE_OPTIONS))
    print(f"tanh4 seed {seed} sigma_b {sigma_b}: L1 from the 24-node grid ({t24:.1f} s): sparse "
          f"{marginal_l1(results, reference):.2e} in {seconds:.1f} s, 20-node grid {marginal_l1(grid20, reference):.2e} "
          f"in {t20:.1f} s (time ratio {seconds / t20:.2f})", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("nets", nargs="*", default=["dense8", "laplace3", "tanh4"])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--sigma-b", type=float, default=0.0)
    parser.add_argument("--scale", type=float, default=0.2, help="the Laplace noise's scale (laplace3)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a sparse solver option (a number or a word)")
    args = parser.parse_args(argv)
    global LAPLACE_SCALE
    LAPLACE_SCALE = args.scale
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            SPARSE_OPTIONS[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            SPARSE_OPTIONS[key] = value
    runs = {"dense8": dense8, "laplace3": laplace3, "tanh4": tanh4}
    for name in args.nets:
        for seed in (int(s) for s in args.seeds.split(",")):
            runs[name](seed, args.sigma_b)


if __name__ == "__main__":
    main()
