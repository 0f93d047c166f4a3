"""Tensor trains: TT arithmetic against dense tensors, rounding and cross
approximation, the TT layer solver against closed forms and the tensor-grid
solver, and the refusals of what it cannot do.

Oracles: dense NumPy tensors (identities exact to round-off, tolerance 1e-12
relative); the closed form of linear-gaussian networks (m' = W m + b,
C' = W C W^T + S); the tensor-grid solver, converged (40 and 56 nodes agree to
1e-12 on the case below); the exit-status contract of shared/INTERFACE.md.
"""

import warnings

import numpy as np
import pytest

from mzpdf import GaussianInput, GaussianNoise, GridSolver, Layer, Network
from mzpdf.io.case import loads_case
from mzpdf.cli import main
from mzpdf.discretization.rules import make_rule
from mzpdf.errors import TTTruncationWarning
from mzpdf.solvers.tt.options import TTOptions
from mzpdf.discretization.cross import cross, maxvol
from mzpdf.solvers.tt.engine import TTSolver
from mzpdf.discretization.tensor_train import TTFunction, tt_round

RNG = np.random.default_rng(7)


def _random_tt(shape, ranks, rules):
    r = [1, *ranks, 1]
    return TTFunction([RNG.standard_normal((r[k], n, r[k + 1])) for k, n in enumerate(shape)], rules)


@pytest.fixture
def pair():
    rules = [make_rule("gauss_legendre", n, -1.0 - k, 2.0 + k) for k, n in enumerate((5, 6, 4, 7))]
    a, b = _random_tt((5, 6, 4, 7), (3, 4, 2), rules), _random_tt((5, 6, 4, 7), (2, 2, 3), rules)
    return a, b, rules


def _close(x, y, tol=1e-12):
    return np.max(np.abs(np.asarray(x) - np.asarray(y))) <= tol * max(1.0, np.max(np.abs(y)))


def test_arithmetic_matches_dense(pair):
    a, b, _ = pair
    A, B = a.to_dense(), b.to_dense()
    assert _close((a + b).to_dense(), A + B)
    assert _close((a - b).to_dense(), A - B)
    assert _close((2.5 * a).to_dense(), 2.5 * A)
    assert _close(a.hadamard(b).to_dense(), A * B)
    assert abs(a.dot(b) - np.sum(A * B)) <= 1e-12 * np.sqrt(np.sum(A * A) * np.sum(B * B))
    assert abs(a.norm() - np.linalg.norm(A)) <= 1e-12 * np.linalg.norm(A)


def test_contractions_match_dense(pair):
    a, _, rules = pair
    A = a.to_dense()
    w = [r.weights for r in rules]
    x = [r.nodes for r in rules]
    assert abs(a.integral() - np.einsum("ijkl,i,j,k,l->", A, *w)) <= 1e-12 * np.abs(A).sum()
    assert _close(a.marginal(2), np.einsum("ijkl,i,j,l->k", A, w[0], w[1], w[3]))
    assert _close(a.marginals()[0], np.einsum("ijkl,j,k,l->i", A, w[1], w[2], w[3]))
    assert _close(a.marginal2(1, 3), np.einsum("ijkl,i,k->jl", A, w[0], w[2]))
    # moments of the positive function A**2 (a density up to its mass)
    p = a.hadamard(a)
    P = A * A
    mass = np.einsum("ijkl,i,j,k,l->", P, *w)
    grids = np.meshgrid(*x, indexing="ij")
    weight = np.einsum("i,j,k,l->ijkl", *w) * P / mass
    mean = np.array([np.sum(weight * g) for g in grids])
    cov = np.array([[np.sum(weight * (gi - mi) * (gj - mj)) for gj, mj in zip(grids, mean)]
                    for gi, mi in zip(grids, mean)])
    m, mu, c = p.moments()
    assert abs(m - mass) <= 1e-12 * mass and _close(mu, mean) and _close(c, cov)


