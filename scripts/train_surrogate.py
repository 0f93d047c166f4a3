"""Train the regression surrogate of ``cases/surrogate_uq.toml`` (NumPy only).

    python scripts/train_surrogate.py            # writes cases/surrogate_uq.npz and cases/surrogate_uq.toml

A 3 -> 32 -> 32 -> 1 tanh network fitted by full-batch Adam to a smooth
synthetic response ``f`` on the cube [-1.5, 1.5]^3, the way a surrogate of a
simulation code is trained. The weights depend only on ``SEED``; the case
then makes the hidden layers deterministic (noise ``none``), puts the
uncertainty on the input (gaussian, std 0.3) and an observation noise of std
0.05 on the output: a 3-D -> 1-D transfer for the grid.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 2024
WIDTHS = (3, 32, 32, 1)
SAMPLES = 4096  # training inputs, uniform on the cube
STEPS = 3000
LEARNING_RATE = 5e-3

CASE = """\
# A regression surrogate (3 -> 32 -> 32 -> 1 tanh, trained by scripts/train_surrogate.py) of a
# smooth response, used for uncertainty quantification: its input is known up to a gaussian
# uncertainty (std 0.3), its hidden layers are deterministic, and its output carries an
# observation noise of std 0.05. The grid composes the two noiseless layers with the output
# layer, so it solves a 3-D -> 1-D transfer, not a 32-neuron one; the hidden layers get exact
# moments and no densities (/diagnostics/no_density). A 2e5-path Monte Carlo reference is
# stored beside the solution. No [solver] section: the default method takes it.
#   mzpdf run cases/surrogate_uq.toml -o surrogate_uq.h5 && mzpdf info surrogate_uq.h5

[case]
name = "surrogate_uq"
seed = 11

[network]
file = "surrogate_uq.npz"
activation = "tanh"
noise = [{{ kind = "none" }}, {{ kind = "none" }}, {{ kind = "gaussian", std = 0.05 }}]

[input]
kind = "gaussian"
mean = {mean}
std = 0.3

[montecarlo]
samples = 200000

[output]
path = "surrogate_uq.h5"
"""
INPUT_MEAN = [0.2, -0.3, 0.4]


def response(x: np.ndarray) -> np.ndarray:
    """The smooth synthetic response ``f`` (n,) at inputs ``x`` (n, 3), inside (-0.8, 0.8)."""
    return 0.45 * np.sin(1.3 * x[:, 0]) * np.cos(0.8 * x[:, 1]) + 0.25 * np.tanh(x[:, 2] - 0.5 * x[:, 0] * x[:, 1])


def train(seed: int = SEED, steps: int = STEPS) -> tuple[list, float]:
    """Weights ``[(W0, b0), (W1, b1), (W2, b2)]`` fitted by Adam, and the final RMS error."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (SAMPLES, WIDTHS[0]))
    target = response(x)[:, None]
    params = []
    for n_in, n_out in zip(WIDTHS[:-1], WIDTHS[1:]):
        params += [rng.standard_normal((n_out, n_in)) * 1.5 / np.sqrt(n_in), np.zeros(n_out)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        acts = [x]
        for k in range(0, len(params), 2):
            acts.append(np.tanh(acts[-1] @ params[k].T + params[k + 1]))
        delta = 2.0 * (acts[-1] - target) / SAMPLES  # d loss / d output (mean squared error)
        grads = [None] * len(params)
        for k in range(len(params) - 2, -1, -2):
            delta = delta * (1.0 - acts[k // 2 + 1] ** 2)  # through tanh
            grads[k], grads[k + 1] = delta.T @ acts[k // 2], delta.sum(axis=0)
            delta = delta @ params[k]
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            params[i] -= LEARNING_RATE * (m[i] / (1 - beta1**step)) / (np.sqrt(v[i] / (1 - beta2**step)) + eps)
    out = x
    for k in range(0, len(params), 2):
        out = np.tanh(out @ params[k].T + params[k + 1])
    rms = float(np.sqrt(np.mean((out - target) ** 2)))
    return [(params[k], params[k + 1]) for k in range(0, len(params), 2)], rms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "cases", help="directory of the .npz and .toml")
    args = parser.parse_args()
    layers, rms = train()
    arrays = {}
    for n, (W, b) in enumerate(layers):
        arrays[f"W{n}"], arrays[f"b{n}"] = W.astype(np.float64), b.astype(np.float64)
    np.savez_compressed(args.out / "surrogate_uq.npz", **arrays)
    (args.out / "surrogate_uq.toml").write_text(CASE.format(mean=INPUT_MEAN))
    print(f"trained {'-'.join(map(str, WIDTHS))} tanh surrogate: RMS error {rms:.3g} on {SAMPLES} inputs; wrote "
          f"{args.out / 'surrogate_uq.npz'} and {args.out / 'surrogate_uq.toml'}")


if __name__ == "__main__":
    main()
