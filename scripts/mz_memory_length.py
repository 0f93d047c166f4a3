"""Memory length a noisy network needs, against weight scale and noise (issue 27).

For random 3-neuron tanh nets of 6 layers (W ~ sigma_w/sqrt(3) N(0, 1), no
bias, input N(0, 0.5^2)), Chorin reduction onto neuron 0 on a grid of
``--nodes`` per neuron: the shortest memory h whose measured L1 error of the
kept marginals is <= tol on every layer, the h that ``memory = "auto"``
chooses from the a-posteriori estimate, the largest kappa (L2(mu) norm), and
the mean-field chi_1 of the same (sigma_w, noise) from :mod:`mzpdf.theory`.
Writes docs/mz_memory_length.png and prints a Markdown table (pasted into
docs/theory.md, section 5).

    python scripts/mz_memory_length.py                # ~2 minutes on 2 cores
    python scripts/mz_memory_length.py --seeds 0 1 2 --nodes 12
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from mzpdf import GridSolver, load_case
from mzpdf.solvers.grid.mz import reduce_network
from mzpdf.theory import MeanField

SIGMA_W = (0.5, 1.0, 1.5, 2.0)
NOISE = (0.2, 0.35, 0.5)
DEPTH = 6


def case_table(sigma_w: float, noise: float, seed: int, nodes: int, tol: float) -> dict:
    return {
        "case": {"name": "mz_memory_length", "seed": 1},
        "network": {"random": {"widths": [3] * (DEPTH + 1), "activation": "tanh", "sigma_w": sigma_w,
                               "sigma_b": 0.0, "seed": seed, "noise": {"kind": "gaussian", "std": noise}}},
        "input": {"kind": "gaussian", "mean": [0.0, 0.0, 0.0], "std": 0.5},
        "solver": {"method": "grid", "nodes": nodes},
        "projection": {"kind": "chorin", "keep": [0], "memory": "auto", "tol": tol},
    }


def measure(sigma_w: float, noise: float, seed: int, nodes: int, tol: float) -> tuple[int, int, float]:
    """(shortest h with measured error <= tol, auto h, largest kappa)."""
    case = load_case(case_table(sigma_w, noise, seed, nodes, tol))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # coarse grids at small noise warn about quadrature mass
        forward = GridSolver(case.solver).propagate(case.network, case.input)
    mz = reduce_network(forward, case.projection)
    return mz.min_memory(tol), mz.memory_length, float(np.max(mz.kappa))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--plot", default="docs/mz_memory_length.png")
    args = parser.parse_args()
    shortest = np.zeros((len(NOISE), len(SIGMA_W), len(args.seeds)))
    auto, kappa, chi = np.zeros_like(shortest), np.zeros_like(shortest), np.zeros((len(NOISE), len(SIGMA_W)))
    for a, noise in enumerate(NOISE):
        for b, sigma_w in enumerate(SIGMA_W):
            chi[a, b] = MeanField("tanh", sigma_w, 0.0, noise).chi_1()
            for c, seed in enumerate(args.seeds):
                shortest[a, b, c], auto[a, b, c], kappa[a, b, c] = measure(sigma_w, noise, seed, args.nodes, args.tol)
    print(f"| noise | sigma_w | chi_1 (mean field) | max kappa | shortest h, error <= {args.tol:g} | auto h |")
    print("| --- | --- | --- | --- | --- | --- |")
    for a, noise in enumerate(NOISE):
        for b, sigma_w in enumerate(SIGMA_W):
            print(f"| {noise:g} | {sigma_w:g} | {chi[a, b]:.3f} | {np.mean(kappa[a, b]):.2f} | "
                  f"{' '.join(str(int(h)) for h in shortest[a, b])} | {' '.join(str(int(h)) for h in auto[a, b])} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for a, noise in enumerate(NOISE):
        line = left.plot(SIGMA_W, shortest[a].mean(axis=1), "o-", label=f"noise {noise:g}: measured")[0]
        left.plot(SIGMA_W, auto[a].mean(axis=1), "x--", color=line.get_color(), label=f"noise {noise:g}: auto")
        right.plot(SIGMA_W, chi[a], "o-", color=line.get_color(), label=f"chi_1, noise {noise:g}")
        right.plot(SIGMA_W, kappa[a].mean(axis=1), "s:", color=line.get_color(), label=f"max kappa, noise {noise:g}")
    left.set(xlabel="sigma_w", ylabel=f"memory length h for L1 error <= {args.tol:g}",
             title=f"{DEPTH}-layer tanh nets, 3 neurons, keep 1")
    right.axhline(1.0, color="grey", lw=0.8)
    right.set_yscale("log")  # kappa spans 0.1 to 1e3 across the table: a linear axis flattens the contractive cells
    right.set(xlabel="sigma_w", ylabel="chi_1 / kappa (log scale)", title="mean-field chi_1 and measured kappa")
    from matplotlib.ticker import MaxNLocator

    left.yaxis.set_major_locator(MaxNLocator(integer=True))  # memory lengths are whole layers
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
