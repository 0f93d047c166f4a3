"""Lyapunov exponents (issue 9, item 3).

Oracles: a linear network with W = a Q (Q orthogonal) stretches every tangent
vector by exactly a, so every exponent is ln a (to round-off); for wide
random tanh nets, mean field's top exponent (1/2) ln chi_1, within 4 standard
errors across paths plus the finite-width bias, which is O(1/N) (measured
-0.021 at N = 100 and -0.007 at N = 400 for sigma_w = 3: allowed 4/N).
"""
import numpy as np
import pytest

from mzpdf import GaussianInput, GaussianNoise, Layer, Network, random_network
from mzpdf.theory import MeanField, lyapunov_exponents


def test_orthogonal_linear_network_has_exponents_ln_a():
    rng = np.random.default_rng(0)
    a, N = 0.7, 6
    layers = []
    for _ in range(5):
        q, _ = np.linalg.qr(rng.standard_normal((N, N)))
        layers.append(Layer(a * q, np.zeros(N), "identity", GaussianNoise(np.array([0.1]))))
    res = lyapunov_exponents(Network(tuple(layers)), GaussianInput(np.zeros(N), np.eye(N)), k=N, samples=3)
    assert np.allclose(res["exponents"], np.log(a), atol=1e-13, rtol=0)


@pytest.mark.parametrize("sigma_w", [0.8, 3.0])
def test_wide_random_tanh_matches_mean_field(sigma_w):
    N, sigma_b, noise = 400, 0.3, 0.1
    mf = MeanField("tanh", sigma_w, sigma_b, noise)
    net = random_network([N] * 61, "tanh", sigma_w=sigma_w, sigma_b=sigma_b, seed=2,
                         noise={"kind": "gaussian", "std": noise})
    second_moment = (mf.fixed_q() - sigma_b**2) / sigma_w**2  # inputs start at the fixed point
    res = lyapunov_exponents(net, GaussianInput(np.zeros(N), second_moment * np.eye(N)), samples=16, burn_in=10)
    expected = 0.5 * np.log(mf.chi_1())
    assert abs(res["exponents"][0] - expected) <= 4 * res["stderr"][0] + 4.0 / N
