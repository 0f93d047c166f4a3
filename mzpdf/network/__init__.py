"""The network model of SPEC section 1: activations, noise laws, input laws,
layers and networks; importers that turn ONNX files and scikit-learn models
into networks (PyTorch: :mod:`mzpdf.network.torch_model`)."""
from .activations import ACTIVATIONS, Activation, make_activation
from .inputs import INPUT_LAWS, GaussianInput, InputLaw, MixtureInput, PointInput, UniformInput, make_input
from .loading import load_npz, make_network
from .network import ComposedLayer, Layer, Network, make_layer, random_network
from .noise import NOISE_LAWS, GaussianNoise, LaplaceNoise, NoiseLaw, NoNoise, UniformNoise, make_noise
from .onnx_model import load_onnx
from .sklearn_model import from_sklearn

__all__ = [
    "ACTIVATIONS", "Activation", "make_activation",
    "INPUT_LAWS", "InputLaw", "GaussianInput", "UniformInput", "MixtureInput", "PointInput", "make_input",
    "ComposedLayer", "Layer", "Network", "make_layer", "make_network", "random_network", "load_npz",
    "NOISE_LAWS", "NoiseLaw", "GaussianNoise", "UniformNoise", "LaplaceNoise", "NoNoise", "make_noise",
    "load_onnx", "from_sklearn",
]
