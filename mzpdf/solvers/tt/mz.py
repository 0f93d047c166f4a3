"""Mori-Zwanzig reduction of tensor-train solutions (SPEC 4 on SPEC 3.3).

A TT solve holds the density of every layer's *pre-activation* ``Z_n`` (n >= 1)
as a train, and the step ``Z_n -> Z_{n+1}`` (noise-kernel contraction, then
the affine change of variables) is linear in the density: it can push any
signed function through the same grids. The reduction therefore works in
pre-activation coordinates:

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
a density of one or two more variables. ``Q_n f = f - E_n R_n f`` is never
formed: the step is evaluated pointwise, and ``A_n E_n a`` is separable (the
kept neurons' kernel rows against ``a``, times ``nu_n`` contracted with the
others' rows), so the complement is exact.

The layer operator. A step is the transfer ``A_n`` at grid points, compressed
by a cross approximation (``solver.tol``); one cross per chain is not one
linear operator, and the solve's own cross of ``p_n`` gives ``p_{n+1}`` with an
error of its own. The reduction uses the linear operator

    N_n f = A~_n f + l_n(f) d_n,    d_n = p_{n+1} - A~_n p_n,    l_n(f) = int f / int p_n,

on the span of the functions it pushes (the chains and the sources, of which
``p_n`` is a combination): ``A~_n`` assigns each of them its cross (linear in
their coefficients), and the rank-one term carries the *defect* ``d_n``, the
difference between the solve's step and the crosses on the solution itself
(``extras["step_defect"]``: ``||d_n|| / ||p_{n+1}||``, of the order of
``solver.tol``). ``N_n p_n = p_{n+1}`` exactly, so with full memory the
reduced recursion reproduces the TT solution's own kept marginals to
round-off, whatever ``solver.tol`` (tests/test_mz_tt.py), while every kernel
is as accurate as its cross. ``l_n`` vanishes on every chain ``Q_n f`` (its
mass is its kept marginal's, removed), so the defect enters through the
sources ``E_n a`` only: as a rank-one term of the streaming kernel ``K[n, n]``
and, pushed on like the chains, of ``K[m, n]``, m > n.

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

from ...discretization.cross import cross
from ...discretization.tensor_grid import TensorGrid
from ...discretization.tensor_train import TTFunction, contract_rows
from ...errors import TTTruncationWarning
from ...mz.bounds import canonical_correlations, dobrushin_coefficient
from ...mz.norms import KeptNodalL1
from ...mz.reduction import MoriZwanzig
from ...mz.spec import ProjectionSpec
from .engine import TTForward

__all__ = ["reduce_tt", "TTChorinLayer", "TTInputLayer"]

_CHUNK_VALUES = 2**20  # kernel-row values per chunk of points
_DEFECT_TOL = 0.5  # coarsest relative accuracy of a defect chain's crosses (module doc)


# -- the reduced spaces (what MoriZwanzig needs of a projection) ---------------------

@dataclass(frozen=True, eq=False)
class TTChorinLayer(KeptNodalL1):
    """The Chorin projection of a TT layer ``n >= 1`` seen from its reduced
    space: nodal values of the kept pre-activation marginal on ``kept_grid``.
    ``law`` is the solution's law of ``X_n`` (maps Z- to X-marginals)."""

    keep: tuple
    kept_grid: TensorGrid
    law: object

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
    cross of ``A_n`` for trains with or without source modes, ``R_n`` and
    the source modes' start ``E_k``."""

    def __init__(self, solution: TTForward, keep: tuple, options):
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

    # -- R_n, and E_k at the start of a chain ----------------------------------
    def restrict(self, n: int, f, sources: bool) -> np.ndarray:
        """Kept marginal ``R_n f`` of a train or a list of trains (their sum):
        ``(kept dim,)`` without source modes, else ``(kept dim, source dim)``
        (rows: kept nodes, columns: sources)."""
        if isinstance(f, list):
            return sum(self.restrict(n, term, sources) for term in f)
        lay = self.layout(n, sources)
        t = _free_values(f, lay.free_pos)
        q = len(self.keep)
        if not sources:
            return t.reshape(-1)
        order = [2 * i + 1 for i in range(q)] + [2 * i for i in range(q)]  # free modes alternate s, z
        t = np.transpose(t, order)
        return t.reshape(int(np.prod(t.shape[:q])), -1)

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

    def contract_sources(self, n: int, f: TTFunction, coef: np.ndarray) -> TTFunction:
        """``sum_s coef[s] f(s, z)`` over the source modes of ``f`` (a train
        on layer n with source modes; ``coef`` over the kept grid, C order):
        a train over the neurons."""
        lay = self.layout(n, True)
        src_rules = [f.rules[p] for p in lay.source_pos]
        a = TTFunction.from_dense(coef.reshape([r.size for r in src_rules]), src_rules, tol=0.0).cores
        out, pending, i, ra = [], None, 0, 1
        for p, (kind, _) in enumerate(lay.modes):
            c = f.cores[p]
            if kind == "s":  # the source core against coef's core: a matrix on the combined bonds
                m = np.einsum("aib,xiy->axby", c, a[i]).reshape(c.shape[0] * a[i].shape[0], -1)
                pending = m if pending is None else pending @ m
                ra = a[i].shape[2]
                i += 1
                continue
            core = np.einsum("aib,xy->axiby", c, np.eye(ra)).reshape(c.shape[0] * ra, c.shape[1], -1)
            if pending is not None:
                core = np.tensordot(pending, core, axes=(1, 0))
                pending = None
            out.append(core)
        return TTFunction(out, [f.rules[p] for p in lay.neuron_pos])

    # -- the cross of A_n ------------------------------------------------------------
    def push(self, n: int, f, src: _Sources | None, reduced: np.ndarray | None = None,
             tol: float | None = None) -> TTFunction:
        """A cross of ``A_n (f - E_n reduced)``: ``f`` a train or a list of trains
        (their sum) on ``Z_n``'s grid (n >= 1), ``reduced`` kept marginals
        ``(kept dim,)`` or ``(kept dim, source dim)`` (None: no ``E_n`` part);
        a train on ``Z_{n+1}``'s grid, with the same source modes. ``tol``:
        the cross's relative accuracy (default ``solver.tol``)."""
        fr, law = self.frames[n], self.solution.laws[n]
        terms = f if isinstance(f, list) else [f]
        lay_in = self.layout(n, src is not None)
        lay = _Layout(len(fr.rules), self.keep, src is not None)  # U's coordinates
        src_rules, src_weights = (src.rules, src.weights) if src else ([], [])
        eyes = [np.eye(r.size) for r in src_rules]
        src_in, neu_in = lay_in.source_pos, lay_in.neuron_pos
        src_out, neu_out = lay.source_pos, lay.neuron_pos
        n_modes, keep = len(lay.modes), self.keep
        chunk = max(1, _CHUNK_VALUES // law.rows.centres.size)
        src_shape = [r.size for r in src_rules]
        nu, here_rules = self.nu[n], self.rules[n]

        def e_part(rows, idx):  # (A_n E_n reduced)(u, s) / (its scale): nu_n against the dropped rows
            onehot = [np.eye(r.size)[np.zeros(idx.shape[0], dtype=np.int64)] if k in keep else row
                      for k, (row, r) in enumerate(zip(rows, here_rules))]
            h = rows[keep[0]]
            for k in keep[1:]:
                h = (h[:, :, None] * rows[k][:, None, :]).reshape(h.shape[0], -1)
            if reduced.ndim == 1:
                kept = h @ reduced
            else:
                col = np.ravel_multi_index(tuple(idx[:, p] for p in src_out), src_shape)
                kept = np.einsum("pz,zp->p", h, reduced[:, col])
            return contract_rows(nu, onehot) * kept

        def value(idx: np.ndarray) -> np.ndarray:
            u_idx = idx[:, neu_out]
            x = fr.points(u_idx)
            out = np.empty(idx.shape[0])
            for a in range(0, idx.shape[0], chunk):
                rows = [None] * n_modes
                neurons = law.rows(x[a:a + chunk])
                for k, row in enumerate(neurons):
                    rows[neu_in[k]] = row
                for i, e in enumerate(eyes):
                    rows[src_in[i]] = e[idx[a:a + chunk, src_out[i]]]
                out[a:a + chunk] = sum(contract_rows(t.cores, rows) for t in terms)
                if reduced is not None:
                    out[a:a + chunk] -= e_part(neurons, idx[a:a + chunk])
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
        tol = opt.tol if tol is None else tol
        result = cross(value, [r.size for r in rules], tol=tol, max_rank=opt.max_rank, rng=rng,
                       start=spread(fr.start), checks=spread(fr.checks), kick=opt.kick, max_sweeps=opt.sweeps,
                       init_rank=min(max(max(t.ranks) for t in terms) + opt.kick, opt.max_rank))
        self.errors.append(result.error)
        self.capped |= bool(result.capped and result.error > tol)
        tt, _, _ = fr.finish(result.cores, weights, rules, tol, opt.max_rank)
        return tt


@dataclass(eq=False)
class _Flight:
    """One chain of the kernel computation, at the layer it has reached:
    ``f`` (a train, or a list of trains: their sum), its source modes
    ``src`` (None: one column), and how its restrictions enter the kernels:
    into ``K[., origin]`` times ``weight`` (the source columns are unit-mass
    densities ``E_k (e_s / w_s)``: times ``w_s``; the defect chain of layer k
    enters as the rank-one ``R d (w / int p_k)^T``), and its coefficient in
    ``p_n`` (``coef``: a vector over the sources, or 1)."""

    origin: int
    f: object
    src: object = None
    weight: np.ndarray | None = None
    outer: bool = False
    coef: object = 1.0
    tol: float | None = None  # the crosses' accuracy (None: solver.tol)


def reduce_tt(solution: TTForward, spec: ProjectionSpec, options,
              progress: Callable[[int, int], None] | None = None) -> MoriZwanzig:
    """The exact MZ equations of a TT solution for a Chorin projection (module
    doc); ``options`` are the solve's TTOptions (tol, ranks, sweeps)."""
    if solution.trains[1] is None:
        raise ValueError("the Mori-Zwanzig reduction needs an input density, not a point input")
    start = time.perf_counter()
    keep = tuple(spec.keep)
    L = solution.depth
    trains = solution.trains
    chain = _Chain(solution, keep, options)
    total, done = L * (L - 1), 0  # pushes: at layer n the input's chain, n sources' and n - 1 defects'

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, total), total)

    projected = [np.ones(1)] + [chain.restrict(n, trains[n], False) for n in range(1, L + 1)]
    grids = [None] + [chain.kept_grid(n) for n in range(1, L + 1)]
    kernels = {(0, 0): projected[1][:, None]}  # the input layer: one column, K[0, 0] = R_1 p_1
    defects = np.zeros(L)
    flights = [_Flight(0, trains[1])]  # K[n, 0] = R N_n Q_n ... Q_1 p_1
    for n in range(1, L):
        src = chain.sources(n)
        flights.append(_Flight(n, chain.source_start(src, n), src, grids[n].weights, coef=grids[n].weights
                               * projected[n]))
        approx = []  # A~_n p_n: every chain's cross, times its coefficient in p_n
        for fl in flights:
            fresh = fl.origin == n and fl.src is not None
            reduced = None if fresh else chain.restrict(n, fl.f, fl.src is not None)
            fl.f = chain.push(n, fl.f, fl.src, reduced, fl.tol)
            r = chain.restrict(n + 1, fl.f, fl.src is not None)
            _add(kernels, (n, fl.origin), r if fl.src is None else r * fl.weight[None, :], fl)
            approx.append(fl.f if fl.src is None else chain.contract_sources(n + 1, fl.f, fl.coef))
            tick()
        # the defect of the crosses on p_n itself, carried by l_n (module doc)
        out = trains[n + 1]
        defect = [out] + [t * -1.0 for t in approx]
        mass = trains[n].integral()
        norm2 = sum(a.dot(b) for a in defect for b in defect)  # term by term: ranks add in a sum
        defects[n] = np.sqrt(max(norm2, 0.0)) / max(out.norm(), 1e-300)
        # a defect of relative size delta needs only relative accuracy tol / delta to be pushed
        # as accurately as everything else (an absolute error of tol): coarse, cheap crosses
        d_tol = float(np.clip(options.tol / max(defects[n], 1e-300), options.tol, _DEFECT_TOL))
        d_fl = _Flight(n, defect, None, grids[n].weights / mass, outer=True, tol=d_tol)
        _add(kernels, (n, n), chain.restrict(n + 1, defect, False), d_fl)
        if n + 1 < L:
            flights.append(d_fl)
    projections = [TTInputLayer(keep, solution.input_law)] + [
        TTChorinLayer(keep, grids[n], solution.laws[n]) for n in range(1, L + 1)]
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
                       extras={"cross_error": np.array(chain.errors), "step_defect": defects})


def _add(kernels: dict, key: tuple, r: np.ndarray, fl: _Flight) -> None:
    """Add a chain's restriction to the kernel it belongs to."""
    if fl.outer:
        block = np.outer(r, fl.weight)
    else:
        block = r[:, None] if r.ndim == 1 else r
    kernels[key] = kernels[key] + block if key in kernels else block
