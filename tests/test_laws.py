"""A layer's law answers cdf, quantile, sample and error_estimate (issue 39).

Oracles, each with its tolerance and why:

- closed form: a linear-gaussian net has gaussian layers (m_{n+1} = W m_n + b,
  C_{n+1} = W C_n W^T + s^2 I), so every neuron's cdf and quantiles are those
  of scipy.stats.norm; the input layer is the case's gaussian itself.
- the exact integral of a piecewise-linear density (trapezoids, and the
  partial trapezoid of the last interval) for a law read back from a file.
- identities: quantile(cdf(x)) == x where the density is positive,
  cdf(quantile(q)) == q, a point law's cdf is the step at the point.
- Monte Carlo with confidence intervals: sample means and covariances within
  5 standard errors of the law's (a false alarm has probability ~6e-7 per
  entry), each neuron's draws against its own cdf by Kolmogorov-Smirnov.
"""
import dataclasses

import numpy as np
import pytest
from scipy import stats

import mzpdf
from mzpdf.errors import SingularDensityError
from mzpdf.io.case import loads_case
from mzpdf.io.hdf5 import read_results, write_results
from mzpdf.laws import FunctionLaw, SummaryLaw
from mzpdf.results import LayerSummary

W = [np.array([[0.8, 0.3], [-0.2, 0.7]]), np.array([[0.6, -0.4], [0.5, 0.5]])]
B = [np.array([0.1, -0.2]), np.array([0.0, 0.3])]
S = 0.4  # noise std of every layer
M0, C0 = np.array([0.2, -0.1]), np.array([[0.3, 0.05], [0.05, 0.2]])


def _case_text(activation="identity", nodes=40, noise=f'{{ kind = "gaussian", std = {S} }}', input_law=None):
    layers = "".join(f"""
        [[network.layers]]
        weights = {w.tolist()}
        bias = {b.tolist()}
        activation = "{activation}"
        noise = {noise}
        """ for w, b in zip(W, B))
    input_law = input_law or f'kind = "gaussian"\nmean = {M0.tolist()}\ncov = {C0.tolist()}'
    return f"""
        [case]
        name = "laws"
        {layers}
        [input]
        {input_law}
        [solver]
        method = "grid"
        nodes = {nodes}
        """


def _closed_form():
    m, c = [M0], [C0]
    for w, b in zip(W, B):
        m.append(w @ m[-1] + b)
        c.append(w @ c[-1] @ w.T + S**2 * np.eye(2))
    return m, c


@pytest.fixture(scope="module")
def linear_gaussian(tmp_path_factory):
    results = mzpdf.run(loads_case(_case_text()))
    path = write_results(results, tmp_path_factory.mktemp("laws") / "lg.h5")
    return results, read_results(path)


@pytest.fixture(scope="module")
def tanh(tmp_path_factory):
    results = mzpdf.run(loads_case(_case_text("tanh", nodes=48)))
    path = write_results(results, tmp_path_factory.mktemp("laws") / "tanh.h5")
    return results, read_results(path)


# The grid's own densities of a gaussian layer at 40 nodes a neuron on its
# box: cdf within 1e-9 of the closed form (measured 1e-10 on this net; a
# broken integration, one panel too few, errs by >= 1e-4). Quantiles: that
# error divided by the density, 1e-9 / 0.05 at the 0.001 and 0.999 levels.
GRID_CDF_TOL = 1e-9
GRID_QUANTILE_TOL = 1e-7  # in standard deviations
LEVELS = np.array([0.001, 0.05, 0.5, 0.9, 0.999])


@pytest.mark.parametrize("n", [0, 1, 2])
def test_gaussian_layers_match_the_closed_form(linear_gaussian, n):
    results, _ = linear_gaussian
    means, covs = _closed_form()
    law = results.law(n)
    for i in range(2):
        mu, sd = means[n][i], np.sqrt(covs[n][i, i])
        x = mu + sd * np.linspace(-6, 6, 25).reshape(5, 5)  # any shape in, the same shape out
        cdf = law.cdf(i, x)
        assert cdf.shape == x.shape
        np.testing.assert_allclose(cdf, stats.norm.cdf(x, mu, sd), rtol=0, atol=GRID_CDF_TOL)
        np.testing.assert_allclose((law.quantile(i, LEVELS) - stats.norm.ppf(LEVELS, mu, sd)) / sd, 0,
                                   atol=GRID_QUANTILE_TOL)


def test_integration_of_an_exact_density_to_round_off():
    """A FunctionLaw with scipy's normal densities: the adaptive panels give the
    normal cdf to 1e-14 (round-off of sums of ~500 panels) from 5e-324 up,
    and quantiles to 1e-12 standard deviations where the density is >= 1e-4."""
    mean, cov = np.array([0.3, -1.0]), np.array([[0.5, 0.2], [0.2, 0.3]])
    sd = np.sqrt(np.diag(cov))
    law = FunctionLaw(1.0, mean, cov, lambda i, x: stats.norm.pdf(x, mean[i], sd[i]))
    x = mean[1] + sd[1] * np.linspace(-8, 8, 33)
    np.testing.assert_allclose(law.cdf(1, x), stats.norm.cdf(x, mean[1], sd[1]), rtol=0, atol=1e-14)
    q = np.array([1e-4, 0.3, 0.5, 0.7, 1 - 1e-4])
    np.testing.assert_allclose((law.quantile(0, q) - stats.norm.ppf(q, mean[0], sd[0])) / sd[0], 0, atol=1e-12)


