"""``method = "qmc"``: randomized quasi-Monte Carlo with conditional densities
(mzpdf.solvers.qmc.engine, mzpdf.solvers.qmc.plugin).

Oracles, from strongest to weakest: closed forms of linear-gaussian nets
(every layer gaussian, m' = W m + b, C' = W C W^T + S), exact 1-D integrals of
the first layer after a gaussian input (uniform and laplace noise), the grid
solver with its own refinement error, the laws' own CDFs, the NumPy twin of
the kernel, and plain Monte Carlo's standard error formula.

Tolerances. A qmc standard error is the spread of R independent scramblings
over sqrt(R); an error over it follows Student's t with R - 1 degrees of
freedom, so tests that compare against it run R = 16 replicates, where
|t| > 5 has probability 1.6e-4 (with R = 8 it would be 1.6e-3). Densities also
get a floor of 1e-4 of their peak: in the far tails (beyond ~4 standard
deviations) the estimate rests on the few most extreme Sobol points, and the
replicates' spread there understates the error.
"""
from __future__ import annotations

import tomllib
import warnings
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

import mzpdf
from mzpdf.cli import main
from mzpdf.errors import CaseError, SingularDensityError
from mzpdf.io.hdf5 import read_results
from mzpdf.solvers.qmc import _kernels
from mzpdf.solvers.qmc.engine import input_from_uniform, noise_from_uniform
from mzpdf.network.inputs import make_input
from mzpdf.network.noise import make_noise
from mzpdf.solvers import SOLVERS

ROOT = Path(__file__).resolve().parents[1]

Z = 5.0  # standard errors allowed (R = 16: a t_15 beyond 5 has probability 1.6e-4)
PDF_FLOOR = 1e-4  # of the density's peak: the far tails, where the replicates' spread understates the error
# max_seconds = 0: no doubling of the samples towards solver.tol (tests/test_pushforward.py tests it)
FAST = ["solver.method=qmc", "solver.replicates=16", "solver.joint_points=9", "solver.max_seconds=0"]


def linear_gaussian(*overrides):
    table = tomllib.loads((ROOT / "cases" / "linear_gaussian.toml").read_text())
    table.pop("solver")
    return mzpdf.load_case(table, [*FAST, *overrides])


def closed_form(case):
    """Means and covariances of every layer of a linear (identity) net."""
    m, C = case.input.mean(), case.input.cov()
    out = [(m, C)]
    for layer in case.network:
        W, b = layer.weights, layer.bias
        m, C = W @ m + b, W @ C @ W.T + np.diag(layer.noise.variance())
        out.append((m, C))
    return out


def gaussian_pdf(x, m, s):
    return np.exp(-0.5 * ((x - m) / s) ** 2) / (np.sqrt(2 * np.pi) * s)


def assert_pdf_within(pdf, exact, stderr, what):
    tol = Z * stderr + PDF_FLOOR * np.max(exact)
    bad = np.abs(pdf - exact) > tol
    assert not np.any(bad), (what, np.max(np.abs(pdf - exact) - tol))


# -- the pieces -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,param", [("gaussian", "std"), ("uniform", "half_width"), ("laplace", "scale")])
def test_kernel_matches_its_numpy_twin(kind, param):
    """Twin: the windowed recurrences of accumulate_conditional_pdf against
    direct evaluation of the noise's 1-D densities, with samples inside,
    near and beyond the abscissae and abscissae coarser and finer than the
    noise. Tolerance 1e-12 of the peak: the recurrences lose ~m eps relative
    (m = 201 steps) and the window drops terms below 1e-16 of a term's peak."""
    rng = np.random.default_rng(3)
    noise = make_noise({"kind": kind, param: [0.3, 0.05, 1.0, 0.2]}, 4)
    f = np.ascontiguousarray(rng.normal(size=(700, 4)) * 2.0)
    y0, h, m = np.array([-3.0, -2.0, -4.0, 1.0]), np.array([0.03, 0.02, 0.1, 0.5]), 201
    out = np.zeros((4, m))
    _kernels.accumulate_conditional_pdf(f, noise.code, noise.scale, noise.window_radius(), y0, h, out)
    twin = _kernels.conditional_pdf_numpy(f, noise, y0[:, None] + h[:, None] * np.arange(m))
    np.testing.assert_allclose(out, twin, rtol=0, atol=1e-12 * twin.max())


