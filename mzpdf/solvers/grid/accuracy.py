"""The grid's a-posteriori error, in ``solver.tol``'s meaning, and its refinement.

``solver.tol`` bounds, on every layer, the largest L1 distance of a neuron's
marginal to the true one and each mean's and standard deviation's error
relative to that standard deviation (docs/validation.md). The grid estimates
all three from the run itself:

* a companion solve with :data:`COMPANION_FRACTION` of the nodes on the very
  same boxes. Under convergence of order p in the node spacing the companion's
  error is ``r^p`` times the solve's (``r = 1 / COMPANION_FRACTION``), so
  their difference times ``1 / (r^p - 1)`` bounds the solve's error: the
  factor :data:`ORDER_FACTOR` of the least smooth part of the problem --
  spectral convergence (gaussian noise through smooth activations: the
  difference is the companion's error, far above the solve's), second order
  (a Laplace kernel's kink, a ReLU's), first order (a uniform kernel's jumps);
* the mass the boxes cut up to the layer (``lost_mass``), which no marginal
  beyond a box can hold;
* marginals compared by their kernel sums (:meth:`ForwardSolution.marginal`)
  on abscissae spaced :data:`ABSCISSAE_PER_SCALE` to the noise scale, fine
  enough that the L1 integral's own error is far below the difference.

With ``nodes = "auto"`` the method starts from :func:`start_nodes` and
refines (:func:`next_nodes`) until the estimate meets ``tol``, within the
memory available and ``max_seconds``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ...memory import available_bytes, numba_threads
from .engine import ForwardSolution, GridSolver, grid_bytes

__all__ = ["COMPANION_FRACTION", "ORDER_FACTOR", "companion", "error_estimate", "next_nodes", "start_nodes"]

# Nodes of the companion solve as a fraction of the solve's (r = 4/3): close enough
# that under spectral convergence the difference is not far above the solve's error
# (estimate / true error of the quickstart net: ~30 at 48 nodes, where 1/2 gives ~600).
COMPANION_FRACTION = 0.75
# 1 / (r^p - 1) for r = 4/3, with a margin, by the order p the least smooth part of a
# solve allows: a uniform kernel's jumps (p = 1: 3), a Laplace kernel's or a ReLU's
# kink (p = 2: 1.3), else spectral (the difference is the companion's own error).
ORDER_FACTOR = {"jump": 4.0, "kink": 2.0, "smooth": 1.0}
KINKED_ACTIVATIONS = ("relu", "leaky_relu")
# Round-off allowance per layer: chained quadrature sums of positive terms (~1e-15 relative each) and the
# moments' subtractions, with a wide margin (the input's own moments: 2e-14 seen against exact ones).
ROUNDOFF_PER_LAYER = 1e-12
# Abscissae per noise scale of the L1 integrals (trapezoid on the kernel sums).
ABSCISSAE_PER_SCALE = 8
_MIN_ABSCISSAE, _MAX_ABSCISSAE = 401, 20001
# nodes = "auto": the first level's nodes, finest first, and the time that level may take.
START_NODES = (64, 48, 32, 24, 16, 12, 8)
START_SECONDS = 2.0
# Refinement factors tried, largest first (the state's dimension decides which is affordable).
REFINE_FACTORS = (2.0, 1.5, 1.25)
# Kernel pairs per second of the transfer sums on 2 cores (the forecast of a level's time).
PAIRS_PER_SECOND = 1e9


def nodes_of(native: ForwardSolution) -> int:
    """The nodes per neuron of a solve (every grid of a solve has the same)."""
    return next(d.grid.shape[0] for d in native.densities if d is not None)


def companion(native: ForwardSolution, options, backend: str) -> ForwardSolution:
    """The solve on ``native``'s boxes with :data:`COMPANION_FRACTION` of its nodes."""
    nodes = max(4, int(round(COMPANION_FRACTION * nodes_of(native))))
    solver = GridSolver(options, backend=backend, check_health=False, nodes=nodes)
    boxes = [None if d is None else d.grid.box for d in native.densities]
    with warnings.catch_warnings():  # its health is the solve's, reported by the estimate
        warnings.simplefilter("ignore")
        return solver.propagate(native.layers, native.input_law, boxes=boxes)


def _scale(law_or_noise, k: int, box) -> float:
    """The length the abscissae resolve: the noise scale into the layer, or a
    thousandth of the input's box for layer 0 (its marginal is exact there)."""
    if law_or_noise is None:
        return (box[1] - box[0]) / 1000.0
    return float(law_or_noise.scale[k])


def _moment_errors(fine, coarse) -> float:
    """max over neurons of ``|mean_f - mean_c| / sd_f`` and ``|sd_f - sd_c| / sd_f``."""
    (_, m_f, c_f), (_, m_c, c_c) = fine, coarse
    sd_f = np.sqrt(np.maximum(np.diag(c_f), 0.0))
    sd_c = np.sqrt(np.maximum(np.diag(c_c), 0.0))
    ok = sd_f > 0
    if not np.any(ok):
        return 0.0
    return float(max(np.max(np.abs(m_f - m_c)[ok] / sd_f[ok]), np.max(np.abs(sd_f - sd_c)[ok] / sd_f[ok])))


