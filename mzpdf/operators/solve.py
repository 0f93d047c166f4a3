"""Forward propagation of densities and backward pullback of observables
through a whole network on tensor grids.

:class:`GridSolver` is the estimator (options in, computation); it returns
immutable solutions: :class:`ForwardSolution` (every layer's density and the
transitions between them) and :class:`BackwardSolution` (the conditional
expectations q_n = M_n ... M_{L-1} g).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..discretization.grid import GridFunction, TensorGrid
from ..memory import grid_bytes, numba_threads, require_memory
from ..errors import BackendWarning, MassLossWarning, NumericalHealthWarning, SingularDensityError
from ..network.inputs import InputLaw
from ..network.network import Network
from ..options import GridOptions, is_auto
from . import _kernels
from .transfer import GridTransition, KoopmanOperator, TransferOperator, assemble_transition

__all__ = ["GridSolver", "ForwardSolution", "BackwardSolution", "TAIL_WITH_THRESHOLDS", "threshold_tail"]


def _root(fn, lo: float, hi: float) -> float:
    """Root of a monotone ``fn`` in [lo, hi], or the end where ``fn`` has the root's sign."""
    f_lo, f_hi = fn(lo), fn(hi)
    if f_lo * f_hi > 0:
        return lo if abs(f_lo) < abs(f_hi) else hi
    from scipy import optimize  # imported on use: keeps `mzpdf` quick to import

    return optimize.brentq(fn, lo, hi, xtol=1e-12 * max(1.0, abs(lo), abs(hi)))

# Mass that may leave a layer's box, as a multiple of the requested tail,
# before a MassLossWarning is raised (tails of several neurons add up).
_MASS_LOSS_FACTOR = 100.0
# Negative probability mass tolerated before a NumericalHealthWarning (the
# transfer sums are sums of non-negative terms; any negative mass is a defect).
_NEGATIVE_MASS_TOL = 1e-10
# Mass per side and neuron the automatic boxes may cut when exceedance
# probabilities are asked for (observable.thresholds / quantiles): a cut mass
# m can change P(g > t) by at most m, so the default 1e-12 would swamp the
# 1e-12 probabilities the tails are for; 1e-30 reaches ~11.3 std into gaussian
# tails (the boxes grow by ~60 % over the default's 7 std) and keeps the cut
# below 1e-16 relative down to P ~ 1e-14. Smaller probabilities make the
# method tighten it further (threshold_tail).
TAIL_WITH_THRESHOLDS = 1e-30
# Tails below which 1 - cdf(z) cannot resolve the upper tail in double precision
# (also the least lost mass worth a warning: lost_mass is summed from 1 - cdf).
_CDF_RESOLUTION = 1e-14
# Smallest tail handed to the box search (the noise quantiles underflow below).
_SMALLEST_TAIL = 1e-300


def threshold_tail(tail: float, cut_effect: float | None = None, allowed: float | None = None) -> float:
    """The box tail of a solve with thresholds: ``min(tail, TAIL_WITH_THRESHOLDS)``,
    and, when a solve with ``tail`` left a cut whose effect on some exceedance
    was ``cut_effect`` while ``allowed`` was acceptable, that tail lowered in
    proportion (with a factor 10 to spare), never below 1e-300."""
    tail = min(tail, TAIL_WITH_THRESHOLDS)
    if cut_effect is not None and allowed is not None and cut_effect > allowed:
        tail = tail * 0.1 * allowed / cut_effect
    return max(tail, _SMALLEST_TAIL)


# Quadrature mass error |mass[n+1] - (mass[n] - lost_mass[n+1])| tolerated
# before a MassLossWarning: beyond it the grid does not resolve the density
# (too few nodes for the noise scale) and every moment is suspect.
_QUADRATURE_MASS_TOL = 1e-2


