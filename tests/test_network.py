"""Network model: registries walked, laws checked against quadrature and
closed forms, errors naming their keys."""
import numpy as np
import pytest
from scipy import integrate

import mzpdf
from mzpdf.errors import CaseError
from mzpdf.network import ACTIVATIONS, NOISE_LAWS, make_activation, make_input, make_network, make_noise

# Finite differences with step 1e-6 are accurate to ~1e-9 for smooth functions.
FD_TOL = 1e-7
# scipy.integrate.quad at default tolerances is good to ~1e-10 here.
QUAD_TOL = 1e-8


@pytest.mark.parametrize("name", ACTIVATIONS.names())
def test_activation_derivative_and_range(name):
    act = make_activation(name)
    x = np.linspace(-4, 4, 801)
    x = x[np.abs(x) > 1e-3]  # relu kinks at 0
    h = 1e-6
    fd = (act(x + h) - act(x - h)) / (2 * h)
    assert np.allclose(act.derivative(x), fd, atol=FD_TOL)
    y = act(np.linspace(-50, 50, 1001))
    lo, hi = act.range
    assert np.all(y >= lo) and np.all(y <= hi)


def test_unknown_activation_lists_valid_names():
    with pytest.raises(CaseError) as err:
        make_activation("tanhh", key="network.layers[1].activation")
    assert err.value.key == "network.layers[1].activation"
    assert "tanh" in str(err.value)


def _law(kind):
    param = NOISE_LAWS.get(kind).parameter
    return make_noise({"kind": kind, param: 0.7}, 1)


@pytest.mark.parametrize("kind", [k for k in NOISE_LAWS.names() if k != "none"])
def test_noise_pdf_cdf_variance_by_quadrature(kind):
    law = _law(kind)
    pdf = lambda z: law.pdf(np.array([[z]]))[0, 0]  # noqa: E731
    pts = [-0.7, 0.0, 0.7]
    mass = integrate.quad(pdf, -30, 30, points=pts, limit=200)[0]
    var = integrate.quad(lambda z: z * z * pdf(z), -30, 30, points=pts, limit=200)[0]
    assert abs(mass - 1) < QUAD_TOL
    assert abs(var - law.variance()[0]) < QUAD_TOL
    for z in (-1.3, -0.2, 0.4, 2.0):
        cdf_quad = integrate.quad(pdf, -30, z, points=[p for p in pts if p < z], limit=200)[0]
        assert abs(law.cdf(np.array([[z]]))[0, 0] - cdf_quad) < QUAD_TOL
    tail = 1e-9
    r = law.tail_radius(tail)[0]
    assert law.cdf(np.array([[-r]]))[0, 0] <= tail * (1 + 1e-6)


@pytest.mark.parametrize("kind", [k for k in NOISE_LAWS.names() if k != "none"])
def test_noise_samples_have_the_law_variance(kind):
    # Oracle: sample variance of n = 2e5 draws; its standard error is
    # sqrt((m4 - s^4) / n) < 3 s^2 / sqrt(n) for these laws; allow 5 of them.
    law = _law(kind)
    n = 200_000
    x = law.sample(np.random.default_rng(1), n)[:, 0]
    s2 = law.variance()[0]
    assert abs(x.var() - s2) < 5 * 3 * s2 / np.sqrt(n)


def test_noise_errors_name_the_key():
    with pytest.raises(CaseError) as err:
        make_noise({"kind": "gaussian", "std": -0.1}, 2, "network.layers[2].noise")
    assert err.value.key == "network.layers[2].noise.std"
    with pytest.raises(CaseError) as err:
        make_noise({"kind": "gaussian", "std": [0.1, 0.2, 0.3]}, 2, "network.layers[0].noise")
    assert err.value.key == "network.layers[0].noise.std"
    with pytest.raises(CaseError) as err:
        make_noise({"kind": "uniform", "std": 0.1}, 2, "noise")
    assert err.value.key == "noise.std"


def test_input_box_holds_all_but_tail():
    law = make_input({"kind": "gaussian", "mean": [1.0, -2.0], "cov": [[0.5, 0.1], [0.1, 0.2]]})
    box = law.box(1e-10)
    assert law.tail_mass(box) == pytest.approx(4e-10, rel=1e-6)
    u = make_input({"kind": "uniform", "low": [0, 0], "high": [1, 2]})
    assert u.tail_mass(u.box(1e-10)) == 0.0


