"""Widening and residual layers in tensor-train format: the layer step by quadrature.

The pre-activation step of :mod:`mzpdf.solvers.tt.engine` is a change of variables
``u = T x + c`` and needs ``W`` square or narrowing with full row rank. A
widening dense layer (``n_out > n_in``) puts ``Z = W X + b`` on an
``n_in``-dimensional affine subspace, where it has no density; a residual
layer ``F(x) = x + h sigma(W x + b)`` is not affine. But ``X_{n+1} = F(X_n) +
xi_n`` has a density in both cases (the noise is ``n_out``-dimensional and
non-degenerate), the transfer integral

    p_{n+1}(y) = int p_n(x) prod_j rho_j(y_j - F_j(x)) dx
              ~= sum_q m_q prod_j rho_j(y_j - F_j(x_q)),

with ``(x_q, m_q)`` a tensor-product quadrature of the previous law (nodes
and ``w_q p_n(x_q)``: a trapezoid grid over ``X_n``'s box, spaced by the
rule of :meth:`~mzpdf.solvers.tt.engine.TTSolver.node_counts` for the narrowest
feature of the integrand, on which ``X_n``'s density is evaluated). The cross approximation
(:func:`mzpdf.discretization.cross.cross`) then builds ``p_{n+1}`` as a train in ``y``
itself on a grid over ``X_{n+1}``'s box (exact first two moments of
``F(X_n) + xi_n`` from the quadrature, gaussian tails of ``tail`` mass per
side, intersected with the range of ``F`` on the quadrature nodes widened by
the noise's tail radius), finished, normalized and checked exactly like a
pre-activation step (:meth:`mzpdf.solvers.tt.engine.TTSolver.conclude`: cross error,
rank cap, lost mass). The layer's law is that train (:class:`TrainXLaw`).

Cost per evaluation ``O(Q n_out)`` with ``Q ~ m^{n_in}`` quadrature nodes (a
GEMM and ``Q`` exponentials per point for gaussian noise): affordable for
``n_in <= MAX_QUADRATURE_DIM`` (a 2 -> 6 widening layer, a 3-neuron residual
layer), the same difficulty as a dense layer beyond. Quadrature nodes whose
masses together are below ``solver.tail`` are dropped; what they held shows
up in ``lost_mass``. A run of noiseless layers and the noisy layer after it
(a :class:`~mzpdf.network.ComposedLayer`) is stepped the same way with
``F = G`` the composed map; the quadrature's spacing follows the product of
the layers' slope bounds (:func:`_slope`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import _special as special
from ...discretization.cross import cross
from ...discretization.rules import make_rule
from ...discretization.tensor_train import TTFunction, contract_rows
from ...network.network import ComposedLayer
from .laws import WEIGHT_FLOOR, NoisyXLaw, StepFrame, XLaw

__all__ = ["MAX_QUADRATURE_DIM", "is_quadrature_layer", "TrainXLaw", "QuadratureFrame", "quadrature_frame",
           "quadrature_step"]

MAX_QUADRATURE_DIM = 3  # widest layer input stepped by quadrature (Q ~ m^n_in nodes: 3 is ~1e4-1e5)
_STEEPEST_SLOPE = 1.13  # 2/sqrt(pi) ~ gelu's: no activation is steeper (as in TTSolver._nodes)
_CHUNK_VALUES = 2**22  # kernel values per chunk of points (32 MB)
_MIN_QUADRATURE_NODES = 9  # fewest nodes per input of the quadrature grid
_TYPICAL_POINTS = 768  # start (256) and check (512) points, drawn from the discretized law itself


def is_quadrature_layer(layer) -> bool:
    """Whether the TT solver steps ``layer`` by quadrature (a widening dense
    or a residual layer, or noiseless layers composed with the noisy layer
    after them) rather than by its pre-activation change of variables."""
    return isinstance(layer, ComposedLayer) or layer.kind == "residual" or layer.n_out > layer.n_in


def _slope(layer) -> np.ndarray:
    """``(n_out, n_in)`` bounds of ``|dF_j / dx_k|`` over the whole space
    (activations no steeper than ``_STEEPEST_SLOPE``); for a composed layer
    the product of its layers' bounds."""
    if isinstance(layer, ComposedLayer):
        out = np.eye(layer.n_in)
        for part in layer.layers:
            out = _slope(part) @ out
        return out
    slope = _STEEPEST_SLOPE * np.abs(layer.weights)
    if layer.kind == "residual":
        slope = slope * layer.step + np.eye(layer.n_in)
    return slope


