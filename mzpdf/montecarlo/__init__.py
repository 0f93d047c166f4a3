"""The Monte Carlo reference: seeded, chunked sampling with confidence intervals."""
from .sampler import MonteCarloRun, conditional_mean, simulate

__all__ = ["MonteCarloRun", "simulate", "conditional_mean"]