def test_mixture_moments_match_samples():
    # Oracle: law of total variance; Monte Carlo check within 5 standard errors.
    law = make_input({"kind": "mixture", "weights": [1, 3],
                      "components": [{"mean": [-1.0], "std": 0.3}, {"mean": [2.0], "std": 0.5}]})
    assert law.mean()[0] == pytest.approx(0.25 * -1 + 0.75 * 2)
    assert law.cov()[0, 0] == pytest.approx(0.25 * 0.09 + 0.75 * 0.25 + 0.25 * 0.75 * 9)
    x = law.sample(np.random.default_rng(0), 100_000)[:, 0]
    assert abs(x.mean() - law.mean()[0]) < 5 * np.sqrt(law.cov()[0, 0] / x.size)


def test_network_widths_must_chain():
    layers = [
        {"weights": [[1.0, 0.0], [0.0, 1.0]], "activation": "tanh", "noise": {"kind": "gaussian", "std": 0.1}},
        {"weights": [[1.0, 0.0, 0.0]], "activation": "tanh", "noise": {"kind": "gaussian", "std": 0.1}},
    ]
    with pytest.raises(CaseError) as err:
        make_network({"layers": layers})
    assert err.value.key == "network.layers[1].weights"


def test_random_network_is_reproducible_and_scaled():
    a = mzpdf.random_network([4, 300, 2], "relu", sigma_w=2.0, sigma_b=0.5, seed=3)
    b = mzpdf.random_network([4, 300, 2], "relu", sigma_w=2.0, sigma_b=0.5, seed=3)
    assert np.array_equal(a[1].weights, b[1].weights)
    # W_ij ~ N(0, sigma_w^2 / N_in): variance of 600 entries within 4 standard errors.
    w = a[1].weights.ravel()
    expected = 4.0 / 300
    assert abs(w.var() - expected) < 4 * expected * np.sqrt(2 / w.size)


def test_npz_network_round_trip(tmp_path):
    net = mzpdf.random_network([2, 3, 1], "tanh", seed=1, noise={"kind": "gaussian", "std": 0.1})
    arrays = {}
    for n, layer in enumerate(net):
        arrays[f"W{n}"], arrays[f"b{n}"] = layer.weights, layer.bias
    np.savez(tmp_path / "w.npz", **arrays)
    loaded = make_network({"file": "w.npz", "activation": "tanh", "noise": {"kind": "gaussian", "std": 0.1}},
                          base_dir=tmp_path)
    x = np.random.default_rng(0).standard_normal((5, 2))
    assert np.array_equal(loaded.forward(x), net.forward(x))


def test_residual_layer_map():
    W = np.array([[0.5, -0.2], [0.1, 0.3]])
    layer = mzpdf.Layer(W, np.zeros(2), "tanh", mzpdf.GaussianNoise(np.array([0.1])), kind="residual", step=0.5)
    x = np.array([[0.3, -0.4]])
    assert np.allclose(layer.forward(x), x + 0.5 * np.tanh(x @ W.T))
    with pytest.raises(CaseError) as err:
        mzpdf.Layer(np.ones((3, 2)), np.zeros(3), "tanh", mzpdf.GaussianNoise(np.array([0.1])), kind="residual")
    assert err.value.key.endswith(".weights")


def test_local_init_is_orthogonal_and_banded():
    """init = "local": W = sigma_w G_odd G_even is orthogonal up to sigma_w
    (W W^T = sigma_w^2 I to round-off) and couples each neuron only to
    neighbours within distance 2; reproducible from the seed; square only."""
    net = mzpdf.random_network([9, 9, 9], "tanh", sigma_w=0.8, seed=4, init="local")
    for layer in net:
        W = layer.weights
        assert np.allclose(W @ W.T, 0.64 * np.eye(9), atol=1e-14)
        i, j = np.nonzero(np.abs(W) > 0)
        assert np.max(np.abs(i - j)) <= 2 and np.count_nonzero(np.abs(W) > 1e-3) > 2 * 9
    again = mzpdf.random_network([9, 9, 9], "tanh", sigma_w=0.8, seed=4, init="local")
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(net, again))
    with pytest.raises(CaseError) as info:
        mzpdf.random_network([9, 8], "tanh", init="local")
    assert info.value.key == "network.random.widths"
