"""Depth theory: mean-field maps of wide random networks (issue 9)."""
from .meanfield import MeanField, critical_sigma_w, gaussian_expectation, gaussian_expectation2

__all__ = ["MeanField", "critical_sigma_w", "gaussian_expectation", "gaussian_expectation2"]
from .distances import cutoff, distances_1d, distances_grid

__all__ += ["cutoff", "distances_1d", "distances_grid"]
from .lyapunov import lyapunov_exponents

__all__ += ["lyapunov_exponents"]
from .annealed import AnnealedChain

__all__ += ["AnnealedChain"]