@pytest.mark.parametrize("spec", [{"kind": "gaussian", "std": [0.5, 2.0]}, {"kind": "uniform", "half_width": 0.3},
                                  {"kind": "laplace", "scale": [0.2, 1.5]}])
def test_noise_inverse_cdfs_invert_the_laws_cdfs(spec):
    """Oracle: each noise law's own CDF; F(F^-1(u)) = u to 1e-12 (round-off
    of log, ndtri; u kept in [1e-6, 1 - 1e-6] where the CDFs are well conditioned)."""
    noise = make_noise(spec, 2)
    u = np.random.default_rng(0).uniform(1e-6, 1 - 1e-6, (1000, 2))
    np.testing.assert_allclose(noise.cdf(noise_from_uniform(noise, u)), u, rtol=0, atol=1e-12)


def test_mixture_input_picks_components_by_their_weights():
    """Oracle: the weights; with 4096 stratified uniforms the share of each
    component is its weight to 1/4096 (the first coordinate is equidistributed)."""
    law = make_input({"kind": "mixture", "weights": [0.25, 0.75],
                      "components": [{"mean": [-5.0, 0.0], "std": 0.1}, {"mean": [5.0, 0.0], "std": 0.1}]})
    u = (np.arange(4096)[:, None] + 0.5) / 4096 * np.ones((1, 3))
    x = input_from_uniform(law, u)
    assert abs(np.mean(x[:, 0] < 0) - 0.25) <= 1 / 4096


# -- accuracy against closed forms ---------------------------------------------------------------------

@pytest.mark.parametrize("sequence", ["sobol", "random"])
def test_linear_gaussian_moments_marginals_and_q0_match_the_closed_form(sequence):
    """Oracle: the closed form of a linear-gaussian net (5 layers of 2). Means,
    covariances, q0 and E[g] within Z of their stated standard errors; the
    marginal densities within Z pdf_stderr + PDF_FLOOR of the exact gaussian
    marginals; layer 0 is the input law itself (1e-14). The same for scrambled
    Sobol points and for pseudo-random ones (solver.sequence)."""
    case = linear_gaussian("solver.samples=2048", f"solver.sequence='{sequence}'")
    results = mzpdf.run(case)
    exact = closed_form(case)
    native = results.solution.native
    for n, (m, C) in enumerate(exact):
        layer = results.forward[n]
        if n == 0:
            np.testing.assert_allclose(layer.mean, m, atol=1e-14)
            np.testing.assert_allclose(layer.cov, C, atol=1e-14)
        else:
            assert np.all(np.abs(layer.mean - m) <= Z * layer.mean_stderr), (n, layer.mean - m, layer.mean_stderr)
            assert np.all(np.abs(layer.cov - C) <= Z * native.cov_stderr[n]), (n, layer.cov - C)
        s = np.sqrt(np.diag(C))
        x = layer.marginal_x
        assert_pdf_within(layer.marginal_pdf, gaussian_pdf(x, m[:, None], s[:, None]), layer.marginal_pdf_stderr, n)
        assert abs(layer.mass - 1.0) < 1e-5  # the abscissae hold all but the 1e-6 tails
    obs = case.observable
    m_L = exact[-1][0]
    assert abs(results.backward.mean - obs(m_L[None])[0]) <= Z * results.diagnostics["mean_stderr"]
    for point, q0, err in zip(results.backward.points, results.backward.q0, results.backward.q0_stderr):
        m = point
        for layer in case.network:
            m = layer.weights @ m + layer.bias
        assert abs(q0 - obs(m[None])[0]) <= Z * err, (point, q0, err)


