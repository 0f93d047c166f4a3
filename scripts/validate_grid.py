"""Accuracy of the grid solver against its oracles, as a table.

1. Linear-gaussian networks (identity activation, 5 layers, random weights):
   largest relative error of layer means and covariances against the closed
   form m' = W m + b, C' = W C W^T + S; the duality gap; the mass balance.
2. The quickstart (tanh) and relu_3d cases against 1e6 Monte Carlo paths:
   the worst bin of the marginals and the worst conditional mean q0, in
   Monte Carlo standard errors (the tests require < the Bonferroni band).

Run:  python scripts/validate_grid.py      (about a minute on 2 cores)
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import special

import mzpdf
from mzpdf.solvers.montecarlo.engine import conditional_mean, simulate
from mzpdf.solvers.grid.engine import GridSolver

ROOT = Path(__file__).resolve().parents[1]


def linear_gaussian_table():
    print("Linear-gaussian networks, 5 layers (identity, sigma_w 0.8, sigma_b 0.3, noise std 0.5, seed 7)")
    print(f"{'width':>5}{'nodes':>6}{'max rel err mean/cov':>22}{'duality gap':>13}{'mass balance':>14}{'time [s]':>10}")
    for width, nodes_list in ((2, (32, 40, 48)), (3, (32, 40))):
        net = mzpdf.random_network([width] * 6, "identity", 0.8, 0.3, seed=7, noise={"kind": "gaussian", "std": 0.5})
        law = mzpdf.GaussianInput(np.full(width, 0.5), 0.3 * np.eye(width) + 0.05)
        for nodes in nodes_list:
            t0 = time.perf_counter()
            sol = GridSolver(nodes=nodes).propagate(net, law)
            t = time.perf_counter() - t0
            m, C, err = law.mean(), law.cov(), 0.0
            for n, layer in enumerate(net, start=1):
                m = layer.weights @ m + layer.bias
                C = layer.weights @ C @ layer.weights.T + np.diag(layer.noise.variance())
                _, mean, cov = sol.densities[n].moments()
                err = max(err, np.abs(mean - m).max() / np.abs(m).max(), np.abs(cov - C).max() / np.abs(C).max())
            d = sol.diagnostics
            print(f"{width:>5}{nodes:>6}{err:>22.2e}{d['duality_gap'].max():>13.1e}"
                  f"{np.abs(d['quadrature_mass_error']).max():>14.1e}{t:>10.2f}")


def monte_carlo_table(samples=1_000_000):
    print(f"\nAgainst Monte Carlo ({samples:.0e} paths): worst deviation in standard errors, and the band")
    print(f"{'case':>12}{'bins':>6}{'worst bin':>11}{'band':>7}{'worst q0':>10}{'band':>7}")
    for name in ("quickstart", "relu_3d"):
        case = mzpdf.load_case(ROOT / "cases" / f"{name}.toml")
        solver = GridSolver(case.solver)
        sol = solver.propagate(case.network, case.input)
        xs = [np.stack([np.linspace(lo, hi, 81) for lo, hi in d.grid.box]) for d in sol.densities]
        mc = simulate(case.network, case.input, samples=samples, seed=11, abscissae=xs)
        scores = []
        for n in range(1, len(xs)):
            for k in range(xs[n].shape[0]):
                x = xs[n][k]
                h = x[1] - x[0]
                sub = (np.arange(16) + 0.5) / 16 - 0.5
                p = sol.densities[n].marginal(k, (x[:, None] + h * sub).ravel()).reshape(-1, 16).mean(1) * h
                p_hat = mc.layers[n].marginal_pdf[k] * h
                big = p * samples >= 20
                scores += list(np.abs(p_hat - p)[big] / np.sqrt(p[big] * (1 - p[big]) / samples))
        z = -special.ndtri(1e-3 / (2 * len(scores)))
        back = solver.pullback(sol, case.observable, case.points)
        q, se = conditional_mean(case.network, case.points, case.observable, samples=samples, seed=5)
        zq = -special.ndtri(1e-3 / (2 * len(q)))
        print(f"{name:>12}{len(scores):>6}{max(scores):>11.2f}{z:>7.2f}{np.max(np.abs(back.q0 - q) / se):>10.2f}{zq:>7.2f}")


if __name__ == "__main__":
    linear_gaussian_table()
    monte_carlo_table()
