"""Thread-pool policy: one pool at a time (a BLAS thread team woken inside a
Numba kernel's threads, or for a tiny product, costs more than it gives)."""
from __future__ import annotations

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_CONTROLLER = None


def one_blas_thread():
    """A context in which BLAS runs on one thread (threadpoolctl): the sums of
    a small transition are ~100x quicker without a thread team to wake, and
    OpenBLAS gives the same bits on one thread as on two."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
