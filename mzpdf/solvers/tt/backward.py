"""Conditional expectations backward through a TT solution (Koopman operator).

With ``X_{n+1} = sigma_n(Z_{n+1}) + xi_n``, ``Z_{n+1} = W_n X_n + b_n`` and an
affine quantity of interest ``g``, the conditional expectations
``q_n(x) = E[g(X_L) | X_n = x]`` satisfy

    q_L = g,        q_n(x) = R_{n+1}(W_n x + b_n),
    R_n(z) = E[q_n(sigma(z) + xi)] = int prod_k rho_k(x_k - sigma(z_k)) q_n(x) dx.

``R_n`` is a function of the pre-activation; the kernel is separable, so
``R_n`` at any point is the train of ``q_n`` contracted with one kernel row per
core (quadrature on ``q_n``'s nodes, no interpolation), and ``R_n`` on the
forward solve's pre-activation grid is a train with the same ranks, built core
by core. ``R_L(z) = g(sigma(z))`` exactly (the noise has mean zero). Each
``q_n``, ``0 < n < L``, is a cross approximation of ``x -> R_{n+1}(W_n x + b_n)``
on a grid over the box of ``X_n`` -- the forward step's change of variables,
run backwards. ``q_0`` is only needed at points: ``R_1(W_0 x + b_0)``.

Duality: ``E[g(X_L)] = <p_{Z_n}, R_n>`` for every layer ``n``; each pairing is a
contraction of two trains on the same grid, and its distance to the forward
value ``g(E[X_L])`` is the duality gap of the two solves.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ...discretization.cross import cross
from ...discretization.rules import make_rule
from ...discretization.tensor_train import TTFunction, contract_rows
from ...errors import TTTruncationWarning
from ...results import DualPairing
from .laws import WEIGHT_FLOOR, KernelRows, typical_indices

__all__ = ["TTBackward", "affine_coefficients", "affine_train", "pullback"]


@dataclass
class TTBackward(DualPairing):
    """Result of :func:`pullback`.

    Attributes
    ----------
    points : (P, N_0) array or None
    q0 : (P,) array or None
        ``E[g(X_L) | X_0 = point]``.
    mean : float
        ``<p_{Z_1}, R_1>``: ``E[g(X_L)]`` from the backward side.
    mean_forward : float
        ``g(E[X_L])`` from the forward moments.
    pairings : (L,) array
        ``<p_{Z_n}, R_n>`` for ``n = 1..L``.
    duality_gap : (L,) array
        ``|pairings - mean_forward| / (|mean_forward| + sd(g))``, ``sd(g)`` the
        standard deviation of ``g(X_L)`` from the forward covariance (a scale
        that stays meaningful when ``E[g]`` is near zero).
    trains : list
        ``q_n`` as a TTFunction for ``0 < n < L`` (None at 0 and L).
    diagnostics : dict
        ``backward_tt_max_rank`` and ``backward_cross_error`` (L+1,) (0 where no
        train is built), ``backward_evaluations`` (L+1,), ``backward_time_s``.
    """

    trains: list = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)


def affine_coefficients(observable, width: int) -> tuple[np.ndarray, float]:
    """``(c, d)`` with ``g(x) = c . x + d``; raises ValueError if ``g`` is not
    affine (checked at random points to 1e-12 relative)."""
    d = float(np.asarray(observable(np.zeros((1, width))))[0])
    c = np.asarray(observable(np.eye(width)), dtype=np.float64) - d
    x = np.random.default_rng(0).standard_normal((8, width))
    exact = np.asarray(observable(x), dtype=np.float64)
    if np.max(np.abs(exact - (x @ c + d))) > 1e-12 * max(1.0, np.max(np.abs(exact))):
        raise ValueError("the TT backward solve needs an affine observable g(x) = c . x + d")
    return c, d


def affine_train(values: list, offset: float, rules) -> TTFunction:
    """The rank-2 train of ``sum_k v_k(x_k) + offset`` from nodal vectors ``v_k``."""
    N = len(values)
    if N == 1:
        return TTFunction([(np.asarray(values[0]) + offset).reshape(1, -1, 1)], rules)
    cores = []
    for k, v in enumerate(values):
        v = np.asarray(v, dtype=np.float64)
        one = np.ones_like(v)
        if k == 0:
            core = np.stack([v, one])[None, :, :].transpose(0, 2, 1)  # row [v, 1]
        elif k == N - 1:
            core = np.stack([one, v + offset])[:, :, None]  # column [1, v + d]
        else:
            core = np.zeros((2, v.size, 2))
            core[0, :, 0] = one
            core[1, :, 0] = v
            core[1, :, 1] = one
        cores.append(core)
    return TTFunction(cores, rules)


class _Lift:
    """``R(z) = E[q(sigma(z) + xi)]`` for the layer producing ``X_n``:
    ``q`` a TTFunction on ``X_n``'s grid, or None for ``q = c . x + d``."""

    def __init__(self, layer, q: TTFunction | None, c: np.ndarray | None = None, d: float = 0.0):
        self.layer, self.q, self.c, self.d = layer, q, c, d
        if q is not None:  # rows w_m rho_k(x_m - sigma(z_k)) over q's nodes (rho is even)
            self.rows = KernelRows(layer.noise, [r.nodes for r in q.rules], [r.weights for r in q.rules])

    def _kernel(self, z: np.ndarray) -> list:
        """Per neuron ``k``, the ``(P, m)`` rows ``w_m rho_k(x_m - sigma(z_p))``
        over ``q``'s nodes divided by their sum: the quadrature of the
        conditional law of ``X_k`` given ``z``, exact for constants also where
        that law reaches past the box (there ``q`` is not known; without the
        division ``R`` would fall off towards the box ends, a kink that costs
        TT rank)."""
        rows = self.rows.table(self.layer.activation(z))
        rows /= np.maximum(rows.sum(axis=2), 1e-300)[:, :, None]
        return [rows[:, k, :m] for k, m in enumerate(self.rows.sizes)]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(z)
        if self.q is None:
            return self.layer.activation(z) @ self.c + self.d
        return contract_rows(self.q.cores, self._kernel(z))

    def train(self, rules) -> TTFunction:
        """``R`` on the grid of ``rules`` (nodal values), exact core by core."""
        if self.q is None:
            return affine_train([ck * self.layer.activation(r.nodes) for ck, r in zip(self.c, rules)], self.d, rules)
        size = max(r.size for r in rules)
        z = np.column_stack([np.pad(r.nodes, (0, size - r.size), mode="edge") for r in rules])
        kernels = self._kernel(z)
        cores = [np.einsum("im,amb->aib", kern[: r.size], core) for kern, r, core in zip(kernels, rules, self.q.cores)]
        return TTFunction(cores, rules)


