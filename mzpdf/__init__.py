"""mzpdf: probability densities through neural networks, and their Mori-Zwanzig reduction.

Public API
----------
Pipeline
    ``load_case(path, overrides)`` -> Case; ``run(case)`` -> Results;
    ``solve(network, input_law, method="auto", tol=1e-3, **options)`` ->
    the same Results without a case file;
    ``write_results(results, path)``, ``read_results(path)``.
Network model
    ``Layer``, ``Network``, ``random_network``, ``load_npz``, ``make_network``;
    noise ``GaussianNoise``, ``UniformNoise``, ``LaplaceNoise``, ``NoNoise``;
    inputs ``GaussianInput``, ``UniformInput``, ``MixtureInput``, ``PointInput``;
    observables ``NeuronObservable``, ``LinearObservable``.
Model importers (noise: one law, or a list of one per layer; None = deterministic)
    PyTorch ``from_torch(model, noise)``, ``load_torch(path, noise)`` (extra
    ``[torch]``); scikit-learn ``from_sklearn(model, noise, output="logits")``
    (MLPRegressor, MLPClassifier); ONNX ``load_onnx(path, noise)`` (extra
    ``[onnx]``).
Solvers
    ``SOLVERS`` (the method registry: name -> :class:`Solver` subclass with
    ``capabilities``, ``check_case``, ``estimate_bytes``), ``Solution`` and
    ``Law`` (``results.law(n)``: mean, cov, mass, marginal, joint);
    ``GridSolver`` (tensor grids: ``propagate`` densities forward, ``pullback``
    observables backward), ``TensorGrid``, ``GridFunction``, ``SparseGrid``,
    ``TransferOperator``, ``KoopmanOperator``; Monte Carlo ``simulate``,
    ``conditional_mean``.
Errors
    ``MzpdfError``, ``CaseError`` (a ValueError naming the dotted key),
    ``SingularDensityError``, ``ResultFileError``; warnings ``MzpdfWarning``,
    ``MassLossWarning``, ``NumericalHealthWarning``.
"""
__version__ = "0.1.0"

from ._lazy import lazy_exports

# Public name -> the module that defines it. Submodules are imported on first
# use (PEP 562), so that ``mzpdf validate`` or a refusal by the memory guard
# does not pay for SciPy's and Numba's imports.
_EXPORTS = {
    "discretization": ("GridFunction", "SparseGrid", "TensorGrid"),
    "errors": ("BackendWarning", "CaseError", "MassLossWarning", "MzpdfError", "MzpdfWarning", "NumericalHealthWarning",
               "ResultFileError", "SingularDensityError"),
    "io.case": ("Case", "load_case"),
    "io.hdf5": ("read_results", "write_results"),
    "solvers.montecarlo.engine": ("conditional_mean", "simulate"),
    "network": ("ACTIVATIONS", "Activation", "GaussianInput", "GaussianNoise", "InputLaw", "LaplaceNoise", "Layer",
                "MixtureInput", "Network", "NoiseLaw", "NoNoise", "PointInput", "UniformInput", "UniformNoise",
                "load_npz", "make_input", "make_network", "random_network"),
    "observables": ("LinearObservable", "NeuronObservable", "Observable"),
    "solvers.grid.transfer": ("KoopmanOperator", "TransferOperator"),
    "solvers.grid.engine": ("BackwardSolution", "ForwardSolution", "GridSolver"),
    "solvers.grid.options": ("GridOptions",),
    "solvers.montecarlo.options": ("MonteCarloOptions",),
    "results": ("Results",),
    "solvers": ("SOLVERS", "Capabilities", "Solution", "Solver"),
    "laws": ("Law",),
    "pipeline": ("run", "solve"),
    "network.torch_model": ("from_torch", "load_torch"),
    "network.sklearn_model": ("from_sklearn",),
    "network.onnx_model": ("load_onnx",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