def test_evaluation_interpolates_polynomials():
    """Gauss-Legendre nodes interpolate polynomials of degree < n exactly, so
    off-grid evaluation of f = (1 + x1 x2)(x3^2) is exact to round-off."""
    rules = [make_rule("gauss_legendre", 6, -1.0, 2.0) for _ in range(3)]
    x = [r.nodes for r in rules]
    dense = (1 + x[0][:, None, None] * x[1][None, :, None]) * (x[2] ** 2)[None, None, :]
    f = TTFunction.from_dense(dense, rules)
    assert f.ranks == (1, 2, 1, 1)
    pts = RNG.uniform(-1.0, 2.0, (50, 3))
    assert _close(f(pts), (1 + pts[:, 0] * pts[:, 1]) * pts[:, 2] ** 2)


def test_rounding_reports_its_error(pair):
    """The reported error is the exact relative Frobenius distance."""
    a, b, _ = pair
    s = a + b  # rank 5, 6, 5: compressible only with loss
    for tol in (1e-1, 1e-2, 1e-6):
        rounded, err, capped = s.round(tol)
        true = np.linalg.norm(rounded.to_dense() - s.to_dense()) / np.linalg.norm(s.to_dense())
        assert err <= tol and abs(err - true) <= 1e-10 and not capped
    exact, err, _ = (a + a).round(1e-12)
    assert exact.ranks == a.ranks and err < 1e-12  # a + a has the ranks of a
    _, err, capped = s.round(1e-12, max_rank=1)
    assert capped and err > 1e-12


def test_maxvol_finds_a_dominant_submatrix():
    a = RNG.standard_normal((200, 12))
    rows = maxvol(a)
    b = a @ np.linalg.inv(a[rows])
    assert len(set(rows.tolist())) == 12 and np.max(np.abs(b)) <= 1.05 + 1e-12


def test_cross_recovers_a_low_rank_function():
    """f = sin(x1 + ... + x6) has TT rank 2 exactly; cross must find it."""
    n, N = 12, 6
    x = np.linspace(0.0, 1.0, n)
    fn = lambda idx: np.sin(x[idx].sum(axis=1))  # noqa: E731
    res = cross(fn, [n] * N, tol=1e-10, max_rank=10, rng=np.random.default_rng(0))
    every = np.stack(np.meshgrid(*[np.arange(n)] * N, indexing="ij"), -1).reshape(-1, N)
    from mzpdf.discretization.tensor_train import cores_at_indices

    assert np.max(np.abs(cores_at_indices(res.cores, every) - fn(every))) < 1e-9
    assert max(tt_round(res.cores, 1e-10)[0][k].shape[2] for k in range(N - 1)) == 2
    assert res.evaluations < n**N / 100  # saw under 1% of the tensor


# -- the TT solver ----------------------------------------------------------------------

TANH3 = """
[network.random]
widths = [3, 3, 3, 3]
activation = "tanh"
sigma_w = 1.0
sigma_b = 0.2
init = "orthogonal"
seed = 1
noise = { kind = "gaussian", std = 0.4 }
[input]
kind = "gaussian"
mean = [0.0, 0.0, 0.0]
std = 0.5
[solver]
method = "tt"
"""


def test_tt_agrees_with_the_grid_solver_at_width_3():
    """L1 distance of every neuron's marginal, TT vs the converged grid
    solver: measured 3.1e-10 at tol 1e-8 (acceptance 1e-8)."""
    case = loads_case(TANH3)
    tt = TTSolver(case.solver).propagate(case.network, case.input)
    grid_case = loads_case(TANH3, ['solver.method="grid"', "solver.nodes=40"])
    grid = GridSolver(grid_case.solver).propagate(grid_case.network, grid_case.input)
    worst = 0.0
    for n in range(1, 4):
        for k in range(3):
            lo, hi = grid.densities[n].grid.box[k]
            x = np.linspace(lo, hi, 2001)
            diff = np.abs(tt.laws[n].marginal(k, x) - grid.densities[n].marginal(k, x))
            worst = max(worst, float(np.sum(diff) * (x[1] - x[0])))
    assert worst <= 1e-8, worst


