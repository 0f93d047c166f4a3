"""Layer operators on grids: transfer (forward, densities) and Koopman
(backward, observables), an adjoint pair built on one GridTransition."""
from ._kernels import fill_factor_tables
from .transfer import GridTransition, KoopmanOperator, TransferOperator, assemble_transition

__all__ = ["GridTransition", "TransferOperator", "KoopmanOperator", "assemble_transition", "fill_factor_tables"]
