"""``method = "montecarlo"`` and the Monte Carlo reference: seeded, chunked
sampling with confidence intervals (``engine``, ``_kernels``)."""
from .plugin import MonteCarlo

__all__ = ["MonteCarlo"]
