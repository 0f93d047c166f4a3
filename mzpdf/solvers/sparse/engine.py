"""Densities through layers of 2-10 neurons on sparse grids (SPEC 3.2).

``[solver] method = "sparse"`` (options in :class:`mzpdf.solvers.sparse.options.SparseGridOptions`).

One layer ``n -> n + 1`` (transition ``y = G(x) + xi``: a layer, or a run of
noiseless layers and the noisy one after it):

1. Atoms of the law before: a positive rule (:mod:`mzpdf.solvers.sparse.rules`) in
   its whitened coordinates, weighted by its density over the gaussian with
   its moments. Gauss-Hermite (gaussian noise, up to 4 neurons; enough
   points per neuron to resolve the kernel's width, from the spread of
   ``G`` against the noise), trapezoid with Richardson extrapolation
   (Laplace noise, up to 3 neurons: the kernel's kink), scrambled Sobol
   points beyond.
2. The law after is the mixture ``sum_j w_j rho(y - G(x_j))``
   (:class:`mzpdf.solvers.sparse.transfer.Mixture`): its mean and covariance are
   the layer's, and the layer's marginals are exact sums over it.
3. Its log-density, in coordinates standardized neuron by neuron, minus the
   gaussian with those moments is interpolated on a Leja sparse grid
   (:mod:`mzpdf.discretization.leja`; regular of ``level``, or adaptive to
   ``adaptive_tol``), and tilted by a quadratic so that the interpolated
   law keeps the exact mean and covariance (:class:`mzpdf.solvers.sparse.density.LogDensity`).
   That law gives the next layer's atoms. A layer of up to 3 neurons with
   Laplace noise skips this step: its atoms are the nodes of an
   axis-aligned lattice weighted by the mixture's own density, summed
   exactly at all nodes at once (:class:`mzpdf.solvers.sparse.density.LatticeDensity`;
   the interpolant of a Laplace layer's log-copula overshot between its
   points, leaving a 3-neuron net's marginals 5e-3 off).

Why (issue 26): the former method (log-densities on Clenshaw-Curtis grids
over +-5 whitened standard deviations, a Smolyak Gauss-Hermite rule per
grid point) left its means 20-50 standard errors off Monte Carlo on 8 tanh
neurons and its standard deviations 12-18 % off. A refinement study on the
first layer of that net (exact gaussian input) put the bias in the
interpolant, not the rule: 784 of its 849 points lay beyond 6 standard
deviations, where neither the rule (errors up to 3 in log) nor the density
matters, and the interpolant was 0.19 off in log (mean over the layer's own
samples) where the mass is; the per-point rule was within 0.01. Leja points
for the gaussian weight, coordinates standardized per neuron, the radial
clip and the moment tilt bring the same layer to 0.012 with 833 points,
and the standard deviations of the fourth layer within 0.3 % of Monte Carlo.

Errors (``/diagnostics``, per layer): ``transfer_error`` -- the largest L1
distance between the layer's marginals by its rule and by the rule's
companion; ``interpolation_error`` -- the same between the next layer's
marginals from this layer's interpolant and from the interpolant on a
coarser grid (level - 1): what the interpolation did downstream, at the
coarser level (an overestimate), or for a Laplace lattice the L1 gap
between its Richardson-combined and plain densities plus the mass its box
leaves out; ``error_estimate`` -- the layer's
``transfer_error`` plus the ``interpolation_error`` of every layer before
(a transfer does not increase an L1 distance): an estimate of the L1 error
of each layer's marginals; ``joint_error`` -- ``E|log p~ - log p|`` of the
interpolant against the mixture it interpolates (the joint density's
error, far larger than the marginals'; 0 for a lattice); ``mass`` -- the
interpolant's mass before the tilt (a lattice's trapezoid mass). A run
whose estimate exceeds ``solver.tol`` fails its accuracy checks (exit 3).

Scope, refused up front with the key named: uniform noise (with a bounded
activation the layer's density vanishes outside a bounded support, where
the log-density has no polynomial interpolant; grid, qmc and montecarlo
take it), a uniform input (likewise), a noiseless last layer.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..._threads import one_blas_thread
from ...discretization.leja import LejaGrid, adaptive_leja_grid
from ...discretization.sparse_grid import SparseGrid, adaptive_grid
from ...errors import MassLossWarning, NumericalHealthWarning
from ...network import InputLaw, Network
from ...options import is_auto
from ...results import DualPairing
from ..march import LayerMarch, march, network_steps
from .density import InputDensity, KernelDensity, LatticeDensity, LogDensity, MarginalReference
from .options import SparseGridOptions as SparseOptions
from .rules import AtomRule, gauss_rule, noise_rule, sobol_rule, trapezoid_rule
from .transfer import Mixture

__all__ = ["LejaFunction", "LogDensity", "PushForward", "SparseBackward", "SparseOptions", "SparseSolver",
           "SparseForward", "check_case"]

_CHUNK = 256  # points per vectorized block of the Koopman steps
GAUSS_MAX_DIM = 4  # Gauss-Hermite rules up to this many neurons, Sobol beyond
TRAPEZOID_MAX_DIM = 3  # trapezoid rules (Laplace noise) up to this many neurons
GAUSS_POINTS_PER_SPREAD = 13  # Gauss-Hermite points per neuron per unit of max sd(G_k) / noise scale
GAUSS_POINTS = (16, 48)  # bounds of the automatic Gauss-Hermite points per neuron
GAUSS_ATOMS = 24**4  # ... which are at least this many atoms' worth (48 per neuron up to 3 neurons, 24 at 4):
# on 4-neuron tanh nets (sigma_w 1, noise 0.3, seeds 0-2) 16 per neuron left the marginals 1.4e-4 to 4.6e-4
# (L1) from a 24-node tensor grid at any level, 24 per neuron 3.6e-5 to 7.1e-5
TRAPEZOID_STEP = 0.125  # lattice step (whitened units) of the trapezoid rules at spread 1
# The same (standardized units) of the lattices of Laplace layers (LatticeDensity) of 1, 2 and 3 neurons. Measured
# against 2^20-point conditional-density QMC on tanh nets (sigma_w 1, 3 layers): 3 neurons, scales 0.1-0.4,
# seeds 0-2: 6.5e-5 to 5.2e-4 in 8-24 s at 0.15 (0.125: 6.6e-5 in 31 s; 0.2: 4.7e-4; 0.25: 1.3e-3); 1 neuron
# (scale 0.25): 3.3e-3 at 0.15, 1.3e-3 at 0.06, 2.3e-4 at 0.02 (0.01 s); 2 neurons: 9.1e-4 at 0.15, 2.4e-4 at
# 0.06 (0.2 s), 8.8e-5 at 0.02 (2 s)
LATTICE_STEPS = (0.02, 0.04, 0.15)
ERROR_POINTS = 7  # log2 of the test points behind joint_error
GAP_POINTS = 81  # abscissae per neuron of the marginal gaps behind the error estimates
SLOPE_ATOMS = 4096  # atoms sampled for the gradients behind the cells' smoothing


def unsupported(network: Network, input_law: InputLaw) -> tuple | None:
    """What of ``network`` and ``input_law`` the sparse method cannot take:
    ``(n, rule, value)`` for layer ``n``'s noise (``n`` None: the input law),
    or None."""
    for n, layer in enumerate(network):
        if layer.noise.kind == "uniform":
            return (n, "must not be 'uniform' (with a bounded activation the layer's density vanishes outside a "
                    "bounded support, where its logarithm, which the method interpolates, is -inf)", "uniform")
    if network.depth and network[-1].noise.is_deterministic:
        return network.depth - 1, "must not be 'none' on the last layer (the output would be a map with no density)", \
            "none"
    if input_law.kind not in ("gaussian", "mixture", "point"):
        return None, "must be 'gaussian', 'mixture' or 'point' (a uniform input has no log-density outside its " \
            "box)", input_law.kind
    return None


def check_case(network: Network, input_law: InputLaw) -> None:
    """Raise a ValueError saying what the sparse method cannot take."""
    problem = unsupported(network, input_law)
    if problem is not None:
        n, rule, value = problem
        what = "the input law's kind" if n is None else f"layer {n}'s noise kind"
        raise ValueError(f"{what} {rule}, got {value!r}")


def joint_error(law: LogDensity, mixture: Mixture) -> float:
    """``E_p |log p~ - log p|``, ``p~`` the (tilted) interpolated law and
    ``p`` the mixture it interpolates (for small errors, the L1 distance of
    the two joint densities): by ``ERROR_POINTS`` scrambled Sobol points of
    the gaussian with the layer's moments, importance-weighted by ``p~``."""
    x, w = law.atoms(sobol_rule(law.dim, ERROR_POINTS))
    return float(w @ np.abs(law.log_pdf(x) - mixture.log_pdf(x)))


