"""Every example case gives the numbers of tests/data/case_reference.npz: a
change of code structure must leave them as they are.

Oracle: tests/data/case_reference.npz, written by
``python scripts/case_reference.py tests/data/case_reference.npz``. The first
reference (commit 365a3fe) held through the move of the solvers behind one
interface, bitwise; it was rewritten at commit 399f73d, where the grid's
marginals became the layers' kernel sums and its nodes refine to solver.tol
(the example cases' files changed on purpose: quickstart and tail_risk take
nodes = "auto", relu_3d and iris_classifier state their tol). The computation is the same sequence of floating-point operations,
so the numbers agree to round-off; a change of method, rule, box or
normalization moves them by far more (>= 1e-6 on every case here; even one
more node on the well-resolved linear_gaussian, 40 -> 41, moves cov_5 by
4e-10 of its scale, 4 times the tolerance). Each array is compared at
1e-10 of its own scale (:data:`RTOL`), with the scales and exceptions below.

Round-off means round-off of the BLAS kernel too. The reference was written
with OpenBLAS's own choice of kernel; on a machine that forces another
(``OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512``) the last bits of the
matrix products differ. Reproduce with

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest tests/test_case_reference.py
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python -m pytest tests/test_case_reference.py

the first gives differences of exactly 0 on every case; the second differs by
round-off, which a plain ``1e-10 * max|reference|`` took for a change in two
kinds of number (8 of the 16 cases failed):

* quantities that are 0 in exact arithmetic: the input means of centred laws
  (~1e-17, so ``1e-10 * max|mean|`` is ~1e-27) and the Mori-Zwanzig errors
  of exact, full-memory reductions (~3e-16). A mean is compared relative to
  its layer's spread (:data:`MEAN_RTOL`), an L1 error with an absolute floor
  (:data:`L1_ROUNDOFF`).
* grid marginals (linear_gaussian, mz_linear_gaussian, quickstart): they are
  stored on 201 equispaced abscissae spanning each layer's box, and the box
  is the root of an ill-conditioned function (``_target_box`` in
  mzpdf/solvers/grid/engine.py), so a last-bit change moves its ends by up to
  ~6e-7 of its width and the stored values by ``f'(x) * shift`` (up to 1e-6
  of max|pdf|) while every moment agrees to 1e-13. The abscissae are not in
  the reference file: a row that does not match directly is checked to be the
  same function on a box moved by round-off (:func:`refit_box`)."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from mzpdf.errors import SingularDensityError
from mzpdf.laws import SummaryLaw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from case_reference import headline, run_case  # noqa: E402

REFERENCE = np.load(ROOT / "tests" / "data" / "case_reference.npz")
CASES = sorted({name.split("/")[0] for name in REFERENCE.files})

# Every array: 1e-10 of its largest |entry|. Round-off (either BLAS kernel) is
# <= 1.2e-12 of it on every case (linear_gaussian pdf_2; moments <= 1e-13).
RTOL = 1e-10
# Means (mean_n): 1e-10 of the layer's scale max(sd, max|mean|), sd the square
# root of the largest diagonal entry of the reference cov_n. A mean is a
# quadrature sum of terms of size ~|mean| + sd, so that is the size of its
# round-off; relative to |mean| alone a centred layer's exact 0 (~1e-17 after
# round-off) would need agreement to 1e-27. Seen: <= 4e-14 of sd.
MEAN_RTOL = 1e-10
# Mori-Zwanzig errors (mz_error): L1 distances between marginals of mass 1,
# each a chained sum over the layer's nodes after up to L matrix-vector
# products. Where the reduction is exact (full memory) the distance is 0 in
# exact arithmetic and round-off in practice (<= 4e-16 seen, changing by up
# to 3.5e-16 with the BLAS kernel), so besides RTOL an absolute floor of
# ~500 ulps of the mass: >= 250 times the round-off seen, and 9 orders of
# magnitude below the smallest real truncation error here (5.9e-4).
L1_ROUNDOFF = 1e-13
# Marginal densities (pdf_n): a row that misses RTOL directly passes if the
# current law, sampled on 201 abscissae of a refitted box, matches it to RTOL
# of max|pdf| and the box moved by at most MAX_BOX_SHIFT of its width. Seen:
# <= 5.5e-7 (linear_gaussian, layer 5; the box ends are roots where the tail
# density is ~1e-11 of its peak, so round-off eps in the tail mass moves them
# by ~eps / (1e-11 * peak * width) ~ 1e-6 of the width). A real change of box
# is 100 times more: solver.tail 1e-12 -> 1.1e-12 in linear_gaussian moves
# every box by 9.5e-4 of its width while every moment and every refitted
# residual stays within RTOL, so this bound is what catches it.
MAX_BOX_SHIFT = 1e-5
# Gauss-Newton for the refit: central differences for f' (error ~h^2 f''',
# ~1e-8 of f', which only slows convergence: one step reaches round-off), and
# at most this many steps (it stops when the residual stops decreasing).
FIT_STEP = 1e-4
FIT_ITERATIONS = 6


def test_the_reference_covers_every_case():
    assert CASES == sorted(p.stem for p in (ROOT / "cases").glob("*.toml"))


def refit_box(marginal, row: np.ndarray, box) -> tuple[np.ndarray, float]:
    """The box ``(lo', hi')`` on whose ``len(row)`` equispaced abscissae the
    density ``marginal`` (a function of x) best matches ``row``, from
    Gauss-Newton started at ``box``, and the largest |residual| there.

    ``marginal`` is the current law's density, which vanishes outside the
    current ``box`` by convention; a fitted abscissa beyond it (by at most the
    shift) is evaluated at the box's end instead, off by ``|f'| * shift``, far
    below round-off at the box's tail (where f is ~1e-11 of its peak)."""
    lo, hi = (float(v) for v in box)
    t = np.arange(row.size) / (row.size - 1)
    h = FIT_STEP * (hi - lo)

    def f(x):
        return marginal(np.clip(x, lo, hi))

    fit = np.array([lo, hi])
    best = (fit.copy(), np.inf)
    for _ in range(FIT_ITERATIONS + 1):
        x = np.linspace(fit[0], fit[1], row.size)
        r = f(x) - row
        size = float(np.max(np.abs(r)))
        if size < best[1]:
            best = (fit.copy(), size)
        else:
            break
        xc = np.clip(x, lo + h, hi - h)
        slope = (f(xc + h) - f(xc - h)) / (2 * h)
        jac = np.column_stack([slope * (1 - t), slope * t])
        fit = fit + np.linalg.lstsq(jac, -r, rcond=None)[0]
    return best


