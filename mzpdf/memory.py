"""Memory facts every method's guard uses: what is available, the
interpreter's share, Numba's thread count, and the refusal of a solve called
from Python that would not fit (the guard of a case is
:func:`mzpdf.solvers.registry.check_memory`).

The estimates count the arrays a solve keeps alive at its peak; they are
upper bounds to within a small factor, which is what a refusal needs: a case
flagged here would have been killed by the operating system instead.
"""
from __future__ import annotations

import os
import sys

from .errors import MzpdfError

__all__ = ["BASE_BYTES", "available_bytes", "format_bytes", "numba_threads", "require_memory"]

BASE_BYTES = 300 * 2**20  # the interpreter, numpy, numba and their caches


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


def require_memory(need: int, what: str) -> None:
    """Raise an MzpdfError, before anything is allocated, if ``need`` bytes
    for ``what`` (plus the interpreter's share) are not available: the guard
    of the solvers called from Python."""
    have = available_bytes()
    if BASE_BYTES + need > have:
        raise MzpdfError(f"{what} needs about {format_bytes(BASE_BYTES + need)}, more than the "
                         f"{format_bytes(have)} available")