def _linear_gaussian(width: int, depth: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(depth):
        q, r = np.linalg.qr(rng.standard_normal((width, width)))
        layers.append(Layer(0.9 * q * np.sign(np.diag(r)), rng.normal(0, 0.3, width), "identity",
                            GaussianNoise(np.array([0.5]))))
    return Network(tuple(layers)), GaussianInput(rng.normal(0, 0.3, width), np.diag(np.linspace(0.45, 0.55, width)) ** 2)


def _assert_closed_form_moments(net, law, sol, rel):
    """Every layer's mean and covariance within ``rel`` (relative, Frobenius)
    of m' = W m + b, C' = W C W^T + S."""
    m, c = law.mean(), law.cov()
    for n, layer in enumerate(net):
        W = layer.weights
        m, c = W @ m + layer.bias, W @ c @ W.T + np.diag(layer.noise.variance())
        _, mu, cov = sol.laws[n + 1].moments()
        assert np.linalg.norm(mu - m) <= rel * np.linalg.norm(m), n
        assert np.linalg.norm(cov - c) <= rel * np.linalg.norm(c), n


@pytest.mark.parametrize("width", [4])
def test_linear_gaussian_moments_match_closed_form(width):
    """Layer means and covariances of a linear-gaussian net (orthogonal
    weights, anisotropic input) against m' = W m + b, C' = W C W^T + s^2 I;
    relative error <= 1e-6 at tol 1e-8 (measured 2e-8 at width 4)."""
    net, law = _linear_gaussian(width, 3)
    sol = TTSolver(TTOptions(tol=1e-8)).propagate(net, law)
    _assert_closed_form_moments(net, law, sol, 1e-6)


@pytest.mark.slow
def test_linear_gaussian_local_weights_width_8_eight_layers():
    """Local weights (init = "local"), width 8, 8 layers, tol 3e-7: every
    layer's mean and covariance within 1e-6 relative of the closed form (the
    acceptance bound of widths 16 and 32, measured by `python
    scripts/bench_tt.py --acceptance`: 5.0e-7 at width 16)."""
    from mzpdf import random_network

    net = random_network([8] * 9, "identity", sigma_w=0.9, sigma_b=0.3, seed=3, noise={"kind": "gaussian", "std": 0.5},
                         init="local")
    rng = np.random.default_rng(3)
    law = GaussianInput(rng.normal(0, 0.3, 8), np.diag(np.linspace(0.45, 0.55, 8)) ** 2)
    sol = TTSolver(TTOptions(tol=3e-7)).propagate(net, law)
    _assert_closed_form_moments(net, law, sol, 1e-6)


def test_capped_rank_warns_and_is_recorded(tmp_path):
    """Rank 1 cannot hold a correlated gaussian to 1e-8: the run warns (and
    the lost accuracy shows up as mass loss too) and records the rank."""
    net, law = _linear_gaussian(4, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = TTSolver(TTOptions(tol=1e-8, max_rank=1)).propagate(net, law)
    assert TTTruncationWarning in {w.category for w in caught}
    assert sol.diagnostics["tt_max_rank"][1] == 1


@pytest.mark.parametrize("override, key", [
    ("solver.tol=0.0", "solver.tol"),
    ("solver.tol=-1e-3", "solver.tol"),
    ("solver.max_rank=0", "solver.max_rank"),
    ("solver.nodes=2", "solver.nodes"),
    ('network.random.noise={kind="none"}', "network.random.noise.kind"),
])
def test_bad_tt_input_exits_2_naming_the_key(tmp_path, capsys, override, key):
    path, out = tmp_path / "c.toml", tmp_path / "c.h5"
    path.write_text(TANH3)
    assert main(["run", str(path), "-o", str(out), "--set", override]) == 2
    assert key in capsys.readouterr().err and not out.exists()


def test_cli_run_writes_tt_diagnostics(tmp_path):
    import h5py

    path, out = tmp_path / "c.toml", tmp_path / "c.h5"
    path.write_text(TANH3 + '[observable]\nkind = "neuron"\nindex = 0\npoints = [[0.0, 0.0, 0.0], [0.3, -0.2, 0.1]]\n')
    assert main(["run", str(path), "-o", str(out), "--quiet"]) == 0
    with h5py.File(out) as f:
        ranks = f["diagnostics/tt_ranks"][()]
        assert ranks.shape == (4, 4) and np.all(ranks[:, 0] == 1) and np.all(ranks[:, -1] == 1)
        assert np.all(f["diagnostics/cross_error"][()] < 1e-6)
        # the backward pairing against the forward mean (duality), and q0 at the points
        assert f["backward/mean"][()] == pytest.approx(f["forward/layer_003/mean"][0], abs=1e-8)
        assert f["diagnostics/backward_duality_gap"][()] < 1e-8
        assert f["backward/q0"].shape == (2,) and np.all(np.isfinite(f["backward/q0"][()]))
        assert f["diagnostics/backward_tt_max_rank"][()][-1] == 2  # q_L = g, affine


# -- the backward (Koopman) solve ----------------------------------------------------

POINTS3 = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [-0.5, 0.4, 0.2], [0.9, 0.8, -1.0]])


