"""Mori-Zwanzig reduction on tensor grids.

Oracles:
* the MZ identity itself: with full memory the reduced recursion must give the
  projection of the full solution (forward and backward) to round-off;
  1e-10 relative is the acceptance bound, round-off here is ~1e-15;
* algebra of projections: P^2 = P, and density/observable projections are
  adjoint under the quadrature pairing (round-off, 1e-12);
* P = I gives memory and noise terms that are exactly zero; the Mori
  projection onto constants under the true layer densities gives zero memory
  kernels (round-off relative to the streaming operator, 1e-12);
* linear-gaussian layers: kappa for the projection onto constants in L2(p)
  equals the top canonical correlation (closed form; 1e-6 acceptance bound,
  the grid resolves these gaussians to ~1e-9);
* the Dobrushin coefficient bounds the total-variation contraction measured
  on the discrete kernel; kappa is bounded by ||Q|| rho ||Q|| (the norms and
  their inequalities are tested further in tests/test_mz_norms.py).
"""
import numpy as np
import pytest

from mzpdf import GridSolver, load_case
from mzpdf.errors import CaseError
from mzpdf.mz import ProjectionSpec, dobrushin_coefficient
from mzpdf.mz.projections import build_projection
from mzpdf.solvers.grid.mz import reduce_network
from mzpdf.io.case import loads_case
from mzpdf.io.hdf5 import read_results

CASES = "cases"
EXACT = 1e-10  # acceptance bound of the full-memory identity (round-off is ~1e-15)

SPECS = [
    dict(kind="chorin", keep=[0]),
    dict(kind="chorin", keep=[1], reference="gaussian"),
    dict(kind="chorin", keep=[0], reference="uniform"),
    dict(kind="mori", keep=[0], basis="linear"),
    dict(kind="mori", keep=[1], basis="quadratic"),
]


def _solve(path, *overrides):
    case = load_case(path, list(overrides))
    solver = GridSolver(case.solver)
    forward = solver.propagate(case.network, case.input)
    backward = solver.pullback(forward, case.observable) if case.observable is not None else None
    return case, forward, backward


@pytest.fixture(scope="module")
def tanh2d():
    return _solve(f"{CASES}/quickstart.toml", "solver.nodes=24")


@pytest.fixture(scope="module")
def tanh3d():
    return _solve(f"{CASES}/mz_reduce_tanh.toml", "solver.nodes=12")


def _relative(a, b):
    return max(np.max(np.abs(x - y)) / np.max(np.abs(y)) for x, y in zip(a, b))


@pytest.mark.parametrize("table", SPECS, ids=lambda t: f"{t['kind']}-{t.get('reference', t.get('basis'))}")
def test_full_memory_reproduces_projected_solution(tanh2d, table):
    case, forward, backward = tanh2d
    mz = reduce_network(forward, ProjectionSpec.from_table(table, case.network.widths), backward)
    assert _relative(mz.forward(), mz.projected) <= EXACT
    assert _relative(mz.backward(), mz.backward_projected) <= EXACT
    assert np.max(mz.marginal_error()) <= EXACT
    # truncation at the largest lag keeps every term: the same recursion
    assert np.max(mz.truncation_error()[-1]) <= EXACT


@pytest.mark.parametrize("table", [dict(kind="chorin", keep=[0, 2]), dict(kind="mori", keep=[1], basis="linear")])
def test_full_memory_identity_in_three_dimensions(tanh3d, table):
    case, forward, backward = tanh3d
    mz = reduce_network(forward, ProjectionSpec.from_table(table, case.network.widths), backward)
    assert _relative(mz.forward(), mz.projected) <= EXACT
    assert _relative(mz.backward(), mz.backward_projected) <= EXACT


@pytest.mark.parametrize("table", SPECS, ids=lambda t: f"{t['kind']}-{t.get('reference', t.get('basis'))}")
def test_projection_is_idempotent_and_adjoint(tanh2d, table):
    case, forward, _ = tanh2d
    spec = ProjectionSpec.from_table(table, case.network.widths)
    density = forward.densities[2]
    proj = build_projection(spec, density.grid, density.values)
    rng = np.random.default_rng(0)
    p, u = rng.standard_normal((density.grid.size, 3)), rng.standard_normal((density.grid.size, 3))
    once = proj.extend(proj.restrict(p))
    assert np.max(np.abs(proj.extend(proj.restrict(once)) - once)) <= 1e-12 * np.max(np.abs(once))
    once_f = proj.extend_fn(proj.restrict_fn(u))
    assert np.max(np.abs(proj.extend_fn(proj.restrict_fn(once_f)) - once_f)) <= 1e-12 * np.max(np.abs(once_f))
    w = density.grid.weights[:, None]
    lhs = np.sum(w * once_f * p, axis=0)  # <P u, p>
    rhs = np.sum(w * u * once, axis=0)  # <u, P p>
    assert np.max(np.abs(lhs - rhs)) <= 1e-12 * np.max(np.abs(rhs))
    # the pairing matrix H: <E s, E r> = s^T H r
    s, r = rng.standard_normal(proj.dim), rng.standard_normal(proj.dim)
    direct = np.sum(density.grid.weights * proj.extend_fn(s[:, None])[:, 0] * proj.extend(r[:, None])[:, 0])
    assert abs(direct - s @ proj.pairing @ r) <= 1e-12 * max(1.0, abs(direct))


