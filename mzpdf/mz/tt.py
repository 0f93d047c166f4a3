"""Mori-Zwanzig reduction of tensor-train solutions (SPEC 4 on SPEC 3.3).

A TT solve holds the density of every layer's *pre-activation* ``Z_n`` (n >= 1)
as a train, and the step ``Z_n -> Z_{n+1}`` (noise-kernel contraction, then
the affine change of variables, by cross approximation) is linear in the
density: it can push any signed function through the same grids. The
reduction therefore works in pre-activation coordinates:

* layers ``n >= 1``: Chorin projection onto the kept neurons with reference
  ``nu_n`` the dropped marginal of the layer's own density (normalized), so
  ``R_n p`` is the kept marginal of ``p`` (nodal values on the kept rules)
  and ``E_n a = a(z^) nu_n(z~)``;
* the input layer: the rank-one projection ``P_0 p = (int p) p_0`` onto the
  input law itself (the input is given, not evolved: its reduced state is the
  number 1, and the noise term is exactly zero).

The X-marginals of the kept neurons follow from the Z-marginals exactly
(``X = sigma(Z) + xi`` neuron by neuron), so nothing of the kept neurons' law
is lost by working in Z.

Memory kernels ``K[n, k] = R_{n+1} N_n Q_n ... Q_{k+1} N_k E_k`` act on the
kept grid of layer k, ``m^q`` nodal values for q kept neurons. Their columns
are pushed all at once: a *source mode* per kept neuron (the node ``s_j`` a
column starts from) is inserted in the train just before that neuron, and
the chain carries ``H(s, z) = (N ... N E_k e_s)(z) / w_s``, a smooth function
of ``(s, z)`` (a density started at ``Z^_k = s``) whose ranks stay those of
a density of one or two more variables. ``L (L - 1) / 2`` such steps give
every kernel; the input layer's kernels ``K[n, 0]`` (one column each) take
``L - 1`` more. With full memory the reduced recursion reproduces the kept
marginals of the TT solution to the accuracy of the crosses (``solver.tol``).

Not computed on TT: kappa and the kernel bounds (they need the full
operator's norm in L2(mu); NaN in the results), the observable (backward)
equation. The truncation estimate (and so ``memory = "auto"``) works in L1:
the kernels' L1 operator norms and the L1 norms of the dropped terms bound
the L1 error of the kept marginals the same way (:mod:`mzpdf.mz.norms`).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from ..discretization.grid import TensorGrid
from ..errors import TTTruncationWarning
from ..tt.cross import cross
from ..tt.solver import TTSolution
from ..tt.tensor import TTFunction, contract_rows
from .bounds import canonical_correlations, dobrushin_coefficient
from .reduction import MoriZwanzig
from .spec import ProjectionSpec

__all__ = ["reduce_tt", "TTChorinLayer", "TTInputLayer"]

_CHUNK_VALUES = 2**20  # kernel-row values per chunk of points


# -- the reduced spaces (what MoriZwanzig needs of a projection) ---------------------

@dataclass(frozen=True, eq=False)
class TTChorinLayer:
    """The Chorin projection of a TT layer ``n >= 1`` seen from its reduced
    space: nodal values of the kept pre-activation marginal on ``kept_grid``.
    ``law`` is the solution's law of ``X_n`` (maps Z- to X-marginals)."""

    keep: tuple
    kept_grid: TensorGrid
    law: object

    norm_name = "L1 (densities)"

    @property
    def dim(self) -> int:
        return self.kept_grid.size

    @property
    def unit_norms(self) -> np.ndarray:
        """L1 norm of each reduced unit vector's density."""
        return self.kept_grid.weights

    def kept_marginal(self, r):
        return np.asarray(r).reshape(-1)

    def l1(self, a, b) -> float:
        return float(self.kept_grid.weights @ np.abs(np.asarray(a) - b))

    def kernel_norm(self, kernel, source) -> float:
        """L1 operator norm (the largest column norm over unit densities)."""
        cols = self.kept_grid.weights @ np.abs(kernel)
        return float(np.max(cols / source.unit_norms))

    def reduced_norm(self, r) -> float:
        """L1 norm of the kept marginal ``r`` (the measured error's norm)."""
        return float(self.kept_grid.weights @ np.abs(np.asarray(r).reshape(-1)))

    error_factor = 1.0

    def kept_pdf(self, nodal, rows) -> np.ndarray:
        """X-marginal densities of the kept neurons at abscissae ``rows[i]``:
        ``sum_j w_j rho(x - sigma(z_j)) m(z_j)`` of the Z-marginal ``m``."""
        return np.stack([self.law.marginal_of(k, rows[i], self.kept_grid.marginal(nodal, i))
                         for i, k in enumerate(self.keep)])