def test_backward_agrees_with_the_grid_solver_at_width_3():
    """q_0 at points and E[g] from the TT backward solve against the converged
    grid solver's Nystrom sums (oracle good to ~1e-12, see above): measured
    4.6e-10 at tol 1e-8; the pairing <p_{Z_n}, R_n> of every layer against the
    forward mean (duality) 2.1e-11."""
    from mzpdf.observables import NeuronObservable

    case = loads_case(TANH3)
    solver = TTSolver(case.solver)
    back = solver.pullback(solver.propagate(case.network, case.input), NeuronObservable(0), POINTS3)
    grid_case = loads_case(TANH3, ['solver.method="grid"', "solver.nodes=40"])
    grid = GridSolver(grid_case.solver)
    ref = grid.pullback(grid.propagate(grid_case.network, grid_case.input), NeuronObservable(0), POINTS3)
    assert np.max(np.abs(back.q0 - ref.q0)) <= 1e-8
    assert abs(back.mean - ref.mean) <= 1e-8
    assert np.max(back.duality_gap) <= 1e-8


def test_backward_linear_gaussian_closed_form():
    """Identity activations: E[c . X_L + d | X_0 = x] = c . (A x + a) + d with
    A = W_{L-1} ... W_0 and a the propagated biases, exactly; relative error
    <= 1e-6 at tol 1e-8 (measured 6.6e-13; the trains are affine: ranks 2)."""
    from mzpdf.observables import LinearObservable

    net, law = _linear_gaussian(4, 3)
    g = LinearObservable(np.array([0.5, -1.0, 0.25, 2.0]), 0.3)
    solver = TTSolver(TTOptions(tol=1e-8))
    points = np.random.default_rng(1).normal(0.0, 0.5, (5, 4))
    back = solver.pullback(solver.propagate(net, law), g, points)
    A, a = np.eye(4), np.zeros(4)
    for layer in net:
        A, a = layer.weights @ A, layer.weights @ a + layer.bias
    exact = (points @ A.T + a) @ g.coefficients + g.offset
    assert np.max(np.abs(back.q0 - exact)) <= 1e-6 * np.max(np.abs(exact))
    assert np.max(back.duality_gap) <= 1e-6
    assert max(back.diagnostics["backward_tt_max_rank"]) <= 3