def test_stated_standard_errors_are_honest_over_seeds():
    """Oracle: the closed-form means of the linear-gaussian net. Over 5 seeds
    (50 last-layer and hidden means), every |error| / stderr < Z, and their
    root mean square lies in [0.6, 2.5]: Student t_15 has RMS 1.07, measured
    1.41 (the two neurons of a layer move together, so ~25 independent
    values); a stated error 3 times too large gives ~0.47, 3 times too
    small ~4.2 (both checked by mutating the code)."""
    z = []
    for seed in range(1, 6):
        case = linear_gaussian("solver.samples=1024", f"solver.seed={seed}")
        results = mzpdf.run(case)
        for n, (m, _) in enumerate(closed_form(case)[1:], start=1):
            z.extend((results.forward[n].mean - m) / results.forward[n].mean_stderr)
    z = np.asarray(z)
    assert np.all(np.abs(z) < Z), z
    assert 0.6 < np.sqrt(np.mean(z**2)) < 2.5, z


def _noiseless_middle(input_spec):
    table = {"case": {"name": "noiseless", "seed": 2},
             "network": {"layers": [
                 {"weights": [[0.8, 0.3], [-0.2, 0.9]], "bias": [0.1, 0.0], "activation": "identity",
                  "noise": {"kind": "gaussian", "std": 0.3}},
                 {"weights": [[0.7, -0.5], [0.4, 0.6]], "bias": [0.0, 0.2], "activation": "identity",
                  "noise": {"kind": "none"}},
                 {"weights": [[1.1, 0.2], [0.1, 0.8]], "bias": [-0.1, 0.0], "activation": "identity",
                  "noise": {"kind": "gaussian", "std": 0.25}}]},
             "input": input_spec}
    return mzpdf.load_case(table, [*FAST, "solver.samples=2048"])


def test_noiseless_layer_gets_its_density_by_preintegration_with_the_noise_before_it_sampled():
    """Oracle: the closed form of a linear net whose middle layer has no noise.
    Layer 2 (after the noiseless layer) is gaussian with moments W C W^T;
    under a gaussian input its marginals come from preintegration along an
    input direction, the noise of layer 0 drawn as outer Sobol coordinates,
    and match the closed form within Z stated standard errors (plus the
    PDF_FLOOR); layer 3 matches its closed form as before."""
    case = _noiseless_middle({"kind": "gaussian", "mean": [0.2, -0.3], "std": 0.5})
    results = mzpdf.run(case)
    exact = closed_form(case)
    for n in (1, 2, 3):
        layer, (m, C) = results.forward[n], exact[n]
        assert np.all(np.abs(layer.mean - m) <= Z * layer.mean_stderr)
        assert np.all(np.abs(layer.cov - C) <= Z * results.solution.native.cov_stderr[n])
        s = np.sqrt(np.diag(C))
        assert_pdf_within(layer.marginal_pdf, gaussian_pdf(layer.marginal_x, m[:, None], s[:, None]),
                          layer.marginal_pdf_stderr, 3)
    assert results.diagnostics["no_density"].tolist() == [0, 0, 0, 0]
    assert results.diagnostics["outer_rule"] == "sobol"  # the noise of layer 0 is an outer dimension


def test_noiseless_layer_under_a_uniform_input_leaves_no_density():
    """Preintegration needs a gaussian input: under a uniform one layer 2 keeps
    its estimated moments (closed form within Z stderr), NaN marginals, the
    no_density diagnostic, and law(2) refuses densities."""
    case = _noiseless_middle({"kind": "uniform", "low": [-0.5, -1.0], "high": [0.7, 0.2]})
    results = mzpdf.run(case)
    exact = closed_form(case)
    layer, (m, C) = results.forward[2], exact[2]
    assert np.all(np.abs(layer.mean - m) <= Z * layer.mean_stderr)
    assert results.diagnostics["no_density"].tolist() == [0, 0, 1, 0]
    assert np.all(np.isnan(results.forward[2].marginal_pdf))
    with pytest.raises(SingularDensityError, match="noiseless"):
        results.law(2).marginal(0, [0.0])


