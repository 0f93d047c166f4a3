"""Issue 25's acceptance numbers: exceedance probabilities of a linear-gaussian
3-neuron net of 4 layers against the closed form at 3, 5 and 7 sigma (with the
stored error bound beside the true error), and of the noisy tanh net of
cases/tail_risk.toml against a 2e6-path conditional Monte Carlo (z-scores).

    python scripts/tails_acceptance.py        # ~1 min on 2 cores

The nets are those of tests/test_tails.py, which asserts the same numbers.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy import special

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import mzpdf  # noqa: E402
import test_tails as t  # noqa: E402


def main() -> int:
    start = time.perf_counter()
    results, mu, sd, _, _ = t.linear_gaussian.__wrapped__()
    back = results.backward
    exact = special.ndtr(-t.SIGMAS)
    print(f"linear-gaussian net, 40 nodes ({time.perf_counter() - start:.1f} s)")
    print(f"{'t':>8} {'P':>22} {'exact':>22} {'rel. error':>11} {'bound':>9} {'bound/true':>10}")
    for k, p, e, x in zip(t.SIGMAS, back.exceedance, back.exceedance_error, exact):
        print(f"{k:6.0f} s {p:22.15e} {x:22.15e} {abs(p / x - 1):11.2e} {e:9.2e} {e / abs(p - x):10.3g}")
    q_exact = mu + sd * special.ndtri(back.quantile_levels)
    for q, v, x in zip(back.quantile_levels, back.quantiles, q_exact):
        print(f"  quantile {q:<10g} {v:.12f} exact {x:.12f} error {abs(v - x) / sd:.1e} sigma")
    start = time.perf_counter()
    case = mzpdf.load_case(ROOT / "cases" / "tail_risk.toml", [f"observable.thresholds={t.T_TANH}"])
    back = mzpdf.run(case).backward
    mc = t._conditional_montecarlo(t.T_TANH, np.random.default_rng(20261204))
    print(f"tanh net (cases/tail_risk.toml), 40 nodes, against {t.PATHS:.0e} conditional Monte Carlo paths "
          f"({time.perf_counter() - start:.1f} s)")
    print(f"{'t':>6} {'P':>12} {'bound':>9} {'MC':>12} {'MC stderr':>10} {'z':>6}")
    for th, p, e, (m, s) in zip(t.T_TANH, back.exceedance, back.exceedance_error, mc):
        print(f"{th:6.2f} {p:12.5e} {e:9.2e} {m:12.5e} {s:10.2e} {(p - m) / s:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
