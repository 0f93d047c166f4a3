"""Headline numbers of every example case, to check that a change of code
structure leaves them as they are.

    python scripts/case_reference.py tests/data/case_reference.npz
    python scripts/case_reference.py tests/data/case_reference.npz tail_risk   # add one new case

runs every ``cases/*.toml`` (the widest TT case on 3 of its 10 layers, see
``OVERRIDES``) and stores, per case, each layer's mean, covariance, mass and
marginal densities, ``q0`` and the Mori-Zwanzig errors where the case has
them. ``tests/test_case_reference.py`` reruns the cases and compares.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import mzpdf

ROOT = Path(__file__).resolve().parents[1]
# cases too slow for the test suite at full size: the overrides that keep them to seconds
OVERRIDES = {"tt_wide_tanh": ["network.random.widths=[32, 32, 32, 32]", "montecarlo.samples=20000"],
             "mz_tt_wide": ["network.random.widths=[8, 8, 8, 8]", "montecarlo.samples=20000"]}


def headline(results) -> dict[str, np.ndarray]:
    """The numbers of ``results`` that a user reads, flattened to named arrays."""
    out = {}
    for n, layer in enumerate(results.forward):
        out[f"mean_{n}"] = layer.mean
        out[f"cov_{n}"] = layer.cov
        out[f"mass_{n}"] = np.float64(layer.mass)
        out[f"pdf_{n}"] = np.where(np.isfinite(layer.marginal_pdf), layer.marginal_pdf, -1.0)
    if results.backward is not None:
        out["q0"] = results.backward.q0
        out["backward_mean"] = np.float64(results.backward.mean)
    if results.backward is not None and getattr(results.backward, "exceedance", None) is not None:
        out["exceedance"] = np.asarray(results.backward.exceedance)
    if results.mz is not None:
        out["mz_error"] = np.asarray(results.mz.error)
    return out


def run_case(path: Path):
    case = mzpdf.load_case(path, OVERRIDES.get(path.stem, []))
    return mzpdf.run(case)


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "tests" / "data" / "case_reference.npz"
    only = set(argv[2:])  # named cases are (re)computed and merged into the file's other cases, kept as they are
    arrays = {k: v for k, v in np.load(target).items() if k.split("/")[0] not in only} if only else {}
    for path in sorted((ROOT / "cases").glob("*.toml")):
        if only and path.stem not in only:
            continue
        start = time.perf_counter()
        for name, value in headline(run_case(path)).items():
            arrays[f"{path.stem}/{name}"] = value
        print(f"{path.stem}: {time.perf_counter() - start:.1f} s", flush=True)
    np.savez_compressed(target, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
