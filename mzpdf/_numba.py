"""The one place where numba's decorator policy is set.

``cache=True`` everywhere: compiled kernels are written next to the source and
reused by later processes, which removes most of the JIT start-up cost from the
second run on. ``parallel=True`` is used only by kernels whose benchmark
(``scripts/bench_grid.py``) shows that threads pay. ``fastmath`` stays off: the
kernels promise agreement with their NumPy twins to round-off.
"""
from __future__ import annotations

import numba

__all__ = ["jit", "jit_inline", "jit_parallel", "prange", "num_threads"]

prange = numba.prange


def jit(func):
    """Compile a serial kernel (nopython, cached)."""
    return numba.njit(cache=True, nogil=True)(func)


def jit_inline(func):
    """Compile a small helper that numba inlines into its callers (its loops
    then optimize together with theirs)."""
    return numba.njit(cache=True, nogil=True, inline="always")(func)


def jit_parallel(func):
    """Compile a threaded kernel (nopython, cached, ``parallel=True``)."""
    return numba.njit(cache=True, nogil=True, parallel=True)(func)


def num_threads() -> int:
    """Number of threads numba's parallel kernels will use."""
    return numba.get_num_threads()
