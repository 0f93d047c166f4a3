"""Exact Mori-Zwanzig equations of a network on tensor grids (SPEC 4): the
memory kernels ``K[n, k]``, noise terms and norms of a grid solution
(:class:`~mzpdf.mz.reduction.MoriZwanzig` says what they are and how the
reduced recursions use them). Every kernel is computed from the full
transfer operators by pushing the columns of ``E_k`` through the orthogonal
dynamics, all sources of a layer in one blocked matrix product."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ...mz.bounds import canonical_correlations, dobrushin_coefficient
from ...mz.norms import contraction, entry_factor, exit_factor
from ...mz.projections import build_projection
from ...mz.reduction import MoriZwanzig
from ...mz.spec import ProjectionSpec
from .engine import BackwardSolution, ForwardSolution

__all__ = ["reduce_network"]


def reduce_network(forward: ForwardSolution, spec: ProjectionSpec, backward: BackwardSolution | None = None,
                   progress: Callable[[int, int], None] | None = None) -> MoriZwanzig:
    """Compute the exact MZ equations of ``forward`` for the projection ``spec``.

    Parameters
    ----------
    forward : ForwardSolution
        A tensor-grid solution (not from a point input).
    spec : ProjectionSpec
    backward : BackwardSolution, optional
        The pullback of an observable on the same grids; adds the observable
        equation's noise terms and projected conditional expectations.
    progress : callable, optional
        ``progress(done, total)`` after each layer.
    """
    if forward.densities[0] is None:
        raise ValueError("the Mori-Zwanzig reduction needs an input density, not a point input")
    start = time.perf_counter()
    L = forward.depth
    proj = [build_projection(spec, d.grid, d.values) for d in forward.densities]
    kernels, noise = {}, []
    kappa, rho, entry, exit_ = (np.zeros(L) for _ in range(4))
    inflight: list[tuple[int, np.ndarray]] = []  # (source layer k, Q_n N_{n-1} ... N_k E_k)
    rest = proj[0].complement(forward.densities[0].values[:, None])  # Q_0 p_0, then the noise chain
    for n in range(L):
        t = forward.transitions[n]
        here, there = proj[n], proj[n + 1]
        sources = [(n, here.extend(np.eye(here.dim)))] + inflight
        stacked = np.hstack([cols for _, cols in sources] + [rest])
        pushed = t.forward_matmat(t.source_weights[:, None] * stacked)
        inflight, offset = [], 0
        for k, cols in sources:
            block = pushed[:, offset : offset + cols.shape[1]]
            offset += cols.shape[1]
            reduced = there.restrict(block)
            kernels[n, k] = reduced
            if n + 1 < L:
                inflight.append((k, block - there.extend(reduced)))
        reduced = there.restrict(pushed[:, -1:])
        noise.append(reduced[:, 0])
        rest = pushed[:, -1:] - there.extend(reduced)
        kappa[n], rho[n] = contraction(t, here, there)
        entry[n] = entry_factor(pushed[:, : here.dim], here, there)
        exit_[n] = exit_factor(t, here, there)
        if progress is not None:
            progress(n + 1, L)
    projected = [p.restrict(d.values[:, None])[:, 0] for p, d in zip(proj, forward.densities)]

    dob = np.array([dobrushin_coefficient(layer, d.grid.box) for layer, d in zip(forward.network, forward.densities)])
    canon = canonical_correlations(forward.network, forward.input_law)
    q_norm = np.array([p.norm for p in proj])
    bound = q_norm[:-1] * rho * q_norm[1:]

    b_noise = b_projected = None
    if backward is not None:
        b_noise = [None] * L
        g = np.asarray(backward.values[L], dtype=np.float64)[:, None]
        rest = proj[L].complement_fn(g)
        for n in range(L - 1, -1, -1):
            t = forward.transitions[n]
            pulled = t.backward_matmat(t.target.weights[:, None] * rest)
            b_noise[n] = proj[n].restrict_fn(pulled)[:, 0]
            rest = proj[n].complement_fn(pulled)
        b_projected = [p.restrict_fn(np.asarray(q)[:, None])[:, 0] for p, q in zip(proj, backward.values)]
    return MoriZwanzig(spec, proj, kernels, noise, projected, kappa, bound, dob, canon, b_noise, b_projected,
                       time.perf_counter() - start, max_correlation=rho, entry=entry, exit=exit_)

