"""Memory guard: estimate what a case needs before allocating anything, and
refuse (naming the key to change) a case that would not fit.

The estimates count the arrays a solve keeps alive at its peak; they are
upper bounds to within a small factor, which is what a refusal needs: a case
flagged here would have been killed by the operating system instead.
"""
from __future__ import annotations

import os
import sys

__all__ = ["BASE_BYTES", "available_bytes", "estimate_bytes", "check_memory", "format_bytes", "grid_bytes", "numba_threads", "require_memory"]

BASE_BYTES = 300 * 2**20  # the interpreter, numpy, numba and their caches
_DENSE_BLOCK_BYTES = 64 * 2**20  # GridTransition's largest dense block


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


def numba_threads() -> int:
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
    """Peak memory of running ``case`` (a validated Case), in bytes: the
    method's own estimate (:meth:`mzpdf.solvers.Solver.estimate_bytes`), the
    Monte Carlo reference and the interpreter."""
    from .solvers import estimate_bytes as estimate

    return estimate(case)


def check_memory(case, available: int | None = None) -> int:
    """Raise a CaseError naming the key to change if ``case`` needs more memory
    than is available; return the estimate otherwise. Costs microseconds."""
    from .solvers import check_memory as check

    return check(case, available)


def require_memory(need: int, what: str) -> None:
    """Raise an MzpdfError, before anything is allocated, if ``need`` bytes
    for ``what`` (plus the interpreter's share) are not available: the guard
    of the solvers called from Python."""
    from .errors import MzpdfError

    have = available_bytes()
    if BASE_BYTES + need > have:
        raise MzpdfError(f"{what} needs about {format_bytes(BASE_BYTES + need)}, more than the "
                         f"{format_bytes(have)} available")


def grid_bytes(widths, nodes: int, threads: int, columns: int = 0, hidden: int = 0) -> int:
    """Peak bytes of a grid solve on layers of ``widths`` neurons with
    ``nodes`` per neuron and ``threads`` Numba threads; ``columns`` extra
    vectors of the largest layer's size held at once (the memory kernels of a
    Mori-Zwanzig reduction).

    With noiseless layers ``widths`` are the widths of the laws with
    densities (:attr:`mzpdf.network.Network.state_widths`: the input and the
    noisy layers), never the hidden ones, and ``hidden`` is the widest
    noiseless layer, whose values the composed map holds at every node of a
    grid (twice: its input and its output)."""
    sizes = [float(nodes) ** w for w in widths]
    total = _DENSE_BLOCK_BYTES
    for n, (size, width) in enumerate(zip(sizes, widths)):
        total += 8 * size * (3 + width)  # values, weights, backward values, points
        if n + 1 < len(widths):
            total += 8 * size * (3 * widths[n + 1] + 1)  # mapped, windows, in-box mass
    total += 8 * max(sizes) * threads  # per-thread sums of the windowed kernel
    total += 3 * 8 * max(sizes) * columns  # stacked, pushed and in-flight columns
    total += 2 * 8 * max(sizes) * hidden  # a composed map's intermediate layers at a grid's nodes
    return int(min(total, 2.0**62))
