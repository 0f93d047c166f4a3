"""Mori-Zwanzig diagnostics in L2(mu) (docs/theory.md section 5, issue 27).

Oracles:
* dense matrices: kappa, the maximal correlation rho and the memory-kernel
  norms equal the largest singular values of the weighted density-side
  matrices S_{n+1} Q_{n+1} N_n Q_n S_n^-1 (S = diag(sqrt(w / mu))) and
  S E K (S E)^+ built here from the full transfer matrix, an independent path
  (the package works on the observable side, with Gram matrices); 1e-8
  relative: both sides are exact SVDs of the same numbers up to round-off;
* the inequalities the norm implies, on random nets of widths 2 and 3, four
  weight scales (0.6 to 2, ordered to chaotic) and four noise levels (0.3 to 0.6): ||K[n, k]|| <= a_n kappa_{n-1} ...
  kappa_{k+1} b_k (sub-multiplicativity, exact), kappa <= ||Q|| rho ||Q||,
  rho < 1 (positive kernel), and the measured L1 error of every truncated
  recursion <= its estimate (a rigorous bound); margins 1e-9 relative plus
  1e-14 absolute for round-off (kernels above ~1e-3 of their bound are
  tight enough that a wrong factor would fail);
* acceptance (issue 27) on the contractive tanh net of the issue (3 neurons,
  6 layers, W ~ 0.6/sqrt(N) N(0, 1), noise 0.5, keep neuron 0), three seeds:
  every kappa < 1; memory = "auto" with tol 1e-3 stores an h whose measured
  error is <= 1e-3 and at most one longer than the shortest that achieves it.
"""
import h5py
import numpy as np
import pytest

import mzpdf
from mzpdf import GridSolver
from mzpdf.errors import CaseError
from mzpdf.io.case import loads_case
from mzpdf.io.hdf5 import describe, read_results, write_results
from mzpdf.mz import ProjectionSpec
from mzpdf.solvers.grid.mz import reduce_network

ROUND = 1e-8  # dense-vs-package agreement: two SVDs of the same numbers
MARGIN = 1e-9  # inequalities that hold exactly, up to round-off
TOL = 1e-3  # the memory tolerance

NET = """
[case]
name = "mz_norms"
seed = 1
[network.random]
widths = {widths}
activation = "tanh"
sigma_w = {sigma_w}
sigma_b = 0.0
seed = {seed}
noise = {{ kind = "gaussian", std = {std} }}
[input]
kind = "gaussian"
mean = {mean}
std = 0.5
[solver]
method = "grid"
nodes = {nodes}
[projection]
kind = "chorin"
keep = [0]
"""


def _case(width=3, depth=6, sigma_w=0.6, std=0.5, seed=0, nodes=10, **projection):
    text = NET.format(widths=[width] * (depth + 1), sigma_w=sigma_w, std=std, seed=seed, nodes=nodes,
                      mean=[0.0] * width)
    for key, value in projection.items():
        text += f"{key} = {value!r}\n".replace("'", '"')
    return loads_case(text)


def _reduce(case, table=None):
    forward = GridSolver(case.solver).propagate(case.network, case.input)
    spec = case.projection if table is None else ProjectionSpec.from_table(table, case.network.widths)
    return forward, reduce_network(forward, spec)


def _dense_transfer(t):
    """N_n as a (J_out, J_in) matrix on nodal densities: N p = K (w p)."""
    return next(t.kernel_blocks(max_elements=10**9))[2] * t.source_weights[None, :]


def _sigma(a):
    return float(np.linalg.norm(a, 2))


@pytest.mark.parametrize("table", [dict(kind="chorin", keep=[0]), dict(kind="chorin", keep=[1], reference="gaussian"),
                                   dict(kind="mori", keep=[0], basis="linear")])