@dataclass(frozen=True, eq=False)
class TTInputLayer:
    """The input layer's rank-one projection onto the input law: the reduced
    state is the mass, 1."""

    keep: tuple
    law: object  # the InputLaw

    norm_name = "L1 (densities)"
    dim = 1
    unit_norms = np.ones(1)

    def kept_marginal(self, r):
        return np.asarray(r).reshape(-1)

    def l1(self, a, b) -> float:
        return float(np.sum(np.abs(np.asarray(a) - b)))

    def kernel_norm(self, kernel, source) -> float:
        return float(np.max(np.sum(np.abs(kernel), axis=0) / source.unit_norms))

    def reduced_norm(self, r) -> float:
        return float(np.sum(np.abs(r)))

    error_factor = 1.0

    def kept_pdf(self, nodal, rows) -> np.ndarray:
        return np.stack([nodal[0] * self.law.marginal_pdf(k, np.asarray(rows[i], dtype=np.float64))
                         for i, k in enumerate(self.keep)])


# -- trains with source modes ---------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """Mode order of a train over ``width`` neurons, with a source mode
    inserted before each kept neuron when ``sources``."""

    width: int
    keep: tuple
    sources: bool

    @cached_property
    def modes(self) -> list:
        out = []
        for k in range(self.width):
            if self.sources and k in self.keep:
                out.append(("s", self.keep.index(k)))
            out.append(("z", k))
        return out

    @cached_property
    def neuron_pos(self) -> np.ndarray:
        return np.array([self.modes.index(("z", k)) for k in range(self.width)])

    @cached_property
    def source_pos(self) -> np.ndarray:
        return np.array([self.modes.index(("s", i)) for i in range(len(self.keep))] if self.sources else [],
                        dtype=np.int64)

    @cached_property
    def free_pos(self) -> list:
        """Positions of the source and kept modes, in mode order."""
        return [p for p, (kind, k) in enumerate(self.modes) if kind == "s" or k in self.keep]

    def arrange(self, neurons: list, sources: list) -> list:
        """Per-mode items from per-neuron and per-source lists."""
        return [neurons[k] if kind == "z" else sources[k] for kind, k in self.modes]


@dataclass(frozen=True)
class _Sources:
    """The source modes of a chain from layer k: one per kept neuron, on that
    neuron's rule. A cross approximates ``f / prod(weights)``; a source
    mode's weight is the reciprocal of layer k's cross weight of its neuron,
    so that columns started in the tails of the kept marginal weigh less, as
    the tails of the density itself do."""

    rules: list
    weights: list


def _identity_core(rank: int, size: int) -> np.ndarray:
    """A core constant along its mode that passes a bond of ``rank`` through."""
    return np.broadcast_to(np.eye(rank)[:, None, :], (rank, size, rank)).copy()


def _embed(cores: dict, sizes: list) -> list:
    """A train over all modes from cores on some of them (``cores[position]``),
    constant along the others."""
    out, rank = [], 1
    for p, n in enumerate(sizes):
        if p in cores:
            out.append(cores[p])
            rank = cores[p].shape[2]
        else:
            out.append(_identity_core(rank, n))
    return out


def _free_values(tt: TTFunction, free: list) -> np.ndarray:
    """The train integrated (quadrature weights) over every mode but ``free``:
    a dense array over the free modes, in mode order."""
    mats = [np.tensordot(c, r.weights, axes=(1, 0)) for c, r in zip(tt.cores, tt.rules)]
    left = np.ones(1)
    for p in range(free[0]):
        left = left @ mats[p]
    right = np.ones(1)
    for p in range(tt.ndim - 1, free[-1], -1):
        right = mats[p] @ right
    t = left
    for p in range(free[0], free[-1] + 1):
        core = tt.cores[p] if p in free else mats[p]
        if p == free[-1]:
            core = core @ right
        t = np.tensordot(t, core, axes=(-1, 0))
    return t


class _Chain:
    """The operators of one TT solution in pre-activation coordinates: the
    step ``N_n`` for trains with or without source modes, ``R_n`` and ``Q_n``."""

    def __init__(self, solution: TTSolution, keep: tuple, options):
        self.solution, self.keep, self.opt = solution, keep, options
        net = solution.network
        self.frames = solution.frames
        self.errors = []  # cross error estimates of the steps (relative to each pushed function)
        self.capped = False  # whether a cross hit solver.max_rank above tol
        # per layer n >= 1: Z_n's rules, cross weights, reference nu_n (as per-neuron cores)
        self.rules, self.weights, self.nu = [None], [None], [None]
        for n in range(1, net.depth + 1):
            fr = self.frames[n - 1]
            train = solution.trains[n]
            self.rules.append(train.rules)
            self.weights.append(fr.weights[: fr.n_out])
            nu = [np.broadcast_to(np.tensordot(c, r.weights, axes=(1, 0))[:, None, :], c.shape).copy()
                  if k in keep else c.copy() for k, (c, r) in enumerate(zip(train.cores, train.rules))]
            nu[0] = nu[0] / train.integral()  # int nu dz~ = 1: R E = I exactly
            self.nu.append(nu)

    def kept_grid(self, n: int) -> TensorGrid:
        return TensorGrid(tuple(self.rules[n][k] for k in self.keep))

    def layout(self, n: int, sources: bool) -> _Layout:
        return _Layout(len(self.rules[n]), self.keep, sources)

    # -- R, E, Q on layer n >= 1 -----------------------------------------------
    def restrict(self, n: int, f: TTFunction, sources: bool) -> np.ndarray:
        """Kept marginal ``R_n f``: ``(kept dim,)`` without source modes, else
        ``(kept dim, source dim)`` (rows: kept nodes, columns: sources)."""
        lay = self.layout(n, sources)
        t = _free_values(f, lay.free_pos)
        q = len(self.keep)
        if not sources:
            return t.reshape(-1)
        order = [2 * i + 1 for i in range(q)] + [2 * i for i in range(q)]  # free modes alternate s, z
        t = np.transpose(t, order)
        return t.reshape(int(np.prod(t.shape[:q])), -1)

    def extend(self, n: int, a: np.ndarray, src: _Sources | None) -> TTFunction:
        """``E_n a = a(s, z^) nu_n(z~)`` as a train (``a`` dense over the free
        modes in mode order)."""
        lay = self.layout(n, src is not None)
        free = lay.free_pos
        rules = lay.arrange(self.rules[n], src.rules if src else [])
        sizes = [r.size for r in rules]
        small = TTFunction.from_dense(a, [rules[p] for p in free], tol=0.1 * self.opt.tol)
        a_cores = _embed(dict(zip(free, small.cores)), sizes)
        nu_cores = _embed(dict(zip(lay.neuron_pos, self.nu[n])), sizes)
        return TTFunction(nu_cores, rules).hadamard(TTFunction(a_cores, rules))

    def complement(self, n: int, f: TTFunction, src: _Sources | None) -> TTFunction:
        """``Q_n f = f - E_n R_n f``, rounded to ``solver.tol`` (weighted as the crosses)."""
        lay = self.layout(n, src is not None)
        a = _free_values(f, lay.free_pos)
        diff = f - self.extend(n, a, src)
        w = lay.arrange(self.weights[n], src.weights if src else [])
        scaled = TTFunction([c / v[None, :, None] for c, v in zip(diff.cores, w)], diff.rules)
        rounded, _, _ = scaled.round(self.opt.tol, None)
        return TTFunction([c * v[None, :, None] for c, v in zip(rounded.cores, w)], rounded.rules)

    def sources(self, k: int) -> _Sources:
        return _Sources([self.rules[k][j] for j in self.keep], [1.0 / self.weights[k][j] for j in self.keep])

    def source_start(self, src: _Sources, k: int) -> TTFunction:
        """``E_k (e_s / w_s)`` for every kept node s of layer k: the kept
        modes hold the identity between each source mode and its neuron."""
        lay = self.layout(k, True)
        cores = {}
        for i, r in enumerate(src.rules):
            cores[lay.source_pos[i]] = np.diag(1.0 / r.weights)[None]
            cores[lay.neuron_pos[self.keep[i]]] = np.eye(r.size)[:, :, None]
        rules = lay.arrange(self.rules[k], src.rules)
        sizes = [r.size for r in rules]
        nu_cores = _embed(dict(zip(lay.neuron_pos, self.nu[k])), sizes)
        return TTFunction(nu_cores, rules).hadamard(TTFunction(_embed(cores, sizes), rules))

    # -- the step N_n -------------------------------------------------------------
    def push(self, n: int, f: TTFunction, src: _Sources | None, on_sweep=None) -> TTFunction:
        """``N_n f``: a train on ``Z_n``'s grid (n >= 1) to one on ``Z_{n+1}``'s,
        by cross approximation through the solver's frame of step n."""
        fr, law = self.frames[n], self.solution.laws[n]
        lay_in = self.layout(n, src is not None)
        lay = _Layout(len(fr.rules), self.keep, src is not None)  # U's coordinates
        src_rules, src_weights = (src.rules, src.weights) if src else ([], [])
        eyes = [np.eye(r.size) for r in src_rules]
        src_in, neu_in = lay_in.source_pos, lay_in.neuron_pos
        src_out, neu_out = lay.source_pos, lay.neuron_pos
        n_modes = len(lay.modes)
        chunk = max(1, _CHUNK_VALUES // law.rows.centres.size)

        def value(idx: np.ndarray) -> np.ndarray:
            u_idx = idx[:, neu_out]
            x = fr.points(u_idx)
            out = np.empty(idx.shape[0])
            for a in range(0, idx.shape[0], chunk):
                rows = [None] * n_modes
                for k, row in enumerate(law.rows(x[a:a + chunk])):
                    rows[neu_in[k]] = row
                for i, e in enumerate(eyes):
                    rows[src_in[i]] = e[idx[a:a + chunk, src_out[i]]]
                out[a:a + chunk] = contract_rows(f.cores, rows)
            out *= fr.scale / fr.weight_at(u_idx)
            for i, w in enumerate(src_weights):
                out /= w[idx[:, src_out[i]]]
            return out

        rng = np.random.default_rng([2025, n, len(src_rules)])

        def spread(idx):  # typical neuron indices, uniformly drawn sources
            full = np.empty((idx.shape[0], n_modes), dtype=np.int64)
            full[:, neu_out] = idx
            for i, r in enumerate(src_rules):
                full[:, src_out[i]] = rng.integers(r.size, size=idx.shape[0])
            return full

        rules = lay.arrange(fr.rules, src_rules)
        weights = lay.arrange(fr.weights, src_weights)
        opt = self.opt
        result = cross(value, [r.size for r in rules], tol=opt.tol, max_rank=opt.max_rank, rng=rng,
                       start=spread(fr.start), checks=spread(fr.checks), kick=opt.kick, max_sweeps=opt.sweeps,
                       init_rank=min(max(f.ranks) + opt.kick, opt.max_rank), on_sweep=on_sweep)
        self.errors.append(result.error)
        self.capped |= bool(result.capped and result.error > opt.tol)
        tt, _, _ = fr.finish(result.cores, weights, rules, opt.tol, opt.max_rank)
        return tt


def reduce_tt(solution: TTSolution, spec: ProjectionSpec, options,
              progress: Callable[[int, int], None] | None = None) -> MoriZwanzig:
    """The exact MZ equations of a TT solution for a Chorin projection (module
    doc); ``options`` are the solve's TTOptions (tol, ranks, sweeps)."""
    if solution.trains[1] is None:
        raise ValueError("the Mori-Zwanzig reduction needs an input density, not a point input")
    start = time.perf_counter()
    keep = tuple(spec.keep)
    L = solution.depth
    chain = _Chain(solution, keep, options)
    total, done = L * (L - 1) // 2 + max(L - 1, 0), 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    kernels = {}
    # the input layer: one column, K[n, 0] = R N_n Q_n ... Q_1 p_{Z_1}
    f = solution.trains[1]
    kernels[0, 0] = chain.restrict(1, f, False)[:, None]
    for n in range(1, L):
        f = chain.push(n, chain.complement(n, f, None), None)
        kernels[n, 0] = chain.restrict(n + 1, f, False)[:, None]
        tick()
    # layers k >= 1: every column at once through the source modes
    for k in range(1, L):
        src = chain.sources(k)
        w_src = chain.kept_grid(k).weights
        f = chain.source_start(src, k)
        for n in range(k, L):
            if n > k:
                f = chain.complement(n, f, src)
            f = chain.push(n, f, src)
            kernels[n, k] = chain.restrict(n + 1, f, True) * w_src[None, :]
            tick()

    projections = [TTInputLayer(keep, solution.input_law)] + [
        TTChorinLayer(keep, chain.kept_grid(n), solution.laws[n]) for n in range(1, L + 1)]
    projected = [np.ones(1)] + [chain.restrict(n, solution.trains[n], False) for n in range(1, L + 1)]
    noise = [np.zeros(p.dim) for p in projections[1:]]  # Q_0 p_0 = 0: the input is projected onto itself
    dob = np.array([dobrushin_coefficient(layer, law.box(options.tail))
                    for layer, law in zip(solution.network, solution.laws)])
    canon = canonical_correlations(solution.network, solution.input_law)
    if chain.capped:
        warnings.warn(f"Mori-Zwanzig kernels: TT ranks capped at solver.max_rank = {options.max_rank} with a cross "
                      f"error estimate above solver.tol (largest {max(chain.errors):.2g})", TTTruncationWarning,
                      stacklevel=2)
    return MoriZwanzig(spec, projections, kernels, noise, projected, np.full(L, np.nan), np.full(L, np.nan),
                       dob, canon, seconds=time.perf_counter() - start,
                       extras={"cross_error": np.array(chain.errors)})