@dataclass(frozen=True, eq=False)
class ForwardSolution:
    """Densities of X_0, ..., X_L on tensor grids.

    With noiseless layers, ``network`` is the given network collapsed
    (:meth:`mzpdf.network.Network.collapsed`): one transition per run of
    noiseless layers and the noisy layer after it, so ``densities`` and
    ``transitions`` count those runs (``depth`` of them) and the layers
    inside a run, which have no density, are the push-forwards of
    :meth:`pushforward`. Without noiseless layers ``given`` is None and
    everything counts the layers.

    Attributes
    ----------
    network : Network
        The transitions' network (the collapsed one).
    input_law : InputLaw
    densities : list
        ``depth + 1`` entries; entry 0 is ``None`` for a point input (an
        atom), else a :class:`GridFunction`; the others are GridFunctions.
    transitions : list of GridTransition
        ``depth`` entries; transition n maps density n's nodes to density
        n+1's grid.
    diagnostics : dict
        ``mass``, ``lost_mass``, ``no_density`` (L+1,), ``duality_gap``,
        ``time_per_layer_s``, ``kernel`` (L,), over the given network's
        layers: see :meth:`GridSolver.propagate`.
    given : Network or None
        The network as given, when noiseless layers were composed.
    """

    network: Network
    input_law: InputLaw
    densities: list
    transitions: list
    diagnostics: dict = field(default_factory=dict)
    given: Network | None = None

    @property
    def depth(self) -> int:
        return len(self.transitions)

    @property
    def layers(self) -> Network:
        """The network as given (L layers)."""
        return self.network if self.given is None else self.given

    def density_index(self, n: int) -> int | None:
        """The entry of ``densities`` that is layer ``n`` (0..L) of the given
        network, or None where layer n is inside a run of noiseless layers."""
        if self.given is None:
            return n
        ends = [0] + [stop for _, stop in self.given.segments()]
        return ends.index(n) if n in ends else None

    def pushforward(self, n: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """``(mass, mean, cov, support)`` of layer ``n``, one without a density:
        ``X_n = F_{n-1} o ... o F_k (X_k)`` with ``X_k`` the last layer before
        it that has one, so by quadrature over ``X_k``'s nodes ``x_j`` with
        coefficients ``c_j = w_j p_k(x_j)``: ``mean = sum_j c_j G(x_j) / mass``,
        ``cov`` likewise (normalized as :meth:`TensorGrid.moments`);
        ``support`` (N_n, 2) spans ``G(x_j)`` over the nodes with ``c_j > 0``."""
        if self.density_index(n) is not None:
            raise ValueError(f"layer {n} has a density: take its moments from densities[{self.density_index(n)}]")
        step, (start, _) = next((s, seg) for s, seg in enumerate(self.given.segments()) if seg[0] < n < seg[1])
        coeffs = self.source_coefficients(step)
        x = self.transitions[step].source_points
        for layer in self.given.layers[start:n]:
            x = layer.forward(x)
        mass = float(coeffs.sum())
        mean = (x.T @ coeffs) / mass
        centred = x - mean
        # sum_j c_j z_j z_j^T as Gram matrices of sqrt(c+) z and sqrt(c-) z (BLAS syrk: a general
        # product of the (N, J) and (J, N) factors is up to 100x slower with some OpenBLAS builds)
        pos = np.sqrt(np.maximum(coeffs, 0.0))[:, None] * centred
        neg = np.sqrt(np.maximum(-coeffs, 0.0))[:, None] * centred
        cov = (pos.T @ pos - neg.T @ neg) / mass
        on = x[coeffs > 0] if np.any(coeffs > 0) else x
        return mass, mean, cov, np.column_stack([on.min(axis=0), on.max(axis=0)])

    def transfer(self, n: int) -> TransferOperator:
        return TransferOperator(self.transitions[n])

    def koopman(self, n: int) -> KoopmanOperator:
        return KoopmanOperator(self.transitions[n])

    def source_coefficients(self, n: int) -> np.ndarray:
        """``w_j p_n(x_j)`` of layer n's nodes (the atom's weight 1 for a point input)."""
        t = self.transitions[n]
        density = self.densities[n]
        return t.source_weights * (np.ones(1) if density is None else density.values)


@dataclass(frozen=True, eq=False)
class BackwardSolution:
    """Conditional expectations ``q_n(x) = E[g(X_L) | X_n = x]`` on layer grids.

    Attributes
    ----------
    values : list
        ``L + 1`` nodal arrays, ``values[n]`` on layer n's nodes
        (``values[L] = g`` at the last grid's nodes).
    points : (P, N_0) or None
    q0 : (P,) or None
        ``q_0`` at ``points``.
    mean : float
        ``E[g(X_L)] = sum_j w_j p_0(x_j) q_0(x_j)``.
    mean_forward : float
        ``sum_i v_i g(y_i) p_L(y_i)``: equal to ``mean`` up to round-off (duality).
    """

    values: list
    points: np.ndarray | None
    q0: np.ndarray | None
    mean: float
    mean_forward: float


def _layer_diagnostics(solution: ForwardSolution) -> dict:
    """A composed solve's diagnostics over the given network's layers: a
    layer inside a run of noiseless layers keeps the mass of the density
    before it, cuts none, has ``no_density`` 1, and its step (an exact map
    of the nodes) has duality gap, mass error and time 0 and kernel
    ``none``; the run's transition counts at its last layer."""
    d, given = solution.diagnostics, solution.given
    L = given.depth
    out = dict(d)
    out["no_density"] = np.zeros(L + 1, dtype=np.int8)
    out["no_density"][0] = solution.input_law.is_atomic
    out["mass"], out["lost_mass"] = np.zeros(L + 1), np.zeros(L + 1)
    out["mass"][0], out["lost_mass"][0] = d["mass"][0], d["lost_mass"][0]
    for name in ("duality_gap", "quadrature_mass_error", "time_per_layer_s"):
        out[name] = np.zeros(L)
    out["kernel"] = np.array([b"none"] * L, dtype="S8")
    for s, (start, stop) in enumerate(given.segments()):
        out["mass"][start + 1:stop] = d["mass"][s]
        out["no_density"][start + 1:stop] = 1
        out["mass"][stop], out["lost_mass"][stop] = d["mass"][s + 1], d["lost_mass"][s + 1]
        for name in ("duality_gap", "quadrature_mass_error", "time_per_layer_s", "kernel"):
            out[name][stop - 1] = d[name][s]
    return out


def _duality_gap(t: GridTransition, coeffs: np.ndarray, out: np.ndarray, rng) -> float:
    """Relative gap ``|<M u, p> - <u, N p>| / <u, N p>`` for a random positive
    product test function ``u(y) = prod_k u_k(y_k)``.

    For such ``u`` the Koopman side factorizes over output neurons,
    ``(M u)_j = prod_k sum_i v_ki u_k(y_ki) rho_k(y_ki - F_k(x_j))``, and costs
    O(J M N) instead of O(J M^N): an independent, cheap check of the forward
    sum ``out = N p`` at run time."""
    factors = [rng.uniform(0.5, 1.5, m) for m in t.target.shape]
    u = factors[0]
    for fk in factors[1:]:
        u = np.multiply.outer(u, fk).reshape(-1)
    rhs = float((t.target.weights * u) @ out)
    noise, grid = t.layer.noise, t.target
    lhs = 0.0
    step = max(1, 2**22 // (grid.ndim * grid.shape[0]))
    for j0 in range(0, len(coeffs), step):
        j1 = min(j0 + step, len(coeffs))
        if t.keeps_tables:  # the tables the forward sum filled
            tables = t.kept_tables[:, :, j0:j1]
        else:
            tables = np.empty((grid.ndim, grid.shape[0], j1 - j0))
            fill = _kernels.factor_tables_serial if t.is_small else _kernels.fill_factor_tables
            fill(noise.code, noise.scale, np.stack(grid.axes), t.mapped[j0:j1], tables)
        mu = np.ones(j1 - j0)
        for k in range(grid.ndim):
            mu *= (grid.rules[k].weights * factors[k]) @ tables[k]
        lhs += float(coeffs[j0:j1] @ mu)
    return abs(lhs - rhs) / abs(rhs) if rhs != 0 else abs(lhs - rhs)


class GridSolver:
    """Tensor-grid solver of SPEC 3.1.

    Parameters
    ----------
    options : GridOptions, optional
        Defaults of :class:`mzpdf.options.GridOptions` where omitted;
        keyword arguments override single options (``GridSolver(nodes=48)``).
    """

    def __init__(self, options: GridOptions | None = None, backend: str = "cpu", **overrides):
        base = (options or GridOptions()).to_dict()
        base.update(overrides)
        self.options = GridOptions(**base)
        if backend not in ("cpu", "cuda"):
            raise ValueError(f"backend must be 'cpu' or 'cuda', got {backend!r}")
        self.backend = backend
        self.backend_note = backend
        if backend == "cuda":
            from .cuda import cuda_status

            usable, reason = cuda_status()
            if not usable:
                warnings.warn(f"solver.backend = 'cuda': {reason}; running on the CPU", BackendWarning, stacklevel=2)
                self.backend, self.backend_note = "cpu", f"cpu (cuda requested: {reason})"
            elif reason == "simulator":
                self.backend_note = "cuda (numba CUDA simulator)"

    @property
    def _algorithm(self) -> str:
        return "cuda" if self.backend == "cuda" else self.options.kernel

    # -- forward ------------------------------------------------------------
    def propagate(self, network: Network, input_law: InputLaw,
                  progress: Callable[[int, int], None] | None = None, resume: list | None = None,
                  on_layer: Callable[[int, dict], None] | None = None,
                  boxes: list | None = None) -> ForwardSolution:
        """Densities of every layer: p_{n+1} = N_n p_n.

        ``resume`` holds the states of layers 1, 2, ... of an earlier,
        interrupted solve of the same problem (as given to ``on_layer``):
        those layers are rebuilt from their boxes and nodal values instead of
        recomputed, which gives the same numbers. ``on_layer(n, state)`` is
        called after each computed layer n >= 1 (for checkpoints).
        ``boxes`` (L+1 entries, (N_n, 2) each; entry 0 ignored for a point
        input) fixes every layer's box, e.g. those of another solve, so that
        two resolutions differ by their nodes only.

        Diagnostics: ``mass[n]`` is the quadrature mass of layer n;
        ``lost_mass[n]`` the mass cut by layer n's box (input tails for n = 0,
        noise landing outside the box for n >= 1, computed exactly from the
        noise CDF); ``duality_gap[n]`` the relative gap
        ``|<M u, p_n> - <u, N p_n>| / <u, N p_n>`` for a positive test function
        u; ``quadrature_mass_error[n] = mass[n+1] - (mass[n] - lost_mass[n+1])``.
        """
        opt = self.options
        if input_law.dim != network.widths[0]:
            raise ValueError(f"input law has dimension {input_law.dim}, the network {network.widths[0]} inputs")
        given, network = network, network.collapsed()
        hidden = max((getattr(layer, "hidden_width", 0) for layer in network), default=0)
        require_memory(grid_bytes(network.widths, opt.nodes, numba_threads(), hidden=hidden),
                       f"a grid of {opt.nodes} nodes per neuron on layers of up to {max(network.widths)} neurons")
        if network[-1].noise.is_deterministic:
            raise SingularDensityError(
                f"layer {given.depth - 1}, the last, has noise kind 'none': X_{given.depth} is a map of "
                f"X_{given.depth - 1} with no density on {given.widths[-1]} neurons for a grid to hold; give the "
                "output layer noise, or use method = 'qmc' (it gives the moments of a noiseless output)")
        ends = [stop for _, stop in given.segments()]  # the given layer that each density after the input is
        L = network.depth
        mass, lost, gap, qerr, seconds, kernel = (np.zeros(L + 1), np.zeros(L + 1), np.zeros(L), np.zeros(L),
                                                  np.zeros(L), [])
        if input_law.is_atomic:
            points, weights, density = input_law.mean()[None, :], np.ones(1), None
            mass[0] = 1.0
        else:
            box0 = self._box(input_law.box(opt.tail)) if boxes is None else np.asarray(boxes[0], dtype=float)
            grid = TensorGrid.from_box(box0, opt.nodes, opt.rule)
            density = GridFunction(grid, input_law.pdf(grid.points))
            points, weights = grid.points, grid.weights
            mass[0] = density.integral()
            lost[0] = input_law.tail_mass(grid.box)
        densities, transitions = [density], []
        resume = list(resume or ())[:L]
        for n, layer in enumerate(network):
            start = time.perf_counter()
            coeffs = weights * (np.ones(1) if density is None else density.values)
            if n < len(resume):  # rebuilt from an earlier solve's state
                state = resume[n]
                target = TensorGrid.from_box(state["box"], opt.nodes, opt.rule)
                t = assemble_transition(layer, points, weights, target, str(state["kernel"]))
                density = GridFunction(target, state["values"])
                gap[n], lost[n + 1], seconds[n] = state["duality_gap"], state["lost_mass"], state["seconds"]
            else:
                mapped = layer.forward(points)
                box = self._target_box(layer, mapped, coeffs) if boxes is None else np.asarray(boxes[n + 1], float)
                target = TensorGrid.from_box(box, opt.nodes, opt.rule)
                t = assemble_transition(layer, points, weights, target, self._algorithm)
                out = t.forward_sum(coeffs)
                rng = np.random.default_rng([12345, n])  # test functions of the duality check only
                gap[n] = _duality_gap(t, coeffs, out, rng)
                density = GridFunction(target, out)
                lost[n + 1] = float(coeffs @ (1.0 - t.inbox_mass))
                seconds[n] = time.perf_counter() - start
            mass[n + 1] = density.integral()
            qerr[n] = mass[n + 1] - (mass[n] - lost[n + 1])
            self._check_health(ends[n], density, lost[n + 1], layer.n_out, qerr[n])
            densities.append(density)
            transitions.append(t)
            kernel.append(t.algorithm)
            points, weights = target.points, target.weights
            if on_layer is not None and n >= len(resume):
                on_layer(n + 1, {"box": target.box, "values": density.values, "kernel": t.algorithm,
                                 "duality_gap": gap[n], "lost_mass": lost[n + 1], "seconds": seconds[n]})
            if progress is not None:
                progress(n + 1, L)
        diagnostics = {"mass": mass, "lost_mass": lost, "duality_gap": gap, "quadrature_mass_error": qerr,
                       "time_per_layer_s": seconds, "kernel": np.array(kernel, dtype="S8"),
                       "backend": self.backend_note}
        if network is given:
            diagnostics["no_density"] = np.array([input_law.is_atomic] + [False] * L, dtype=np.int8)
            return ForwardSolution(network, input_law, densities, transitions, diagnostics)
        solution = ForwardSolution(network, input_law, densities, transitions, diagnostics, given)
        return replace(solution, diagnostics=_layer_diagnostics(solution))

    def _box(self, auto_box: np.ndarray) -> np.ndarray:
        if is_auto(self.options.domain):
            return auto_box
        lo, hi = self.options.domain
        return np.tile([lo, hi], (auto_box.shape[0], 1)).astype(float)

    def _target_box(self, layer, mapped: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
        """Per output neuron k, an interval outside which ``Y_k = F_k(X) + xi_k``
        has mass at most ``tail`` per side, for the discretized law of X
        (quadrature atoms ``coeffs`` at ``mapped``) and the exact noise CDF.

        The atoms are first pooled into 4096 bins per neuron, each bin's mass
        placed at its outer edge, so the interval is conservative and costs
        O(J) plus a root search over the bins."""
        if not is_auto(self.options.domain):
            return self._box(np.zeros((layer.n_out, 2)))
        tail = self.options.tail
        keep = coeffs > 0
        c, f = coeffs[keep] / coeffs[keep].sum(), mapped[keep]
        r = layer.noise.tail_radius(tail)
        box = np.empty((layer.n_out, 2))
        for k in range(layer.n_out):
            law = type(layer.noise)(layer.noise.scale[k : k + 1])
            cdf = lambda z: law.cdf(z[:, None])[:, 0]  # noqa: E731
            edges = np.linspace(f[:, k].min(), f[:, k].max(), 4097)
            mass, _ = np.histogram(f[:, k], bins=edges, weights=c)
            # Empty bins (most of them) add exact zeros: their CDFs are not evaluated but
            # left 0, so each sum adds the very same products as over every bin (the
            # roots are ill-conditioned: any round-off change would move the boxes).
            full = np.flatnonzero(mass)
            lows, highs = edges[:-1][full], edges[1:][full]
            terms = np.zeros_like(mass)

            def dot(values):
                terms[full] = values
                return mass @ terms

            below = lambda b: dot(cdf(b - lows)) - tail  # noqa: E731
            if tail < _CDF_RESOLUTION:  # 1 - cdf is 0 there: the upper tail by symmetry of the noise
                above = lambda b: dot(cdf(highs - b)) - tail  # noqa: E731
            else:  # as the boxes of every stored reference result were chosen
                above = lambda b: dot(1.0 - cdf(b - highs)) - tail  # noqa: E731
            box[k, 0] = _root(below, edges[0] - r[k], edges[-1])
            box[k, 1] = _root(above, edges[0], edges[-1] + r[k])
        return box

    def _check_health(self, n: int, density: GridFunction, lost: float, width: int, qerr: float) -> None:
        if not np.all(np.isfinite(density.values)):
            warnings.warn(f"layer {n}: the density holds NaN or Inf", NumericalHealthWarning, stacklevel=3)
        negative = -float(density.grid.weights @ np.minimum(density.values, 0.0))
        if negative > _NEGATIVE_MASS_TOL:
            warnings.warn(f"layer {n}: the density has negative mass {negative:.3g} (too few solver.nodes?)",
                          NumericalHealthWarning, stacklevel=3)
        if abs(qerr) > _QUADRATURE_MASS_TOL:
            warnings.warn(f"layer {n}: quadrature mass error {qerr:.3g} (too few solver.nodes for the noise scale?)",
                          MassLossWarning, stacklevel=3)
        if lost > max(_MASS_LOSS_FACTOR * self.options.tail * width, _CDF_RESOLUTION):
            warnings.warn(f"layer {n}: mass {lost:.3g} left the box (solver.domain too small?)",
                          MassLossWarning, stacklevel=3)

    # -- backward -----------------------------------------------------------
    def pullback(self, forward: ForwardSolution, observable: Callable[[np.ndarray], np.ndarray],
                 points: np.ndarray | None = None) -> BackwardSolution:
        """Conditional expectations q_n = M_n q_{n+1}, q_L = g, on the grids of
        ``forward``; ``q_0`` also at ``points`` (P, N_0) by the Nystrom sum."""
        L = forward.depth
        last = forward.transitions[-1].target
        values = [None] * (L + 1)
        values[L] = np.asarray(observable(last.points), dtype=np.float64)
        for n in range(L - 1, -1, -1):
            values[n] = forward.koopman(n)(values[n + 1])
        q0 = None
        if points is not None:
            points = np.atleast_2d(np.asarray(points, dtype=np.float64))
            q0 = forward.koopman(0).at(points, values[1])
        mean = float(forward.source_coefficients(0) @ values[0])
        mean_forward = float(last.weights @ (values[L] * forward.densities[L].values))
        return BackwardSolution(values, points, q0, mean, mean_forward)