@pytest.mark.parametrize("spec", [
    {"kind": "point", "x": [0.4, -0.7]},
    {"kind": "uniform", "low": [-1.0, 0.0], "high": [0.5, 2.0]},
    {"kind": "mixture", "weights": [0.3, 0.7],
     "components": [{"mean": [-1.0, 0.5], "std": 0.3}, {"mean": [0.8, 0.0], "cov": [[0.2, 0.05], [0.05, 0.1]]}]},
])
def test_every_input_kind_gives_the_closed_form_moments(spec):
    """Oracle: m' = W m + b, C' = W C W^T + S from the input law's exact
    moments (linear-gaussian layers need no gaussian input for that), within
    Z stated standard errors on both layers."""
    table = tomllib.loads((ROOT / "cases" / "linear_gaussian.toml").read_text())
    table.pop("solver")
    table.pop("observable")
    table["network"]["random"]["widths"] = [2, 2, 2]
    table["input"] = spec
    case = mzpdf.load_case(table, [*FAST, "solver.samples=1024"])
    results = mzpdf.run(case)
    for n, (m, C) in enumerate(closed_form(case)[1:], start=1):
        layer = results.forward[n]
        tol = Z * layer.mean_stderr + 1e-13  # a point input's first layer is exact (stderr 0)
        assert np.all(np.abs(layer.mean - m) <= tol), (n, layer.mean - m, layer.mean_stderr)
        assert np.all(np.abs(layer.cov - C) <= Z * results.solution.native.cov_stderr[n] + 1e-13)


# -- other noise laws: exact first layer, grid second ------------------------------------------------------

TWO = """
[case]
name = "two"
seed = 4
[network]
[[network.layers]]
weights = [[0.9, -0.4], [0.3, 0.8]]
bias = [0.1, -0.2]
activation = "tanh"
noise = {noise}
[[network.layers]]
weights = [[0.7, 0.5], [-0.6, 0.9]]
bias = [0.0, 0.1]
activation = "tanh"
noise = {noise}
[input]
kind = "gaussian"
mean = [0.3, -0.2]
std = 0.6
"""


def first_layer_marginal(case, j, y):
    """Exact marginal of neuron j after one tanh layer from a gaussian input:
    E_Z[rho_j(y - tanh(Z))] with Z = W_j x + b_j ~ N(mu, s^2), a 1-D integral
    (uniform: a difference of normal CDFs; laplace: trapezoid on 40001 points
    over +-10 s, error < 1e-8 at the kink)."""
    from scipy.special import ndtr

    layer, law = case.network[0], case.input
    w = layer.weights[j]
    mu, s = w @ law.mean() + layer.bias[j], np.sqrt(w @ law.cov() @ w)
    factor = replace(layer.noise, scale=layer.noise.scale[j:j + 1])
    if layer.noise.kind == "uniform":
        a = factor.scale[0]
        lo, hi = np.clip(y - a, -1, 1), np.clip(y + a, -1, 1)
        return (ndtr((np.arctanh(np.clip(hi, -1 + 1e-16, 1 - 1e-16)) - mu) / s)
                - ndtr((np.arctanh(np.clip(lo, -1 + 1e-16, 1 - 1e-16)) - mu) / s)) / (2 * a)
    z = np.linspace(mu - 10 * s, mu + 10 * s, 40001)
    weights = gaussian_pdf(z, mu, s)
    values = factor.pdf((y[:, None] - np.tanh(z)[None, :])[..., None])[..., 0]
    return np.trapezoid(values * weights, z, axis=1)


