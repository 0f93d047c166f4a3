"""Uncertainty quantification of trained, noiseless regressors: mzpdf's whole
process (case from a table, solve) against plain NumPy Monte Carlo.

Two ReLU regressors trained by scikit-learn on its bundled data (standardized
inputs and target): 10 -> 32 -> 16 -> 1 on ``load_diabetes`` and
64 -> 32 -> 16 -> 1 on ``load_digits`` (regressing the digit's value). The
input is one test row with gaussian std 0.1 on every input; no noise. Two
questions, each answered to a stated accuracy by both:

(a) ``P(Y > t)`` with ``P ~ 1e-6`` (t: mzpdf's quantile at 1 - 1e-6, found in
    an untimed setup run) at 10 % relative error: mzpdf with
    ``observable.thresholds = [t]`` (its exceedance_error: 4 standard errors),
    Monte Carlo by counting ``y > t`` over blocks of 1e6 pseudo-random inputs,
    ``n = (1 - p) / (0.01 p)`` paths for p = 1e-6 (fixed in advance: a
    stopping rule on the count would bias it);
(b) the output's density at L1 <= 1e-3: mzpdf's output layer error estimate
    (confidence 0.95), Monte Carlo by a 200-bin histogram over mzpdf's
    abscissa range, blocks of 1e6 until its L1 standard error
    ``sqrt(2/pi) sum_k sqrt(p_k (1 - p_k) / n)`` is <= 1e-3 (binning bias not
    counted: in Monte Carlo's favour).

Monte Carlo is the obvious vectorized NumPy code (float64 GEMMs per layer,
``np.maximum``), capped at ``--mc-seconds`` per question; beyond the cap its
time is extrapolated from its own standard error's n^-1/2 and so marked.
Printed: times, ratios, and whether the two estimates agree within both error
bars. mzpdf runs with ``solver.max_seconds = 0`` and the samples given, with
default ``threads`` and with ``threads = 1`` (both timed in this run).

    python scripts/bench_uq.py [--mc-seconds 120] [--samples 4096] [--quick]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import mzpdf
from mzpdf.network.sklearn_model import from_sklearn

STD = 0.1
BLOCK = 1_000_000


def train(data: str):
    from sklearn import datasets
    from sklearn.neural_network import MLPRegressor

    if data == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
    else:
        X, y = datasets.load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    y = (y - y.mean()) / y.std()
    model = MLPRegressor(hidden_layer_sizes=(32, 16), activation="relu", max_iter=3000, random_state=0).fit(X[:-20], y[:-20])
    return from_sklearn(model, noise=None), X[-1]


def case_table(net, x0, **solver):
    return {"case": {"name": "bench_uq", "seed": 1}, "network": net.to_dict(),
            "input": {"kind": "gaussian", "mean": x0.tolist(), "std": STD},
            "solver": {"method": "qmc", "max_seconds": 0, **solver}}


def run_mzpdf(table):
    start = time.perf_counter()
    results = mzpdf.run(mzpdf.load_case(table))
    return results, time.perf_counter() - start


def forward(weights, x):
    for k, (W, b) in enumerate(weights):
        x = x @ W.T + b
        if k < len(weights) - 1:
            np.maximum(x, 0.0, out=x)
    return x[:, 0]


def mc_tail(weights, x0, t, p_target, seconds, rng):
    """Count y > t over a fixed number of paths, the n that 10 % relative error needs at P = p_target
    ((1 - p) / (0.01 p): fixed in advance, so that no stopping rule biases the count)."""
    need = int(np.ceil((1 - p_target) / (0.01 * p_target) / BLOCK)) * BLOCK
    n = hits = 0
    start = time.perf_counter()
    while n < need:
        y = forward(weights, x0 + STD * rng.standard_normal((BLOCK, x0.size)))
        n, hits = n + BLOCK, hits + int(np.count_nonzero(y > t))
        if time.perf_counter() - start > seconds:
            break
    took = time.perf_counter() - start
    p = hits / n
    se = np.sqrt(p * (1 - p) / n) if hits else np.inf
    return p, se, took * need / n, n, n < need


def mc_density(weights, x0, edges, seconds, rng):
    counts, n = np.zeros(edges.size - 1), 0
    start = time.perf_counter()
    h = edges[1] - edges[0]
    while True:
        y = forward(weights, x0 + STD * rng.standard_normal((BLOCK, x0.size)))
        counts += np.histogram(y, edges)[0]
        n += BLOCK
        p = counts / n
        l1 = np.sqrt(2 / np.pi) * np.sum(np.sqrt(p * (1 - p) / n))
        took = time.perf_counter() - start
        if l1 <= 1e-3:
            return p / h, l1, took, n, False
        if took > seconds:
            return p / h, l1, took * (l1 / 1e-3) ** 2, n, True


def bench(data, args):
    net, x0 = train(data)
    weights = [(layer.weights, layer.bias) for layer in net]
    print(f"\n== {data}: {net.widths} ReLU regressor, input std {STD} on {x0.size} inputs, no noise")
    # setup (untimed): the threshold with P ~ 1e-6
    setup, _ = run_mzpdf({**case_table(net, x0, samples=args.samples),
                          "observable": {"kind": "neuron", "index": 0, "quantiles": [1 - 1e-6]}})
    t = float(setup.backward.quantiles[0])
    table = {**case_table(net, x0, samples=args.samples),
             "observable": {"kind": "neuron", "index": 0, "thresholds": [t]}}
    runs = {}
    for threads in (0, 1):
        runs[threads] = run_mzpdf({**table, "solver": {**table["solver"], "threads": threads}})
    results, seconds = runs[0]
    print(f"mzpdf: {seconds:.2f} s with default threads, {runs[1][1]:.2f} s with threads = 1 "
          f"(default {'not slower' if seconds <= runs[1][1] * 1.05 else 'SLOWER'}); "
          f"error_estimate {np.round(results.diagnostics['error_estimate'], 5).tolist()}, "
          f"accepted {results.accepted}")
    p, err = results.backward.exceedance[0], results.backward.exceedance_error[0]
    pf = results.solution.native.pushforward
    rng = np.random.default_rng(0)
    # (a)
    mp, mse, mtime, mn, extrapolated = mc_tail(weights, x0, t, 1e-6, args.mc_seconds, rng)
    agree = abs(p - mp) <= err + 2 * mse
    print(f"(a) P(Y > {t:.4f}): mzpdf {p:.3e} +- {err:.1e} (rel {err / p:.2%}) in {seconds:.2f} s; "
          f"Monte Carlo {mp:.3e} +- {2 * mse:.1e} (2 se) from {mn:.1e} paths in {mtime:.1f} s"
          f"{' (extrapolated to 10 %)' if extrapolated else ''}; ratio {mtime / seconds:.1f}x; "
          f"agree within both error bars: {agree}")
    # (b)
    x = pf.readout_x
    edges = np.linspace(x[0], x[-1], 201)
    cdf = np.interp(edges, x, pf.readout_cdf)
    mz_bins = np.diff(cdf) / (edges[1] - edges[0])
    hist, ml1, mtime, mn, extrapolated = mc_density(weights, x0, edges, args.mc_seconds, rng)
    dist = np.sum(np.abs(hist - mz_bins)) * (edges[1] - edges[0])
    est = results.diagnostics["error_estimate"][-1]
    print(f"(b) output density: mzpdf L1 error estimate {est:.1e} in {seconds:.2f} s; Monte Carlo histogram L1 "
          f"standard error {ml1:.1e} from {mn:.1e} paths in {mtime:.1f} s{' (extrapolated to 1e-3)' if extrapolated else ''}; "
          f"ratio {mtime / seconds:.1f}x; L1 distance between them {dist:.1e} (agree within both: "
          f"{dist <= est + 2 * ml1})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mc-seconds", type=float, default=120.0, help="cap of each Monte Carlo question")
    parser.add_argument("--samples", type=int, default=4096, help="qmc Sobol lines per replicate")
    parser.add_argument("--quick", action="store_true", help="diabetes only")
    args = parser.parse_args()
    start = time.perf_counter()
    for data in ("diabetes",) if args.quick else ("diabetes", "digits"):
        bench(data, args)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