def _marginal_l1(fine: ForwardSolution, coarse: ForwardSolution, index: int) -> float:
    """Largest L1 distance over neurons between the two solves' marginals of density ``index``."""
    f_box, c_box = fine.densities[index].grid.box, coarse.densities[index].grid.box
    noise = None if index == 0 else fine.transitions[index - 1].layer.noise
    worst = 0.0
    for k in range(f_box.shape[0]):
        lo, hi = min(f_box[k, 0], c_box[k, 0]), max(f_box[k, 1], c_box[k, 1])
        if index == 0:
            continue  # both are the input law's own marginal
        h = _scale(noise, k, (lo, hi)) / ABSCISSAE_PER_SCALE
        count = int(np.clip(math.ceil((hi - lo) / h) + 1, _MIN_ABSCISSAE, _MAX_ABSCISSAE))
        x = np.linspace(lo, hi, count)
        diff = np.abs(fine.marginal(index, k, x) - coarse.marginal(index, k, x))
        worst = max(worst, float(np.trapezoid(diff, x)))
    return worst


def _order_factor(native: ForwardSolution, index: int) -> float:
    """:data:`ORDER_FACTOR` of the least smooth transition up to density ``index``
    (its noise kind, and the activations of the layers it composes)."""
    factor = ORDER_FACTOR["smooth"]
    for s in range(index):
        layer = native.transitions[s].layer
        acts = [getattr(part.activation, "name", "") for part in getattr(layer, "layers", (layer,))]
        if layer.noise.kind == "uniform":
            factor = max(factor, ORDER_FACTOR["jump"])
        elif layer.noise.kind == "laplace" or any(a in KINKED_ACTIVATIONS for a in acts):
            factor = max(factor, ORDER_FACTOR["kink"])
    return factor


def error_estimate(fine: ForwardSolution, coarse: ForwardSolution) -> np.ndarray:
    """(L+1,) bound of each layer's error in ``solver.tol``'s meaning (module doc):
    ``factor * max(marginal L1, moment errors)`` of ``fine`` against its companion
    ``coarse``, plus the mass cut up to the layer. A layer inside a run of
    noiseless layers has no density: its moments (push-forwards) are compared."""
    layers = fine.layers
    lost = np.asarray(fine.diagnostics["lost_mass"], dtype=np.float64)
    out = np.zeros(layers.depth + 1)
    for n in range(layers.depth + 1):
        index = fine.density_index(n)
        cut = float(np.sum(lost[:n + 1])) + ROUNDOFF_PER_LAYER * (n + 1)
        if index is None:  # the push-forward of the last density: its moments
            step = next(s for s, (a, b) in enumerate(layers.segments()) if a < n < b)
            f_mom, c_mom = fine.pushforward(n)[:3], coarse.pushforward(n)[:3]
            out[n] = _order_factor(fine, step) * _moment_errors(f_mom, c_mom) + cut
            continue
        if fine.densities[index] is None:  # a point input: exact
            continue
        f_moments = fine.densities[index].moments()
        moments = _moment_errors(f_moments, coarse.densities[index].moments())
        out[n] = _order_factor(fine, index) * max(moments, _marginal_l1(fine, coarse, index)) + cut * _leverage(
            fine.densities[index].grid.box, f_moments[2])
    return out


def _leverage(box: np.ndarray, cov: np.ndarray) -> float:
    """What a cut mass ``m`` can do to the moments, per unit of ``m``: moved by up to the
    box's width ``w``, it changes a mean by ``m w`` and a second moment by ``m w^2``,
    relative to the standard deviation ``s``: ``1 + (w / s)^2`` bounds all three errors."""
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    width = box[:, 1] - box[:, 0]
    ok = sd > 0
    return 1.0 + float(np.max((width[ok] / sd[ok]) ** 2)) if np.any(ok) else 1.0


def _pairs(widths, nodes: int) -> float:
    """Kernel pairs of the transfer sums of a solve (state widths, 0 for a point input)."""
    return sum(float(nodes) ** (a + b) for a, b in zip(widths[:-1], widths[1:]))


def forecast_seconds(widths, nodes: int) -> float:
    """Time of a solve and its companion at ``nodes``, at :data:`PAIRS_PER_SECOND`."""
    pairs = _pairs(widths, nodes) + _pairs(widths, max(4, int(round(COMPANION_FRACTION * nodes))))
    return 0.05 + pairs / PAIRS_PER_SECOND


def _fits(widths, nodes: int, hidden: int) -> bool:
    return grid_bytes([max(w, 1) for w in widths], nodes, numba_threads(), hidden=hidden) < 0.8 * available_bytes()


def start_nodes(widths, hidden: int = 0) -> int:
    """The first level of ``nodes = "auto"``: the most of :data:`START_NODES`
    forecast within :data:`START_SECONDS` and the memory (the fewest if none is)."""
    for nodes in START_NODES:
        if forecast_seconds(widths, nodes) <= START_SECONDS and _fits(widths, nodes, hidden):
            return nodes
    return START_NODES[-1]


def next_nodes(widths, nodes: int, seconds: float, left: float, hidden: int = 0) -> int | None:
    """The next level after a level of ``nodes`` that took ``seconds``: the
    largest factor of :data:`REFINE_FACTORS` whose level (time scaled by the
    kernel pairs) ends within ``left`` seconds and fits the memory; None if none does."""
    for factor in REFINE_FACTORS:
        finer = int(math.ceil(nodes * factor))
        scale = forecast_seconds(widths, finer) / forecast_seconds(widths, nodes)
        if seconds * scale <= left and _fits(widths, finer, hidden):
            return finer
    return None