def test_identity_projection_has_exactly_zero_memory_and_noise(tanh2d):
    case, forward, backward = tanh2d
    mz = reduce_network(forward, ProjectionSpec.from_table(dict(kind="chorin", keep=[0, 1]), [2]), backward)
    for (n, k), kern in mz.kernels.items():
        if k < n:
            assert np.all(kern == 0.0)
    assert all(np.all(f == 0.0) for f in mz.noise)
    assert all(np.all(f == 0.0) for f in mz.backward_noise)
    assert np.all(mz.kappa == 0.0)


def test_projection_onto_constants_under_true_densities_has_zero_memory(tanh2d):
    case, forward, _ = tanh2d
    mz = reduce_network(forward, ProjectionSpec.from_table(dict(kind="mori", keep=[0], basis="constant"), [2]))
    norms = mz.memory_norm()
    streaming = np.diag(norms[:, :1]) if norms.ndim == 1 else norms[:, 0]
    assert np.all(streaming > 0.5)
    memory = norms[:, 1:][np.isfinite(norms[:, 1:])]
    assert memory.size and np.max(memory) <= 1e-12
    assert max(np.max(np.abs(f)) for f in mz.noise) <= 1e-12


def test_kappa_equals_canonical_correlation_for_linear_gaussian():
    case, forward, _ = _solve(f"{CASES}/mz_linear_gaussian.toml")
    mz = reduce_network(forward, case.projection)
    assert np.all(np.isfinite(mz.canonical_correlation))
    assert np.max(np.abs(mz.kappa - mz.canonical_correlation)) <= 1e-6
    # with a linear basis (which holds the constants) the canonical correlation is a bound
    linear = reduce_network(forward, ProjectionSpec.from_table(dict(kind="mori", keep=[0], basis="linear"), [2]))
    assert np.all(linear.kappa <= linear.canonical_correlation + 1e-9)


def test_kappa_within_its_bound(tanh3d):
    """kappa_n <= ||Q_n|| rho_n ||Q_{n+1}|| (docs/theory.md section 5); both
    sides come from block power iterations converged to 1e-10 relative, so a
    1e-8 relative margin is ample."""
    case, forward, _ = tanh3d
    mz = reduce_network(forward, ProjectionSpec.from_table(dict(kind="chorin", keep=[0]), case.network.widths))
    assert np.all(mz.kappa <= mz.kappa_bound * (1 + 1e-8))
    assert np.all(mz.kappa < 1.0)


def test_dobrushin_coefficient_bounds_measured_contraction():
    """Largest total-variation distance between two discrete transition laws
    k(.|x_j), k(.|x_j') over a layer's nodes must not exceed the bound; the
    wide noise (std 1.5) keeps the bound well below 1 and the quadrature of
    the distance accurate to ~1e-12 (1e-9 margin)."""
    case, forward, _ = _solve(f"{CASES}/quickstart.toml", "solver.nodes=24", "network.random.noise.std=1.5",
                              "network.random.sigma_w=0.6")
    for n in (0, 3):
        t = forward.transitions[n]
        kernel = next(t.kernel_blocks(max_elements=10**9))[2]  # (J_out, J)
        v = t.target.weights
        tv = max(0.5 * np.max(v @ np.abs(kernel - kernel[:, [j]])) for j in range(kernel.shape[1]))
        bound = dobrushin_coefficient(t.layer, forward.densities[n].grid.box)
        assert bound < 0.9
        assert 0.3 * bound < tv <= bound + 1e-9


def test_memory_decays_with_lag_on_noisy_tanh_net():
    """cases/mz_reduce_tanh.toml: the memory norms fall with lag (fitted rate
    < 1, late lags well below lag 1) and truncating memory at h loses less as h
    grows, down to round-off with every lag kept."""
    case, forward, _ = _solve(f"{CASES}/mz_reduce_tanh.toml", "solver.nodes=16")
    mz = reduce_network(forward, case.projection)
    norms = mz.memory_norm()
    assert mz.decay_rate() < 0.7
    last = norms[-1]
    assert np.max(last[4:]) < 0.2 * last[1]
    worst = np.max(mz.truncation_error(), axis=1)
    assert worst[0] > worst[3] > worst[-1]
    assert worst[-1] <= EXACT


