"""The activations added in issue 28 (gelu, silu, elu) and issue 39 (gelu_tanh).

mzpdf evaluates activations with vectorized NumPy/SciPy functions
(``Activation.fn`` and ``Activation.derivative``, used by every solver; there
is no numba activation kernel). Oracle: a readable scalar twin written with
the ``math`` module only, on random inputs, including the far tails where a
naive formula loses accuracy. Tolerances: 4 ulp of ``max(|twin|, 1)`` for
values and derivatives (the two sides evaluate different formulas, each to
about one ulp of their O(1) terms; a derivative crosses zero, where only an
absolute bound makes sense), and 1e-12 relative for the values themselves
(tails down to 1e-299: the twin's erfc/expm1 and SciPy's ndtr/expit agree to
a few hundred ulp there, measured 2.4e-13; subnormal results are left to
the absolute bound).
"""
import math

import numpy as np
import pytest

from mzpdf.errors import CaseError
from mzpdf.network import make_activation, make_layer

ULP_TOL = 4 * np.finfo(float).eps
TAIL_REL_TOL = 1e-12


def _gelu(x):
    return x * 0.5 * math.erfc(-x / math.sqrt(2.0))


def _gelu_d(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0)) + x * math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


_C, _A = math.sqrt(2.0 / math.pi), 0.044715  # the tanh approximation of GELU (torch, ONNX Gelu)


def _gelu_tanh(x):  # x (1 + tanh u) / 2 = x sigmoid(2 u): no cancellation in the far negative tail
    return x * _sig(2.0 * _C * (x + _A * x ** 3))


def _gelu_tanh_d(x):
    s = _sig(2.0 * _C * (x + _A * x ** 3))
    return s + 2.0 * x * s * (1.0 - s) * _C * (1.0 + 3.0 * _A * x * x)


def _silu(x):
    return x * _sig(x)


def _silu_d(x):
    return _sig(x) * (1.0 + x * (1.0 - _sig(x)))


def _elu(x, a=0.7):
    return x if x > 0 else a * math.expm1(x)


def _elu_d(x, a=0.7):
    return 1.0 if x > 0 else a * math.exp(x)


TWINS = {"gelu": ({}, _gelu, _gelu_d), "silu": ({}, _silu, _silu_d), "elu": ({"alpha": 0.7}, _elu, _elu_d),
         "gelu_tanh": ({}, _gelu_tanh, _gelu_tanh_d)}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_vectorized_activation_matches_its_scalar_twin(name):
    params, fn, d = TWINS[name]
    act = make_activation(name, **params)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(size=2000) * 3.0, rng.uniform(-40.0, 40.0, 500), [0.0, -1e-300, 1e-300]])
    for vector, scalar in ((act(x), fn), (act.derivative(x), d)):
        twin = np.array([scalar(float(v)) for v in x])
        assert np.all(np.abs(vector - twin) <= ULP_TOL * np.maximum(np.abs(twin), 1.0)), name
    values = np.array([fn(float(v)) for v in x])
    normal = np.abs(values) >= np.finfo(float).tiny  # below it the twin returns subnormals, SciPy 0
    assert np.all(np.abs(act(x)[normal] / values[normal] - 1) <= TAIL_REL_TOL), name


@pytest.mark.parametrize("name", ["gelu", "silu", "gelu_tanh"])
def test_range_encloses_the_minimum(name):
    # oracle: a dense scan; the registered lower end is the minimum rounded down at 1e-12
    act = make_activation(name)
    y = act(np.linspace(-3.0, 0.0, 3_000_001))
    lo = act.range[0]
    assert lo <= y.min() <= lo + 1e-11
    assert not act.monotone


def test_elu_alpha_is_a_layer_key_and_round_trips():
    layer = make_layer({"weights": [[1.0]], "activation": "elu", "alpha": 0.5, "noise": {"kind": "none"}})
    assert layer.activation.params == {"alpha": 0.5}
    assert make_layer(layer.to_dict()).activation.params == {"alpha": 0.5}
    with pytest.raises(CaseError) as err:
        make_layer({"weights": [[1.0]], "activation": "tanh", "alpha": 0.5}, "network.layers[0]")
    assert err.value.key == "network.layers[0].alpha"