def test_read_back_cdf_integrates_the_stored_interpolant_exactly(linear_gaussian):
    """A law read from a file interpolates the stored density linearly: its cdf
    is the trapezoids up to the interval of x plus the partial trapezoid
    there, over the total (exact arithmetic; 1e-13 is round-off)."""
    _, back = linear_gaussian
    law, layer = back.law(2), back.forward[2]
    xs, f = layer.marginal_x[1], layer.marginal_pdf[1]
    cells = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(xs))])
    x = np.array([xs[0] - 1.0, xs[3] + 0.3 * (xs[4] - xs[3]), 0.5 * (xs[0] + xs[-1]) + 1e-3, xs[-1] + 1.0])
    k = np.clip(np.searchsorted(xs, x) - 1, 0, xs.size - 2)
    fx = np.interp(x, xs, f)
    exact = np.where(x < xs[0], 0.0, np.where(x > xs[-1], cells[-1], cells[k] + 0.5 * (f[k] + fx) * (x - xs[k])))
    np.testing.assert_allclose(law.cdf(1, x), exact / cells[-1], rtol=0, atol=1e-13)


def test_read_back_law_agrees_with_the_closed_form(linear_gaussian):
    """The stored density is the grid's on 201 abscissae, interpolated
    linearly: its cdf errs by about h^2 / 12 max|f'| ~ 1e-4 (measured 1e-4)
    against the closed form; 5e-4 leaves room and still catches a lost
    normalization or a shifted abscissa (errors >= 1e-2)."""
    _, back = linear_gaussian
    means, covs = _closed_form()
    for i in range(2):
        mu, sd = means[2][i], np.sqrt(covs[2][i, i])
        x = mu + sd * np.linspace(-4, 4, 17)
        np.testing.assert_allclose(back.law(2).cdf(i, x), stats.norm.cdf(x, mu, sd), rtol=0, atol=5e-4)


@pytest.mark.parametrize("source", ["run", "file"])
def test_quantile_inverts_cdf(tanh, source):
    """Identities on a non-gaussian layer (tanh): quantile(cdf(x)) == x at points
    where the density is positive, to 1e-9 of the neuron's std (the cdf's
    round-off 1e-16 over a density >= 1e-3, with Newton converged), and
    cdf(quantile(q)) == q to 1e-12; the cdf rises from 0 to 1."""
    results = tanh[0] if source == "run" else tanh[1]
    law = results.law(-1)
    for i in range(2):
        sd = np.sqrt(law.cov[i, i])
        x = np.linspace(law.mean[i] - 2 * sd, law.mean[i] + 2 * sd, 41)
        assert np.all(law.marginal(i, x) > 1e-3)
        np.testing.assert_allclose((law.quantile(i, law.cdf(i, x)) - x) / sd, 0, atol=1e-9)
        q = np.linspace(0.01, 0.99, 25)
        np.testing.assert_allclose(law.cdf(i, law.quantile(i, q)), q, rtol=0, atol=1e-12)
        wide = np.linspace(law.mean[i] - 30 * sd, law.mean[i] + 30 * sd, 1001)
        cdf = law.cdf(i, wide)
        assert cdf[0] == 0.0 and cdf[-1] == 1.0 and np.all(np.diff(cdf) >= -1e-15)


def test_point_law_is_a_step(tmp_path):
    """A point input: the law of layer 0 is the point; its cdf is the step at it
    (0 below, 1 at and above), every quantile and every sample is the point,
    after a run and read back from a file."""
    x0 = [0.3, -0.4]
    results = mzpdf.run(loads_case(_case_text(input_law=f'kind = "point"\nx = {x0}')))
    back = read_results(write_results(results, tmp_path / "point.h5"))
    for law in (results.law(0), back.law(0)):
        for i, xi in enumerate(x0):
            np.testing.assert_array_equal(law.cdf(i, [xi - 1e-12, xi, xi + 1e-12, np.inf]), [0.0, 1.0, 1.0, 1.0])
            np.testing.assert_array_equal(law.quantile(i, [1e-9, 0.5, 1 - 1e-9]), [xi] * 3)
        np.testing.assert_array_equal(law.sample(4, seed=1), np.tile(x0, (4, 1)))
    with pytest.raises(SingularDensityError, match="point"):
        results.law(0).marginal(0, [0.0])


# Monte Carlo: 5 standard errors each way (two-sided false alarm ~6e-7 an entry).
SIGMAS = 5.0
SAMPLES = 20000


