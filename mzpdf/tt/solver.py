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

built by cross approximation (:func:`mzpdf.tt.cross.cross`) on a grid whose
box comes from the exact first two moments of ``U`` (gaussian tails of
``tail`` mass per side, intersected with the interval image of ``X``'s box);
the ``V`` coordinates are then integrated out (a narrowing layer) and the
train is rounded to ``tol``. Cost per layer: ``O(N n r^2)`` evaluations of
``p_X``, each ``O(N n r^2)`` -- polynomial in the width ``N``.

Widening and residual layers have no pre-activation change of variables;
they are stepped by quadrature in the layer's own coordinates
(:mod:`mzpdf.tt.quadrature`), which limits their input width to
``MAX_QUADRATURE_DIM``. So is a run of noiseless layers with the noisy
layer after it (one map ``G``, :meth:`mzpdf.network.Network.collapsed`, as
on the grid): the layers inside the run get the moments of ``G``'s partial
maps by the same quadrature (``TTSolution.pushforwards``) and no density.
What the method cannot do is refused up front (:func:`check_network`): a
noiseless last layer, rank-deficient weights of a square or narrowing dense
layer, widening, residual or noiseless layers of too many inputs; and
(:meth:`mzpdf.solvers.tt.TT._unresolvable`) dense layers whose
pre-activation density is too thin for the grid.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import _special as special
from ..discretization.rules import make_rule
from ..errors import CaseError, MassLossWarning, NumericalHealthWarning, TTTruncationWarning
from ..network import ComposedLayer, InputLaw, Network
from .cross import cross
from .tensor import TTFunction, contract_rows

__all__ = ["TTSolver", "TTSolution", "StepFrame", "check_network"]

_START_POINTS = 256  # typical points seeding the cross (drawn from the moment-matched gaussian)
_CHECK_POINTS = 512  # points of the a-posteriori error estimate
_WEIGHT_FLOOR = 1e-8  # floor of the squared cross weights s_k^2 (relative to their peak)
_CHUNK_VALUES = 2**20  # kernel-row values per chunk of points (8 MB)
CROSS_ERROR_FACTOR = 100.0  # a cross error estimate above this many solver.tol fails the run's accuracy checks
_MASS_LOSS_FACTOR = 100.0  # as in the grid solver: warn when lost mass > 100 x tail per neuron


def check_network(network: Network, keys=None) -> None:
    """Raise a CaseError naming the layer entry (``keys[n]``, default
    ``network.layers[n]``) that the TT method cannot handle."""
    from .quadrature import MAX_QUADRATURE_DIM, is_quadrature_layer

    composed = {start for start, stop in network.segments() if stop - start > 1}  # first layers of noiseless runs
    for n, layer in enumerate(network):
        where = keys[n] if keys is not None else f"network.layers[{n}]"
        if layer.kind not in ("dense", "residual"):
            raise CaseError(f"{where}.kind", "must be 'dense' or 'residual' with solver.method = 'tt'", layer.kind)
        if layer.noise.is_deterministic and n == network.depth - 1:
            raise CaseError(f"{where}.noise", f"must not be 'none' on the last layer with solver.method = 'tt': "
                            f"X_{n + 1} is a map of X_{n} with no density on its {layer.n_out} neurons (give the "
                            "output layer noise, or use solver.method = 'qmc', which gives the moments of a "
                            "noiseless output)", "none")
        if n in composed and layer.n_in > MAX_QUADRATURE_DIM:
            raise CaseError(f"{where}.weights", f"must have at most {MAX_QUADRATURE_DIM} inputs for a noiseless "
                            "layer with solver.method = 'tt' (a run of noiseless layers and the noisy layer after "
                            "it is one map, stepped by quadrature over the full grid of its inputs, m^n_in nodes)",
                            list(layer.weights.shape))
        if layer.noise.is_deterministic or any(a < n < b for a, b in network.segments()):
            continue  # inside a composed map: stepped with it
        if is_quadrature_layer(layer):
            if layer.n_in > MAX_QUADRATURE_DIM:
                what = "a residual" if layer.kind == "residual" else "a widening"
                raise CaseError(f"{where}.weights", f"must have at most {MAX_QUADRATURE_DIM} inputs for {what} layer "
                                f"with solver.method = 'tt' (it is stepped by quadrature over the full grid of its "
                                f"inputs, m^n_in nodes)", list(layer.weights.shape))
            continue
        s = np.linalg.svd(layer.weights, compute_uv=False)
        if s[-1] <= 1e-12 * s[0]:
            raise CaseError(f"{where}.weights", "must have full row rank with solver.method = 'tt' (the density "
                                                "of W x + b is singular)", f"condition number {s[0] / max(s[-1], 1e-300):.3g}")


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
    from .quadrature import is_quadrature_layer

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


def typical_indices(mean, cov, lo, hi, sizes, rng) -> tuple[np.ndarray, np.ndarray]:
    """Grid multi-indices nearest to draws from ``N(mean, cov)`` on the
    equispaced boxes ``[lo, hi]`` of ``sizes`` nodes: ``_START_POINTS`` to seed
    a cross approximation and ``_CHECK_POINTS`` for its error estimate."""
    chol = np.linalg.cholesky(cov + 1e-300 * np.eye(len(mean)))
    draws = mean + rng.standard_normal((_START_POINTS + _CHECK_POINTS, len(mean))) @ chol.T
    h = (np.asarray(hi) - lo) / (np.asarray(sizes) - 1)
    idx = np.clip(np.rint((draws - lo) / h), 0, np.asarray(sizes) - 1).astype(np.int64)
    return idx[:_START_POINTS], idx[_START_POINTS:]


class KernelRows:
    """The noise-kernel rows of one layer for all its neurons at once:
    ``rows(x)[k][p, i] = weights[k][i] rho_k(x[p, k] - centres[k][i])``.

    These rows are most of a TT layer's time; the gaussian case is computed
    in place on one ``(P, N, n)`` array (four passes instead of eight, one
    NumPy call per pass instead of one per neuron)."""

    def __init__(self, noise, centres: list, weights: list):
        N, n = len(centres), max(c.size for c in centres)
        self.noise, self.sizes = noise, [c.size for c in centres]
        self.centres, self.factor = np.zeros((N, n)), np.zeros((N, n))  # padding: factor 0
        for k, (c, w) in enumerate(zip(centres, weights)):
            self.centres[k, : c.size], self.factor[k, : c.size] = c, w
        self.gaussian = noise.kind == "gaussian"
        if self.gaussian:
            self.factor /= np.sqrt(2.0 * np.pi) * noise.scale[:, None]
            self.coef = (-0.5 / noise.scale**2)[None, :, None]

    def table(self, x: np.ndarray) -> np.ndarray:
        """The ``(P, N, n)`` array of rows (zero on padding)."""
        d = x[:, :, None] - self.centres[None]
        if self.gaussian:
            d *= d
            d *= self.coef
            np.exp(d, out=d)
        else:
            d = self.noise.pdf(d.transpose(0, 2, 1)).transpose(0, 2, 1)
        d *= self.factor[None]
        return d

    def __call__(self, x: np.ndarray) -> list:
        d = self.table(x)
        return [d[:, k, :m] for k, m in enumerate(self.sizes)]


# -- the law of one layer's neurons ---------------------------------------------------

class _XLaw:
    """The law of ``X_n``: density at points, moments, marginals, box."""

    dim: int

    def pdf(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def moments(self) -> tuple[float, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def marginal(self, k: int, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def box(self, tail: float) -> np.ndarray:
        raise NotImplementedError

    def joint01(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """The 2-D marginal density of neurons 0 and 1 on the grid ``x`` by
        ``y`` (None where not available)."""
        raise NotImplementedError


class _InputXLaw(_XLaw):
    def __init__(self, law: InputLaw):
        self.law, self.dim = law, law.dim

    def pdf(self, x):
        return self.law.pdf(x)

    def moments(self):
        return 1.0, self.law.mean(), self.law.cov()

    def marginal(self, k, x):
        return self.law.marginal_pdf(k, x)

    def box(self, tail):
        return self.law.box(tail)

    def joint01(self, x, y):
        if self.dim != 2:
            return None  # a 2-D marginal of a general input law has no closed form here
        X, Y = np.meshgrid(x, y, indexing="ij")
        return self.law.pdf(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)


class _NoisyXLaw(_XLaw):
    """``X = sigma(Z) + xi`` with ``Z`` an atom (``z``) or a TT density (``tt``)."""

    def __init__(self, layer, tt: TTFunction | None = None, z: np.ndarray | None = None,
                 centre: np.ndarray | None = None):
        self.layer, self.tt, self.z = layer, tt, z
        self.dim = layer.n_out
        self.laws = [type(layer.noise)(layer.noise.scale[k:k + 1]) for k in range(self.dim)]
        if tt is not None:
            self.act = [layer.activation(r.nodes) for r in tt.rules]
            weights = [r.weights for r in tt.rules]
        elif centre is not None:  # X = c + xi for a constant c = F(x_0) (a point input and any layer kind)
            self.act = [np.array([ck]) for ck in centre]
            weights = [np.ones(1)] * self.dim
        else:
            self.act = [layer.activation(np.array([zk])) for zk in z]
            weights = [np.ones(1)] * self.dim
        self.rows = KernelRows(layer.noise, self.act, weights)  # rows w_i rho_k(x_k - sigma(z_{k,i}))

    def pdf(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if self.tt is None:
            return np.prod(self.rows.table(x)[:, :, 0], axis=1)
        out = np.empty(x.shape[0])
        chunk = max(1, _CHUNK_VALUES // self.rows.centres.size)
        for a in range(0, x.shape[0], chunk):
            out[a:a + chunk] = contract_rows(self.tt.cores, self.rows(x[a:a + chunk]))
        return out

    def moments(self):
        var = self.layer.noise.variance()
        if self.tt is None:
            return 1.0, self.act_atom(), np.diag(var)
        mass, mean, cov = self.tt.moments(values=self.act)
        return mass, mean, cov + np.diag(var)

    def act_atom(self) -> np.ndarray:
        return np.array([a[0] for a in self.act])

    def marginal(self, k, x):
        if self.tt is None:
            x = np.asarray(x, dtype=np.float64)
            return self.laws[k].pdf((x[:, None] - self.act[k][None, :])[..., None])[..., 0][:, 0]
        return self.marginal_of(k, x, self._marginals[k])

    def marginal_of(self, k, x, z_marginal: np.ndarray) -> np.ndarray:
        """Density of ``sigma(Z_k) + xi_k`` at ``x`` for the nodal pre-activation
        marginal ``z_marginal`` on the train's rule of neuron k."""
        x = np.asarray(x, dtype=np.float64)
        rho = self.laws[k].pdf((x[:, None] - self.act[k][None, :])[..., None])[..., 0]
        return rho @ (self.tt.rules[k].weights * z_marginal)

    def prepare_marginals(self) -> None:
        if self.tt is not None:
            self._marginals = self.tt.marginals()
            self._mass = self.tt.integral()

    def joint01(self, x, y):
        rows = []
        for k, pts in ((0, x), (1, y)):
            rho = self.laws[k].pdf((np.asarray(pts)[:, None] - self.act[k][None, :])[..., None])[..., 0]
            rows.append(rho * (self.tt.rules[k].weights[None, :] if self.tt is not None else 1.0))
        if self.tt is None:
            return np.outer(rows[0][:, 0], rows[1][:, 0])
        return rows[0] @ self.tt.marginal2(0, 1) @ rows[1].T

    def box(self, tail):
        r = self.layer.noise.tail_radius(tail)
        lo = np.array([a.min() for a in self.act]) - r
        hi = np.array([a.max() for a in self.act]) + r
        return np.column_stack([lo, hi])


# -- one layer step ------------------------------------------------------------------------

@dataclass(eq=False)
class StepFrame:
    """The geometry of one TT step from ``X_n`` to ``Z_{n+1}`` (module doc):
    ``u = T x + c``, the grid of ``U`` (``rules``; the first ``n_out`` are
    ``Z_{n+1}``'s, the rest null-space coordinates integrated out), the cross
    weights ``s_k`` at the nodes, typical indices to seed and check a cross,
    and the generator that drew them. Built by :meth:`TTSolver.frame`; the
    Mori-Zwanzig module pushes other functions through the same frames."""

    n: int
    T: np.ndarray
    c: np.ndarray
    Tinv: np.ndarray
    scale: float  # 1 / |det T|
    n_out: int
    rules: list
    weights: list
    start: np.ndarray
    checks: np.ndarray
    rng: np.random.Generator

    def __post_init__(self):
        n_in = len(self.rules)
        self.sizes = [r.size for r in self.rules]
        self._nodes = np.full((n_in, max(self.sizes)), np.nan)
        self._wtab = np.ones((n_in, max(self.sizes)))
        for k, (r, w) in enumerate(zip(self.rules, self.weights)):
            self._nodes[k, : r.size], self._wtab[k, : r.size] = r.nodes, w
        self._cols = np.arange(n_in)

    def points(self, idx: np.ndarray) -> np.ndarray:
        """``x = T^-1 (u - c)`` at the grid multi-indices ``idx`` of ``U``."""
        return (self._nodes[self._cols, idx] - self.c) @ self.Tinv.T

    def weight_at(self, idx: np.ndarray) -> np.ndarray:
        """The cross weight ``s(u)`` at the multi-indices ``idx``."""
        return np.prod(self._wtab[self._cols, idx], axis=1)

    def finish(self, cores: list, weights: list, rules: list, tol: float, max_rank: int):
        """A cross of ``f / s`` on modes with ``weights`` and ``rules`` (those of
        :attr:`rules`, possibly with other modes inserted before the
        null-space coordinates, which come last) to the train of ``f`` with
        the null-space coordinates integrated out, rounded to ``tol`` in the
        weighted norm. Returns ``(train, rounding error, capped)``."""
        n_null = len(self.rules) - self.n_out
        cores = [core * w[None, :, None] for core, w in zip(cores, weights)]
        if n_null:
            tail_vec = np.ones(1)
            for k in range(len(cores) - 1, len(cores) - n_null - 1, -1):
                tail_vec = np.tensordot(cores[k], rules[k].weights, axes=(1, 0)) @ tail_vec
            last = len(cores) - n_null - 1
            cores = cores[:last] + [np.tensordot(cores[last], tail_vec, axes=(2, 0))[:, :, None]]
            weights, rules = weights[: last + 1], rules[: last + 1]
        cores = [core / w[None, :, None] for core, w in zip(cores, weights)]
        tt, rounding, capped = TTFunction(cores, rules).round(tol, max_rank)
        return TTFunction([core * w[None, :, None] for core, w in zip(tt.cores, weights)], rules), rounding, capped


def pushforward_moments(image: np.ndarray, masses: np.ndarray) -> tuple:
    """``(mass, mean, cov, box)`` of a law without a density, the image
    ``G(x_q)`` ``(Q, N)`` of quadrature nodes of masses ``m_q``: moments by
    the same quadrature, the box spanning the images of nodes of positive
    mass."""
    mass = float(masses.sum())
    mean = masses @ image / mass
    dev = image - mean
    cov = dev.T @ (masses[:, None] * dev) / mass
    support = image[masses > 0] if np.any(masses > 0) else image
    return mass, mean, cov, np.column_stack([support.min(axis=0), support.max(axis=0)])


# -- solution ----------------------------------------------------------------------------

_LAYER_DIAGNOSTICS = ("mass", "lost_mass", "cross_error", "rounding_error", "evaluations", "sweeps",
                      "tt_max_rank")


@dataclass
class TTSolution:
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
                  progress: Callable[[int, int], None] | None = None, resume: list | None = None,
                  on_layer: Callable[[int, dict], None] | None = None) -> TTSolution:
        """Pre-activation densities of every layer, by cross approximation.

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

        ``resume`` holds the states of layers 1, 2, ... of an earlier,
        interrupted solve of the same problem (as given to ``on_layer(n,
        state)`` after each computed layer): those layers' trains are rebuilt
        from their cores on the frames of the same steps, which gives the same
        numbers as an uninterrupted solve.
        """
        check_network(network)
        if input_law.dim != network.widths[0]:
            raise ValueError(f"input law has dimension {input_law.dim}, the network {network.widths[0]} inputs")
        given, network = network, network.collapsed()
        pushforwards = {}
        L, width = network.depth, max(network.widths)
        diag = {name: np.zeros(L + 1) for name in ("mass", "lost_mass", "cross_error", "rounding_error")}
        diag.update({"evaluations": np.zeros(L + 1, dtype=np.int64), "sweeps": np.zeros(L + 1, dtype=np.int64),
                     "tt_max_rank": np.ones(L + 1, dtype=np.int64), "tt_ranks": np.zeros((L + 1, width + 1), dtype=np.int64),
                     "time_per_layer_s": np.zeros(L), "duality_gap": np.full(L, np.nan)})
        diag["mass"][0] = 1.0
        diag["tt_ranks"][0, : network.widths[0] + 1] = 1
        from .quadrature import TrainXLaw, is_quadrature_layer, quadrature_frame, quadrature_step

        laws, trains, frames, steps = [_InputXLaw(input_law)], [None], [], []
        resume = list(resume or ())[:L]
        for n, layer in enumerate(network):
            start = time.perf_counter()
            prev = laws[-1]
            quadrature = is_quadrature_layer(layer)
            steps.append("quadrature" if quadrature else "preactivation")
            if n < len(resume) and not (input_law.is_atomic and n == 0):  # rebuilt from an earlier solve
                state = resume[n]
                frame = quadrature_frame(self, n, layer, prev) if quadrature else self.frame(n, layer, prev)
                cores = [state[f"core_{k}"] for k in range(int(state["cores"]))]
                tt = TTFunction(cores, frame.rules[: len(cores)])
                for name in _LAYER_DIAGNOSTICS:
                    diag[name][n + 1] = state[name]
                diag["tt_ranks"][n + 1, : len(cores) + 1] = tt.ranks
                law = TrainXLaw(tt, layer, frame) if quadrature else _NoisyXLaw(layer, tt=tt)
            elif input_law.is_atomic and n == 0:
                if quadrature:
                    law = _NoisyXLaw(layer, centre=layer.forward(input_law.mean()[None, :])[0])
                else:
                    law = _NoisyXLaw(layer, z=layer.weights @ input_law.mean() + layer.bias)
                tt, frame = None, None
                steps[-1] = "atom"
                diag["mass"][1] = 1.0
                diag["tt_ranks"][1, : layer.n_out + 1] = 1
            else:
                note = getattr(progress, "note", None)
                on_sweep = None if note is None else (lambda s, k=n + 1: note(f"layer {k}: cross sweep {s}"))
                if quadrature:
                    tt, frame = quadrature_step(self, n, layer, prev, diag, on_sweep)
                    law = TrainXLaw(tt, layer, frame)
                else:
                    tt, frame = self._step(n, layer, prev, diag, on_sweep)
                    law = _NoisyXLaw(layer, tt=tt)
            law.prepare_marginals()
            laws.append(law)
            trains.append(tt)
            frames.append(None if quadrature else frame)
            if isinstance(layer, ComposedLayer):
                first = given.segments()[n][0]
                if frame is None:  # the atom after a point input
                    points, masses = input_law.mean()[None, :], np.ones(1)
                else:
                    points, masses = frame.quad_points, frame.quad_masses
                for k, image in enumerate(layer.partial(points)):
                    pushforwards[first + k + 1] = pushforward_moments(image, masses)
            if n >= len(resume):
                diag["time_per_layer_s"][n] = time.perf_counter() - start
            else:
                diag["time_per_layer_s"][n] = resume[n]["time_per_layer_s"]
            if on_layer is not None and n >= len(resume):
                state = {name: diag[name][n + 1] for name in _LAYER_DIAGNOSTICS}
                state["time_per_layer_s"] = diag["time_per_layer_s"][n]
                cores = [] if tt is None else tt.cores
                state.update({f"core_{k}": c for k, c in enumerate(cores)}, cores=len(cores))
                on_layer(n + 1, state)
            if progress is not None:
                progress(n + 1, L)
        return TTSolution(network, input_law, laws, trains, diag, frames, steps,
                          given if given.has_noiseless else None, pushforwards)

    def pullback(self, solution: TTSolution, observable, points: np.ndarray | None = None, progress=None):
        """Conditional expectations ``q_n = E[g(X_L) | X_n]`` of an affine
        observable on the grids of ``solution``, ``q_0`` at ``points``, and the
        duality gap of every layer: see :mod:`mzpdf.tt.backward`. Not for a
        net with widening or residual layers (stepped by quadrature: the
        backward solve works in pre-activation coordinates), which raises
        a CaseError naming ``observable``."""
        from .backward import pullback
        from .quadrature import is_quadrature_layer

        quadrature = [n for n, layer in enumerate(solution.network) if is_quadrature_layer(layer)]
        if quadrature:
            raise CaseError("observable", "is not computed by solver.method = 'tt' for a net with widening or residual "
                            f"layers (network.layers[{quadrature[0]}]; methods that take it: grid, qmc, sparse)",
                            "backward solve")

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

    def frame(self, n: int, layer, prev: _XLaw) -> "StepFrame":
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
        weights = [np.sqrt(np.exp(-0.5 * ((r.nodes - mean_u[k]) / sd[k]) ** 2) + _WEIGHT_FLOOR)
                   for k, r in enumerate(rules)]
        rng = np.random.default_rng([2024, n])
        start, checks = typical_indices(mean_u, cov_u, lo, hi, sizes, rng)
        return StepFrame(n, T, c, np.linalg.inv(T), float(np.exp(-np.linalg.slogdet(T)[1])), n_out, rules,
                         weights, start, checks, rng)

    def _step(self, n: int, layer, prev: _XLaw, diag: dict, on_sweep=None) -> tuple[TTFunction, StepFrame]:
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
