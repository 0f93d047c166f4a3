"""mzpdf: probability densities through neural networks, and their Mori-Zwanzig reduction.

Public API
----------
Pipeline
    ``load_case(path, overrides)`` -> Case; ``run(case)`` -> Results;
    ``write_results(results, path)``, ``read_results(path)``.
Network model
    ``Layer``, ``Network``, ``random_network``, ``load_npz``, ``make_network``;
    noise ``GaussianNoise``, ``UniformNoise``, ``LaplaceNoise``, ``NoNoise``;
    inputs ``GaussianInput``, ``UniformInput``, ``MixtureInput``, ``PointInput``;
    observables ``NeuronObservable``, ``LinearObservable``.
Solvers
    ``GridSolver`` (tensor grids: ``propagate`` densities forward, ``pullback``
    observables backward), ``TensorGrid``, ``GridFunction``,
    ``TransferOperator``, ``KoopmanOperator``; Monte Carlo ``simulate``,
    ``conditional_mean``.
Errors
    ``MzpdfError``, ``CaseError`` (a ValueError naming the dotted key),
    ``SingularDensityError``, ``ResultFileError``; warnings ``MzpdfWarning``,
    ``MassLossWarning``, ``NumericalHealthWarning``.
"""
__version__ = "0.1.0"

from .discretization import GridFunction, TensorGrid
from .errors import (
    CaseError, MassLossWarning, MzpdfError, MzpdfWarning, NumericalHealthWarning, ResultFileError,
    SingularDensityError,
)
from .io.case import Case, load_case
from .io.hdf5 import read_results, write_results
from .montecarlo import conditional_mean, simulate
from .network import (
    ACTIVATIONS, Activation, GaussianInput, GaussianNoise, InputLaw, LaplaceNoise, Layer, MixtureInput,
    Network, NoiseLaw, NoNoise, PointInput, UniformInput, UniformNoise, load_npz, make_input, make_network,
    random_network,
)
from .observables import LinearObservable, NeuronObservable, Observable
from .operators import KoopmanOperator, TransferOperator
from .operators.solve import BackwardSolution, ForwardSolution, GridSolver
from .options import GridOptions, MonteCarloOptions
from .results import Results
from .run import run

__all__ = [name for name in dir() if not name.startswith("_")]
