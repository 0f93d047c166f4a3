"""TT solver against width: time per layer, largest rank, cross error.

Two families of 4-layer nets with orthogonal weights (gain sigma_w, every
singular value equal, so the pre-activation grid is well conditioned):

- tanh, sigma_w = 1, sigma_b = 0.2, gaussian noise std 0.5, input N(0, 0.5^2 I);
- linear-gaussian (identity activation), sigma_w = 0.9, noise std 0.5, input
  N(m, diag(0.45..0.55)^2) (anisotropic, so the layers are correlated), whose
  layer means and covariances have a closed form: the table reports the
  relative error of the last layer's covariance against it.

Usage: python scripts/bench_tt.py [--widths 2,3,4,6] [--families tanh,linear-gaussian]
                                  [--tol 1e-6] [--depth 4]
Prints one table row per (family, width); all rows come from this one run on
this machine.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from mzpdf import GaussianInput, GaussianNoise, Layer, Network, random_network
from mzpdf.options import TTOptions
from mzpdf.tt.solver import TTSolver


def tanh_net(width: int, depth: int):
    net = random_network([width] * (depth + 1), "tanh", sigma_w=1.0, sigma_b=0.2, seed=1,
                         noise={"kind": "gaussian", "std": 0.5}, init="orthogonal")
    return net, GaussianInput(np.zeros(width), 0.25 * np.eye(width))


def linear_gaussian_net(width: int, depth: int):
    rng = np.random.default_rng(3)
    layers = []
    for _ in range(depth):
        q, r = np.linalg.qr(rng.standard_normal((width, width)))
        layers.append(Layer(0.9 * q * np.sign(np.diag(r)), rng.normal(0, 0.3, width), "identity",
                            GaussianNoise(np.array([0.5]))))
    law = GaussianInput(rng.normal(0, 0.3, width), np.diag(np.linspace(0.45, 0.55, width)) ** 2)
    return Network(tuple(layers)), law


def closed_form_cov_error(net, law, solution) -> float:
    m, c = law.mean(), law.cov()
    for layer in net:
        m, c = layer.weights @ m + layer.bias, layer.weights @ c @ layer.weights.T + np.diag(layer.noise.variance())
    _, _, cov = solution.laws[-1].moments()
    return float(np.linalg.norm(cov - c) / np.linalg.norm(c))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="2,3,4,6")
    parser.add_argument("--families", default="tanh,linear-gaussian")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    print(f"TT solver, {args.depth} layers, tol {args.tol:g}, nodes >= 32 per neuron")
    print(f"{'family':<16} {'width':>5} {'s/layer':>8} {'max rank':>8} {'evals/layer':>11} {'cross err':>9} "
          f"{'cov err':>8} {'warnings':>8}")
    builders = {"tanh": tanh_net, "linear-gaussian": linear_gaussian_net}
    for family in args.families.split(","):
        build = builders[family]
        for width in widths:
            net, law = build(width, args.depth)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                sol = TTSolver(TTOptions(tol=args.tol)).propagate(net, law)
                seconds = (time.perf_counter() - start) / args.depth
            d = sol.diagnostics
            cov = closed_form_cov_error(net, law, sol) if family == "linear-gaussian" else float("nan")
            print(f"{family:<16} {width:>5} {seconds:8.2f} {int(d['tt_max_rank'].max()):>8} "
                  f"{int(d['evaluations'][1:].mean()):>11} {d['cross_error'].max():9.1e} {cov:8.1e} "
                  f"{len(caught):>8}", flush=True)


if __name__ == "__main__":
    main()
