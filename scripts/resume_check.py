"""Kill -9 a run from outside after its third layer checkpoint, resume it, and
compare with an uninterrupted run (the checkpoint contract of
docs/architecture.md, "The layer loop and checkpoints").

    python scripts/resume_check.py                      # grid, tt, sparse; first two layers noiseless
    python scripts/resume_check.py --noiseless 0 --methods grid

For each method: a 12-layer tanh net (orthogonal weights, gaussian noise 0.4
on the noisy layers, the first ``--noiseless`` layers without noise) runs
once uninterrupted; a second run is watched from this process and sent
SIGKILL as soon as its checkpoint directory holds three layer files; then
``--resume`` finishes it. Prints, per method, the checkpoint files found at
the kill, ``resumed_from_layer`` of both files and the largest difference of
any /forward dataset and /diagnostics mass and lost_mass (the contract: 0 up
to 1e-12, resumed_from_layer >= 3).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np

import mzpdf

SOLVER = {"grid": 'method = "grid"\nnodes = 24', "tt": 'method = "tt"\ntol = 1e-4\nnodes = 12',
          "sparse": 'method = "sparse"\nlevel = 3\nquad_points = 12'}
WIDTH = {"grid": 2, "tt": 3, "sparse": 3}


def case_text(method: str, noiseless: int, depth: int = 12) -> str:
    w = WIDTH[method]
    net = mzpdf.random_network([w] * (depth + 1), "tanh", 0.8, 0.2, seed=4, init="orthogonal",
                               noise={"kind": "gaussian", "std": 0.4})
    layers = "".join(textwrap.dedent(f"""
        [[network.layers]]
        weights = {layer.weights.tolist()}
        bias = {layer.bias.tolist()}
        activation = "tanh"
        noise = {{ kind = {'"none"' if n < noiseless else '"gaussian", std = 0.4'} }}
        """) for n, layer in enumerate(net))
    return (f'[case]\nname = "resume_{method}"\n[input]\nkind = "gaussian"\nmean = {[0.1] * w}\nstd = 0.5\n'
            + layers + f"[solver]\n{SOLVER[method]}\n")


def datasets(path: Path) -> dict:
    out = {}
    with h5py.File(path) as f:
        f["forward"].visititems(lambda name, obj: out.__setitem__(f"forward/{name}", obj[()])
                                if isinstance(obj, h5py.Dataset) else None)
        for name in ("mass", "lost_mass"):
            out[f"diagnostics/{name}"] = f[f"diagnostics/{name}"][()]
        out["resumed_from_layer"] = int(f["diagnostics"].attrs.get("resumed_from_layer", -1))  # -1: not recorded
    return out


def check(method: str, noiseless: int, folder: Path) -> bool:
    path = folder / f"{method}.toml"
    path.write_text(case_text(method, noiseless))
    whole, resumed = folder / f"{method}_whole.h5", folder / f"{method}_resumed.h5"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    run = [sys.executable, "-m", "mzpdf", "run", str(path), "--quiet", "-o"]
    subprocess.run(run + [str(whole)], check=True, env=env, capture_output=True)
    ckpt = folder / f".{resumed.name}.checkpoint"
    proc = subprocess.Popen(run + [str(resumed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while len(list(ckpt.glob("layer_*.npz"))) < 3 and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    found = sorted(p.name for p in ckpt.glob("layer_*.npz"))
    subprocess.run(run + [str(resumed), "--resume"], check=True, env=env, capture_output=True)
    a, b = datasets(whole), datasets(resumed)
    worst = max(float(np.max(np.abs(np.asarray(a[k], dtype=float) - np.asarray(b[k], dtype=float)),
                              initial=0.0)) for k in a if k != "resumed_from_layer")
    ok = worst <= 1e-12 and b["resumed_from_layer"] >= 3 and a["resumed_from_layer"] == 0
    print(f"{method:7s} noiseless={noiseless} killed with {found}; resumed_from_layer {a['resumed_from_layer']} "
          f"(whole) {b['resumed_from_layer']} (resumed); largest difference {worst:.3g}: {'ok' if ok else 'FAILED'}",
          flush=True)
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="grid,tt,sparse")
    parser.add_argument("--noiseless", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = [check(m, args.noiseless, Path(tmp)) for m in args.methods.split(",")]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