def marginal_gap(a: Mixture, b: Mixture, mean: np.ndarray, sd: np.ndarray) -> float:
    """The largest L1 distance between the marginals of ``a`` and ``b``
    (trapezoid on ``GAP_POINTS`` abscissae over mean +- 6 sd per neuron)."""
    gap = 0.0
    for k in range(mean.size):
        x = np.linspace(mean[k] - 6.0 * sd[k], mean[k] + 6.0 * sd[k], GAP_POINTS)
        gap = max(gap, float(np.trapezoid(np.abs(a.marginal(k, x) - b.marginal(k, x)), x)))
    return gap


def transfer_error(mixture: Mixture, mean: np.ndarray, sd: np.ndarray) -> float:
    """The marginal gap between the transfer by its rule and by the rule's
    companion (for a Richardson pair: between the extrapolated and the plain
    sum), an estimate of the rule's error in the layer's marginals (0
    without a companion)."""
    if mixture.coarse is None:
        return 0.0
    fine = Mixture(mixture.centres, mixture.weights, mixture.noise)
    gap = marginal_gap(fine, mixture.coarse, mean, sd)
    return gap / 3.0 if mixture.richardson else gap  # (4 fine - coarse) / 3 - fine = (fine - coarse) / 3


class PushForward:
    """A layer inside a run of noiseless layers: the image of the law before
    the run under the layers so far; moments only (it has no density)."""

    def __init__(self, mean, cov, support):
        self.mean, self.cov, self.support = mean, cov, support
        self.chol = None

    @property
    def dim(self) -> int:
        return self.mean.size

    def moments(self):
        return 1.0, self.mean.copy(), self.cov.copy()


