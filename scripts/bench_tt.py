"""TT solver against width: time per layer, largest rank, cross error.

Four families of square nets (every layer N -> N), gaussian noise std 0.5:

- tanh, sigma_w = 1, sigma_b = 0.2, input N(0, 0.5^2 I), with *local* weights
  (``init = "local"``: brick-wall Givens rotations of neighbouring neurons,
  orthogonal and banded) or *dense* orthogonal weights (Haar);
- linear-gaussian (identity activation), sigma_w = 0.9, sigma_b = 0.3, input
  N(m, diag(0.45..0.55)^2), local or dense orthogonal weights; its layer
  means and covariances have a closed form, and the table reports the largest
  relative error over layers against it.

Usage: python scripts/bench_tt.py [--widths 4,8,16,32,64] [--families tanh-local,...]
                                  [--tol 1e-3] [--depth 4] [--cap 60]
       python scripts/bench_tt.py --acceptance [--widths 16,32] [--tol 3e-7]
                                   (linear-gaussian, local weights, 8 layers, against
                                    the closed form)
       python scripts/bench_tt.py --cross-only     (our cross against teneva's)
A family stops at the first width whose time per layer exceeds ``--cap``
seconds (the wider ones are reported as skipped). All rows come from one run
on this machine; the time per layer is fitted to ``c N^a`` over each family's
widths >= 8.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from mzpdf import GaussianInput, random_network
from mzpdf.solvers.tt.options import TTOptions
from mzpdf.solvers.tt.engine import TTSolver

FAMILIES = ("tanh-local", "tanh-dense", "linear-gaussian-local", "linear-gaussian-dense")


def tanh_net(width: int, depth: int, init: str = "orthogonal"):
    net = random_network([width] * (depth + 1), "tanh", sigma_w=1.0, sigma_b=0.2, seed=1,
                         noise={"kind": "gaussian", "std": 0.5}, init=init)
    return net, GaussianInput(np.zeros(width), 0.25 * np.eye(width))


def linear_gaussian_net(width: int, depth: int, init: str = "orthogonal"):
    net = random_network([width] * (depth + 1), "identity", sigma_w=0.9, sigma_b=0.3, seed=3,
                         noise={"kind": "gaussian", "std": 0.5}, init=init)
    rng = np.random.default_rng(3)
    return net, GaussianInput(rng.normal(0, 0.3, width), np.diag(np.linspace(0.45, 0.55, width)) ** 2)


def build(family: str, width: int, depth: int):
    kind, init = family.rsplit("-", 1)
    maker = tanh_net if kind == "tanh" else linear_gaussian_net
    return maker(width, depth, "local" if init == "local" else "orthogonal")


def closed_form_errors(net, law, solution) -> tuple[float, float]:
    """Largest relative error over layers of the mean and the covariance
    against m' = W m + b, C' = W C W^T + S."""
    m, c = law.mean(), law.cov()
    err_m = err_c = 0.0
    for n, layer in enumerate(net):
        m, c = layer.weights @ m + layer.bias, layer.weights @ c @ layer.weights.T + np.diag(layer.noise.variance())
        _, mean, cov = solution.laws[n + 1].moments()
        err_m = max(err_m, float(np.linalg.norm(mean - m) / np.linalg.norm(m)))
        err_c = max(err_c, float(np.linalg.norm(cov - c) / np.linalg.norm(c)))
    return err_m, err_c


class OverBudget(Exception):
    pass


class _Budget:
    """A progress callback that stops a solve after ``seconds`` (checked after
    every layer and every cross sweep)."""

    def __init__(self, seconds: float):
        self.start, self.seconds = time.perf_counter(), seconds

    def __call__(self, done: int, total: int) -> None:
        self.note("")

    def note(self, detail: str) -> None:
        if time.perf_counter() - self.start > self.seconds:
            raise OverBudget


def run(family: str, width: int, depth: int, tol: float, budget: float = float("inf")) -> dict:
    """One TT solve; its time per layer, ranks, errors and warnings. A solve
    that runs past ``budget`` seconds is stopped: the row then holds
    ``skipped`` = (width, seconds spent / depth)."""
    net, law = build(family, width, depth)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            sol = TTSolver(TTOptions(tol=tol)).propagate(net, law, progress=_Budget(budget))
        except OverBudget:
            return {"family": family, "width": width, "skipped": (width, (time.perf_counter() - start) / depth)}
        seconds = (time.perf_counter() - start) / depth
    d = sol.diagnostics
    errs = closed_form_errors(net, law, sol) if family.startswith("linear") else (float("nan"),) * 2
    return {"family": family, "width": width, "seconds": seconds, "rank": int(d["tt_max_rank"].max()),
            "evaluations": int(d["evaluations"][1:].mean()), "cross_error": float(d["cross_error"].max()),
            "mean_error": errs[0], "cov_error": errs[1], "warnings": len(caught)}


def table(families, widths, depth: int, tol: dict, cap: float, echo=print, dense_max: int = 16) -> list[dict]:
    """Rows of :func:`run` for every family and width, each family stopping
    after its first width slower than ``cap`` seconds per layer (a solve is
    stopped at 3 x ``cap`` seconds per layer; the wider ones get a row with
    ``skipped`` set). Dense families stop above ``dense_max`` (one sweep of
    their cross at width 32 takes many minutes: the budget, checked between
    sweeps, would not stop it in time)."""
    rows = []
    for family in families:
        slow = None
        for width in widths:
            if family.endswith("dense") and width > dense_max:
                rows.append({"family": family, "width": width, "skipped": ("dense", dense_max)})
                echo(f"{family:<22} {width:>5}  not run (dense weights: widths up to {dense_max})")
                continue
            if slow is not None:
                rows.append({"family": family, "width": width, "skipped": slow})
                echo(f"{family:<22} {width:>5}  skipped: width {slow[0]} took {slow[1]:.0f} s per layer")
                continue
            row = run(family, width, depth, tol[family], budget=3 * cap * depth)
            rows.append(row)
            if "skipped" in row:
                slow = row["skipped"]
                echo(f"{family:<22} {width:>5}  stopped after {slow[1] * depth:.0f} s (over 3 x {cap:g} s per layer)")
                continue
            echo(f"{family:<22} {width:>5} {row['seconds']:8.2f} {row['rank']:>8} {row['evaluations']:>11} "
                 f"{row['cross_error']:9.1e} {row['mean_error']:9.1e} {row['cov_error']:9.1e} {row['warnings']:>8}")
            if row["seconds"] > cap:
                slow = (width, row["seconds"])
    return rows


def growth(rows: list[dict], family: str) -> float:
    """Exponent ``a`` of a least-squares fit ``seconds ~ c N^a`` over the
    family's widths >= 8 (NaN with fewer than two)."""
    pts = [(r["width"], r["seconds"]) for r in rows if r["family"] == family and "seconds" in r and r["width"] >= 8]
    if len(pts) < 2:
        return float("nan")
    x, y = np.log(np.array(pts)).T
    return float(np.polyfit(x, y, 1)[0])