@pytest.mark.parametrize(("text", "key"), [
    ('kind = "galerkin"\nkeep = [0]', "projection.kind"),
    ('kind = "chorin"', "projection.keep"),
    ('kind = "chorin"\nkeep = [2]', "projection.keep"),
    ('kind = "chorin"\nkeep = [0, 0]', "projection.keep"),
    ('kind = "chorin"\nkeep = [0]\nmemory = -1', "projection.memory"),
    ('kind = "chorin"\nkeep = [0]\nmemory = "some"', "projection.memory"),
    ('kind = "chorin"\nkeep = [0]\nbasis = "linear"', "projection.basis"),
    ('kind = "mori"\nkeep = [0]\nbasis = "cubic"', "projection.basis"),
    ('kind = "chorin"\nkeep = [0]\nreference = "normal"', "projection.reference"),
    ('kind = "chorin"\nkeep = [0]\ntol = 0', "projection.tol"),
    ('kind = "chorin"\nkeep = [0]\nlag = 2', "projection.lag"),
])
def test_bad_projection_tables_name_the_key(text, key):
    base = open(f"{CASES}/mz_linear_gaussian.toml").read().split("[projection]")[0]
    with pytest.raises(CaseError) as err:
        loads_case(base + "[projection]\n" + text + "\n")
    assert err.value.key == key


def test_projection_needs_grid_method_and_a_density_input():
    text = open(f"{CASES}/mz_linear_gaussian.toml").read()
    with pytest.raises(CaseError) as err:
        loads_case(text, ['solver.method="montecarlo"', "solver.nodes=2"])
    assert err.value.key in ("solver.method", "solver.nodes")
    with pytest.raises(CaseError) as err:
        loads_case(text.replace('method = "grid"\nnodes = 40', 'method = "montecarlo"'))
    assert err.value.key == "solver.method"
    point = text.replace('kind = "gaussian"\nmean = [0.5, 0.5]\ncov = [[0.35, 0.05], [0.05, 0.35]]',
                         'kind = "point"\nx = [0.5, 0.5]')
    with pytest.raises(CaseError) as err:
        loads_case(point)
    assert err.value.key == "input.kind"


def test_cli_writes_mz_group_and_plots(tmp_path):
    """End to end: the /mz names of shared/INTERFACE.md, the reduced marginals
    equal to the full ones with full memory (the identity, 1e-10), a plot."""
    import h5py

    from mzpdf.cli import main

    out = tmp_path / "mz.h5"
    code = main(["run", f"{CASES}/mz_reduce_tanh.toml", "-o", str(out), "--quiet", "--set", "solver.nodes=10",
                 "--set", "projection.memory=full", "--accept-inaccurate"])  # 10 nodes: quick, not to tol
    assert code == 0
    with h5py.File(out, "r") as f:
        L = len([k for k in f["forward"] if k.startswith("layer_")]) - 1
        assert list(f["mz/kept"][()]) == [0]
        assert f["mz/memory_norm"].shape == (L, L)
        assert np.all(np.isnan(np.triu(f["mz/memory_norm"][()], 1)[np.triu_indices(L, 1)]))
        assert f["mz/kappa"].shape == (L,)
        assert f["mz/error"].shape == (L + 1,) and np.max(f["mz/error"][()]) <= EXACT
        for n in range(L + 1):
            red = f[f"mz/reduced/layer_{n:03d}/marginals"]
            full = f[f"forward/layer_{n:03d}/marginals"]
            np.testing.assert_array_equal(red["x"][()], full["x"][()][[0]])
            # mz/error (above) checks the reduced nodal marginals equal the full ones to EXACT; the file's
            # forward marginals are the layers' kernel sums, the reduced ones interpolate nodal values, so on
            # this 10-node grid the two evaluations differ by the interpolation error (~1.4e-2 of the peak)
            assert np.max(np.abs(red["pdf"][()] - full["pdf"][()][[0]])) <= 0.05 * np.max(full["pdf"][()][0])
    back = read_results(out).mz
    assert back.spec["kind"] == "chorin" and back.spec["memory"] == "full" and back.min_memory >= 0
    assert back.backward_error is not None and np.max(back.backward_error) <= EXACT
    assert main(["info", str(out)]) == 0
    png = tmp_path / "mz.png"
    assert main(["plot", str(out), "-o", str(png)]) == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(out), "-o", str(png)]) == 2  # never overwritten without --overwrite
