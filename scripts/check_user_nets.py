"""Networks as users hold them, through the command line with no [solver]
section (``method = "auto"``): the measured numbers of issue 22's acceptance.

    python scripts/check_user_nets.py [OUTDIR]

- cases/iris_classifier.toml (4 -> 8 -> 8 -> 3, noise 0.05 on every layer,
  input std 0.1 cm): every output mean against the 1e6-path Monte Carlo
  reference stored beside it, in joint standard errors, and every standard
  deviation's relative difference; the wall time of the whole run.
- cases/surrogate_uq.toml (3 -> 32 -> 32 -> 1, deterministic hidden layers,
  input std 0.3, output noise 0.05), when it exists: the output density's L1
  distance to the conditional-density Monte Carlo reference stored beside it.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(case: Path, out: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mzpdf", "run", str(case), "-o", str(out), "--overwrite",
                           "--quiet"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{case.name}: exit {proc.returncode}\n{proc.stderr}")
    return seconds


def main(argv: list[str]) -> int:
    from mzpdf.io.hdf5 import read_results

    outdir = Path(argv[1]) if len(argv) > 1 else Path("user-nets")
    outdir.mkdir(exist_ok=True)
    iris = ROOT / "cases" / "iris_classifier.toml"
    seconds = run(iris, outdir / "iris.h5")
    r = read_results(outdir / "iris.h5")
    last, mc = r.forward[-1], r.montecarlo[-1]
    se = np.sqrt(last.mean_stderr**2 + mc.mean_stderr**2) if last.mean_stderr is not None else mc.mean_stderr
    z = (last.mean - mc.mean) / se
    sd, sd_mc = np.sqrt(np.diag(last.cov)), np.sqrt(np.diag(mc.cov))
    print(f"iris_classifier: method {r.method} ({r.method_reason.split(';')[0]}), {seconds:.1f} s wall")
    print(f"  output means {np.array2string(last.mean, precision=5)}, Monte Carlo {np.array2string(mc.mean, precision=5)}")
    print(f"  z (joint standard errors) {np.array2string(z, precision=2)}; |mean difference| "
          f"{np.array2string(np.abs(last.mean - mc.mean), formatter={'float_kind': '{:.1e}'.format})}")
    print(f"  sd relative difference {np.array2string(sd / sd_mc - 1, precision=4)}")
    surrogate = ROOT / "cases" / "surrogate_uq.toml"
    if surrogate.exists():
        seconds = run(surrogate, outdir / "surrogate.h5")
        r = read_results(outdir / "surrogate.h5")
        last, mc = r.forward[-1], r.montecarlo[-1]
        x = last.marginal_x[0]
        l1 = float(np.trapezoid(np.abs(last.marginal_pdf[0] - mc.marginal_pdf[0]), x))
        print(f"surrogate_uq: method {r.method} ({r.method_reason.split(';')[0]}), {seconds:.1f} s wall")
        print(f"  output density L1 distance to the Monte Carlo reference: {l1:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