@pytest.mark.parametrize("noise", ['{ kind = "uniform", half_width = 0.3 }', '{ kind = "laplace", scale = 0.15 }'])
def test_uniform_and_laplace_marginals_match_exact_and_grid(noise):
    """Oracles: layer 1, the exact 1-D integral (first_layer_marginal), within
    Z pdf_stderr + PDF_FLOOR at every abscissa; layer 2, the grid solver at
    128 nodes, in L1: within Z * L1(pdf_stderr) + 2 L1(grid(64) - grid(128))
    (E|error| <= stderr at each abscissa; the grid converges slowly on the
    kinks these noises leave, most near the support's edges, so its own
    refinement difference, in L1, bounds its error). Measured at layer 2:
    L1 distances 8e-4 to 3e-3 against bounds 1e-2 to 2e-2; a wrong noise
    scale or normalization is off by 1e-1 or more."""
    table = tomllib.loads(TWO.format(noise=noise))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case = mzpdf.load_case(table, [*FAST, "solver.samples=4096"])
        results = mzpdf.run(case)
        grids = [mzpdf.run(mzpdf.load_case(table, ["solver.method=grid", f"solver.nodes={k}"])) for k in (64, 128)]
    layer = results.forward[1]
    for j in range(2):
        exact = first_layer_marginal(case, j, layer.marginal_x[j])
        assert_pdf_within(layer.marginal_pdf[j], exact, layer.marginal_pdf_stderr[j], (1, j))
    layer = results.forward[2]
    for j in range(2):
        x = layer.marginal_x[j]
        h = x[1] - x[0]
        coarse, fine = (g.law(2).marginal(j, x) for g in grids)
        distance = h * np.sum(np.abs(layer.marginal_pdf[j] - fine))
        bound = h * np.sum(Z * layer.marginal_pdf_stderr[j] + 2 * np.abs(coarse - fine))
        assert distance <= bound, (2, j, distance, bound)


# -- against plain Monte Carlo ------------------------------------------------------------------------

TANH3 = """
[case]
name = "tanh3"
seed = 1
[network.random]
widths = [3, 3, 3, 3]
activation = "tanh"
sigma_w = 1.0
sigma_b = 0.2
seed = 2
noise = { kind = "gaussian", std = 0.4 }
[input]
kind = "gaussian"
mean = [0.2, -0.1, 0.0]
std = 0.5
"""


def test_qmc_standard_errors_are_far_below_plain_monte_carlo_at_equal_points():
    """Oracle: plain Monte Carlo's standard error sd / sqrt(n) at the same
    32768 points (4096 x 8 replicates) on a smooth 3-layer tanh net. Measured:
    qmc's last-layer mean stderr is ~50x smaller (median over neurons; 100-500x
    on the hidden layers), from the scrambled points and the last noise
    integrated exactly. Asserted: at least 10x, every layer."""
    table = tomllib.loads(TANH3)
    qmc = mzpdf.run(mzpdf.load_case(table, ["solver.method=qmc", "solver.samples=4096", "solver.replicates=8",
                                            "solver.joint_points=9"]))
    mc = mzpdf.run(mzpdf.load_case(table, ["solver.method=montecarlo", "solver.samples=32768"]))
    for n in range(1, 4):
        ratio = np.median(mc.forward[n].mean_stderr / qmc.forward[n].mean_stderr)
        assert ratio > 10.0, (n, ratio)


# -- options, reproducibility, files ------------------------------------------------------------------

def test_sequence_is_checked():
    with pytest.raises(CaseError) as err:
        linear_gaussian("solver.sequence='halton'")
    assert err.value.key == "solver.sequence" and err.value.value == "halton"


def test_samples_not_a_power_of_two_exit_2_naming_the_key(tmp_path, capsys):
    """Rule: solver.samples must be a power of two (Sobol balance); the refusal
    names the key, the rule and the value, from Python and with exit 2."""
    with pytest.raises(CaseError) as err:
        linear_gaussian("solver.samples=1000")
    assert err.value.key == "solver.samples" and err.value.value == 1000
    path = tmp_path / "case.toml"
    path.write_text((ROOT / "cases" / "linear_gaussian.toml").read_text().replace(
        'method = "grid"\nnodes = 40', 'method = "qmc"\nsamples = 1000'))
    assert main(["validate", str(path)]) == 2
    text = capsys.readouterr().err
    assert "solver.samples" in text and "power of two" in text and "1000" in text


def test_a_seed_gives_the_same_numbers_and_another_seed_others():
    """Identity: replicate seeds come from SeedSequence(seed).spawn, so two runs
    with one seed agree bit for bit; another seed changes the estimates."""
    runs = [mzpdf.run(linear_gaussian("solver.samples=256", "solver.replicates=4", f"solver.seed={s}"))
            for s in (11, 11, 12)]
    a, b, c = runs
    for n in range(a.depth + 1):
        for name in ("mean", "cov", "marginal_pdf", "mean_stderr", "marginal_pdf_stderr"):
            assert np.array_equal(getattr(a.forward[n], name), getattr(b.forward[n], name)), (n, name)
    assert np.array_equal(a.backward.q0, b.backward.q0) and np.array_equal(a.backward.q0_stderr, b.backward.q0_stderr)
    assert not np.array_equal(a.forward[-1].mean, c.forward[-1].mean)