def pullback(solver, solution, observable, points: np.ndarray | None = None, progress=None) -> TTBackward:
    """The backward (Koopman) solve on the grids of a :class:`TTForward`;
    ``solver`` is the :class:`TTSolver` that made it (its options and node
    sizing are reused)."""
    start_time = time.perf_counter()
    opt = solver.options
    net, laws, trains = solution.network, solution.laws, solution.trains
    L = net.depth
    c, d = affine_coefficients(observable, net.widths[-1])
    ranks, errors = np.zeros(L + 1, dtype=np.int64), np.zeros(L + 1)
    evaluations = np.zeros(L + 1, dtype=np.int64)
    ranks[L] = 1 if net.widths[-1] == 1 else 2
    lifts = [None] * (L + 1)  # lifts[n] = R_n
    lifts[L] = _Lift(net.layers[L - 1], None, c, d)
    q_trains = [None] * (L + 1)
    for n in range(L - 1, 0, -1):
        layer = net.layers[n]  # X_n -> Z_{n+1}
        law = laws[n]
        box = law.box(opt.tail)
        # resolve the kernel of the layer that made X_n (q_n is integrated
        # against it) and q_n's own variation, R_{n+1} seen through W_n
        col = np.linalg.norm(layer.weights, axis=0)
        width = np.minimum(net.layers[n - 1].noise.scale, layer.noise.scale.min() / (1.13 * np.maximum(col, 1e-300)))
        sizes = solver.node_counts(n, box[:, 0], box[:, 1], width)
        rules = [make_rule(opt.rule, m, lo, hi, "solver.rule") for m, (lo, hi) in zip(sizes, box)]
        nodes = np.full((len(rules), max(sizes)), np.nan)
        for k, r in enumerate(rules):
            nodes[k, : r.size] = r.nodes
        cols = np.arange(len(rules))
        lift, W, b = lifts[n + 1], layer.weights, layer.bias

        # the train holds s(x) q_n(x), s a product of 1-D weights that follow
        # the marginals of X_n: truncation and the cross then spend rank where
        # X_n has mass, not on the far box where q_n is never integrated
        weights = [np.sqrt(m / m.max() + WEIGHT_FLOOR) for m in (law.marginal(k, r.nodes) for k, r in enumerate(rules))]
        wtab = np.zeros((len(rules), max(sizes)))
        for k, w in enumerate(weights):
            wtab[k, : w.size] = w

        def value(idx, lift=lift, W=W, b=b, nodes=nodes, cols=cols, wtab=wtab):
            return lift(nodes[cols, idx] @ W.T + b) * np.prod(wtab[cols, idx], axis=1)

        _, mean_x, cov_x = law.moments()
        rng = np.random.default_rng([2025, n])
        start, checks = typical_indices(mean_x, cov_x, box[:, 0], box[:, 1], sizes, rng)
        if progress is not None:
            progress(f"backward layer {n}")
        result = cross(value, sizes, tol=opt.tol, max_rank=opt.max_rank, rng=rng, start=start, checks=checks,
                       kick=opt.kick, max_sweeps=opt.sweeps, init_rank=min(2 + opt.kick, opt.max_rank))
        sq, rounding, capped = TTFunction(result.cores, rules).round(opt.tol, opt.max_rank)
        q = TTFunction([core / w[None, :, None] for core, w in zip(sq.cores, weights)], rules)
        if capped or result.capped and result.error > opt.tol:
            warnings.warn(f"backward layer {n}: TT ranks capped at solver.max_rank = {opt.max_rank} with error above "
                          f"solver.tol (cross {result.error:.2g}, rounding {rounding:.2g})", TTTruncationWarning,
                          stacklevel=3)
        q_trains[n], ranks[n], errors[n], evaluations[n] = q, q.max_rank, result.error, result.evaluations
        lifts[n] = _Lift(net.layers[n - 1], q)
    # pairings <p_{Z_n}, R_n>
    pairings = np.empty(L)
    for n in range(1, L + 1):
        if trains[n] is None:  # Z_1 is an atom (point input)
            z = net.layers[0].weights @ solution.input_law.mean() + net.layers[0].bias
            pairings[n - 1] = float(lifts[n](z[None, :])[0])
        else:
            p = trains[n]
            pairings[n - 1] = _pair(p, lifts[n].train(p.rules)) / p.integral()
    _, mean_L, cov_L = laws[L].moments()
    mean_forward = float(c @ mean_L + d)
    scale = abs(mean_forward) + float(np.sqrt(max(c @ cov_L @ c, 0.0)))
    gap = np.abs(pairings - mean_forward) / max(scale, 1e-300)
    q0 = None
    if points is not None and len(points):
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        q0 = lifts[1](points @ net.layers[0].weights.T + net.layers[0].bias)
    diag = {"backward_tt_max_rank": ranks, "backward_cross_error": errors, "backward_evaluations": evaluations,
            "backward_time_s": np.float64(time.perf_counter() - start_time)}
    return TTBackward(points, q0, float(pairings[0]), mean_forward, pairings, gap, q_trains, diag)


def _pair(p: TTFunction, r: TTFunction) -> float:
    """``sum_i w_i p(z_i) r(z_i)``: the quadrature of ``p r`` on their common grid."""
    m = np.ones((1, 1))
    for a, b, rule in zip(p.cores, r.cores, p.rules):
        m = np.einsum("ab,aic,bid,i->cd", m, a, b, rule.weights)
    return float(m[0, 0])
