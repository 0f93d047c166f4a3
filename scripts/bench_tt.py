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


def cross_comparison(dim: int = 10, n: int = 32, tol: float = 1e-6) -> None:
    """Our cross and teneva's (when installed) on the same black box: a
    correlated gaussian exp(-x^T P x / 2), P = I + 0.5 (ones / dim), on
    [-6, 6]^dim with n nodes per axis. Error: relative L2 on 2000 grid points
    drawn from the gaussian itself (uniform points would all sit in the tails)."""
    from mzpdf.tt.cross import cross
    from mzpdf.tt.tensor import cores_at_indices

    x = np.linspace(-6.0, 6.0, n)
    P = np.eye(dim) + 0.5 * np.ones((dim, dim)) / dim
    calls = [0]

    def f(idx):
        idx = np.asarray(idx, dtype=np.int64)
        calls[0] += idx.shape[0]
        z = x[idx]
        return np.exp(-0.5 * np.einsum("pi,ij,pj->p", z, P, z))

    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(np.zeros(dim), np.linalg.inv(P), 2256)
    typical = np.clip(np.rint((draws + 6.0) / (x[1] - x[0])), 0, n - 1).astype(np.int64)
    check, start = typical[:2000], typical[2000:]
    exact = f(check)
    calls[0] = 0
    print(f"\ncross approximation of a correlated gaussian, d = {dim}, n = {n}, tol {tol:g}")
    print(f"{'method':<8} {'evaluations':>11} {'seconds':>8} {'max rank':>8} {'rel. L2 error':>13}")
    t = time.perf_counter()
    res = cross(f, [n] * dim, tol=tol, max_rank=64, rng=np.random.default_rng(1), start=start, max_sweeps=20)
    seconds = time.perf_counter() - t
    err = np.linalg.norm(cores_at_indices(res.cores, check) - exact) / np.linalg.norm(exact)
    print(f"{'mzpdf':<8} {res.evaluations:>11} {seconds:8.2f} {max(res.ranks):>8} {err:13.1e}")
    try:
        import teneva
    except ImportError:
        print("teneva    not installed (pip install teneva to compare)")
        return
    calls[0] = 0
    t = time.perf_counter()
    info = {}
    y0 = teneva.rand([n] * dim, 2, seed=1)
    y = teneva.cross(f, y0, e=tol, nswp=50, dr_max=2, info=info)
    y = teneva.truncate(y, tol)
    seconds = time.perf_counter() - t
    err = np.linalg.norm(teneva.get_many(y, check) - exact) / np.linalg.norm(exact)
    print(f"{'teneva':<8} {calls[0]:>11} {seconds:8.2f} {max(c.shape[2] for c in y):>8} {err:13.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="2,3,4,6")
    parser.add_argument("--families", default="tanh,linear-gaussian")
    parser.add_argument("--cross-only", action="store_true", help="only the cross comparison with teneva")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    cross_comparison()
    if args.cross_only:
        return
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
