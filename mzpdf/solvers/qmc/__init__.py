"""``method = "qmc"``: randomized quasi-Monte Carlo with the conditional
density estimator (``plugin``, ``options``, ``engine``, ``_kernels``)."""
from .plugin import QuasiMonteCarlo

__all__ = ["QuasiMonteCarlo"]