def test_backward_inside_the_montecarlo_band_at_width_6():
    """A width-6 tanh net at tol 1e-4: q_0 at 4 points against 4e5 Monte Carlo
    paths from each point; every difference within 4 standard errors (a
    Bonferroni band for 4 points at 99.97 %). One standard error is ~1e-3,
    far above the TT error: tol 1e-4 and 1e-6 agree to 2e-5, and 4e6 paths
    put tol 1e-6 within 1.4 standard errors at every point. Measured here:
    -2.04, -0.18, -1.93, 2.22 standard errors; duality gap 3.4e-5."""
    from mzpdf import random_network
    from mzpdf.solvers.montecarlo.engine import conditional_mean
    from mzpdf.observables import NeuronObservable

    net = random_network([6] * 4, "tanh", sigma_w=1.0, sigma_b=0.2, seed=1, noise={"kind": "gaussian", "std": 0.5},
                         init="orthogonal")
    law = GaussianInput(np.zeros(6), 0.25 * np.eye(6))
    points = np.random.default_rng(2).normal(0.0, 0.5, (4, 6))
    solver = TTSolver(TTOptions(tol=1e-4))
    back = solver.pullback(solver.propagate(net, law), NeuronObservable(2), points)
    q0, err = conditional_mean(net, points, NeuronObservable(2), samples=400_000, seed=5)
    assert np.all(np.abs(back.q0 - q0) <= 4.0 * err), (back.q0 - q0) / err
    assert np.max(back.duality_gap) <= 1e-3


def _dense_gaussian_case(width: int, seed: int, method: str = "tt") -> dict:
    return {"case": {"name": "dense"},
            "network": {"random": {"widths": [width] * 6, "sigma_w": 1.1, "seed": seed, "init": "gaussian",
                                   "noise": {"kind": "gaussian", "std": 0.25}}},
            "input": {"kind": "gaussian", "mean": [0.0] * width, "std": 0.5},
            "solver": {"method": method}}


def test_node_forecast_matches_the_exact_first_step():
    """Oracle: the first step's pre-activation covariance W C W^T is exact for
    a gaussian input, so the grid's node need follows in closed form; the
    4096-path forecast's sample covariance is within a few per cent of it
    (relative standard error of a variance ~ sqrt(2/4096) = 2 %), and the
    node need is proportional to ratios of standard deviations: 10 %."""
    from mzpdf import load_case
    from scipy.special import ndtri

    from mzpdf.solvers.tt.engine import feature_widths, nodes_needed, predicted_nodes

    for seed in (0, 1, 2):
        case = load_case(_dense_gaussian_case(8, seed, "qmc"))
        layer, opt = case.network[0], TTOptions()
        cov = layer.weights @ case.input.cov() @ layer.weights.T
        radius = -ndtri(opt.tail) * np.sqrt(np.diag(cov))
        exact = nodes_needed(-radius, radius, feature_widths(cov, layer, 8), opt.tol).max()
        forecast = dict(predicted_nodes(case.network, case.input, opt))[0]
        assert abs(forecast / exact - 1) < 0.1, (seed, forecast, exact)


@pytest.mark.parametrize("width, seed", [(8, 3), (16, 0)])
def test_ill_conditioned_dense_layers_are_refused_up_front(width, seed):
    """Gaussian square weights of condition number 250 (width 8) and 2.2e4
    (width 16) give pre-activation slabs that need 30x and 1000x the grid's
    cap of nodes: refused at once (width 16 ran over 25 minutes before the
    refusal and gave no answer), naming the key, the layer and methods that
    take the case."""
    from mzpdf import load_case
    from mzpdf.errors import CaseError

    with pytest.raises(CaseError) as err:
        load_case(_dense_gaussian_case(width, seed))
    message = str(err.value)
    assert message.startswith("network.random.widths") and "nodes per variable" in message
    assert "qmc" in message and "condition number" in message
