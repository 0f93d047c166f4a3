"""mzpdf: probability densities through neural networks, and their Mori-Zwanzig reduction.

Public API
----------
Network model
    ``Layer``, ``Network``, ``random_network``, ``load_npz``, ``make_network``,
    activations ``ACTIVATIONS``; noise ``GaussianNoise``, ``UniformNoise``,
    ``LaplaceNoise``, ``NoNoise``; inputs ``GaussianInput``, ``UniformInput``,
    ``MixtureInput``, ``PointInput``.
"""
__version__ = "0.1.0"

from .errors import CaseError, MassLossWarning, MzpdfError, MzpdfWarning, ResultFileError, SingularDensityError
from .network import (
    ACTIVATIONS, Activation, GaussianInput, GaussianNoise, InputLaw, LaplaceNoise, Layer, MixtureInput,
    Network, NoiseLaw, NoNoise, PointInput, UniformInput, UniformNoise, load_npz, make_input, make_network,
    random_network,
)