def test_samples_of_a_gaussian_layer_have_its_moments(linear_gaussian):
    """The gaussian copula of gaussian marginals is the gaussian law: sample
    means within 5 standard errors (sd / sqrt(n)) of the closed form, the
    covariance entries within 5 standard errors (sqrt((C_ii C_jj + C_ij^2) / n)),
    the same draws for the same seed and other draws for another."""
    results, _ = linear_gaussian
    means, covs = _closed_form()
    law = results.law(2)
    draws = law.sample(SAMPLES, seed=11)
    assert draws.shape == (SAMPLES, 2)
    c = covs[2]
    assert np.all(np.abs(draws.mean(axis=0) - means[2]) < SIGMAS * np.sqrt(np.diag(c) / SAMPLES))
    cov_stderr = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / SAMPLES)
    assert np.all(np.abs(np.cov(draws.T) - c) < SIGMAS * cov_stderr)
    np.testing.assert_array_equal(law.sample(5, seed=11), draws[:5])
    assert not np.array_equal(law.sample(5, seed=12), draws[:5])


def test_samples_of_a_tanh_layer_follow_its_marginals(tanh):
    """Each neuron's draws follow its own marginal: the Kolmogorov-Smirnov
    statistic against law.cdf below the 1e-6 critical value
    sqrt(ln(2 / 1e-6) / (2 n)); their mean within 5 standard errors."""
    law = tanh[0].law(-1)
    draws = law.sample(SAMPLES, seed=5)
    critical = np.sqrt(np.log(2 / 1e-6) / (2 * SAMPLES))
    for i in range(2):
        assert stats.kstest(draws[:, i], lambda x, i=i: law.cdf(i, x)).statistic < critical
        assert abs(draws[:, i].mean() - law.mean[i]) < SIGMAS * np.sqrt(law.cov[i, i] / SAMPLES)


def test_a_layer_without_density_says_why(tmp_path):
    """After a noiseless layer the grid has moments only: cdf, quantile and
    sample raise SingularDensityError naming the noiseless layer, also from a file."""
    noisy = f'noise = {{ kind = "gaussian", std = {S} }}'
    text = _case_text().replace(noisy, 'noise = { kind = "none" }', 1)
    results = mzpdf.run(loads_case(text))  # layer 1 is a noiseless map of the input
    back = read_results(write_results(results, tmp_path / "noiseless.h5"))
    for law in (results.law(1), back.law(1)):
        for call in (lambda: law.cdf(0, [0.0]), lambda: law.quantile(1, [0.5]), lambda: law.sample(3, 0)):
            with pytest.raises(SingularDensityError, match="noiseless|deterministic map"):
                call()


def test_bad_levels_and_counts_are_value_errors(linear_gaussian):
    law = linear_gaussian[0].law(1)
    for q in ([0.0], [1.0], [-0.1], [np.nan], 1.5):
        with pytest.raises(ValueError, match=r"\(0, 1\)"):
            law.quantile(0, q)
    for n in (-1, 2.5, True):
        with pytest.raises(ValueError, match="samples"):
            law.sample(n, seed=0)
    with pytest.raises(IndexError):
        law.cdf(2, [0.0])


def test_error_estimate_is_the_layers_diagnostic(linear_gaussian, tmp_path):
    """law(n).error_estimate is /diagnostics/error_estimate[n], after a run and
    from a file; NaN where the method stores none."""
    results, back = linear_gaussian
    stored = results.diagnostics.get("error_estimate")
    expected = np.nan if stored is None else float(np.asarray(stored)[1])
    np.testing.assert_equal([results.law(1).error_estimate, back.law(1).error_estimate], [expected] * 2)
    estimate = np.array([0.0, 2e-4, 5e-4])
    given = dataclasses.replace(results, diagnostics={**results.diagnostics, "error_estimate": estimate})
    again = read_results(write_results(given, tmp_path / "estimate.h5"))
    for r in (given, again):
        assert [r.law(n).error_estimate for n in (0, 1, 2, -1)] == [0.0, 2e-4, 5e-4, 5e-4]


def test_summary_law_of_a_histogram():
    """A sampling method's law (a histogram on its bin centres) answers the
    same questions: its quantiles invert its cdf; its samples stay inside the
    stored abscissae, where the interpolant lives."""
    xs = np.linspace(-3, 3, 61)
    pdf = np.vstack([stats.norm.pdf(xs), stats.uniform.pdf(xs, -1, 2) + 1e-3])
    layer = LayerSummary(np.zeros(2), np.diag([1.0, 1 / 3]), 1.0, np.vstack([xs, xs]), pdf,
                         np.array([[-3.0, 3.0], [-3.0, 3.0]]))
    law = SummaryLaw(layer)
    q = np.linspace(0.02, 0.98, 9)
    np.testing.assert_allclose(law.cdf(1, law.quantile(1, q)), q, rtol=0, atol=1e-12)
    draws = law.sample(1000, seed=2)
    assert np.all((draws >= -3) & (draws <= 3))
