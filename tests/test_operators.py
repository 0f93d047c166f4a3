"""Transfer and Koopman operators: kernels against their NumPy twins,
discrete duality, M 1 = in-box mass, and the scipy LinearOperator view."""
import numpy as np
import pytest

import mzpdf
from mzpdf.discretization import TensorGrid
from mzpdf.errors import SingularDensityError
from mzpdf.network import make_noise
from mzpdf.solvers.grid.transfer import KoopmanOperator, TransferOperator, assemble_transition
from mzpdf.solvers.grid import _kernels
from mzpdf.solvers.grid import _reference as ref

# Kernels and twins add the same O(1e4) non-negative terms in different
# orders: agreement to 1e-12 relative is round-off. The windowed sums also
# drop terms below 1e-16 of the kernel's peak.
AGREE = 1e-12
# Duality holds in exact arithmetic; in floating point to a few ulps per term.
DUALITY = 1e-13

NOISES = [("gaussian", "std", 0.2), ("uniform", "half_width", 0.4), ("laplace", "scale", 0.15)]


def _setup(n_out, kind, param, value, seed=0):
    rng = np.random.default_rng(seed)
    noise = make_noise({"kind": kind, param: value}, n_out)
    layer = mzpdf.Layer(rng.standard_normal((n_out, 2)), 0.1 * rng.standard_normal(n_out), "tanh", noise)
    source = TensorGrid.from_box([[-2, 2], [-1.5, 2.5]], 9, "gauss_legendre")
    target = TensorGrid.from_box([[-2, 2]] * n_out, 13, "trapezoid")
    return rng, layer, source, target


@pytest.mark.parametrize("n_out", [1, 2, 3])
@pytest.mark.parametrize("kind,param,value", NOISES)
@pytest.mark.parametrize("algorithm", ["dense", "windowed"])
def test_sums_match_numpy_twin(n_out, kind, param, value, algorithm):
    rng, layer, source, target = _setup(n_out, kind, param, value)
    t = assemble_transition(layer, source.points, source.weights, target, algorithm)
    coeffs = rng.random(source.size)
    z = rng.random(target.size)
    fwd, fwd_ref = t.forward_sum(coeffs), ref.transfer_sum(layer.noise, target.points, t.mapped, coeffs)
    bwd, bwd_ref = t.backward_sum(z), ref.koopman_sum(layer.noise, target.points, t.mapped, z)
    assert np.abs(fwd - fwd_ref).max() <= AGREE * np.abs(fwd_ref).max()
    assert np.abs(bwd - bwd_ref).max() <= AGREE * np.abs(bwd_ref).max()


def test_dense_loop_kernel_matches_twin():
    rng, layer, source, target = _setup(2, "gaussian", "std", 0.3)
    t = assemble_transition(layer, source.points, source.weights, target, "dense")
    tables = np.empty((2, 13, source.size))
    _kernels.fill_factor_tables(0, layer.noise.scale, np.stack(target.axes), t.mapped, tables)
    coeffs = rng.random(source.size)
    out = np.empty(target.size)
    _kernels.transfer_dense_loop(tables, coeffs, out)
    expect = ref.transfer_sum(layer.noise, target.points, t.mapped, coeffs)
    assert np.abs(out - expect).max() <= AGREE * expect.max()