def compare_pdf(name: str, key: str, now: np.ndarray, before: np.ndarray, results, n: int) -> list[str]:
    """Rows of ``pdf_n`` that match neither directly nor on a refitted box,
    as messages (empty: all match)."""
    atol = RTOL * max(float(np.max(np.abs(before))), 1e-300) if before.size else 0.0
    if now.shape != before.shape:
        return [f"{name}: {key}: shape {now.shape} != {before.shape}"]
    law = results.law(n)
    bad = []
    for i in np.flatnonzero(~(np.max(np.abs(now - before), axis=1, initial=0.0) <= atol)):  # NaN fails
        direct = float(np.max(np.abs(now[i] - before[i])))
        # no refit where the marginal is not a box-sampled function: a layer
        # without density (stored as -1), or a sampled method (qmc, montecarlo)
        sampled = isinstance(law, SummaryLaw) or np.any(now[i] == -1.0) or np.any(before[i] == -1.0)
        if not sampled:
            box = results.forward[n].marginal_x[i][[0, -1]]
            try:
                fit, residual = refit_box(lambda x, i=i: law.marginal(i, x), before[i], box)
            except (SingularDensityError, NotImplementedError):
                sampled = True
        if sampled:
            bad.append(f"{name}: {key}[{i}]: differs by {direct:.3g} > {atol:.3g} (no box to refit)")
            continue
        shift = float(np.max(np.abs(fit - box))) / float(box[1] - box[0])
        if not (residual <= atol and shift <= MAX_BOX_SHIFT):
            bad.append(f"{name}: {key}[{i}]: differs by {direct:.3g} > {atol:.3g}; on the refitted box "
                       f"{fit.tolist()} (shift {shift:.3g} of the width, at most {MAX_BOX_SHIFT:g}) "
                       f"by {residual:.3g}")
    return bad


def tolerance(key: str, before: dict[str, np.ndarray]) -> float:
    """The absolute tolerance of array ``key`` (module constants)."""
    value = before[key]
    size = float(np.max(np.abs(value))) if value.size else 0.0
    if key.startswith("mean_"):
        cov = before["cov_" + key.split("_", 1)[1]]
        sd = float(np.sqrt(np.max(np.diag(cov)))) if cov.size else 0.0
        return MEAN_RTOL * max(sd, size)
    if key == "mz_error":
        return max(RTOL * size, L1_ROUNDOFF)
    return RTOL * max(size, 1e-300)


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_case_gives_the_same_numbers(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_case(ROOT / "cases" / f"{name}.toml")
        now = headline(results)
    before = {k.split("/", 1)[1]: REFERENCE[k] for k in REFERENCE.files if k.startswith(name + "/")}
    assert sorted(now) == sorted(before)
    bad = []
    for key, value in before.items():
        if key.startswith("pdf_"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bad += compare_pdf(name, key, np.asarray(now[key]), value, results, int(key[4:]))
            continue
        atol = tolerance(key, before)
        if np.shape(now[key]) != value.shape:
            bad.append(f"{name}: {key}: shape {np.shape(now[key])} != {value.shape}")
            continue
        diff = float(np.max(np.abs(np.asarray(now[key]) - value))) if value.size else 0.0
        if not diff <= atol:  # NaN fails
            bad.append(f"{name}: {key}: differs by {diff:.3g} > {atol:.3g}")
    assert not bad, "\n".join(bad)