@dataclass
class SparseForward:
    """The law of every layer (``laws[0]`` is ``None`` for a point input; a
    layer inside a run of noiseless layers is a :class:`PushForward`)."""

    network: Network
    input_law: InputLaw
    laws: list
    diagnostics: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return len(self.laws) - 1


class SparseSolver:
    """Forward (and backward) solves on sparse grids; ``options`` is a
    :class:`mzpdf.solvers.sparse.options.SparseGridOptions`."""

    def __init__(self, options: SparseOptions | None = None):
        self.options = options or SparseOptions()

    # -- rules ------------------------------------------------------------------------------------
    def moment_rule(self, law) -> AtomRule:
        """The rule behind the tilt and the expectations of ``law``: the
        transition rule of its own noise kind at spread 1 (a Laplace layer's
        law has the kernel's sharp features: Gauss-Hermite rules would
        misplace its moments)."""
        return self.transition_rule(law.dim, getattr(law, "noise_kind", "gaussian"), 1.0)

    def transition_rule(self, dim: int, noise_kind: str, spread: float) -> AtomRule:
        """The rule for the atoms of a law of ``dim`` neurons feeding a
        layer with noise of ``noise_kind``; ``spread``: max_k sd(G_k(X)) / noise scale_k."""
        opt = self.options
        kind = opt.quadrature
        if is_auto(kind):
            if noise_kind == "laplace":
                kind = "trapezoid" if dim <= TRAPEZOID_MAX_DIM else "sobol"
            else:
                kind = "gauss" if dim <= GAUSS_MAX_DIM else "sobol"
        if kind == "gauss":
            m = opt.quad_points or int(np.clip(max(np.ceil(GAUSS_POINTS_PER_SPREAD * max(spread, 1.0)),
                                                   np.floor(GAUSS_ATOMS ** (1.0 / dim) + 1e-9)), *GAUSS_POINTS))
            return gauss_rule(dim, m)
        if kind == "trapezoid":
            base = LATTICE_STEPS[dim - 1] if noise_kind == "laplace" and dim <= TRAPEZOID_MAX_DIM else TRAPEZOID_STEP
            h = opt.trapezoid_step or base / max(spread, 1.0) ** 0.5
            return trapezoid_rule(dim, float(h), float(np.sqrt(2.0 * 21.0 + dim)))  # weights above ~1e-10
        return sobol_rule(dim, opt.sobol_points)

    def radius(self, dim: int) -> float:
        """Mahalanobis radius beyond which log-densities continue with gaussian tails."""
        if self.options.box is not None:
            return float(self.options.box)
        from scipy.stats import chi2

        return float(np.sqrt(chi2.isf(1e-5, dim)))

    # -- one layer ----------------------------------------------------------------------------------
    def _mixture(self, prev, layer, companion: bool = True) -> Mixture:
        """The law after ``layer`` as a mixture over ``prev``'s atoms (with
        the rule's companion unless ``companion`` is False)."""
        rule0 = self.moment_rule(prev)
        if isinstance(prev, LatticeDensity):  # the spread needs no fine lattice
            rule0 = trapezoid_rule(prev.dim, 2.0 * LATTICE_STEPS[prev.dim - 1], 1.0)
        x0, w0 = prev.atoms(rule0)
        g0 = layer.forward(x0)
        sd_g = np.sqrt(np.maximum(w0 @ (g0 - w0 @ g0) ** 2, 0.0))
        spread = float(np.max(sd_g / layer.noise.scale))
        rule = self.transition_rule(prev.dim, layer.noise.kind, spread)
        x, w = prev.atoms(rule)
        if isinstance(prev, LatticeDensity) and companion:
            prev.transition_step = rule.step
        coarse = None
        if companion and rule.coarse is not None:
            xc, wc = prev.atoms(rule.coarse)
            coarse = Mixture(layer.forward(xc), wc, layer.noise)
        return Mixture(layer.forward(x), w, layer.noise, coarse, rule.richardson and coarse is not None)

    def _grids(self, dim: int, mixture: Mixture, mean, sd):
        """The layer's grid with the log-density there, and a coarser grid
        (level - 1, or an adaptive tolerance 8x looser) behind the error
        estimate; ``capped``: the adaptive grid hit ``max_points``."""
        opt = self.options
        level = opt.level_for(dim)
        if opt.adaptive_tol > 0:
            known: dict = {}

            def fn(idx):  # the mixture at the points of the multi-indices, each computed once
                keys = [tuple(r) for r in idx]
                todo = [i for i, key in enumerate(keys) if key not in known]
                if todo:
                    for i, v in zip(todo, mixture.log_pdf_indices(mean, sd, idx[todo])):
                        known[keys[i]] = v
                return np.array([known[key] for key in keys])

            res = adaptive_leja_grid(fn, dim, min(level, 2), opt.adaptive_tol, opt.max_points)
            coarse = adaptive_leja_grid(fn, dim, min(level, 2), 8.0 * opt.adaptive_tol, opt.max_points)
            return res.grid, res.values, coarse.grid, coarse.values, res.capped
        grid = LejaGrid.regular(dim, level)
        values = mixture.log_pdf_indices(mean, sd, grid.indices)
        coarse = LejaGrid.regular(dim, max(level - 1, 0))
        pos = {tuple(r): i for i, r in enumerate(grid.indices)}
        return grid, values, coarse, values[[pos[tuple(r)] for r in coarse.indices]], False

    def _on_lattice(self, mixture: Mixture) -> bool:
        """Whether the law of ``mixture`` is kept as a :class:`LatticeDensity`
        (Laplace noise, trapezoid rules: no interpolant)."""
        kind = self.options.quadrature
        return (mixture.noise.kind == "laplace" and mixture.dim <= TRAPEZOID_MAX_DIM
                and (is_auto(kind) or kind == "trapezoid"))

    def _law(self, mixture: Mixture) -> tuple[LogDensity, LogDensity, dict]:
        """The interpolated law of a mixture, the same on the coarser grid, and diagnostics."""
        if self._on_lattice(mixture):
            return LatticeDensity(mixture), None, {"mass": 1.0, "points": 0, "capped": False, "joint_error": 0.0}
        mean, cov = mixture.moments
        sd = np.sqrt(np.diag(cov))
        dim = mean.size
        radius = self.radius(dim)
        grid, values, coarse_grid, coarse_values, capped = self._grids(dim, mixture, mean, sd)
        kind = self.options.reference
        if is_auto(kind):
            kind = "marginals" if mixture.noise.kind == "laplace" else "gaussian"
        reference = MarginalReference.of(mixture, mean, sd) if kind == "marginals" else None
        law = LogDensity.from_log_values(mean, cov, grid, values, radius, mixture, reference)
        coarse = LogDensity.from_log_values(mean, cov, coarse_grid, coarse_values, radius, reference=reference)
        coarse.noise_kind = law.noise_kind
        rule = self.moment_rule(law)
        mass = law.fit_moments(rule)
        coarse.fit_moments(rule)
        return law, coarse, {"mass": mass, "points": grid.size, "capped": capped,
                             "joint_error": joint_error(law, mixture)}

    # -- the forward solve ----------------------------------------------------------------------------
    def propagate(self, network: Network, input_law: InputLaw,
                  progress: Callable[[int, int], None] | None = None) -> SparseForward:
        """The law of every layer (module doc; :class:`SparseMarch` run to
        its end by the one layer loop, :func:`mzpdf.solvers.march.march`).
        Diagnostics, arrays over layers ``0..L``: ``mass``, ``points`` (grid
        points), ``quadrature_points`` (atoms of the rule into each layer),
        ``transfer_error``, ``interpolation_error``, ``joint_error``,
        ``error_estimate``, ``lost_mass`` (0: the tails are continued, not
        cut), ``no_density`` (1 inside a run of noiseless layers);
        ``time_per_layer_s`` (L,) and ``duality_gap`` (L,: NaN without a
        backward solve)."""
        return march(self.march(network, input_law), progress)[0]

    def march(self, network: Network, input_law: InputLaw) -> "SparseMarch":
        """The forward solve of ``network`` as a :class:`SparseMarch` (not yet run)."""
        return SparseMarch(self, network, input_law)

    def _push_forwards(self, network, input_law, prev, start, stop, laws, diag):
        """The laws of the noiseless layers ``start + 1 .. stop - 1`` of a run
        (moments of the image of ``prev``'s atoms)."""
        if stop - start == 1:
            return
        if prev is None:
            x, w = input_law.mean()[None, :], np.ones(1)
        else:
            x, w = prev.atoms(self.moment_rule(prev))
        for n in range(start, stop - 1):
            x = network.layers[n].forward(x)
            mean = w @ x
            d = x - mean
            laws.append(PushForward(mean, (d * w[:, None]).T @ d, np.column_stack([x.min(axis=0), x.max(axis=0)])))
            diag["no_density"][n + 1] = 1
            diag["mass"][n + 1] = diag["mass"][start]

    def _warn(self, k: int, law: LogDensity, info: dict, last: bool) -> None:
        if isinstance(law, LatticeDensity):  # no interpolant (its lattice's mass: _warn_lattice)
            return
        if info["capped"]:
            warnings.warn(f"layer {k}: the adaptive grid stopped at solver.max_points = {self.options.max_points} "
                          "with its indicator above solver.adaptive_tol", NumericalHealthWarning, stacklevel=3)
        if not np.isfinite(law.values).all():
            warnings.warn(f"layer {k}: the log-density holds NaN or Inf (use method 'grid')",
                          NumericalHealthWarning, stacklevel=3)
        elif abs(info["mass"] - 1.0) > 1e-2 and not last:  # the last interpolant feeds no stored number
            warnings.warn(f"layer {k}: the interpolated density's mass is {info['mass']:.4g} before its tilt "
                          "(raise solver.level)", MassLossWarning, stacklevel=3)

    @staticmethod
    def _warn_lattice(k: int, mass: float) -> None:
        if abs(mass - 1.0) > 1e-2:
            warnings.warn(f"layer {k}: the Laplace lattice's mass is {mass:.4g} (lower solver.trapezoid_step)",
                          MassLossWarning, stacklevel=4)

    def _restore(self, state: dict, prev, layer, input_law):
        """A layer (and its coarse companion) rebuilt from its checkpoint
        state; its source mixture is recomputed from ``prev``."""
        if prev is None:
            return KernelDensity(layer.forward(input_law.mean()[None, :])[0], layer.noise), None
        if "values" not in state:  # a lattice law: its mixture is all it is
            return LatticeDensity(self._mixture(prev, layer)), None
        coarse = LogDensity.from_state({key[len("coarse_"):]: value for key, value in state.items()
                                        if key.startswith("coarse_")})
        return LogDensity.from_state(state, self._mixture(prev, layer)), coarse

    # -- the backward solve ---------------------------------------------------------------------------
    def pullback(self, solution: SparseForward, observable: Callable[[np.ndarray], np.ndarray],
                 points: np.ndarray | None = None) -> "SparseBackward":
        """Koopman operators on sparse grids: ``q_L = g``, and ``q_n`` by its
        values ``q_n(x_i) = E[q_{n+1}(F(x_i) + xi)]`` (a Smolyak rule over the
        noise: Gauss-Hermite, or split Gauss-Laguerre for Laplace noise, of
        ``quad_level``) at the points of a Clenshaw-Curtis grid over
        ``[-2R, 2R]^N`` in layer n's whitened coordinates (``R``:
        :meth:`radius`) -- regular of ``level``, or adaptive to
        ``adaptive_tol`` times ``|E g| + sd(g)``. ``q_0`` also at ``points``.
        The two directions are discretized differently, so duality holds
        only up to the discretization error; the gap is reported per layer."""
        opt = self.options
        laws, net = solution.laws, solution.network
        if any(isinstance(law, PushForward) for law in laws):
            raise ValueError("the sparse backward solve needs every layer's law: not on a network with noiseless "
                             "layers (the grid pulls back observables there)")
        L = net.depth
        x, w = laws[L].atoms(self.moment_rule(laws[L]))
        gx = np.asarray(observable(x), dtype=np.float64)
        mean_forward = float(w @ gx)
        scale = abs(mean_forward) + np.sqrt(max(float(w @ gx ** 2) - mean_forward ** 2, 0.0))
        functions: list = [None] * (L + 1)
        functions[L] = observable
        for n in range(L - 1, -1, -1):
            law = laws[n]
            if law is None:
                break
            layer, q_next = net.layers[n], functions[n + 1]
            R = 2.0 * self.radius(law.dim)

            def q_at(u, law=law, layer=layer, q_next=q_next):
                return self._koopman(layer, q_next, law.mean + u @ law.chol.T)

            def step(x, layer=layer, q_next=getattr(q_next, "clipped", q_next)):
                return self._koopman(layer, q_next, x)

            box = np.tile([-R, R], (law.dim, 1))
            level = min(opt.level_for(law.dim), 8)
            if opt.adaptive_tol > 0:
                res = adaptive_grid(q_at, box, "cc", level=2, tol=opt.adaptive_tol * scale,
                                    max_points=opt.max_points, indicator="max")
                grid, values = res.grid, res.values
            else:
                grid = SparseGrid.regular(box, level, "cc")
                values = q_at(grid.points)
            functions[n] = LejaFunction(law, grid, values, R, step)
        q0 = None
        if points is not None:
            points = np.atleast_2d(np.asarray(points, dtype=np.float64))
            q0 = self._koopman(net.layers[0], functions[1], points)
        pairings = np.empty(L + 1)
        for n, law in enumerate(laws):
            if law is None:
                pairings[n] = self._koopman(net.layers[0], functions[1], solution.input_law.mean()[None, :])[0]
            else:
                x, w = law.atoms(self.moment_rule(law))
                pairings[n] = w @ functions[n](x)
        gap = np.abs(pairings[:L] - mean_forward) / max(scale, 1e-300)
        return SparseBackward(points, q0, float(pairings[0]), mean_forward, pairings, gap, functions)

    def _koopman(self, layer, q: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
        """``E[q(F(x) + xi)]`` at the points ``x``."""
        v, w = noise_rule(layer.noise, self.options.quad_level + 1)
        out = np.empty(x.shape[0])
        for s in range(0, x.shape[0], _CHUNK):
            y = layer.forward(x[s: s + _CHUNK])[:, None, :] + v[None, :, :]
            out[s: s + _CHUNK] = np.asarray(q(y.reshape(-1, layer.n_out))).reshape(-1, v.shape[0]) @ w
        return out


class LejaFunction:
    """A function of one layer's neurons by its values on a Clenshaw-Curtis
    sparse grid over ``[-R, R]^N`` in that layer's whitened coordinates;
    beyond the box, by ``outside`` (the Koopman step from the next layer's
    function, held constant beyond its own box: :meth:`clipped`; an
    extrapolated polynomial would be wild, and a constant continuation turns
    an affine ``q`` into a wrong one)."""

    def __init__(self, law, grid: SparseGrid, values: np.ndarray, radius: float,
                 outside: Callable[[np.ndarray], np.ndarray]):
        self.law, self.grid, self.radius, self.outside = law, grid, radius, outside
        self.values = np.asarray(values, dtype=np.float64)
        self.alpha = grid.hierarchize(self.values)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        u = self.law.whiten(x) / self.radius
        inside = np.all(np.abs(u) <= 1.0, axis=1)
        out = np.empty(u.shape[0])
        out[inside] = self.grid.evaluate_surpluses(self.alpha, u[inside])
        if not inside.all():
            out[~inside] = self.outside(x[~inside])
        return out

    def clipped(self, x: np.ndarray) -> np.ndarray:
        """The interpolant, held constant beyond the box."""
        return self.grid.evaluate_surpluses(self.alpha, np.clip(self.law.whiten(x) / self.radius, -1.0, 1.0))


@dataclass
class SparseBackward(DualPairing):
    """Result of :meth:`SparseSolver.pullback`.

    functions : list
        ``q_n = E[g(X_L) | X_n]`` for n = 0..L: :class:`LejaFunction` for
        n < L (``None`` at n = 0 for a point input), ``g`` itself at n = L.
    points, q0 : arrays or None
        ``q_0`` at ``points`` (P, N_0), from ``q_1`` by one Koopman step.
    mean : float
        ``E[g(X_L)]`` from the backward side: ``E_{p_0}[q_0]``.
    mean_forward : float
        ``E_{p_L}[g]`` by the last layer's rule.
    pairings : (L + 1,) array
        ``E_{p_n}[q_n]`` by layer n's rule: all equal for an exact discretization (duality).
    duality_gap : (L,) array
        ``|pairings[n] - mean_forward| / (|mean_forward| + sd(g))``, n < L.
    """

    functions: list = field(default_factory=list)


_STEP_DIAGNOSTICS = ("mass", "points", "quadrature_points", "interpolation_error", "transfer_error", "joint_error",
                     "error_estimate")


class SparseMarch(LayerMarch):
    """One forward solve on sparse grids, a step at a time (module
    :mod:`mzpdf.solvers.march`): a step is a run of noiseless layers (their
    laws the push-forwards of the atoms before them) and the noisy layer after
    it, whose law is interpolated (or kept on a lattice). A step's checkpoint
    state is its interpolant and that of its coarse companion; restoring
    rebuilds the step's mixture from the law before it."""

    def __init__(self, solver: SparseSolver, network: Network, input_law: InputLaw):
        check_case(network, input_law)
        self.solver, self.network, self.input_law = solver, network, input_law
        self.steps, self.depth = network_steps(network), network.depth
        self.layers = list(network.collapsed())
        L = network.depth
        diag = {name: np.zeros(L + 1) for name in _STEP_DIAGNOSTICS}
        diag.update({"mass": np.ones(L + 1), "lost_mass": np.zeros(L + 1), "no_density": np.zeros(L + 1, dtype=np.int8),
                     "duality_gap": np.full(L, np.nan)})
        for name in ("points", "quadrature_points"):
            diag[name] = np.zeros(L + 1, dtype=np.int64)
        diag["no_density"][0] = input_law.is_atomic
        self.diag = diag
        with self.context():
            self.laws: list = [None if input_law.is_atomic else InputDensity(input_law)]
        self.error, self.prev_coarse = 0.0, None

    def context(self):
        return one_blas_thread()  # small products (the tilt's normal equations): a thread team costs more

    def _begin(self, k: int):
        """The law before step ``k``, after the push-forwards of its noiseless layers."""
        step = self.steps[k]
        prev = self.laws[step.start]
        self.solver._push_forwards(self.network, self.input_law, prev, step.start, step.stop, self.laws, self.diag)
        return step, prev, self.layers[k]

    def advance(self, k: int) -> dict:
        solver, diag = self.solver, self.diag
        step, prev, layer = self._begin(k)
        start, stop = step.start, step.stop
        if prev is None:  # a point input: the law after the first transition is the noise around G(x0)
            law, self.prev_coarse = KernelDensity(layer.forward(self.input_law.mean()[None, :])[0], layer.noise), None
        else:
            mixture = solver._mixture(prev, layer)
            mean, cov = mixture.moments
            sd = np.sqrt(np.diag(cov))
            transfer = transfer_error(mixture, mean, sd)
            if self.prev_coarse is not None:  # what the interpolation of the law before did to this layer
                effect = marginal_gap(mixture, solver._mixture(self.prev_coarse, layer, False), mean, sd)
                diag["interpolation_error"][start] = effect
                self.error += effect
            elif isinstance(prev, LatticeDensity):  # what its lattice carried into this layer
                h = prev.transition_step
                diag["interpolation_error"][start] = prev.lattice_error[h]
                diag["mass"][start] = prev.lattice(h)[2]
                self.error += prev.lattice_error[h]
                solver._warn_lattice(start, diag["mass"][start])
            law, self.prev_coarse, info = solver._law(mixture)
            diag["quadrature_points"][stop] = mixture.centres.shape[0]
            diag["transfer_error"][stop] = transfer
            diag["error_estimate"][stop] = self.error + transfer
            for name in ("mass", "points", "joint_error"):
                diag[name][stop] = info[name]
            solver._warn(stop, law, info, stop == self.depth)
        self.laws.append(law)
        state = {"error_sum": self.error, "prev_interpolation_error": diag["interpolation_error"][start],
                 "prev_mass": diag["mass"][start]}
        state.update({name: diag[name][stop] for name in _STEP_DIAGNOSTICS})
        if isinstance(law, LogDensity):
            state.update(law.state())
            state.update({f"coarse_{key}": value for key, value in self.prev_coarse.state().items()})
        return state

    def restore(self, k: int, state: dict) -> None:
        diag = self.diag
        step, prev, layer = self._begin(k)
        law, self.prev_coarse = self.solver._restore(state, prev, layer, self.input_law)
        for name in _STEP_DIAGNOSTICS:
            diag[name][step.stop] = state[name]
        diag["interpolation_error"][step.start] = state["prev_interpolation_error"]
        diag["mass"][step.start] = state["prev_mass"]  # a lattice's, known one layer on
        self.error = float(state["error_sum"])
        self.laws.append(law)

    def finish(self, seconds: np.ndarray) -> SparseForward:
        self.diag["time_per_layer_s"] = np.zeros(self.depth)
        self.diag["time_per_layer_s"][[step.stop - 1 for step in self.steps]] = seconds
        return SparseForward(self.network, self.input_law, self.laws, self.diag)
