"""Densities of noiseless maps by preintegration (mzpdf.solvers.qmc.pushforward)
and the error estimates of qmc (mzpdf.solvers.confidence).

Oracles: closed forms (a linear net of a gaussian input is gaussian; one ReLU
unit of a gaussian is an atom Phi(-mu/sigma) at 0 plus a truncated gaussian),
the kernel's NumPy twin (knots found by evaluating the layers themselves),
an independent quadrature reference (the same integral along another
direction, with a finer outer rule), and plain Monte Carlo with its binomial
confidence interval.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import mzpdf
from mzpdf.network.inputs import GaussianInput
from mzpdf.network.network import Layer, Network, random_network
from mzpdf.solvers.qmc import _kernels
from mzpdf.solvers.qmc.pushforward import S_MAX, preintegrate

NONE = {"kind": "none"}


def linear_net(seed, widths):
    return random_network(widths, "identity", sigma_w=1.0, sigma_b=0.3, seed=seed, noise=NONE)


def gaussian(mean, std, seed=0):
    rng = np.random.default_rng(seed)
    d = len(mean)
    A = rng.normal(size=(d, d)) * 0.3
    return GaussianInput(np.asarray(mean, float), np.diag(np.asarray(std, float) ** 2) + A @ A.T * 0.1)


def exact_output(net, law):
    W, b = np.eye(law.dim), np.zeros(law.dim)
    for layer in net:
        W, b = layer.weights @ W, layer.weights @ b + layer.bias
    return W @ law.mean_ + b, W @ law.cov_ @ W.T


@pytest.mark.parametrize("d,outer", [(1, "quadrature"), (3, "quadrature"), (5, "sobol")])
def test_linear_net_output_density_cdf_and_tails_match_the_gaussian(d, outer):
    """Oracle: a noiseless linear net of a gaussian input is gaussian (closed
    form). d = 1: one line, exact; d = 3: composite Gauss-Legendre over 2
    outer dimensions; d = 5: Sobol lines. The read-out's density and CDF are
    within 1e-6 absolute (quadrature: a linear map has no kinks, the rules
    agree to round-off) or 5 standard errors plus 1e-6 (sobol), and
    P(Y > t) at 1e-2 .. 1e-6 within 1e-3 relative (lines along the gradient
    are exact for a linear map: every line gives the same 1-D integral)."""
    net = linear_net(d, [d, 4, 1])
    law = gaussian(np.linspace(-0.5, 0.5, d), np.full(d, 0.4), seed=d)
    m, C = exact_output(net, law)
    sd = float(np.sqrt(C[0, 0]))
    t = m[0] + sd * stats.norm.isf([1e-2, 1e-4, 1e-6])
    run = preintegrate(net, law, layers=(1, 2), readout=(np.ones(1), 0.0), thresholds=t, outer=outer, samples=1024,
                       replicates=4, seed=1)
    x = run.readout_x
    exact_pdf, exact_cdf = stats.norm.pdf(x, m[0], sd), stats.norm.cdf(x, m[0], sd)
    tol = 1e-6 + 5 * run.readout_pdf_stderr
    assert np.all(np.abs(run.readout_pdf - exact_pdf) <= tol)
    assert np.all(np.abs(run.readout_cdf - exact_cdf) <= 1e-6 + 5 * run.readout_cdf_stderr)
    assert np.allclose(run.exceedance, stats.norm.sf(t, m[0], sd), rtol=1e-3, atol=0)
    # the hidden layer: bin averages of gaussians (evaluation error well below 1e-3 in L1)
    mh, Ch = exact_output(Network(net.layers[:1]), law)
    for j in range(4):
        p = stats.norm.pdf(run.x[1][j], mh[j], np.sqrt(Ch[j, j]))
        h = run.x[1][j, 1] - run.x[1][j, 0]
        assert np.sum(np.abs(run.pdf[1][j] - p)) * h <= 1e-3


def test_one_relu_unit_has_its_atom_and_a_truncated_gaussian():
    """Oracle: Y = relu(a . X + b) with X gaussian: an atom Phi(-mu/s) at 0
    and the density phi((y - mu)/s)/s for y > 0 (closed form). The atom
    (atom_mass) to 1e-12, the continuous part's bin averages within 1e-3 in
    L1 (the bin at 0 straddles the jump: about h p(0+)/2 of it)."""
    layer = Layer(np.array([[0.8, -0.5]]), np.array([0.3]), "relu", NONE)
    net = Network((layer,))
    law = gaussian([0.1, 0.2], [0.7, 0.5], seed=3)
    mu = float(layer.weights[0] @ law.mean_ + layer.bias[0])
    s = float(np.sqrt(layer.weights[0] @ law.cov_ @ layer.weights[0]))
    run = preintegrate(net, law, layers=(1,), outer="quadrature", samples=1024, replicates=2)
    assert abs(run.atom[1][0] - stats.norm.cdf(-mu / s)) <= 1e-12
    x = run.x[1][0]
    h = x[1] - x[0]
    edges = np.append(x - h / 2, x[-1] + h / 2)
    exact = np.diff(stats.norm.cdf(np.maximum(edges, 0.0), mu, s)) / h  # bin averages of the continuous part
    assert np.sum(np.abs(run.pdf[1][0] - exact)) * h <= 1e-12 + 1e-9


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_the_line_kernel_matches_its_numpy_twin(activation):
    """Twin: the knots of trace_line_numpy (every layer evaluated at the
    knots, crossings placed by the pre-activations themselves) give, by
    direct sums over the linear cells, the same P(f > t), CDF and atom as
    the kernel for one line (round-off: 1e-12)."""
    net = random_network([3, 7, 5, 1], activation, sigma_w=1.4, sigma_b=0.6, seed=5, noise=NONE)
    law = gaussian([0.2, -0.1, 0.3], [0.6, 0.8, 0.5], seed=2)
    rng = np.random.default_rng(0)
    start = law.mean_ + rng.normal(size=3) * 0.4
    direction = rng.normal(size=3)

    def prefix(x, n):
        for layer in net.layers[:n]:
            x = layer.forward(x)
        return x @ net[n].weights.T + net[n].bias

    knots = _kernels.trace_line_numpy(prefix, net.depth, start, direction, S_MAX, [True] * 3)
    f = net.forward(start + knots[:, None] * direction)[:, 0]
    t = np.array([np.quantile(f, 0.3), np.quantile(f, 0.8), f.max() * 0.99])
    lo, hi = stats.norm.cdf(knots[:-1]), stats.norm.cdf(knots[1:])
    expected = np.zeros(t.size)
    for i, ti in enumerate(t):
        for k in range(knots.size - 1):
            fa, fb = f[k], f[k + 1]
            if min(fa, fb) > ti:
                expected[i] += hi[k] - lo[k]
            elif max(fa, fb) > ti and fa != fb:
                x = knots[k] + (ti - fa) / (fb - fa) * (knots[k + 1] - knots[k])
                expected[i] += (hi[k] - stats.norm.cdf(x)) if fb > fa else (stats.norm.cdf(x) - lo[k])
    from mzpdf.solvers.qmc.pushforward import _Packed

    p = _Packed.of(list(net))
    m = 64
    pdf, cdf, surv = np.zeros((1, m)), np.zeros((1, m)), np.zeros((1, m))
    cdfd, survd, atom, exceed = np.zeros((1, m + 1)), np.zeros((1, m + 1)), np.zeros(1), np.zeros(t.size)
    rows = np.full(13, -1, dtype=np.int64)
    code = _kernels.trace_lines(start[None, :], direction, np.ones(1), np.zeros((1, 1)), p.W, p.w_off, p.b, p.b_off,
                                p.widths, p.act, p.par, p.residual, p.step, p.n_off, p.noisy, rows,
                                np.array([1.0, 0.0]), 0, np.array([-S_MAX, S_MAX]), True,
                                np.array([f.min()]), np.array([(f.max() - f.min()) / (m - 1)]),
                                np.array([m]), pdf, cdf, cdfd, surv, survd, atom, np.zeros(1), np.zeros(1), t, exceed,
                                4096)
    assert code == 0
    assert np.allclose(exceed, expected, rtol=1e-10, atol=1e-14)


def regressor(widths, seed, activation="relu"):
    """A deterministic ReLU regressor (the last layer linear), weights from a seed."""
    net = random_network(widths, activation, sigma_w=1.4, sigma_b=0.3, seed=seed, noise=NONE)
    last = net[-1]
    return Network(net.layers[:-1] + (Layer(last.weights, last.bias, "identity", NONE),))


def test_two_input_relu_regressor_output_cdf_is_deterministic_to_1e4():
    """Acceptance of the low-dimensional route: a deterministic 2->32->16->1
    ReLU regressor (what folding 8 exactly known inputs of a 10-input one
    leaves), gaussian input std 0.1, no noise: method auto takes qmc with the
    quadrature outer rule, the run is exit-0 clean for the output, and the
    output's CDF is within 1e-4 (largest difference) of an independent
    quadrature reference: the same integral along another direction with
    tol 1e-6 (other lines, other knots, a finer outer rule). The reference
    itself agrees with 2e5 Monte Carlo paths within the DKW band at 99.9 %
    (sqrt(log(2/1e-3)/(2n)) = 6.2e-3)."""
    net = regressor([2, 32, 16, 1], seed=7)
    table = {"case": {"name": "two", "seed": 1}, "network": net.to_dict(),
             "input": {"kind": "gaussian", "mean": [0.2, -0.4], "std": 0.1},
             "observable": {"kind": "neuron", "index": 0, "thresholds": [0.0]}}
    case = mzpdf.load_case(table)
    assert case.solver.method == "qmc"
    results = mzpdf.run(case)
    assert results.diagnostics["outer_rule"] == "quadrature"
    assert results.diagnostics["error_estimate"][-1] <= 1e-3
    pf = results.solution.native.pushforward
    ref = preintegrate(case.network, case.input, layers=(3,), readout=(np.ones(1), 0.0), outer="quadrature",
                       tol=1e-6, direction=[1.0, 0.3], readout_points=16001)  # fine: interpolated to pf's abscissae
    cdf = np.interp(pf.readout_x, ref.readout_x, ref.readout_cdf)
    assert np.max(np.abs(cdf - pf.readout_cdf)) <= 1e-4
    y = np.sort(net.forward(case.input.sample(np.random.default_rng(3), 200_000))[:, 0])
    ecdf = np.searchsorted(y, ref.readout_x, side="right") / y.size
    assert np.max(np.abs(ecdf - ref.readout_cdf)) <= np.sqrt(np.log(2 / 1e-3) / (2 * y.size))


def test_smooth_activations_give_the_monte_carlo_law_within_its_confidence():
    """Oracle: 1e6 Monte Carlo paths of a 3->8->6->1 net with tanh, gelu and
    sigmoid layers (Hermite lines), input std 0.5: the preintegrated CDF
    within the DKW band at 99.9 % (2e-3) plus 5 standard errors, and P(Y > t)
    at the 1 % and 99 % levels within 5 binomial standard errors plus 5
    stated ones."""
    layers = []
    for n, (shape, act) in enumerate([((8, 3), "tanh"), ((6, 8), "gelu"), ((1, 6), "sigmoid")]):
        rng = np.random.default_rng(n)
        layers.append(Layer(rng.normal(size=shape) / np.sqrt(shape[1]) * 1.5, rng.normal(size=shape[0]) * 0.3, act,
                            NONE))
    net = Network(tuple(layers))
    law = gaussian([0.1, -0.2, 0.3], [0.5, 0.5, 0.5], seed=1)
    y = np.sort(net.forward(law.sample(np.random.default_rng(0), 1_000_000))[:, 0])
    t = np.quantile(y, [0.01, 0.99])
    run = preintegrate(net, law, layers=(3,), readout=(np.ones(1), 0.0), thresholds=t, samples=1024, replicates=8)
    ecdf = np.searchsorted(y, run.readout_x, side="right") / y.size
    assert np.all(np.abs(ecdf - run.readout_cdf) <= np.sqrt(np.log(2 / 1e-3) / (2 * y.size))
                  + 5 * run.readout_cdf_stderr)
    p = np.array([np.mean(y > ti) for ti in t])
    assert np.all(np.abs(run.exceedance - p) <= 5 * np.sqrt(p * (1 - p) / y.size) + 5 * run.exceedance_stderr)


def test_noiseless_output_tails_through_a_case_match_the_closed_form():
    """Oracle: a noiseless linear 4->6->1 net of a gaussian input (closed
    form). Through load_case and run (thresholds and quantiles are taken for
    a noiseless last layer): P(Y > t) at 1e-2, 1e-3, 1e-4 within its stated
    exceedance_error (and that error below 10 % of P), quantiles at 1e-3,
    0.5, 0.999 within 1e-3 standard deviations (log-linear interpolation on
    the read-out's 401 abscissae)."""
    net = linear_net(4, [4, 6, 1])
    law = gaussian([0.1, 0.2, -0.3, 0.0], [0.3, 0.3, 0.3, 0.3], seed=4)
    m, C = exact_output(net, law)
    sd = float(np.sqrt(C[0, 0]))
    t = m[0] + sd * stats.norm.isf([1e-2, 1e-3, 1e-4])
    q = np.array([1e-3, 0.5, 0.999])
    table = {"case": {"name": "tails", "seed": 2}, "network": net.to_dict(),
             "input": {"kind": "gaussian", "mean": law.mean_.tolist(), "cov": law.cov_.tolist()},
             "observable": {"kind": "neuron", "index": 0, "thresholds": t.tolist(), "quantiles": q.tolist()},
             "solver": {"method": "qmc", "samples": 1024, "max_seconds": 0}}
    results = mzpdf.run(mzpdf.load_case(table))
    back = results.backward
    exact = stats.norm.sf(t, m[0], sd)
    assert np.all(np.abs(back.exceedance - exact) <= back.exceedance_error + 1e-12 * exact)
    assert np.all(back.exceedance_error <= 0.1 * exact)
    assert np.allclose(back.quantiles, m[0] + sd * stats.norm.ppf(q), rtol=0, atol=1e-3 * sd)
