"""Every example case gives the numbers it gave before the solvers moved
behind one interface (issue: solvers as plugins).

Oracle: tests/data/case_reference.npz, written by
``python scripts/case_reference.py`` from the code before the move (commit
365a3fe). Tolerance 1e-10 relative to each array's scale: the computation is
the same sequence of floating-point operations, so the numbers agree to
round-off; a change of method, rule, box or normalization moves them by far
more (>= 1e-6 on every case here)."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from case_reference import headline, run_case  # noqa: E402

REFERENCE = np.load(ROOT / "tests" / "data" / "case_reference.npz")
CASES = sorted({name.split("/")[0] for name in REFERENCE.files})


def test_the_reference_covers_every_case():
    assert CASES == sorted(p.stem for p in (ROOT / "cases").glob("*.toml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_case_gives_the_same_numbers(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        now = headline(run_case(ROOT / "cases" / f"{name}.toml"))
    before = {k.split("/", 1)[1]: REFERENCE[k] for k in REFERENCE.files if k.startswith(name + "/")}
    assert sorted(now) == sorted(before)
    for key, value in before.items():
        scale = max(float(np.max(np.abs(value))), 1e-300) if value.size else 1.0
        np.testing.assert_allclose(now[key], value, rtol=0, atol=1e-10 * scale, err_msg=f"{name}: {key}")
