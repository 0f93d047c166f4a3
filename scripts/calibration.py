"""Calibration of every method's error estimate against an independent oracle.

Draws random networks from families a user writes (activations tanh, relu,
sigmoid, leaky_relu, softplus; gaussian, laplace and uniform noise of scale
0.02 to 0.5; weight scales 0.5 to 3; depths 1 to 10; gaussian, uniform and
point inputs; some noiseless hidden layers), runs each method with its
default options (``solver.tol`` = 1e-3), and compares every layer's marginals,
means and standard deviations with a conditional-density Monte Carlo oracle
written here in plain NumPy (nothing of mzpdf's samplers): paths to layer
n-1, then the marginal of neuron k of layer n is the average of the noise
density rho_k(x - F_k(X_{n-1})) over the paths (smooth, unbiased, with a
standard error per abscissa). A layer without a density is compared by its
moments only.

Per method it prints: runs, exit 0 (met tol), coverage (the share of runs
whose true error, less three oracle standard errors, is within the stated
``error_estimate`` on every layer), the median efficiency (estimate / true
error where the true error is above three oracle standard errors), wrong
answers with exit 0, and the longest run.

    python scripts/calibration.py                       # grid, 24 nets
    python scripts/calibration.py --method grid --nets 40 --seed 1
    python scripts/calibration.py --method sparse --widths 1 8

The table of docs/validation.md ("Calibration") is its output.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np

import mzpdf

ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softplus": lambda z: np.logaddexp(0.0, z),
}
NOISE = {"gaussian": "std", "laplace": "scale", "uniform": "half_width"}
PATHS = 2**18  # oracle paths per net (its L1 noise, stated per run, ~1e-3 to 1e-4 on these nets)
ABSCISSAE = 401


def noise_pdf(kind: str, s: float, z: np.ndarray) -> np.ndarray:
    if kind == "gaussian":
        return np.exp(-0.5 * (z / s) ** 2) / (math.sqrt(2 * math.pi) * s)
    if kind == "laplace":
        return np.exp(-np.abs(z) / s) / (2 * s)
    return (np.abs(z) <= s) / (2 * s)


def noise_draw(kind: str, s: float, rng, shape) -> np.ndarray:
    if kind == "gaussian":
        return rng.normal(0.0, s, shape)
    if kind == "laplace":
        return rng.laplace(0.0, s, shape)
    return rng.uniform(-s, s, shape)


def draw_net(rng, widths_range, depth_max):
    """One random case table (and the plain description the oracle uses)."""
    width = int(rng.integers(widths_range[0], widths_range[1] + 1))
    depth = int(rng.integers(1, depth_max + 1))
    act = str(rng.choice(list(ACTIVATIONS)))
    kind = str(rng.choice(list(NOISE)))
    scale = float(np.exp(rng.uniform(np.log(0.02), np.log(0.5))))
    sigma_w = float(rng.uniform(0.5, 3.0))
    layers, plain = [], []
    for n in range(depth):
        W = rng.normal(0.0, sigma_w / math.sqrt(width), (width, width))
        b = rng.normal(0.0, 0.3, width)
        noiseless = n < depth - 1 and rng.uniform() < 0.2
        noise = {"kind": "none"} if noiseless else {"kind": kind, NOISE[kind]: scale}
        layers.append({"weights": W.tolist(), "bias": b.tolist(), "activation": act, "noise": noise})
        plain.append((W, b, act, None if noiseless else kind, scale))
    inp = str(rng.choice(["gaussian", "uniform", "point"], p=[0.6, 0.25, 0.15]))
    mean = rng.normal(0.0, 0.5, width)
    if inp == "gaussian":
        spec = {"kind": "gaussian", "mean": mean.tolist(), "std": float(rng.uniform(0.2, 1.0))}
    elif inp == "uniform":
        spec = {"kind": "uniform", "low": (mean - 1).tolist(), "high": (mean + 1).tolist()}
    else:
        spec = {"kind": "point", "x": mean.tolist()}
    label = (f"w{width} L{depth} {act} {kind} {scale:.3g} sw{sigma_w:.2f} {inp}"
             + (" +noiseless" if any(p[3] is None for p in plain) else ""))
    return {"network": {"layers": layers}, "input": spec}, plain, spec, label


def input_draw(spec, rng, n):
    if spec["kind"] == "gaussian":
        return np.asarray(spec["mean"]) + spec["std"] * rng.standard_normal((n, len(spec["mean"])))
    if spec["kind"] == "uniform":
        lo, hi = np.asarray(spec["low"]), np.asarray(spec["high"])
        return lo + (hi - lo) * rng.uniform(size=(n, lo.size))
    return np.tile(np.asarray(spec["x"]), (n, 1))


def oracle(plain, spec, abscissae, seed):
    """Per layer n >= 1: (pdf (N, m) or None, pdf standard error, mean, mean stderr, sd) from PATHS paths."""
    rng = np.random.default_rng(seed)
    x = input_draw(spec, rng, PATHS)
    out = []
    for n, (W, b, act, kind, s) in enumerate(plain):
        f = ACTIVATIONS[act](x @ W.T + b)
        y = f if kind is None else f + noise_draw(kind, s, rng, f.shape)
        pdf = se = None
        if kind is not None and abscissae[n + 1] is not None:
            xs = abscissae[n + 1]
            pdf, se = np.empty(xs.shape), np.empty(xs.shape)
            for k in range(xs.shape[0]):
                acc, acc2 = np.zeros(xs.shape[1]), np.zeros(xs.shape[1])
                for start in range(0, PATHS, 2**16):
                    vals = noise_pdf(kind, s, xs[k][None, :] - f[start:start + 2**16, k][:, None])
                    acc += vals.sum(axis=0)
                    acc2 += (vals ** 2).sum(axis=0)
                pdf[k] = acc / PATHS
                se[k] = np.sqrt(np.maximum(acc2 / PATHS - pdf[k] ** 2, 0.0) / PATHS)
        sd = y.std(axis=0)
        # the standard error of a sample sd is sd sqrt((kurtosis - 1) / (4 N)): far above sd / sqrt(2 N) for the
        # heavy-tailed laws here (a ReLU's atom at 0 with a Laplace tail beside it)
        kurtosis = np.mean((y - y.mean(axis=0)) ** 4, axis=0) / np.where(sd > 0, sd, 1.0) ** 4
        sd_se = sd * np.sqrt(np.maximum(kurtosis - 1.0, 0.0) / (4 * PATHS))
        out.append((pdf, se, y.mean(axis=0), y.std(axis=0) / math.sqrt(PATHS), sd, sd_se))
        x = y
    return out


def compare(res, plain, spec, seed):
    """Per layer: (true error less oracle noise, true error, oracle noise, estimate)."""
    forward = res.forward
    abscissae = [None] + [None if np.all(np.isnan(lay.marginal_pdf)) else
                          np.stack([np.linspace(lo, hi, ABSCISSAE) for lo, hi in lay.marginal_x[:, [0, -1]]])
                          for lay in forward[1:]]
    ref = oracle(plain, spec, abscissae, seed)
    est = np.asarray(res.diagnostics.get("error_estimate", np.full(len(forward), np.nan)), dtype=float)
    rows = []
    if spec["kind"] != "point":  # layer 0: its exact moments (its marginals are the input law's own)
        if spec["kind"] == "gaussian":
            m, sd = np.asarray(spec["mean"], float), np.full(len(spec["mean"]), float(spec["std"]))
        else:
            lo, hi = np.asarray(spec["low"], float), np.asarray(spec["high"], float)
            m, sd = (lo + hi) / 2, (hi - lo) / math.sqrt(12)
        law = res.law(0)
        sd_s = np.sqrt(np.maximum(np.diag(np.atleast_2d(law.cov)), 0.0))
        err = float(max(np.max(np.abs(law.mean - m) / sd), np.max(np.abs(sd_s - sd) / sd)))
        rows.append((err, err, 0.0, est[0]))
    for n in range(1, len(forward)):
        pdf, se, m, m_se, sd, sd_se = ref[n - 1]
        law = res.law(n)
        sd_s = np.sqrt(np.maximum(np.diag(np.atleast_2d(law.cov)), 0.0))
        ok = sd > 0
        err = np.max(np.concatenate([np.abs(law.mean - m)[ok] / sd[ok], np.abs(sd_s - sd)[ok] / sd[ok], [0.0]]))
        noise = np.max(np.concatenate([3 * m_se[ok] / sd[ok], 3 * sd_se[ok] / sd[ok], [0.0]]))
        if pdf is not None:
            xs = abscissae[n]
            for k in range(xs.shape[0]):
                l1 = float(np.trapezoid(np.abs(law.marginal(k, xs[k]) - pdf[k]), xs[k]))
                l1_noise = 3 * float(np.trapezoid(se[k], xs[k]))
                if l1 - l1_noise > err - noise:
                    err, noise = l1, l1_noise
        rows.append((max(err - noise, 0.0), err, noise, est[n]))
    return rows


def run_one(table, method, extra):
    case = mzpdf.load_case(dict(table, solver=dict({"method": method}, **extra)))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mzpdf.run(case)
    return res, time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", default="grid")
    ap.add_argument("--nets", type=int, default=24)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--widths", type=int, nargs=2, default=(1, 3))
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--set", action="append", default=[], help="solver option key=value (TOML value)")
    ap.add_argument("--only", type=int, nargs="*", help="run only these nets of the draw (by index)")
    args = ap.parse_args(argv)
    import tomllib

    extra = {k: tomllib.loads(f"v = {v}")["v"] for k, v in (s.split("=", 1) for s in args.set)}
    tol = float(extra.get("tol", 1e-3))
    rng = np.random.default_rng(args.seed)
    runs = exit0 = covered = wrong = refused = 0
    ratios, longest = [], 0.0
    for i in range(args.nets):
        table, plain, spec, label = draw_net(rng, args.widths, args.depth)
        if args.only is not None and i not in args.only:
            continue
        try:
            res, seconds = run_one(table, args.method, extra)
        except mzpdf.errors.CaseError as err:
            refused += 1
            print(f"{i:3d} {label:55s} refused: {str(err)[:90]}")
            continue
        runs += 1
        longest = max(longest, seconds)
        rows = compare(res, plain, spec, seed=args.seed + i)
        cover = all(excess <= est for excess, _, _, est in rows)
        covered += cover
        exit0 += bool(res.accepted)
        if res.accepted and not all(excess <= min(est, tol) for excess, _, _, est in rows):
            wrong += 1
        ratios += [est / err for _, err, noise, est in rows if err > noise and err > 0]
        worst = max(rows, key=lambda r: r[0])
        print(f"{i:3d} {label:55s} {'exit 0' if res.accepted else 'exit 3'} {seconds:6.1f} s  "
              f"true {worst[1]:.2e} (oracle noise {worst[2]:.1e})  estimate {np.max([r[3] for r in rows]):.2e}  "
              f"{'covered' if cover else 'NOT COVERED'}")
        if not cover:
            print("      layers (true - oracle noise, estimate): " + ", ".join(
                f"{n}: {excess:.2e} > {est:.2e}" for n, (excess, _, _, est) in enumerate(rows) if excess > est))
        sys.stdout.flush()
    median = float(np.median(ratios)) if ratios else float("nan")
    print(f"\nmethod {args.method}: {runs} runs ({refused} refused up front), exit 0 {exit0}, coverage "
          f"{covered}/{runs} = {100 * covered / max(runs, 1):.0f} %, median efficiency {median:.3g} "
          f"({len(ratios)} layers above the oracle noise), wrong with exit 0: {wrong}, longest {longest:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
