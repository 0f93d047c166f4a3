"""The sparse solver's Numba kernels (mzpdf.solvers.sparse._kernels) and the
Leja grids' (mzpdf.discretization._kernels) against their readable NumPy twins
(the ``_reference`` module beside each).

Oracle: the twin computes the same sums in a different order (whole-array
NumPy, scipy's log_ndtr); the kernels must agree to round-off. Tolerance:
1e-12 relative (sums of a few hundred positive terms in double precision;
measured ~1e-15), and 1e-12 absolute for log-densities.
"""
import numpy as np
import pytest

from mzpdf.discretization import _kernels as grid_kernels
from mzpdf.discretization import _reference as grid_reference
from mzpdf.solvers.sparse import _kernels, _reference
from mzpdf.discretization.leja import LejaGrid, _newton_ratios, leja_nodes

RTOL = 1e-12


@pytest.mark.parametrize("laplace", [False, True])
@pytest.mark.parametrize("smooth", [0.0, 0.07])
def test_kernel_tables_and_mixture_densities_match_the_numpy_twins(laplace, smooth):
    rng = np.random.default_rng(3)
    n, j, v, p = 3, 200, 9, 50
    centres = rng.normal(size=(j, n))
    weights = rng.random(j)
    weights /= weights.sum()
    scale = np.array([0.2, 0.3, 0.5])
    smooths = np.full(n, smooth)
    ys = rng.normal(size=(n, v)) * 1.5
    off = rng.normal(size=(n, v)) * 0.1
    tables = np.empty((n, v, j))
    _kernels.fill_tables(ys, centres, scale, smooths, laplace, off, tables)
    np.testing.assert_allclose(tables, _reference.fill_tables(ys, centres, scale, smooths, laplace, off), rtol=RTOL)

    y = rng.normal(size=(p, n))
    out = np.empty(p)
    _kernels.mixture_logpdf(y, centres, np.log(weights), scale, smooths, laplace, out)
    ref = _reference.mixture_logpdf(y, centres, np.log(weights), scale, smooths, laplace)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)

    x = np.linspace(-3, 3, p)
    out = np.empty(p)
    _kernels.mixture_marginal(x, np.ascontiguousarray(centres[:, 1]), weights, scale[1], smooth, laplace, out)
    ref = _reference.mixture_marginal(x, centres[:, 1], weights, scale[1], smooth, laplace)
    np.testing.assert_allclose(out, ref, rtol=RTOL)


def test_mixture_sums_over_shared_prefixes_match_the_numpy_twins():
    rng = np.random.default_rng(4)
    n, v, j = 3, 7, 64
    tables = rng.random((n, v, j))
    grid = LejaGrid.regular(n, 4)
    vidx = np.ascontiguousarray(grid.indices % v, dtype=np.int64)
    start = np.ascontiguousarray(grid.row_start, dtype=np.int64)
    weights = rng.random(j)
    out = np.empty(vidx.shape[0])
    grid_kernels.mixture_sum(tables, vidx, start, weights, out)
    np.testing.assert_allclose(out, grid_reference.mixture_sum(tables, vidx, start, weights), rtol=RTOL)
    log_tables = np.log(tables)
    out = np.empty(vidx.shape[0])
    _kernels.mixture_logsum(log_tables, vidx, np.log(weights), out)
    np.testing.assert_allclose(out, _reference.mixture_logsum(log_tables, vidx, np.log(weights)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [1, 3])
def test_newton_sums_match_the_numpy_twin(dim):
    rng = np.random.default_rng(5)
    grid = LejaGrid.regular(dim, 5)
    offsets, prefix, start = grid._groups
    coef = rng.normal(size=grid.size)
    u = rng.normal(size=(37, dim))
    nodes, ratios = leja_nodes()[: grid.degree + 1], _newton_ratios()[: grid.degree + 1]
    out = np.empty(u.shape[0])
    grid_kernels.newton_sum(u, nodes, ratios, offsets, prefix, start, coef, out)
    ref = grid_reference.newton_sum(u, nodes, ratios, offsets, prefix, start, coef)
    np.testing.assert_allclose(out, ref, rtol=1e-11, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("n_axes", [1, 2, 3])
def test_laplace_sums_on_tensor_grids_match_the_term_by_term_sum(n_axes):
    """The recursive product-Laplace sum (mzpdf.solvers.sparse.transfer.laplace_sum:
    the deposits and first-order recursions of the two kernels) against
    the direct sum over centres and nodes. Unsorted, uneven axes with a
    repeated node; centres inside, between and beyond the nodes (one far
    beyond: its terms underflow alike in both). Tolerance 1e-12 relative:
    sums of positive terms, recursions that only multiply by factors <= 1
    (measured ~5e-15)."""
    from mzpdf.solvers.sparse.transfer import laplace_sum

    rng = np.random.default_rng(7)
    j = 400
    centres = rng.normal(size=(j, n_axes)) * 1.5
    centres[0] = 12.0
    weights = rng.random(j)
    scale = np.array([0.2, 0.35, 0.5])[:n_axes]
    axes = [rng.normal(size=23) * 2.0, np.linspace(-3.0, 3.0, 17), np.r_[np.linspace(-4.0, 4.0, 9), 0.5, 0.5]][:n_axes]
    out = laplace_sum(centres, weights, scale, axes)
    factors = [np.exp(-np.abs(ax[:, None] - centres[None, :, k]) / scale[k]) / (2.0 * scale[k])
               for k, ax in enumerate(axes)]
    subscripts = "abc"[:n_axes]
    ref = np.einsum(",".join(f"{s}j" for s in subscripts) + ",j->" + subscripts, *factors, weights)
    assert out.shape == tuple(ax.size for ax in axes)
    np.testing.assert_allclose(out, ref, rtol=RTOL)
    padded = np.zeros((j, 3))
    padded[:, :n_axes] = centres
    full = [*axes, *([np.zeros(1)] * (3 - n_axes))]
    twin = _reference.laplace_grid_sum(padded, weights, full, np.r_[scale, np.ones(3 - n_axes)])
    np.testing.assert_allclose(out, twin.reshape(out.shape) / np.prod(2.0 * scale), rtol=RTOL)