class TrainXLaw(XLaw):
    """The law of ``X_n`` held as a train of its own density on a tensor grid
    (the state after a quadrature step). Densities at points and marginals are
    the rules' interpolants (trigonometric for the default trapezoid rule)."""

    def __init__(self, tt: TTFunction, layer=None, frame: "QuadratureFrame | None" = None):
        self.tt, self.dim, self.layer, self.frame = tt, tt.ndim, layer, frame
        if frame is not None:  # the mixture that the train approximates, normalized like the train
            self.scale = tt.integral() / max(float(frame.quad_masses.sum()), 1e-300)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """The density at points ``(P, n)``: the transfer sum of the step
        itself when it is cheaper per point (``Q n`` against ``sum n_k r^2``)
        than the train's interpolant, which it is for high ranks."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if self.frame is not None:
            cost_tt = sum(c.size for c in self.tt.cores)
            if self.frame.quad_masses.size * self.dim < cost_tt:
                return self.scale * transfer_at(self.layer, self.frame, x)
        out = np.empty(x.shape[0])
        chunk = max(1, _CHUNK_VALUES // (4 * sum(r.size for r in self.tt.rules)))
        for a in range(0, x.shape[0], chunk):
            part = x[a:a + chunk]
            rows = [r.interpolation_matrix(part[:, k]) for k, r in enumerate(self.tt.rules)]
            out[a:a + chunk] = contract_rows(self.tt.cores, rows)
        return out

    def moments(self):
        return self.tt.moments()

    def marginal(self, k, x):
        x = np.asarray(x, dtype=np.float64)
        return (self.tt.rules[k].interpolation_matrix(x.reshape(-1)) @ self._marginals[k]).reshape(x.shape)

    def prepare_marginals(self) -> None:
        self._marginals = self.tt.marginals()

    def box(self, tail):
        return self.tt.box

    def joint01(self, x, y):
        rx = self.tt.rules[0].interpolation_matrix(np.asarray(x, dtype=np.float64))
        ry = self.tt.rules[1].interpolation_matrix(np.asarray(y, dtype=np.float64))
        return rx @ self.tt.marginal2(0, 1) @ ry.T


@dataclass(eq=False)
class QuadratureFrame(StepFrame):
    """A :class:`StepFrame` in the layer's own coordinates (``T`` the
    identity: the grid is ``X_{n+1}``'s) with the quadrature of the previous
    law: nodes ``x_q`` (``(Q, n_in)``), masses ``m_q`` (``(Q,)``), the layer
    map at the nodes ``F(x_q)`` (``(Q, n_out)``) and the mass dropped with the
    lightest nodes."""

    quad_points: np.ndarray = None
    quad_masses: np.ndarray = None
    centres: np.ndarray = None
    dropped: float = 0.0


def _previous_quadrature(solver, n: int, layer, prev: XLaw) -> tuple[np.ndarray, np.ndarray, float]:
    """Nodes ``(Q, n_in)`` and masses ``(Q,)`` of a quadrature of ``X_n``'s law,
    without the lightest nodes whose masses sum to at most ``solver.tail``,
    and the mass so dropped."""
    opt = solver.options
    _, _, cov = prev.moments()
    width = np.sqrt(1.0 / np.diag(np.linalg.inv(cov)))  # conditional sd of each neuron
    if isinstance(prev, (NoisyXLaw, TrainXLaw)):  # a mixture of noise laws: no narrower than the noise
        width = np.minimum(width, prev.layer.noise.scale)
    # the kernel rho_j(y_j - F_j(x)) varies along x_k on the scale s_j / |dF_j/dx_k|
    slope = _slope(layer)
    with np.errstate(divide="ignore"):
        width = np.minimum(width, np.min(layer.noise.scale[:, None] / slope, axis=0))
    box = prev.box(opt.tail)
    # node_counts' spacing rule without its floor of solver.nodes (a floor for the grids
    # that represent densities; this grid only integrates, and it costs m^n_in)
    per_width = max(1.0, np.sqrt(2.0 * np.log(1.0 / opt.tol)) / np.pi)
    sizes = np.clip(np.ceil((box[:, 1] - box[:, 0]) / width * per_width).astype(np.int64) + 1,
                    _MIN_QUADRATURE_NODES, 4 * opt.nodes)
    rules = [make_rule(opt.rule, m, lo, hi, "solver.rule") for m, (lo, hi) in zip(sizes, box)]
    grid = np.meshgrid(*[r.nodes for r in rules], indexing="ij")
    values = prev.pdf(np.column_stack([g.ravel() for g in grid])).reshape(grid[0].shape)
    weights = rules[0].weights
    for r in rules[1:]:
        weights = np.multiply.outer(weights, r.weights)
    masses = (weights * values).ravel()
    order = np.argsort(np.abs(masses))
    light = np.cumsum(np.abs(masses[order])) <= opt.tail
    keep = np.sort(order[~light])
    grid = np.meshgrid(*[r.nodes for r in rules], indexing="ij")
    points = np.column_stack([g.ravel()[keep] for g in grid])
    return points, masses[keep], float(np.sum(masses[order[light]]))


def quadrature_frame(solver, n: int, layer, prev: XLaw) -> QuadratureFrame:
    """The grid of ``X_{n+1}`` for a quadrature step from ``X_n`` (law
    ``prev``): quadrature of ``prev``, box and nodes from the exact moments of
    ``F(X_n) + xi_n``, cross weights and typical indices (drawn from the
    discretized law itself: a node ``x_q`` with probability ``m_q``, plus
    noise)."""
    opt = solver.options
    points, masses, dropped = _previous_quadrature(solver, n, layer, prev)
    centres = layer.forward(points)
    total = masses.sum()
    mean_f = masses @ centres / total
    dev = centres - mean_f
    cov = dev.T @ (masses[:, None] * dev) / total + np.diag(layer.noise.variance())
    sd = np.sqrt(np.maximum(np.diag(cov), 1e-300))
    radius = -special.ndtri(opt.tail) * sd
    reach = layer.noise.tail_radius(opt.tail)
    lo = np.maximum(mean_f - radius, centres.min(axis=0) - reach)
    hi = np.minimum(mean_f + radius, centres.max(axis=0) + reach)
    # Y = F(X) + xi is a mixture of noise laws: features no narrower than the noise scale
    width = np.minimum(np.sqrt(1.0 / np.diag(np.linalg.inv(cov))), layer.noise.scale)
    sizes = solver.node_counts(n + 1, lo, hi, width)
    rules = [make_rule(opt.rule, m, a, z, "solver.rule") for m, a, z in zip(sizes, lo, hi)]
    weights = [np.sqrt(np.exp(-0.5 * ((r.nodes - mean_f[k]) / sd[k]) ** 2) + WEIGHT_FLOOR)
               for k, r in enumerate(rules)]
    rng = np.random.default_rng([2024, n])
    prob = np.maximum(masses, 0.0)
    draws = centres[rng.choice(masses.size, size=_TYPICAL_POINTS, p=prob / prob.sum())]
    draws = draws + layer.noise.sample(rng, _TYPICAL_POINTS)
    h = (hi - lo) / (np.asarray(sizes) - 1)
    idx = np.clip(np.rint((draws - lo) / h), 0, np.asarray(sizes) - 1).astype(np.int64)
    m = layer.n_out
    return QuadratureFrame(n, np.eye(m), np.zeros(m), np.eye(m), 1.0, m, rules, weights, idx[:256], idx[256:], rng,
                           quad_points=points, quad_masses=masses, centres=centres, dropped=dropped)


def transfer_at(layer, fr: QuadratureFrame, y: np.ndarray) -> np.ndarray:
    """``sum_q m_q prod_j rho_j(y_j - F_j(x_q))`` at the points ``y`` ``(P, n_out)``."""
    F, masses, noise = fr.centres, fr.quad_masses, layer.noise
    Q = masses.size
    out = np.empty(y.shape[0])
    chunk = max(1, _CHUNK_VALUES // (Q * (1 if noise.kind == "gaussian" else layer.n_out)))
    if noise.kind == "gaussian":  # exp(-|a - f|^2 / 2) = exp(a.f - |a|^2/2 - |f|^2/2): one GEMM per chunk
        centre = masses @ F / masses.sum()
        f = (F - centre) / noise.scale
        half_f = 0.5 * np.sum(f * f, axis=1)
        norm = float(np.prod(1.0 / (np.sqrt(2.0 * np.pi) * noise.scale)))
        for a in range(0, y.shape[0], chunk):
            v = (y[a:a + chunk] - centre) / noise.scale
            g = v @ f.T
            g -= 0.5 * np.sum(v * v, axis=1)[:, None]
            g -= half_f[None, :]
            np.exp(g, out=g)
            out[a:a + chunk] = norm * (g @ masses)
        return out
    for a in range(0, y.shape[0], chunk):
        k = noise.pdf(y[a:a + chunk, None, :] - F[None, :, :])
        out[a:a + chunk] = np.prod(k, axis=2) @ masses
    return out


def quadrature_step(solver, n: int, layer, prev: XLaw, diag: dict, on_sweep=None) -> tuple[TTFunction, QuadratureFrame]:
    """The density of ``X_{n+1}`` as a train, by cross approximation of the
    transfer integral (module doc), and the frame of the step; diagnostics
    in ``diag`` as for a pre-activation step."""
    opt = solver.options
    mass_x = prev.moments()[0]
    fr = quadrature_frame(solver, n, layer, prev)

    def density(idx: np.ndarray) -> np.ndarray:
        return transfer_at(layer, fr, fr.points(idx)) / fr.weight_at(idx)

    result = cross(density, fr.sizes, tol=opt.tol, max_rank=opt.max_rank, rng=fr.rng,
                   start=fr.start, checks=fr.checks, kick=opt.kick,
                   max_sweeps=opt.sweeps, init_rank=min(int(diag["tt_max_rank"][n]) + opt.kick, opt.max_rank),
                   on_sweep=on_sweep)
    return solver.conclude(n, result, fr, mass_x, diag), fr