def test_norms_agree_with_dense_weighted_matrices(table):
    forward, mz = _reduce(_case(width=3, depth=3, sigma_w=1.2, std=0.5, seed=3, nodes=10), table)
    proj = mz.projections
    S = [np.sqrt(p.grid.weights / p.mu) for p in proj]
    for n, t in enumerate(forward.transitions):
        N = _dense_transfer(t)
        here, there = proj[n], proj[n + 1]
        I_in, I_out = np.eye(here.grid.size), np.eye(there.grid.size)
        Q_in, Q_out = here.complement(I_in), there.complement(I_out)
        kappa = _sigma(S[n + 1][:, None] * (Q_out @ N @ Q_in) / S[n][None, :])
        assert abs(mz.kappa[n] - kappa) <= ROUND * kappa
        mean_free = [np.eye(p.grid.size) - np.outer(p.mu, p.grid.weights) / (p.grid.weights @ p.mu)
                     for p in (here, there)]
        rho = _sigma(S[n + 1][:, None] * (mean_free[1] @ N @ mean_free[0]) / S[n][None, :])
        assert abs(mz.max_correlation[n] - rho) <= ROUND * rho
    norms = mz.memory_norm()
    for (n, k), kern in mz.kernels.items():
        _, r_in = np.linalg.qr(S[k][:, None] * proj[k].extend(np.eye(proj[k].dim)))
        out = S[n + 1][:, None] * proj[n + 1].extend(kern)
        assert abs(norms[n, n - k] - _sigma(np.linalg.solve(r_in.T, out.T).T)) <= ROUND * norms[n, n - k] + 1e-15


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("width", "sigma_w", "std"), [(2, 0.6, 0.5), (2, 1.5, 0.3), (2, 2.0, 0.35), (3, 1.0, 0.5),
                                                       (3, 2.0, 0.6)])
def test_memory_kernels_within_their_bounds_on_random_nets(width, sigma_w, std, seed):
    case = _case(width=width, depth=5, sigma_w=sigma_w, std=std, seed=seed, nodes=22 if width == 2 else 11)
    _, mz = _reduce(case)
    norms, bound = mz.memory_norm(), mz.bound()
    finite = np.isfinite(norms)
    assert np.array_equal(finite, np.isfinite(bound))
    assert np.all(norms[finite] <= bound[finite] * (1 + MARGIN) + 1e-14)
    assert np.all(mz.kappa <= mz.kappa_bound * (1 + MARGIN))
    assert np.all(mz.max_correlation < 1.0)
    measured = np.max(mz.truncation_error(), axis=1)
    estimate = mz.truncation_estimate()
    assert np.all(measured <= estimate * (1 + MARGIN) + 1e-14)
    assert estimate[-1] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_acceptance_contraction_and_auto_memory_on_the_contractive_net(seed):
    """Issue 27, acceptance 1 and 2, on 10 nodes per neuron (kappa agrees with
    20 nodes to 3 digits: 0.384 0.367 0.175 0.497 0.268 0.44 for seed 0)."""
    case = _case(seed=seed, memory="auto", tol=TOL)
    _, mz = _reduce(case)
    assert np.all(mz.kappa < 1.0), mz.kappa
    measured = np.max(mz.truncation_error(), axis=1)
    h = mz.memory_length
    assert measured[h] <= TOL
    shortest = int(np.flatnonzero(measured <= TOL)[0])
    assert h <= shortest + 1, (h, measured)
    assert np.max(mz.marginal_error(h)) == pytest.approx(measured[h], rel=1e-12)


def test_identity_projection_has_zero_contraction_and_bounds():
    _, mz = _reduce(_case(width=2, depth=3, nodes=10), dict(kind="chorin", keep=[0, 1]))
    assert np.all(mz.kappa == 0.0) and np.all(mz.kappa_bound == 0.0)
    assert np.all(mz.truncation_estimate() == 0.0)


@pytest.mark.parametrize("memory", ['"Full"', "1.5", "true", "-2"])
def test_memory_must_be_full_auto_or_a_lag(memory):
    text = NET.format(widths=[2, 2], sigma_w=0.6, std=0.5, seed=0, nodes=8, mean=[0.0, 0.0])
    with pytest.raises(CaseError) as err:
        loads_case(text + f"memory = {memory}\n")
    assert err.value.key == "projection.memory" and "'auto'" in str(err.value)


def test_result_file_stores_bound_memory_length_and_estimate(tmp_path):
    results = mzpdf.run(_case(width=2, depth=3, nodes=10, memory="auto", tol=TOL))
    path = write_results(results, tmp_path / "mz.h5")
    back = read_results(path).mz
    L = 3
    assert back.bound.shape == (L, L) and back.truncation_estimate.shape == (L,)
    assert back.memory_length == results.mz.memory_length
    assert np.array_equal(back.truncation_estimate, results.mz.truncation_estimate)
    assert back.truncation_estimate[back.memory_length] <= TOL
    with h5py.File(path) as f:
        assert f["mz/memory_length"][()] == back.memory_length
    text = describe(path)
    assert f"memory length used: h = {back.memory_length}" in text and "estimated L1 error" in text
