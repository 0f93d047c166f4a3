"""Memory guard: estimate what a case needs before allocating anything, and
refuse (naming the key to change) a case that would not fit.

The estimates count the arrays a solve keeps alive at its peak; they are
upper bounds to within a small factor, which is what a refusal needs: a case
flagged here would have been killed by the operating system instead.
"""
from __future__ import annotations

import os
import sys

from .errors import CaseError

__all__ = ["available_bytes", "estimate_bytes", "check_memory", "format_bytes"]

_BYTES = 8  # float64 and int64
_DENSE_BLOCK_BYTES = 64 * 2**20  # GridTransition's largest dense block
_BASE_BYTES = 300 * 2**20  # the interpreter, numpy, numba and their caches


def available_bytes() -> int:
    """Memory available to a new allocation: ``MemAvailable`` of
    ``/proc/meminfo`` where there is one, else the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 2**62


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def _grid_bytes(widths, nodes: int, threads: int, projection) -> int:
    sizes = [nodes**w for w in widths]
    total = _DENSE_BLOCK_BYTES
    for n, (size, width) in enumerate(zip(sizes, widths)):
        total += _BYTES * size * (3 + width)  # values, weights, backward values, points
        if n + 1 < len(widths):
            total += _BYTES * size * (3 * widths[n + 1] + 1)  # mapped, windows, in-box mass
    total += _BYTES * max(sizes) * threads  # per-thread sums of the windowed kernel
    if projection is not None:
        reduced = nodes ** len(projection.keep) if projection.kind == "chorin" else 1 + len(projection.keep) * (
            len(projection.keep) + 3) // 2
        columns = (len(widths) - 1) * reduced + 1
        total += 3 * _BYTES * max(sizes) * columns  # stacked, pushed and in-flight columns
    return total


def _threads() -> int:
    """Numba's thread count, without importing Numba when it is not loaded yet
    (its default is the CPUs this process may use, or NUMBA_NUM_THREADS)."""
    numba = sys.modules.get("numba")
    if numba is not None:
        return numba.get_num_threads()
    try:
        return int(os.environ["NUMBA_NUM_THREADS"])
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def estimate_bytes(case) -> int:
    """Peak memory of running ``case`` (a validated Case), in bytes."""
    widths = case.network.widths
    method = case.solver.method
    total = _BASE_BYTES
    if method == "grid":
        total += _grid_bytes(widths, case.solver.nodes, _threads(), case.projection)
    if method == "tt":  # cores of every layer at up to 4 x nodes, plus one batched contraction
        opt = case.solver
        total += 64 * 2**20 + sum(_BYTES * w * 4 * opt.nodes * opt.max_rank**2 for w in widths)
    if method == "montecarlo" or case.montecarlo is not None:
        opt = case.solver if method == "montecarlo" else case.montecarlo
        total += 4 * _BYTES * opt.chunk * max(widths)
    return total


def check_memory(case, available: int | None = None) -> int:
    """Raise a CaseError naming the key to change if ``case`` needs more memory
    than is available; return the estimate otherwise. Costs microseconds."""
    need = estimate_bytes(case)
    have = available_bytes() if available is None else available
    if need <= have:
        return need
    method = case.solver.method
    if method == "grid":
        rule = (f"needs about {format_bytes(need)} ({case.solver.nodes} nodes per neuron on layers of up to "
                f"{max(case.network.widths)} neurons), more than the {format_bytes(have)} available: lower "
                "solver.nodes, or use solver.method = 'tt' for wide layers")
        raise CaseError("solver.nodes", rule, case.solver.nodes)
    key = "solver.chunk" if method == "montecarlo" else "montecarlo.chunk"
    raise CaseError(key, f"needs about {format_bytes(need)}, more than the {format_bytes(have)} available: "
                         "lower the chunk", need)