def cross_comparison(dim: int = 10, n: int = 32, tol: float = 1e-6) -> None:
    """Our cross and teneva's (when installed) on the same black box: a
    correlated gaussian exp(-x^T P x / 2), P = I + 0.5 (ones / dim), on
    [-6, 6]^dim with n nodes per axis. Error: relative L2 on 2000 grid points
    drawn from the gaussian itself (uniform points would all sit in the tails)."""
    from mzpdf.discretization.cross import cross
    from mzpdf.discretization.tensor_train import cores_at_indices

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


def acceptance(widths=(16, 32), depth: int = 8, tol: float = 3e-7) -> None:
    """Linear-gaussian nets with local weights against the closed form."""
    print(f"linear-gaussian, local weights, {depth} layers, tol {tol:g}: largest relative error over layers")
    print(f"{'width':>5} {'seconds':>8} {'max rank':>8} {'mean err':>9} {'cov err':>9}")
    for width in widths:
        row = run("linear-gaussian-local", width, depth, tol)
        print(f"{width:>5} {row['seconds'] * depth:8.1f} {row['rank']:>8} {row['mean_error']:9.1e} "
              f"{row['cov_error']:9.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="4,8,16,32,64")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--cross-only", action="store_true", help="only the cross comparison with teneva")
    parser.add_argument("--acceptance", action="store_true", help="only the linear-gaussian closed-form check")
    parser.add_argument("--tol", type=float, default=None, help="default 1e-3 (tanh), 1e-6 (linear-gaussian)")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds per layer after which a family stops")
    parser.add_argument("--dense-max", type=int, default=16, help="largest width run with dense weights")
    args = parser.parse_args()
    if args.acceptance:  # defaults: widths 16 and 32, tol 3e-7
        given = [int(w) for w in args.widths.split(",")] if args.widths != parser.get_default("widths") else (16, 32)
        acceptance(given, tol=args.tol or 3e-7)
        return
    cross_comparison()
    if args.cross_only:
        return
    widths = [int(w) for w in args.widths.split(",")]
    families = args.families.split(",")
    tol = {f: args.tol if args.tol is not None else (1e-3 if f.startswith("tanh") else 1e-6) for f in families}
    print(f"\nTT solver, {args.depth} layers, tol {', '.join(f'{f} {t:g}' for f, t in tol.items())}")
    print(f"{'family':<22} {'width':>5} {'s/layer':>8} {'max rank':>8} {'evals/layer':>11} {'cross err':>9} "
          f"{'mean err':>9} {'cov err':>9} {'warnings':>8}")
    rows = table(families, widths, args.depth, tol, args.cap, echo=lambda line: print(line, flush=True),
                 dense_max=args.dense_max)
    for family in families:
        print(f"{family}: time per layer ~ N^{growth(rows, family):.2f} (widths >= 8)")


if __name__ == "__main__":
    main()