@pytest.mark.parametrize("n_out", [1, 2, 3])
@pytest.mark.parametrize("kind,param,value", NOISES)
def test_serial_factor_tables_match_threaded_and_twin(n_out, kind, param, value):
    """Small grids take the one-thread factor tables and BLAS
    (transfer.SERIAL_PAIRS): the same bits as the threaded path, which the
    stored references rely on."""
    rng, layer, source, target = _setup(n_out, kind, param, value, seed=7)
    t = assemble_transition(layer, source.points, source.weights, target, "dense")
    assert t.is_small
    noise, ynodes = layer.noise, np.stack(target.axes)
    serial, threaded = np.empty((n_out, 13, source.size)), np.empty((n_out, 13, source.size))
    _kernels.factor_tables_serial(noise.code, noise.scale, ynodes, t.mapped, serial)
    _kernels.fill_factor_tables(noise.code, noise.scale, ynodes, t.mapped, threaded)
    np.testing.assert_array_equal(serial, threaded)
    z = target.points[:, None, :] - t.mapped[None, :, :]  # twin: rho_k per pair, (I, J, N)
    twin = noise.pdf(z)
    for k in range(n_out):
        index = np.unravel_index(np.arange(target.size), target.shape)[k]
        np.testing.assert_allclose(serial[k][index], twin[:, :, k], rtol=AGREE, atol=0)
    coeffs = rng.random(source.size)
    assert t.keeps_tables
    np.testing.assert_array_equal(t.kept_tables, threaded)
    for transpose, vec in ((False, coeffs), (True, rng.random(target.size))):
        np.testing.assert_array_equal(t._dense(vec, transpose),
                                      t._dense_blocks(vec, transpose, _kernels.fill_factor_tables))


@pytest.mark.parametrize("algorithm", ["dense", "windowed"])
def test_duality_and_constant_preservation(algorithm):
    rng, layer, source, target = _setup(2, "gaussian", "std", 0.25, seed=4)
    t = assemble_transition(layer, source.points, source.weights, target, algorithm)
    N, M = TransferOperator(t), KoopmanOperator(t)
    p, u = rng.random(source.size), rng.standard_normal(target.size)
    lhs = source.weights @ (M(u) * p)
    rhs = target.weights @ (u * N(p))
    assert abs(lhs - rhs) <= DUALITY * (source.weights @ (M(np.abs(u)) * p))
    # M 1 = P(F(x) + xi in box): the quadrature of the noise density over the
    # 13-node trapezoid box is not exact, so compare with a finer target grid.
    fine = TensorGrid.from_box(target.box, 201, "trapezoid")
    t_fine = assemble_transition(layer, source.points, source.weights, fine, algorithm)
    assert np.abs(KoopmanOperator(t_fine)(np.ones(fine.size)) - t.inbox_mass).max() < 1e-6


def test_linear_operator_views_are_adjoint():
    rng, layer, source, target = _setup(2, "gaussian", "std", 0.3, seed=2)
    t = assemble_transition(layer, source.points, source.weights, target)
    A = TransferOperator(t).as_linear_operator()
    B = KoopmanOperator(t).as_linear_operator()
    p, u = rng.random(source.size), rng.random(target.size)
    # <u, A p> (plain dot) = <A^H u, p>; and A^H u = w * (M (u / v)).
    assert abs(u @ A.matvec(p) - A.rmatvec(u) @ p) < DUALITY * abs(u @ A.matvec(p))
    assert abs(p @ B.matvec(u) - B.rmatvec(p) @ u) < DUALITY * abs(p @ B.matvec(u))


def test_koopman_at_points_equals_koopman_at_nodes():
    rng, layer, source, target = _setup(2, "gaussian", "std", 0.3, seed=3)
    t = assemble_transition(layer, source.points, source.weights, target)
    u = rng.random(target.size)
    K = KoopmanOperator(t)
    assert np.allclose(K.at(source.points[:5], u), K(u)[:5], rtol=AGREE, atol=0)


def test_deterministic_layer_is_refused():
    """A lone noiseless layer has no transition density on a grid; the message names the composition
    (Network.collapsed) and the method that takes it."""
    layer = mzpdf.Layer(np.eye(2), np.zeros(2), "tanh", mzpdf.NoNoise(np.zeros(2)))
    grid = TensorGrid.from_box([[-1, 1]] * 2, 5)
    with pytest.raises(SingularDensityError, match="Network.collapsed.*qmc"):
        assemble_transition(layer, grid.points, grid.weights, grid)
