"""Monte Carlo reference: kernels against NumPy twins, estimates against
closed forms within their own confidence intervals, reproducibility."""
import numpy as np
import pytest
from scipy import special

import mzpdf
from mzpdf.network import make_noise
from mzpdf.errors import CaseError
from mzpdf.solvers.montecarlo import _kernels
from mzpdf.solvers.montecarlo.engine import conditional_mean, simulate
from mzpdf.observables import LinearObservable

# Estimates must fall within Z standard errors of the truth: 5 sigma keeps the
# false-alarm rate below 1e-6 per comparison.
Z = 5.0


def linear_net(std=0.4):
    W1 = np.array([[0.8, -0.3], [0.2, 0.6]])
    W2 = np.array([[0.5, 0.4], [-0.7, 0.9]])
    noise = mzpdf.GaussianNoise(np.array([std]))
    return mzpdf.Network((mzpdf.Layer(W1, [0.1, -0.2], "identity", noise), mzpdf.Layer(W2, [0.0, 0.3], "identity", noise)))


def test_kernels_match_numpy_twins():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 3))
    shift = np.array([0.1, -0.2, 0.0])
    s1, s2 = np.zeros(3), np.zeros((3, 3))
    _kernels.accumulate_moments(x, shift, s1, s2)
    t1, t2 = _kernels.moments_numpy(x, shift)
    assert np.allclose(s1, t1, rtol=1e-12) and np.allclose(s2, t2, rtol=1e-12)
    left, width = np.array([-2.0, -1.0, -3.0]), np.array([0.1, 0.05, 0.2])
    counts = np.zeros((3, 40), dtype=np.int64)
    _kernels.accumulate_histogram(x, left, width, counts)
    assert np.array_equal(counts, _kernels.histogram_numpy(x, left, width, 40))


def test_linear_gaussian_moments_and_histogram_within_confidence():
    net, std = linear_net(), 0.4
    law = mzpdf.GaussianInput(np.array([0.5, -0.5]), np.array([[0.3, 0.1], [0.1, 0.2]]))
    xs = [np.stack([np.linspace(-3, 3, 61)] * 2)] * 3
    samples = 400_000
    run = simulate(net, law, samples=samples, seed=3, abscissae=xs)
    m, C = law.mean(), law.cov()
    for n, layer in enumerate(net, start=1):
        m = layer.weights @ m + layer.bias
        C = layer.weights @ C @ layer.weights.T + std**2 * np.eye(2)
        est = run.layers[n]
        assert np.all(np.abs(est.mean - m) < Z * est.mean_stderr)
        # Standard error of a sample covariance of gaussians: sqrt((C_kl^2 + C_kk C_ll) / n).
        se_cov = np.sqrt((C**2 + np.outer(np.diag(C), np.diag(C))) / samples)
        assert np.all(np.abs(est.cov - C) < Z * se_cov)
        x = est.marginal_x[0]
        h = x[1] - x[0]
        s = np.sqrt(C[0, 0])
        p = special.ndtr((x + h / 2 - m[0]) / s) - special.ndtr((x - h / 2 - m[0]) / s)
        p_hat = est.marginal_pdf[0] * h
        se = np.sqrt(p * (1 - p) / samples) + 1e-12
        assert np.all(np.abs(p_hat - p) < (Z + 1) * se)  # 61 bins: one extra sigma of Bonferroni margin


@pytest.mark.parametrize("spec,variance", [({"kind": "uniform", "half_width": 0.6}, 0.36 / 3),
                                           ({"kind": "laplace", "scale": 0.3}, 2 * 0.09)])
def test_noise_variance(spec, variance):
    layer = mzpdf.Layer(np.zeros((1, 1)), [0.0], "identity", make_noise(spec, 1))
    samples = 200_000
    run = simulate(mzpdf.Network((layer,)), mzpdf.PointInput(np.array([0.0])), samples=samples, seed=1)
    # Variance estimator's standard error sqrt((m4 - s^4)/n) <= 3 s^2 / sqrt(n) for these laws.
    assert abs(run.layers[1].cov[0, 0] - variance) < Z * 3 * variance / np.sqrt(samples)
    assert np.all(np.isinf(run.layers[0].marginal_pdf))


def test_conditional_mean_of_linear_observable():
    net = linear_net()
    g = LinearObservable(np.array([1.0, -2.0]), 0.5)
    points = np.array([[0.0, 0.0], [1.0, -1.0]])
    q, se = conditional_mean(net, points, g, samples=100_000, seed=4)
    W1, b1 = net[0].weights, net[0].bias
    W2, b2 = net[1].weights, net[1].bias
    exact = (((points @ W1.T + b1) @ W2.T) + b2) @ g.coefficients + 0.5
    assert np.all(np.abs(q - exact) < Z * se)


def test_reproducible_for_a_seed():
    net = linear_net()
    law = mzpdf.GaussianInput(np.zeros(2), np.eye(2))
    a = simulate(net, law, samples=10_000, seed=7, chunk=3000)
    b = simulate(net, law, samples=10_000, seed=7, chunk=3000)
    c = simulate(net, law, samples=10_000, seed=8, chunk=3000)
    assert np.array_equal(a.layers[2].marginal_pdf, b.layers[2].marginal_pdf)
    assert np.array_equal(a.layers[2].cov, b.layers[2].cov)
    assert not np.array_equal(a.layers[2].cov, c.layers[2].cov)


def test_bad_sample_count_is_refused():
    """The sampler says what is wrong in numbers; a case names the key (its options check it)."""
    with pytest.raises(ValueError, match="samples must be an integer >= 2, got 1"):
        simulate(linear_net(), mzpdf.GaussianInput(np.zeros(2), np.eye(2)), samples=1, seed=0)
    with pytest.raises(CaseError) as err:
        mzpdf.load_case({"network": {"random": {"widths": [2, 2], "noise": {"kind": "gaussian", "std": 0.3}}},
                         "input": {"kind": "gaussian", "mean": [0.0, 0.0], "std": 1.0},
                         "montecarlo": {"samples": 1}})
    assert err.value.key == "montecarlo.samples"
