"""Forward propagation of densities and backward pullback of observables
through a whole network on tensor grids.

:class:`GridSolver` is the estimator (options in, computation); it returns
immutable solutions: :class:`ForwardSolution` (every layer's density and the
transitions between them) and :class:`BackwardSolution` (the conditional
expectations q_n = M_n ... M_{L-1} g).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ...discretization.tensor_grid import GridFunction, TensorGrid
from ...errors import BackendWarning, MassLossWarning, NumericalHealthWarning, SingularDensityError
from ...memory import numba_threads, require_memory
from ...network.inputs import InputLaw, UniformInput
from ...network.network import Network
from ...options import is_auto
from ..march import LayerMarch, march, network_steps
from ._kernels import factor_tables_serial, fill_factor_tables, marginal_sum
from .cuda import cuda_status
from .options import GridOptions
from .transfer import GridTransition, KoopmanOperator, TransferOperator, assemble_transition

__all__ = ["ENGINE_NODES", "GridSolver", "GridMarch", "ForwardSolution", "BackwardSolution", "TAIL_WITH_THRESHOLDS", "grid_bytes",
           "threshold_tail"]


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

    def marginal(self, index: int, k: int, x) -> np.ndarray:
        """Marginal density of neuron ``k`` of density ``index`` at ``x`` (any
        shape), by the layer's own kernel sum (Nystrom evaluation).

        Density 0 is the input law's own marginal. Density ``n + 1`` is
        ``sum_j c_j rho_k(x - F_k(x_j))`` over the atoms ``c_j = w_j p_n(x_j)``
        of density ``n``: the other neurons' noise integrates to 1 over the
        line, so this is the quadrature of the exact marginal, a sum of
        non-negative terms (positive by construction, where an interpolant of
        the nodal values rings negative between nodes when the noise is
        narrow)."""
        x = np.asarray(x, dtype=np.float64)
        if index == 0:
            if self.densities[0] is None:
                raise ValueError("the input is a point: it has no density")
            return self.input_law.marginal_pdf(k, x)
        t = self.transitions[index - 1]
        coeffs = self.source_coefficients(index - 1)
        order = np.argsort(t.mapped[:, k], kind="stable")
        centres = np.ascontiguousarray(t.mapped[order, k])
        noise = t.layer.noise
        flat = np.ascontiguousarray(x.reshape(-1))
        out = np.empty(flat.size)
        marginal_sum(noise.code, float(noise.scale[k]), float(noise.window_radius()[k]), flat, centres,
                     np.ascontiguousarray(coeffs[order]), out)
        return out.reshape(x.shape)

    def joint(self, index: int, i: int, j: int, x, y) -> np.ndarray:
        """Joint density of neurons ``i != j`` of density ``index`` on the
        tensor grid ``x`` (X,) by ``y`` (Y,), shape (X, Y): the Nystrom sum
        ``sum_s c_s rho_i(x - F_i(x_s)) rho_j(y - F_j(x_s))`` (density 0:
        the input grid's interpolant of the input density's marginal)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if index == 0:
            density = self.densities[0]
            grid = density.grid
            nodal = grid.marginal(density.values, (min(i, j), max(i, j)))
            nodal = nodal.T if i > j else nodal
            return grid.rules[i].interpolation_matrix(x) @ nodal @ grid.rules[j].interpolation_matrix(y).T
        t = self.transitions[index - 1]
        coeffs, noise = self.source_coefficients(index - 1), t.layer.noise
        rho_i, rho_j = (type(noise)(noise.scale[k:k + 1]) for k in (i, j))
        out = np.zeros((x.size, y.size))
        step = max(1, 2**22 // max(x.size, y.size))
        for s0 in range(0, coeffs.size, step):
            f = t.mapped[s0:s0 + step]
            a = rho_i.pdf((x[:, None] - f[None, :, i])[..., None])[..., 0] * coeffs[s0:s0 + step]
            b = rho_j.pdf((y[:, None] - f[None, :, j])[..., None])[..., 0]
            out += a @ b.T
        return out

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


_DENSE_BLOCK_BYTES = 64 * 2**20  # GridTransition's largest dense block


def grid_bytes(widths, nodes: int, threads: int, columns: int = 0, hidden: int = 0) -> int:
    """Peak bytes of a grid solve on layers of ``widths`` neurons with
    ``nodes`` per neuron and ``threads`` Numba threads; ``columns`` extra
    vectors of the largest layer's size held at once (the memory kernels of a
    Mori-Zwanzig reduction).

    With noiseless layers ``widths`` are the widths of the laws with
    densities (:attr:`mzpdf.network.Network.state_widths`: the input and the
    noisy layers), never the hidden ones, and ``hidden`` is the widest
    noiseless layer, whose values the composed map holds at every node of a
    grid (twice: its input and its output)."""
    sizes = [float(nodes) ** w for w in widths]
    total = _DENSE_BLOCK_BYTES
    for n, (size, width) in enumerate(zip(sizes, widths)):
        total += 8 * size * (3 + width)  # values, weights, backward values, points
        if n + 1 < len(widths):
            total += 8 * size * (3 * widths[n + 1] + 1)  # mapped, windows, in-box mass
    total += 8 * max(sizes) * threads  # per-thread sums of the windowed kernel
    total += 3 * 8 * max(sizes) * columns  # stacked, pushed and in-flight columns
    total += 2 * 8 * max(sizes) * hidden  # a composed map's intermediate layers at a grid's nodes
    return int(min(total, 2.0**62))


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
            fill = factor_tables_serial if t.is_small else fill_factor_tables
            fill(noise.code, noise.scale, np.stack(grid.axes), t.mapped[j0:j1], tables)
        mu = np.ones(j1 - j0)
        for k in range(grid.ndim):
            mu *= (grid.rules[k].weights * factors[k]) @ tables[k]
        lhs += float(coeffs[j0:j1] @ mu)
    return abs(lhs - rhs) / abs(rhs) if rhs != 0 else abs(lhs - rhs)


# Nodes per neuron of an engine whose options say nodes = "auto" (the engine
# solves at one resolution; the method's plugin chooses and refines it).
ENGINE_NODES = 40


class GridSolver:
    """Tensor-grid solver of SPEC 3.1, at one resolution.

    Parameters
    ----------
    options : GridOptions, optional
        Defaults of :class:`mzpdf.solvers.grid.options.GridOptions` where omitted;
        keyword arguments override single options (``GridSolver(nodes=48)``).
    check_health : bool
        Warn of a layer's negative mass, quadrature mass error or cut as it is
        computed (False: :func:`report_health` on the solve that is kept).
    """

    def __init__(self, options: GridOptions | None = None, backend: str = "cpu", check_health: bool = True,
                 **overrides):
        base = (options or GridOptions()).to_dict()
        base.update(overrides)
        if is_auto(base["nodes"]):  # one resolution here; the method's refinement lives in its plugin
            base["nodes"] = ENGINE_NODES
        self.options = GridOptions(**base)
        self.check_health = check_health  # False: the caller reports the health of the solve it keeps
        if backend not in ("cpu", "cuda"):
            raise ValueError(f"backend must be 'cpu' or 'cuda', got {backend!r}")
        self.backend = backend
        self.backend_note = backend
        if backend == "cuda":
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
                  progress: Callable[[int, int], None] | None = None, boxes: list | None = None) -> ForwardSolution:
        """Densities of every layer: p_{n+1} = N_n p_n (:class:`GridMarch`
        run to its end by the one layer loop, :func:`mzpdf.solvers.march.march`).

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
        return march(self.march(network, input_law, boxes), progress)[0]

    def march(self, network: Network, input_law: InputLaw, boxes: list | None = None) -> "GridMarch":
        """The forward solve of ``network`` as a :class:`GridMarch` (not yet run)."""
        return GridMarch(self, network, input_law, boxes)

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

    def report_health(self, native: ForwardSolution) -> None:
        """The health warnings (:meth:`_check_health`) of a finished solve, layer
        by layer: for a caller that solved with ``check_health=False`` (several
        resolutions) and keeps this one."""
        ends = [0] + ([stop for _, stop in native.given.segments()] if native.given is not None
                      else list(range(1, native.depth + 1)))
        mass = native.densities[0].integral() if native.densities[0] is not None else 1.0
        for s, t in enumerate(native.transitions):
            density = native.densities[s + 1]
            lost = float(native.source_coefficients(s) @ (1.0 - t.inbox_mass))
            new_mass = density.integral()
            self._check_health(ends[s + 1], density, lost, t.layer.n_out, new_mass - (mass - lost))
            mass = new_mass

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


class GridMarch(LayerMarch):
    """One forward solve on tensor grids, a step at a time (module
    :mod:`mzpdf.solvers.march`): step ``n`` is the transition from density
    ``n`` to density ``n + 1`` of the collapsed network (a run of noiseless
    layers and the noisy layer after it is one transition)."""

    def __init__(self, solver: GridSolver, network: Network, input_law: InputLaw, boxes: list | None = None):
        opt = solver.options
        if input_law.dim != network.widths[0]:
            raise ValueError(f"input law has dimension {input_law.dim}, the network {network.widths[0]} inputs")
        self.solver, self.given, self.network, self.input_law = solver, network, network.collapsed(), input_law
        self.boxes = boxes
        hidden = max((getattr(layer, "hidden_width", 0) for layer in self.network), default=0)
        require_memory(grid_bytes(self.network.widths, opt.nodes, numba_threads(), hidden=hidden),
                       f"a grid of {opt.nodes} nodes per neuron on layers of up to {max(self.network.widths)} neurons")
        if self.network[-1].noise.is_deterministic:
            raise SingularDensityError(
                f"layer {network.depth - 1}, the last, has noise kind 'none': X_{network.depth} is a map of "
                f"X_{network.depth - 1} with no density on {network.widths[-1]} neurons for a grid to hold; give the "
                "output layer noise, or use method = 'qmc' (it gives the moments of a noiseless output)")
        self.steps, self.depth = network_steps(network), network.depth
        L = self.network.depth
        self.mass, self.lost, self.gap, self.qerr = np.zeros(L + 1), np.zeros(L + 1), np.zeros(L), np.zeros(L)
        self.kernel = [None] * L
        if input_law.is_atomic:
            self.points, self.weights, density = input_law.mean()[None, :], np.ones(1), None
            self.mass[0] = 1.0
        else:
            box0 = solver._box(input_law.box(opt.tail)) if boxes is None else np.asarray(boxes[0], dtype=float)
            # a uniform input is a constant on its box, cut at the box's ends: Gauss-Legendre nodes
            # integrate it (and the smooth kernels over it) spectrally, where the equispaced rule
            # meets the jumps at the ends (first order: its moments ~1 % off at 40 nodes)
            rule0 = "gauss_legendre" if isinstance(input_law, UniformInput) and is_auto(opt.domain) else opt.rule
            grid = TensorGrid.from_box(box0, opt.nodes, rule0)
            density = GridFunction(grid, input_law.pdf(grid.points))
            self.points, self.weights = grid.points, grid.weights
            self.mass[0] = density.integral()
            self.lost[0] = input_law.tail_mass(grid.box)
        self.densities, self.transitions = [density], []

    def _coefficients(self) -> np.ndarray:
        density = self.densities[-1]
        return self.weights * (np.ones(1) if density is None else density.values)

    def advance(self, n: int) -> dict:
        solver, layer, coeffs = self.solver, self.network[n], self._coefficients()
        mapped = layer.forward(self.points)
        box = (solver._target_box(layer, mapped, coeffs) if self.boxes is None
               else np.asarray(self.boxes[n + 1], float))
        target = TensorGrid.from_box(box, solver.options.nodes, solver.options.rule)
        t = assemble_transition(layer, self.points, self.weights, target, solver._algorithm)
        out = t.forward_sum(coeffs)
        rng = np.random.default_rng([12345, n])  # test functions of the duality check only
        self.gap[n] = _duality_gap(t, coeffs, out, rng)
        self.lost[n + 1] = float(coeffs @ (1.0 - t.inbox_mass))
        self._add(n, t, GridFunction(target, out))
        return {"box": target.box, "values": out, "kernel": t.algorithm, "duality_gap": self.gap[n],
                "lost_mass": self.lost[n + 1]}

    def restore(self, n: int, state: dict) -> None:
        opt, layer = self.solver.options, self.network[n]
        target = TensorGrid.from_box(state["box"], opt.nodes, opt.rule)
        t = assemble_transition(layer, self.points, self.weights, target, str(state["kernel"]))
        values = np.asarray(state["values"], dtype=np.float64)
        if values.shape != (target.size,):
            raise ValueError(f"{values.shape[0]} nodal values for a grid of {target.size} nodes")
        self.gap[n], self.lost[n + 1] = float(state["duality_gap"]), float(state["lost_mass"])
        self._add(n, t, GridFunction(target, values))

    def _add(self, n: int, t: GridTransition, density: GridFunction) -> None:
        self.mass[n + 1] = density.integral()
        self.qerr[n] = self.mass[n + 1] - (self.mass[n] - self.lost[n + 1])
        if self.solver.check_health:
            self.solver._check_health(self.steps[n].stop, density, self.lost[n + 1], self.network[n].n_out,
                                      self.qerr[n])
        self.densities.append(density)
        self.transitions.append(t)
        self.kernel[n] = t.algorithm
        self.points, self.weights = t.target.points, t.target.weights

    def finish(self, seconds: np.ndarray) -> ForwardSolution:
        L = self.network.depth
        diagnostics = {"mass": self.mass, "lost_mass": self.lost, "duality_gap": self.gap,
                       "quadrature_mass_error": self.qerr, "time_per_layer_s": np.asarray(seconds, dtype=float),
                       "kernel": np.array(self.kernel, dtype="S8"), "backend": self.solver.backend_note}
        if self.network is self.given:
            diagnostics["no_density"] = np.array([self.input_law.is_atomic] + [False] * L, dtype=np.int8)
            return ForwardSolution(self.network, self.input_law, self.densities, self.transitions, diagnostics)
        solution = ForwardSolution(self.network, self.input_law, self.densities, self.transitions, diagnostics,
                                   self.given)
        return replace(solution, diagnostics=_layer_diagnostics(solution))
