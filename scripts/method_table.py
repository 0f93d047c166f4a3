"""Which method for which network: every method on the network shapes users hold.

Each (network, method) pair is one ``mzpdf run`` in a fresh process, under a
wall-time cap, and its last layer is compared with a Monte Carlo reference
computed here from the same network object:

- ``z``: the largest |mean difference| over the output neurons in standard
  errors of a ``--paths``-path Monte Carlo mean (the run's own standard error
  added in quadrature for the sampling methods);
- ``L1``: the largest L1 distance over the output neurons between the run's
  marginal and the conditional-density Monte Carlo marginal on the same
  abscissae (``E rho(x - F(X_{L-1}))`` over 2^18 paths: no binning bias, its
  own L1 error ~1e-3).

The ``auto`` column names the method a case with no ``[solver]`` section
runs (``method = "auto"``; its numbers are that method's column). A cell
reads ``ok`` (exit 0), ``exit 3`` (the run failed its own accuracy
checks and said so), ``refused`` (exit 2 up front, the reason shortened) or
``not finished in CAP s``. The times are whole runs (process start, JIT cache
warm, the file written).

    python scripts/method_table.py                  # the README table (~15 min on 2 cores)
    python scripts/method_table.py --tt-dense       # TT on dense tanh nets, widths 4-32 (docs/benchmarks.md)
    python scripts/method_table.py --cap 60 --nets small,iris --methods grid,qmc
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tomli_w

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("auto", "grid", "sparse", "tt", "qmc")
STRIP = ("solver", "montecarlo", "observable", "tails", "analysis", "projection", "output")


def random_case(name: str, widths: list, sigma_w: float, noise: float, std: float, init: str = "gaussian",
                seed: int = 0) -> dict:
    return {"case": {"name": name, "seed": 1},
            "network": {"random": {"widths": widths, "activation": "tanh", "sigma_w": sigma_w, "sigma_b": 0.0,
                                   "seed": seed, "init": init, "noise": {"kind": "gaussian", "std": noise}}},
            "input": {"kind": "gaussian", "mean": [0.0] * widths[0], "std": std}}


def file_case(name: str) -> dict:
    path = ROOT / "cases" / f"{name}.toml"
    table = tomllib.loads(path.read_text())
    for section in STRIP:
        table.pop(section, None)
    net = table["network"]
    if "file" in net:
        net["file"] = str((path.parent / net["file"]).resolve())
    return table


NETS = {
    "small": ("3 -> 3 -> 3 -> 3 dense tanh, noise 0.3 on every layer",
              lambda: random_case("small", [3, 3, 3, 3], 1.0, 0.3, 0.5)),
    "surrogate": ("3 -> 32 -> 32 -> 1 trained surrogate, deterministic hidden layers (cases/surrogate_uq.toml)",
                  lambda: file_case("surrogate_uq")),
    "iris": ("4 -> 8 -> 8 -> 3 trained classifier, noise 0.05 (cases/iris_classifier.toml)",
             lambda: file_case("iris_classifier")),
    "widening": ("2 -> 6 -> 6 -> 2 dense tanh, noise 0.3", lambda: random_case("widening", [2, 6, 6, 2], 1.0, 0.3, 0.5)),
    "dense8": ("8 -> 8 (4 layers) dense tanh, sigma_w 1, noise 0.4",
               lambda: random_case("dense8", [8] * 5, 1.0, 0.4, 0.5)),
    "banded8": ("8 -> 8 (4 layers) banded tanh (init 'local'), sigma_w 1, noise 0.4",
                lambda: random_case("banded8", [8] * 5, 1.0, 0.4, 0.5, init="local")),
    "dense16": ("16 -> 16 (5 layers) dense tanh, sigma_w 1.1, noise 0.25",
                lambda: random_case("dense16", [16] * 6, 1.1, 0.25, 0.5)),
}


def reference(table: dict, paths: int, seed: int = 12345) -> dict:
    """Monte Carlo mean, its standard error and conditional-density marginals
    (a function of the abscissae) of the last layer."""
    from mzpdf import load_case

    case = load_case(table)
    net, law, rng = case.network, case.input, np.random.default_rng(seed)
    total, total2, before, count = 0.0, 0.0, [], 0
    kept = 2**18  # paths of X_{L-1} kept for the conditional-density marginals
    for start in range(0, paths, 2**17):
        m = min(2**17, paths - start)
        xs = law.sample(rng, m)
        for n, layer in enumerate(net):
            if n == net.depth - 1 and count < kept:
                before.append(xs[: kept - count])
            xs = layer.forward(xs)
            if not layer.noise.is_deterministic:
                xs = xs + layer.noise.sample(rng, m)
        total, total2, count = total + xs.sum(0), total2 + (xs**2).sum(0), count + m
    mean = total / count
    se = np.sqrt(np.maximum(total2 / count - mean**2, 0.0) / count)
    last = net[net.depth - 1]
    centre = last.forward(np.concatenate(before))

    def pdf(x: np.ndarray) -> np.ndarray:
        """The conditional-density marginals on the abscissae ``x`` (one row per neuron)."""
        out = np.zeros_like(x)
        for k in range(x.shape[0]):
            for a in range(0, centre.shape[0], 4096):
                d = x[k][None, :] - centre[a:a + 4096, k:k + 1]
                out[k] += _pdf(last.noise, k, d).sum(0)
            out[k] /= centre.shape[0]
        return out

    return {"mean": mean, "se": se, "pdf": pdf}


def _pdf(noise, k: int, d: np.ndarray) -> np.ndarray:
    law = type(noise)(noise.scale[k:k + 1])
    return law.pdf(d[..., None])[..., 0]


def run(table: dict, method: str, cap: float, workdir: Path, extra: dict | None = None) -> dict:
    table = {**table, "solver": {"method": method, **(extra or {})}} if method != "auto" else dict(table)
    case = workdir / f"{table['case']['name']}-{method}.toml"
    out = case.with_suffix(".h5")
    case.write_text(tomli_w.dumps(table))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "mzpdf", "run", str(case), "-o", str(out), "--overwrite",
                               "--quiet"], capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "seconds": cap}
    seconds = time.perf_counter() - start
    result = {"status": {0: "ok", 2: "refused", 3: "exit 3"}.get(proc.returncode, f"exit {proc.returncode}"),
              "seconds": seconds, "stderr": proc.stderr.strip().splitlines()[-1:] or [""]}
    if proc.returncode in (0, 3) and out.exists():
        from mzpdf.io.hdf5 import read_results

        r = read_results(out)
        last = r.forward[-1]
        result.update(method=r.method, mean=last.mean, x=last.marginal_x, pdf=last.marginal_pdf,
                      se=last.mean_stderr, ranks=r.diagnostics.get("tt_ranks") if hasattr(r, "diagnostics") else None,
                      file=out)
    return result


def compare(result: dict, ref: dict) -> tuple[float, float]:
    se = ref["se"] if result.get("se") is None else np.hypot(ref["se"], result["se"])
    z = float(np.max(np.abs(result["mean"] - ref["mean"]) / se))
    l1 = max(float(np.trapezoid(np.abs(p - q), x))
             for x, p, q in zip(result["x"], result["pdf"], ref["pdf"](result["x"])))
    return z, l1


def cell(result: dict, ref_for) -> str:
    status = result["status"]
    if status == "timeout":
        return f"not finished in {result['seconds']:.0f} s"
    if status == "refused":
        return "refused"
    if "mean" not in result:
        return status
    z, l1 = compare(result, ref_for())
    head = "ok" if status == "ok" else "exit 3"
    return f"{head}: {result['seconds']:.1f} s, z {z:.1f}, L1 {l1:.1e}"


def method_table(args, workdir: Path) -> None:
    nets = args.nets.split(",")
    methods = args.methods.split(",")
    print("| network | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    notes = []
    for name in nets:
        label, make = NETS[name]
        table = make()
        refs = {}

        def ref_for(table=table, refs=refs):
            if "r" not in refs:
                refs["r"] = reference(table, args.paths)
            return refs["r"]

        cells = []
        for method in methods:
            if method == "auto":  # what solver.method = "auto" (no [solver] section) takes; its run is that column's
                from mzpdf import load_case

                cells.append(load_case(table).solver.method)
                continue
            result = run(table, method, args.cap, workdir)
            text = cell(result, ref_for)
            if result["status"] == "refused":
                notes.append(f"{name}/{method}: {result['stderr'][0]}")
            cells.append(text)
            print(f"  {name} {method}: {text}", file=sys.stderr, flush=True)
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    if notes:
        print("\nRefusals (exit 2, first line of the message):")
        for note in notes:
            print(f"- {note}")


def tt_dense(args, workdir: Path) -> None:
    """TT on dense tanh nets of 5 layers (noise 0.25, weights 1.1/sqrt(N) N(0,1), input std 0.5):
    gaussian weights (issue 23's family) and, as a control, orthogonal weights of the same scale."""
    print("| weights | width | largest cond(W) | result | ranks per layer |")
    print("|---|---|---|---|---|")
    from mzpdf import load_case

    for init in ("gaussian", "orthogonal"):
        for width in [int(w) for w in args.widths.split(",")]:
            table = random_case(f"ttdense{width}{init[0]}", [width] * 6, 1.1, 0.25, 0.5, init=init, seed=args.seed)
            net = load_case(table).network
            cond = max(np.linalg.cond(layer.weights) for layer in net)
            result = run(table, "tt", args.cap, workdir, {"nodes": args.nodes, "tol": args.tol})
            refs = {}
            text = cell(result, lambda: refs.setdefault("r", reference(table, args.paths)))
            ranks = ""
            if result.get("file") is not None:
                import h5py

                with h5py.File(result["file"]) as f:
                    if "diagnostics/tt_max_rank" in f:
                        ranks = " ".join(str(int(r)) for r in f["diagnostics/tt_max_rank"][1:])
            print(f"| {init} | {width} | {cond:.0f} | {text} | {ranks} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--cap", type=float, default=120.0, help="wall-time cap per run, seconds")
    parser.add_argument("--paths", type=int, default=10**6, help="Monte Carlo paths of the reference means")
    parser.add_argument("--tt-dense", action="store_true", help="the TT dense-width table instead")
    parser.add_argument("--widths", default="4,8,16,32")
    parser.add_argument("--nodes", type=int, default=16, help="--tt-dense: solver.nodes")
    parser.add_argument("--tol", type=float, default=1e-3, help="--tt-dense: solver.tol")
    parser.add_argument("--seed", type=int, default=0, help="--tt-dense: weight seed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (tt_dense if args.tt_dense else method_table)(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
