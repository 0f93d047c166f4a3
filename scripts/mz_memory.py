"""Memory of a network under Mori-Zwanzig reduction: a table per case.

For each case: kappa per layer beside its a-priori bound, the memory-kernel
norms of the deepest layer against lag with the fitted decay rate, the error
of the truncated reduced recursion (forward kept marginals in L1, backward
conditional expectations in sup norm) for memory h = 0, 1, 2, 3 and full,
and the exactness of the full-memory recursion.

    python scripts/mz_memory.py                      # the two mz_* cases
    python scripts/mz_memory.py cases/mz_reduce_tanh.toml --set solver.nodes=24
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from mzpdf import GridSolver, load_case
from mzpdf.solvers.grid.mz import reduce_network


def report(path: str, overrides: list[str]) -> None:
    case = load_case(path, overrides)
    solver = GridSolver(case.solver)
    start = time.perf_counter()
    forward = solver.propagate(case.network, case.input)
    backward = solver.pullback(forward, case.observable) if case.observable is not None else None
    solve_s = time.perf_counter() - start
    mz = reduce_network(forward, case.projection, backward)
    L = forward.depth
    print(f"\n== {case.name}: widths {case.network.widths}, {case.projection.describe()}")
    print(f"   grid solve {solve_s:.2f} s, memory kernels {mz.seconds:.2f} s; norm: {mz.norm_name}")
    print(f"{'layer':>5} {'kappa':>9} {'bound':>9} {'dobrushin':>10} {'canon.corr':>10}")
    for n in range(L):
        print(f"{n + 1:>5} {mz.kappa[n]:9.4g} {mz.kappa_bound[n]:9.4g} {mz.dobrushin[n]:10.4g} "
              f"{mz.canonical_correlation[n]:10.4g}")
    norms = mz.memory_norm()[-1]
    print("memory norm of the deepest layer by lag 1..L-1:", np.array2string(norms[1:], precision=3))
    print(f"fitted decay rate {mz.decay_rate():.3g}; largest kappa {np.max(mz.kappa):.3g}, "
          f"largest a-priori bound {np.nanmax(mz.kappa_bound) if np.any(np.isfinite(mz.kappa_bound)) else np.nan:.3g}")
    exact_f = max(np.max(np.abs(a - b)) / np.max(np.abs(b)) for a, b in zip(mz.forward(), mz.projected))
    line = f"full memory vs projected full solution: forward {exact_f:.1e}"
    if backward is not None:
        exact_b = max(np.max(np.abs(a - b)) / np.max(np.abs(b))
                      for a, b in zip(mz.backward(), mz.backward_projected))
        line += f", backward {exact_b:.1e}"
    print(line + " (relative, max over layers)")
    print(f"{'memory h':>9} {'max L1 fwd':>11} {'L1 fwd, last layer':>19}"
          + ("  max sup bwd" if backward is not None else ""))
    for h in [0, 1, 2, 3, None]:
        if h is not None and h >= L:
            continue
        err = mz.marginal_error(h)
        text = f"{'full' if h is None else h:>9} {np.max(err):11.2e} {err[-1]:19.2e}"
        if backward is not None:
            text += f"  {np.max(mz.backward_error(h)):11.2e}"
        print(text)
    print(f"smallest memory within tol {case.projection.tol:g}: h = {mz.min_memory()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["cases/mz_reduce_tanh.toml", "cases/mz_linear_gaussian.toml"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    for path in args.cases:
        report(path, args.overrides)


if __name__ == "__main__":
    main()