@pytest.mark.parametrize("method", ["qmc", "montecarlo"])
def test_case_file_through_the_cli_writes_the_standard_errors(tmp_path, method):
    """Layout (shared/INTERFACE.md): sampling methods write
    /forward/layer_LLL/mean_stderr (N,), marginals/pdf_stderr (N, m) and
    /backward/q0_stderr (P,), and read_results gives them back unchanged."""
    # tol = 0.1: 512 points are far from the default 1e-3 (the error contract: tests/test_pushforward.py)
    options = ('method = "qmc"\nsamples = 512\nreplicates = 4\njoint_points = 9\ntol = 0.1\nmax_seconds = 0'
               if method == "qmc"
               else 'method = "montecarlo"\nsamples = 2000')
    path, out = tmp_path / "case.toml", tmp_path / "out.h5"
    text = (ROOT / "cases" / "linear_gaussian.toml").read_text()
    path.write_text(text.replace('method = "grid"\nnodes = 40', options))
    # sampling methods pass their own checks (the share of paths beyond the stored abscissae biases nothing)
    assert main(["run", str(path), "-o", str(out), "--quiet"]) == 0
    with h5py.File(out, "r") as f:
        for n in range(6):
            g = f[f"forward/layer_{n:03d}"]
            assert g["mean_stderr"].shape == (2,)
            assert g["marginals/pdf_stderr"].shape == g["marginals/pdf"].shape
        assert f["backward/q0_stderr"].shape == (2,)
        assert np.all(f["backward/q0_stderr"][()] > 0)
    back = read_results(out)
    assert back.backward.q0_stderr.shape == (2,)
    assert all(layer.mean_stderr is not None and layer.marginal_pdf_stderr is not None for layer in back.forward)


def test_qmc_is_registered_with_its_capabilities():
    """The registry entry: every layer kind and registered noise, noiseless
    layers, widening, any width, a backward solve and tails (conditional RQMC); no projections,
    no resume."""
    cap = SOLVERS.get("qmc").capabilities
    assert set(cap.layer_kinds) == {"dense", "residual", "layernorm", "softmax"} and cap.noiseless and cap.widening
    assert "argmax" in cap.observables
    assert set(cap.noise_kinds) == {"gaussian", "uniform", "laplace"} and cap.max_width is None
    assert cap.backward and cap.projections == () and not cap.resume and cap.tails


def test_replicates_on_a_dask_cluster_give_the_same_numbers(tmp_path):
    """mzpdf run --workers 2 runs qmc's replicates as Dask tasks; each replicate is seeded by its own
    SeedSequence child and they are combined in replicate order, so every stored number is identical
    (bit for bit) to the run on this process. A method that computes on this machine refuses --workers."""
    pytest.importorskip("dask.distributed")
    path = tmp_path / "case.toml"
    text = (ROOT / "cases" / "linear_gaussian.toml").read_text()
    path.write_text(text.replace('method = "grid"\nnodes = 40', 'method = "qmc"\nsamples = 1024\nreplicates = 4\ntol = 0.1\nmax_seconds = 0'))
    here, there = tmp_path / "here.h5", tmp_path / "there.h5"
    assert main(["run", str(path), "-o", str(here), "--quiet"]) == 0
    assert main(["run", str(path), "-o", str(there), "--quiet", "--workers", "2"]) == 0
    a, b = read_results(here), read_results(there)
    for x, y in zip(a.forward, b.forward):
        for name in ("mean", "cov", "marginal_pdf", "mean_stderr", "marginal_pdf_stderr"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
    np.testing.assert_array_equal(a.backward.q0, b.backward.q0)
    grid = tmp_path / "grid.toml"
    grid.write_text(text)
    assert main(["run", str(grid), "-o", str(tmp_path / "g.h5"), "--quiet", "--workers", "2"]) == 2
