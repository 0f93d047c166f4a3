"""Densities through dense layers in tensor-train format (SPEC 3.3).

The state of layer ``n >= 1`` is the density of its *pre-activation*
``Z_n = W_{n-1} X_{n-1} + b_{n-1}`` as a :class:`TTFunction` on a tensor grid
(one 1-D rule per neuron). The layer's own law then follows exactly, neuron by
neuron: ``X_n = sigma(Z_n) + xi_n`` has the density

    p_X(x) = sum_i  prod_k  w_{k,i_k} rho_k(x_k - sigma(z_{k,i_k}))  p_Z(z_i),

a contraction of the train with one kernel row per core (separable noise: the
noise step is a 1-D operation per core, with no interpolation error). One layer
step ``p_{Z_n} -> p_{Z_{n+1}}`` is the change of variables
``u = T x + c`` with ``T = [W; V]`` (``V`` an orthonormal basis of the null
space of ``W``, empty for a square ``W``):

    p_U(u) = p_X(T^{-1}(u - c)) / |det T|,

built by cross approximation (:func:`mzpdf.discretization.cross.cross`) on a grid whose
box comes from the exact first two moments of ``U`` (gaussian tails of
``tail`` mass per side, intersected with the interval image of ``X``'s box);
the ``V`` coordinates are then integrated out (a narrowing layer) and the
train is rounded to ``tol``. Cost per layer: ``O(N n r^2)`` evaluations of
``p_X``, each ``O(N n r^2)`` -- polynomial in the width ``N``.

Widening and residual layers have no pre-activation change of variables;
they are stepped by quadrature in the layer's own coordinates
(:mod:`mzpdf.solvers.tt.quadrature`), which limits their input width to
``MAX_QUADRATURE_DIM``. So is a run of noiseless layers with the noisy
layer after it (one map ``G``, :meth:`mzpdf.network.Network.collapsed`, as
on the grid): the layers inside the run get the moments of ``G``'s partial
maps by the same quadrature (``TTForward.pushforwards``) and no density.
What the method cannot do is refused up front (:func:`unsupported`): a
noiseless last layer, rank-deficient weights of a square or narrowing dense
layer, widening, residual or noiseless layers of too many inputs; and
(:meth:`mzpdf.solvers.tt.plugin.TT._unresolvable`) dense layers whose
pre-activation density is too thin for the grid.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ... import _special as special
from ...discretization.cross import cross
from ...discretization.rules import make_rule
from ...discretization.tensor_train import TTFunction
from ...errors import MassLossWarning, NumericalHealthWarning, TTTruncationWarning
from ...network import ComposedLayer, InputLaw, Network
from ..march import LayerMarch, march, network_steps
from .backward import pullback
from .laws import WEIGHT_FLOOR, InputXLaw, NoisyXLaw, StepFrame, XLaw, pushforward_moments, typical_indices
from .quadrature import MAX_QUADRATURE_DIM, TrainXLaw, is_quadrature_layer, quadrature_frame, quadrature_step

__all__ = ["TTSolver", "TTForward", "StepFrame", "check_network", "unsupported"]

CROSS_ERROR_FACTOR = 100.0  # a cross error estimate above this many solver.tol fails the run's accuracy checks
_MASS_LOSS_FACTOR = 100.0  # as in the grid solver: warn when lost mass > 100 x tail per neuron


def unsupported(network: Network) -> tuple | None:
    """The first layer of ``network`` the TT method cannot take:
    ``(n, part, rule, value)`` with ``part`` the layer's ``kind``, ``noise``
    or ``weights``, or None."""
    composed = {start for start, stop in network.segments() if stop - start > 1}  # first layers of noiseless runs
    for n, layer in enumerate(network):
        if layer.kind not in ("dense", "residual"):
            return n, "kind", "must be 'dense' or 'residual'", layer.kind
        if layer.noise.is_deterministic and n == network.depth - 1:
            return (n, "noise", f"must not be 'none' on the last layer: X_{n + 1} is a map of X_{n} with no density "
                    f"on its {layer.n_out} neurons (give the output layer noise, or use qmc, which gives the "
                    "moments of a noiseless output)", "none")
        if n in composed and layer.n_in > MAX_QUADRATURE_DIM:
            return (n, "weights", f"must have at most {MAX_QUADRATURE_DIM} inputs for a noiseless layer (a run of "
                    "noiseless layers and the noisy layer after it is one map, stepped by quadrature over the full "
                    "grid of its inputs, m^n_in nodes)", list(layer.weights.shape))
        if layer.noise.is_deterministic or any(a < n < b for a, b in network.segments()):
            continue  # inside a composed map: stepped with it
        if is_quadrature_layer(layer):
            if layer.n_in > MAX_QUADRATURE_DIM:
                what = "a residual" if layer.kind == "residual" else "a widening"
                return (n, "weights", f"must have at most {MAX_QUADRATURE_DIM} inputs for {what} layer (it is "
                        "stepped by quadrature over the full grid of its inputs, m^n_in nodes)",
                        list(layer.weights.shape))
            continue
        s = np.linalg.svd(layer.weights, compute_uv=False)
        if s[-1] <= 1e-12 * s[0]:
            return (n, "weights", "must have full row rank (the density of W x + b is singular)",
                    f"condition number {s[0] / max(s[-1], 1e-300):.3g}")
    return None


def check_network(network: Network) -> None:
    """Raise a ValueError saying which layer the TT method cannot take."""
    problem = unsupported(network)
    if problem is not None:
        n, part, rule, value = problem
        raise ValueError(f"layer {n}'s {part} {rule}, got {value!r}")


def feature_widths(cov_u: np.ndarray, layer, n_out: int) -> np.ndarray:
    """The feature width along each axis of a pre-activation grid: the
    conditional standard deviation ``1 / sqrt((C^-1)_kk)`` of the variable
    given the others and, for the ``n_out`` kept neurons, at most the noise
    scale seen through the steepest activation slope."""
    width = np.sqrt(1.0 / np.diag(np.linalg.inv(cov_u)))
    noise = layer.noise.scale / 1.13  # 1.13 = 2/sqrt(pi), the steepest slope of the activations
    width[:n_out] = np.minimum(width[:n_out], noise)
    return width


def nodes_needed(lo, hi, width, tol: float) -> np.ndarray:
    """Nodes on ``[lo, hi]`` whose spacing resolves a feature of width
    ``width`` with ``c(tol) = sqrt(2 ln(1/tol)) / pi`` points per width (see
    :meth:`TTSolver.node_counts`)."""
    per_width = max(1.0, np.sqrt(2.0 * np.log(1.0 / tol)) / np.pi)
    return np.ceil((np.asarray(hi) - lo) / width * per_width).astype(np.int64) + 1


def predicted_nodes(network: Network, input_law: InputLaw, options, samples: int = 4096, seed: int = 0) -> list:
    """``(layer index, nodes)`` for every pre-activation step of ``network``:
    the most nodes any variable of that step's grid needs
    (:meth:`TTSolver.node_counts` before its cap), from the moments of
    ``samples`` Monte Carlo paths instead of the trains (a cheap forecast,
    within a few per cent, for refusing a net whose pre-activation densities
    the grid cannot resolve before spending minutes on it). Widening and
    residual layers (stepped by quadrature) are skipped."""
    rng = np.random.default_rng(seed)
    x, out = input_law.sample(rng, samples), []
    starts = [start for start, _ in network.segments()]  # the given layer each transition starts at
    for n, layer in zip(starts, network.collapsed()):
        if not is_quadrature_layer(layer) and not (n == 0 and input_law.is_atomic):
            W = layer.weights
            T = np.vstack([W, np.linalg.svd(W)[2][W.shape[0]:]]) if W.shape[0] < W.shape[1] else W
            cov_u = np.atleast_2d(np.cov(x @ T.T, rowvar=False))
            radius = -special.ndtri(options.tail) * np.sqrt(np.diag(cov_u))
            need = nodes_needed(-radius, radius, feature_widths(cov_u, layer, W.shape[0]), options.tol)
            out.append((n, int(need.max())))
        x = layer.forward(x)
        if not layer.noise.is_deterministic:
            x = x + layer.noise.sample(rng, samples)
    return out


# -- solution ----------------------------------------------------------------------------

_LAYER_DIAGNOSTICS = ("mass", "lost_mass", "cross_error", "rounding_error", "evaluations", "sweeps",
                      "tt_max_rank")


@dataclass
class TTForward:
    """Densities of every layer of a TT solve.

    ``laws[n]`` is the law of ``X_n`` (``n = 0`` the input); ``trains[n]`` the
    pre-activation density of layer ``n >= 1`` as a TTFunction, or for a
    layer stepped by quadrature (``steps[n - 1] == "quadrature"``, a widening
    or residual layer) the density of ``X_n`` itself (``None`` for the input
    and for the atom after a point input). ``diagnostics`` holds per-layer
    arrays (see :meth:`TTSolver.propagate`).
    """

    network: Network
    input_law: InputLaw
    laws: list
    trains: list
    diagnostics: dict = field(default_factory=dict)
    frames: list = field(default_factory=list)  # StepFrame of each pre-activation step (else None)
    steps: list = field(default_factory=list)  # per layer: "preactivation", "quadrature" or "atom"
    given: Network | None = None  # the network as given when it has noiseless layers (``network`` is collapsed)
    pushforwards: dict = field(default_factory=dict)  # given layer inside a noiseless run -> (mass, mean, cov, box)

    @property
    def depth(self) -> int:
        return len(self.laws) - 1


class TTSolver:
    """Forward solve in tensor-train format; ``options`` is a TTOptions."""

    def __init__(self, options):
        self.options = options

    def propagate(self, network: Network, input_law: InputLaw,
                  progress: Callable[[int, int], None] | None = None) -> TTForward:
        """Pre-activation densities of every layer, by cross approximation
        (:class:`TTMarch` run to its end by the one layer loop,
        :func:`mzpdf.solvers.march.march`).

        Diagnostics (arrays over layers ``0..L``, entry 0 for the input):
        ``mass`` (quadrature mass of the train before it is normalized to
        the previous layer's mass, which the stored train then has: its
        distance to 1 is the layer's mass error, from the box tails and the
        approximation), ``lost_mass`` (previous mass minus ``mass`` when
        positive),
        ``tt_max_rank``, ``tt_ranks`` ``(L+1, max width + 1)`` padded with 0,
        ``cross_error`` (relative L2 error of the cross on 512 points drawn
        from the moment-matched gaussian, of the density divided by the
        square root of that gaussian's marginals), ``rounding_error`` (relative
        Frobenius error of the final rounding), ``evaluations`` (density
        evaluations of the cross), ``sweeps``, ``time_per_layer_s``;
        ``duality_gap`` is NaN (:meth:`pullback` computes it).
        """
        return march(self.march(network, input_law, getattr(progress, "note", None)), progress)[0]

    def march(self, network: Network, input_law: InputLaw, note=None) -> "TTMarch":
        """The forward solve of ``network`` as a :class:`TTMarch` (not yet
        run); ``note(text)`` hears of each cross sweep."""
        return TTMarch(self, network, input_law, note)

    def pullback(self, solution: TTForward, observable, points: np.ndarray | None = None, progress=None):
        """Conditional expectations ``q_n = E[g(X_L) | X_n]`` of an affine
        observable on the grids of ``solution``, ``q_0`` at ``points``, and the
        duality gap of every layer: see :mod:`mzpdf.solvers.tt.backward`. Not for a
        net with widening or residual layers (stepped by quadrature: the
        backward solve works in pre-activation coordinates), which raises
        a ValueError."""
        quadrature = [n for n, layer in enumerate(solution.network) if is_quadrature_layer(layer)]
        if quadrature:
            raise ValueError(f"the TT backward solve works in pre-activation coordinates: not on a net with "
                             f"widening or residual layers (layer {quadrature[0]}; grid, qmc and sparse pull back "
                             "observables there)")

        return pullback(self, solution, observable, points, progress)

    def _nodes(self, k: int, lo, hi, cov_u, layer, n_out: int) -> np.ndarray:
        """Nodes per variable of the pre-activation grid: the feature width
        along each axis is the conditional standard deviation ``1 /
        sqrt((C^-1)_kk)`` of the variable given the others and, for the kept
        neurons, the noise scale seen through the steepest activation slope
        (see :meth:`node_counts`)."""
        return self.node_counts(k, lo, hi, feature_widths(cov_u, layer, n_out))

    def node_counts(self, k: int, lo, hi, width) -> np.ndarray:
        """Nodes per variable on ``[lo, hi]``: at least ``solver.nodes``, and
        enough that the spacing resolves a feature of width ``width`` with
        ``c(tol) = sqrt(2 ln(1/tol)) / pi`` points per width (the trapezoid
        error of a gaussian of width ``s`` is ``~exp(-pi^2 s^2 / 2 h^2)``).
        Capped at 4 x ``solver.nodes`` with a warning (ill-conditioned
        weights, or noise much narrower than the signal); ``k`` names the
        layer in the warning."""
        opt = self.options
        need = nodes_needed(lo, hi, width, opt.tol)
        cap = 4 * opt.nodes
        if np.any(need > cap):
            warnings.warn(f"layer {k}: a neuron needs {int(need.max())} nodes to resolve the pre-activation density, "
                          f"more than 4 x solver.nodes = {cap} (ill-conditioned weights, or noise much narrower than "
                          "the signal): accuracy will suffer", NumericalHealthWarning, stacklevel=4)
        return np.clip(need, opt.nodes, cap)

    def frame(self, n: int, layer, prev: XLaw) -> "StepFrame":
        """The geometry of the step from ``X_n`` (law ``prev``) to ``Z_{n+1}``:
        change of variables, grid, cross weights and typical indices."""
        opt = self.options
        W, b = layer.weights, layer.bias
        n_out, n_in = W.shape
        # T = [W; V]: V spans the null space of W (rows orthonormal)
        if n_out < n_in:
            _, _, vt = np.linalg.svd(W)
            T = np.vstack([W, vt[n_out:]])
        else:
            T = W
        c = np.concatenate([b, np.zeros(n_in - n_out)])
        _, mean_x, cov_x = prev.moments()
        mean_u, cov_u = T @ mean_x + c, T @ cov_x @ T.T
        sd = np.sqrt(np.maximum(np.diag(cov_u), 1e-300))
        radius = -special.ndtri(opt.tail) * sd
        lo, hi = mean_u - radius, mean_u + radius
        xbox = prev.box(opt.tail)  # interval image of X's box: an outer bound of U's support
        ilo = np.where(T > 0, T * xbox[:, 0], T * xbox[:, 1]).sum(axis=1) + c
        ihi = np.where(T > 0, T * xbox[:, 1], T * xbox[:, 0]).sum(axis=1) + c
        lo, hi = np.maximum(lo, ilo), np.minimum(hi, ihi)
        sizes = self._nodes(n + 1, lo, hi, cov_u, layer, n_out)
        rules = [make_rule(opt.rule, m, a, z, "solver.rule") for m, a, z in zip(sizes, lo, hi)]
        # The cross approximates p_U / s, s(u) = prod_k s_k(u_k) with s_k^2 the
        # moment-matched gaussian marginal (floored): its truncations and its
        # error estimate then measure p_U's error in L2(1/s^2), which weighs
        # the typical set (where the mass is, a shell far from the mode in
        # many dimensions) instead of the mode alone. Linear-gaussian width 8,
        # tol 1e-6: covariance error 4.5e-7 weighted, 9.1e-6 unweighted.
        weights = [np.sqrt(np.exp(-0.5 * ((r.nodes - mean_u[k]) / sd[k]) ** 2) + WEIGHT_FLOOR)
                   for k, r in enumerate(rules)]
        rng = np.random.default_rng([2024, n])
        start, checks = typical_indices(mean_u, cov_u, lo, hi, sizes, rng)
        return StepFrame(n, T, c, np.linalg.inv(T), float(np.exp(-np.linalg.slogdet(T)[1])), n_out, rules,
                         weights, start, checks, rng)

    def _step(self, n: int, layer, prev: XLaw, diag: dict, on_sweep=None) -> tuple[TTFunction, StepFrame]:
        """The pre-activation density of layer ``n + 1`` from the law of
        ``X_n``, and the frame of the step."""
        opt = self.options
        mass_x = prev.moments()[0]
        fr = self.frame(n, layer, prev)

        def density(idx: np.ndarray) -> np.ndarray:
            return prev.pdf(fr.points(idx)) * fr.scale / fr.weight_at(idx)

        result = cross(density, fr.sizes, tol=opt.tol, max_rank=opt.max_rank, rng=fr.rng,
                       start=fr.start, checks=fr.checks, kick=opt.kick,
                       max_sweeps=opt.sweeps, init_rank=min(int(diag["tt_max_rank"][n]) + opt.kick, opt.max_rank),
                       on_sweep=on_sweep)
        return self.conclude(n, result, fr, mass_x, diag), fr

    def conclude(self, n: int, result, fr: StepFrame, mass_x: float, diag: dict) -> TTFunction:
        """The train of layer ``n + 1`` from the cross ``result`` on the frame
        ``fr``: finished (:meth:`StepFrame.finish`), normalized to the previous
        mass ``mass_x``, its diagnostics recorded in ``diag`` and the accuracy
        warnings raised. Every TT layer step ends here."""
        opt = self.options
        tt, rounding, capped = fr.finish(result.cores, fr.weights, fr.rules, opt.tol, opt.max_rank)
        mass = tt.integral()
        # the train is the density of a probability law: normalized, so that the
        # cross's mass error (either sign) does not accumulate over layers or
        # show up in every marginal; the mass before is recorded
        tt = tt * (mass_x / mass) if mass > 0 else tt
        k = n + 1
        diag["mass"][k] = mass
        diag["lost_mass"][k] = max(mass_x - mass, 0.0)
        diag["cross_error"][k] = result.error
        diag["rounding_error"][k] = rounding
        diag["evaluations"][k] = result.evaluations
        diag["sweeps"][k] = result.sweeps
        diag["tt_max_rank"][k] = tt.max_rank
        diag["tt_ranks"][k, : fr.n_out + 1] = tt.ranks
        if not np.all(np.isfinite([c.sum() for c in tt.cores])):
            warnings.warn(f"layer {k}: the density holds NaN or Inf", NumericalHealthWarning, stacklevel=4)
        if capped or result.capped and result.error > opt.tol:
            warnings.warn(f"layer {k}: TT ranks capped at solver.max_rank = {opt.max_rank} with error above "
                          f"solver.tol (cross {result.error:.2g}, rounding {rounding:.2g})", TTTruncationWarning,
                          stacklevel=4)
        elif result.error > CROSS_ERROR_FACTOR * opt.tol:
            warnings.warn(f"layer {k}: cross approximation error estimate {result.error:.2g} is above 100 x "
                          f"solver.tol (raise solver.sweeps or solver.max_rank)", TTTruncationWarning, stacklevel=4)
        if diag["lost_mass"][k] > _MASS_LOSS_FACTOR * opt.tail * fr.n_out and diag["lost_mass"][k] > 10 * opt.tol:
            warnings.warn(f"layer {k}: mass {diag['lost_mass'][k]:.3g} left the box", MassLossWarning, stacklevel=4)
        return tt


class TTMarch(LayerMarch):
    """One forward solve in tensor-train format, a step at a time (module
    :mod:`mzpdf.solvers.march`): step ``n`` is layer ``n`` of the collapsed
    network (a run of noiseless layers and the noisy layer after it is one
    step). A step's checkpoint state is its train's cores and diagnostics;
    restoring rebuilds the train on the frame of the same step, which gives
    the same numbers as computing it."""

    def __init__(self, solver: TTSolver, network: Network, input_law: InputLaw, note=None):
        check_network(network)
        if input_law.dim != network.widths[0]:
            raise ValueError(f"input law has dimension {input_law.dim}, the network {network.widths[0]} inputs")
        self.solver, self.given, self.network, self.input_law, self.note = (solver, network, network.collapsed(),
                                                                            input_law, note)
        self.steps, self.depth = network_steps(network), network.depth
        L, width = self.network.depth, max(self.network.widths)
        diag = {name: np.zeros(L + 1) for name in ("mass", "lost_mass", "cross_error", "rounding_error")}
        diag.update({"evaluations": np.zeros(L + 1, dtype=np.int64), "sweeps": np.zeros(L + 1, dtype=np.int64),
                     "tt_max_rank": np.ones(L + 1, dtype=np.int64),
                     "tt_ranks": np.zeros((L + 1, width + 1), dtype=np.int64), "duality_gap": np.full(L, np.nan)})
        diag["mass"][0] = 1.0
        diag["tt_ranks"][0, : self.network.widths[0] + 1] = 1
        self.diag, self.pushforwards = diag, {}
        self.laws, self.trains, self.frames, self.kinds = [InputXLaw(input_law)], [None], [], []

    def _atom_step(self, n: int, layer) -> bool:
        return self.input_law.is_atomic and n == 0

    def advance(self, n: int) -> dict:
        layer, prev = self.network[n], self.laws[-1]
        if self._atom_step(n, layer):
            return self._atom(n, layer)
        note = self.note
        on_sweep = None if note is None else (lambda s, k=self.steps[n].stop: note(f"layer {k}: cross sweep {s}"))
        if is_quadrature_layer(layer):
            tt, frame = quadrature_step(self.solver, n, layer, prev, self.diag, on_sweep)
            self._add(n, layer, TrainXLaw(tt, layer, frame), tt, frame, "quadrature")
        else:
            tt, frame = self.solver._step(n, layer, prev, self.diag, on_sweep)
            self._add(n, layer, NoisyXLaw(layer, tt=tt), tt, frame, "preactivation")
        state = {name: self.diag[name][n + 1] for name in _LAYER_DIAGNOSTICS}
        state.update({f"core_{k}": c for k, c in enumerate(tt.cores)}, cores=len(tt.cores))
        return state

    def restore(self, n: int, state: dict) -> None:
        layer, prev = self.network[n], self.laws[-1]
        if self._atom_step(n, layer):  # nothing was approximated: computed again
            self._atom(n, layer)
            return
        quadrature = is_quadrature_layer(layer)
        frame = (quadrature_frame(self.solver, n, layer, prev) if quadrature
                 else self.solver.frame(n, layer, prev))
        cores = [np.asarray(state[f"core_{k}"], dtype=np.float64) for k in range(int(state["cores"]))]
        tt = TTFunction(cores, frame.rules[: len(cores)])
        for name in _LAYER_DIAGNOSTICS:
            self.diag[name][n + 1] = state[name]
        self.diag["tt_ranks"][n + 1, : len(cores) + 1] = tt.ranks
        law = TrainXLaw(tt, layer, frame) if quadrature else NoisyXLaw(layer, tt=tt)
        self._add(n, layer, law, tt, frame, "quadrature" if quadrature else "preactivation")

    def _atom(self, n: int, layer) -> dict:
        """The law after the first layer of a point input: its noise around the image of the point."""
        x0 = self.input_law.mean()
        if is_quadrature_layer(layer):
            law = NoisyXLaw(layer, centre=layer.forward(x0[None, :])[0])
        else:
            law = NoisyXLaw(layer, z=layer.weights @ x0 + layer.bias)
        self.diag["mass"][1] = 1.0
        self.diag["tt_ranks"][1, : layer.n_out + 1] = 1
        self._add(n, layer, law, None, None, "atom")
        return {name: self.diag[name][1] for name in _LAYER_DIAGNOSTICS} | {"cores": 0}

    def _add(self, n: int, layer, law, tt, frame, kind: str) -> None:
        law.prepare_marginals()
        self.laws.append(law)
        self.trains.append(tt)
        self.frames.append(None if kind == "quadrature" else frame)
        self.kinds.append(kind)
        if isinstance(layer, ComposedLayer):
            first = self.steps[n].start
            if frame is None:  # the atom after a point input
                points, masses = self.input_law.mean()[None, :], np.ones(1)
            else:
                points, masses = frame.quad_points, frame.quad_masses
            for k, image in enumerate(layer.partial(points)):
                self.pushforwards[first + k + 1] = pushforward_moments(image, masses)

    def finish(self, seconds: np.ndarray) -> TTForward:
        self.diag["time_per_layer_s"] = np.asarray(seconds, dtype=float)
        return TTForward(self.network, self.input_law, self.laws, self.trains, self.diag, self.frames, self.kinds,
                          self.given if self.given.has_noiseless else None, self.pushforwards)
