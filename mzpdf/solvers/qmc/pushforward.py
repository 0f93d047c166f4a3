"""Densities of noiseless maps by preintegration (SPEC 3.5): the law of
``Y = f(X)`` for a deterministic run of layers and a gaussian input
``X = m + L z``, ``z ~ N(0, I_d)``.

One direction ``u`` (unit, in z) is integrated exactly: with
``z = s u + P w`` (``P`` an orthonormal basis of the rest, ``w`` the other
``d - 1`` coordinates) every neuron is a function of ``s`` along the line of
each ``w``, and

    p_Y(t)    = E_w[ sum_{s*: f(s*) = t} phi(s*) / |f'(s*)| ],
    P(Y > t)  = E_w[ integral of phi(s) over {s: f(s) > t} ],

(L'Ecuyer, Puchhammer & Ben Abdellah, arXiv:1906.04607). The line integral
is done by :func:`~mzpdf.solvers.qmc._kernels.trace_lines`: exactly for
relu, leaky_relu and identity nets (each layer's pre-activations are traced
along the line and cut at their zero crossings: every neuron is piecewise
linear in ``s`` with known knots), and for smooth activations (tanh,
sigmoid, erf, softplus, gelu, silu, elu, or a mix) by cubic Hermite
interpolation of values and derivatives on ``LINE_POINTS`` knots over
``|s| <= S_MAX``: roots to O(h^4), h = 2 S_MAX / (LINE_POINTS - 1) = 0.066,
a level set that only touches a fold between two knots can be missed.

The outer expectation over ``w`` (and the noise draws of noisy layers before
the last traced one) is either randomized QMC (``outer = "sobol"``: scrambled
Sobol points, ``replicates`` independent scramblings give the standard
errors) or, for ``d - 1 <= 2`` and no noise, deterministic
(``outer = "quadrature"``: composite 8-point Gauss-Legendre on
``[-S_MAX, S_MAX]^(d-1)``, panels doubled until two rules agree; the
integrand has kinks in ``w`` where roots appear, so the composite rule
converges algebraically and the estimate is the two rules' difference).

A hidden ReLU unit is 0 on a set of positive probability: that part is an
atom, not a density. Its mass (``atom``) is kept apart and ``pdf`` is the
density of the continuous part (it integrates to ``1 - atom``).

Directions: the read-out along its dominant gradient direction (the top
eigenvector of ``E[grad g grad g^T]`` over a pilot, g the read-out); every
unit along its own (a first dense layer's unit along its weights in z, which
makes its law exact with one line; a deeper one along the top eigenvector of
its pre-activation's gradient moments), each line traced only as deep as the
unit's layer. With ``own = False`` units share ``directions`` directions.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ...network.inputs import GaussianInput, InputLaw
from ...network.network import Network
from ._kernels import trace_lines
from .engine import _Replicates, noise_from_uniform, sobol_points

__all__ = ["ACTIVATION_CODES", "EXACT_ACTIVATIONS", "LINE_POINTS", "S_MAX", "PushforwardRun", "gaussian_factor",
           "preintegrate", "quadrature_dims"]

ACTIVATION_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4, "erf": 5, "softplus": 6,
                    "gelu": 7, "silu": 8, "elu": 9}
"""Activation name -> code of :func:`~mzpdf.solvers.qmc._kernels.trace_lines`."""
EXACT_ACTIVATIONS = ("identity", "relu", "leaky_relu")  # piecewise linear: level sets exact
S_MAX = 8.5  # |s| beyond this holds 2e-17 of the normal mass: the line is cut there
LINE_POINTS = 257  # knots of the Hermite interpolant along a line for smooth activations
PILOT = 2048  # pilot points: directions and abscissae
GL_NODES = 8  # Gauss-Legendre nodes per panel of the quadrature outer rule
MIN_PANELS, MAX_LINES = 16, 1 << 15  # the quadrature rule's first panels and its most lines
BLOCK = 2048  # lines per kernel call
READOUT_S = 5.5  # the read-out's abscissae reach its values at s = +-5.5 along its direction (tails ~2e-8)
EVALUATION_MARGIN = 2.0  # the evaluation error is stated as twice its Richardson estimate (higher-order terms)
_CAPACITY = 1 << 14  # knots per line (relu crossings); a line needing more is an error


def gaussian_factor(law: InputLaw) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, L)`` with ``X = mean + L z`` for a gaussian input law (L its Cholesky factor)."""
    if not isinstance(law, GaussianInput):
        raise ValueError(f"preintegration needs a gaussian input law (X = m + L z), got {law.kind!r}")
    return law.mean_, np.linalg.cholesky(law.cov_)


def quadrature_dims(network: Network, law: InputLaw, last: int) -> int | None:
    """Dimension of the outer integral (``d - 1``) when the layers before ``last`` are noiseless, else None."""
    if any(not network[n].noise.is_deterministic for n in range(last)):
        return None
    return law.dim - 1


@dataclass(frozen=True)
class _Packed:
    W: np.ndarray
    w_off: np.ndarray
    b: np.ndarray
    b_off: np.ndarray
    widths: np.ndarray
    act: np.ndarray
    par: np.ndarray
    residual: np.ndarray
    step: np.ndarray
    n_off: np.ndarray
    noisy: np.ndarray
    exact: bool

    def upto(self, depth: int) -> "_Packed":
        """The first ``depth`` layers (the flat arrays are shared)."""
        if depth == self.act.size:
            return self
        return _Packed(self.W, self.w_off[:depth], self.b, self.b_off[:depth], self.widths[:depth + 1],
                       self.act[:depth], self.par[:depth], self.residual[:depth], self.step[:depth],
                       self.n_off[:depth], self.noisy[:depth], self.exact)

    @classmethod
    def of(cls, layers) -> "_Packed":
        w_off, b_off, n_off, off, boff, noff = [], [], [], 0, 0, 0
        for layer in layers:
            w_off.append(off)
            b_off.append(boff)
            n_off.append(noff)
            off += layer.weights.size
            boff += layer.n_out
            noff += 0 if layer.noise.is_deterministic else layer.n_out
        params = [layer.activation.params.get("slope", layer.activation.params.get("alpha", 0.0)) for layer in layers]
        return cls(np.concatenate([np.ravel(layer.weights) for layer in layers]), np.array(w_off, dtype=np.int64),
                   np.concatenate([layer.bias for layer in layers]), np.array(b_off, dtype=np.int64),
                   np.array([layers[0].n_in] + [layer.n_out for layer in layers], dtype=np.int64),
                   np.array([ACTIVATION_CODES[layer.activation.name] for layer in layers], dtype=np.int64),
                   np.array(params, dtype=np.float64),
                   np.array([layer.kind == "residual" for layer in layers], dtype=np.bool_),
                   np.array([layer.step for layer in layers], dtype=np.float64), np.array(n_off, dtype=np.int64),
                   np.array([not layer.noise.is_deterministic for layer in layers], dtype=np.bool_),
                   all(layer.activation.name in EXACT_ACTIVATIONS for layer in layers))


@dataclass(frozen=True)
class PushforwardRun:
    """What preintegration computed.

    Attributes
    ----------
    layers : tuple of int
        The layers (1..L) whose neurons have rows.
    x, pdf, pdf_stderr : dict layer -> (N_n, m)
        Abscissae, density of the continuous part (its averages over bins
        of one abscissa spacing centred on the abscissae: differences of the
        computed CDF, so the quadrature rule's integrand is continuous in w),
        and its standard error over replicates (quadrature: 0).
    atom : dict layer -> (N_n,)
        Mass of the part of each neuron's law that is an atom (a ReLU unit at 0).
    evaluation_error : dict layer -> (N_n,)
        Estimated L1 distance between the bin averages ``pdf`` and the
        density at the abscissae: ``EVALUATION_MARGIN |p_3h - p_h| / 8`` summed (p_3h the
        averages over bins three times as wide, centred on the same
        abscissae; bias ``h^2 p'' / 24`` against ``9 h^2 p'' / 24``).
    pdf_error : dict layer -> (N_n,)
        Quadrature: the L1 difference of each neuron's density between the
        last two rules (None for sobol).
    moments : dict layer -> (mean, mean_stderr, var, var_stderr), each (N_n,)
        Each neuron's mean and variance, integrated along the lines like its
        density (exact on linear cells), with standard errors over the
        replicates (quadrature: the last two rules' difference).
    readout : (a, c) or None
        The read-out ``g = a . X_L + c`` whose CDF and tails were computed.
    readout_x, readout_pdf, readout_cdf, readout_survival (+ ``_stderr``) : (m_r,)
    thresholds, exceedance, exceedance_stderr : (T,)
        ``P(g > t)`` at the case's thresholds and its standard error
        (quadrature: the difference between the last two rules).
    readout_error : float
        Quadrature: largest difference of the read-out's CDF between the last two rules (0 for sobol).
    outer : "sobol" | "quadrature"
    lines : int
        Lines per replicate and direction (sobol) or of the final rule (quadrature).
    replicates, directions : int
    seconds : float
    """

    layers: tuple
    x: dict
    pdf: dict
    pdf_stderr: dict
    atom: dict
    evaluation_error: dict
    pdf_error: dict | None
    moments: dict
    readout: tuple | None
    readout_x: np.ndarray | None
    readout_pdf: np.ndarray | None
    readout_pdf_stderr: np.ndarray | None
    readout_cdf: np.ndarray | None
    readout_cdf_stderr: np.ndarray | None
    readout_survival: np.ndarray | None
    readout_survival_stderr: np.ndarray | None
    thresholds: np.ndarray
    exceedance: np.ndarray
    exceedance_stderr: np.ndarray
    readout_error: float
    outer: str
    lines: int
    replicates: int
    directions: int
    seconds: float


def _tangents(layers, x, T):
    """Forward mode: yield each layer's outputs, their derivatives (n, N, d) along the input tangents ``T``
    (n, N_0, d) and those of the pre-activations."""
    for layer in layers:
        a = x @ layer.weights.T + layer.bias
        Ta = np.einsum("ji,nid->njd", layer.weights, T)
        da = layer.activation.derivative(a)[:, :, None] * Ta
        if layer.kind == "residual":
            x, T = x + layer.step * layer.activation(a), T + layer.step * da
        else:
            x, T = layer.activation(a), da
        yield x, T, Ta


def _directions(layers, mean, L, z, a, count, rows_layers, own=True):
    """(U (K, d), assign: layer -> (N_n,) direction of each neuron) from the pilot inputs ``z``: ``count``
    shared directions (the read-out's first), and with ``own`` every unit its own (a first dense layer's:
    the direction of its weights in z; deeper ones: the top eigenvector of their pre-activation's gradient
    moments), traced only as deep as its layer."""
    d = L.shape[1]
    x = mean + z @ L.T
    T = np.broadcast_to(L, (len(z),) + L.shape)
    moments, last = {}, None
    for n, (x, T, Ta) in enumerate(_tangents(layers, x, T), start=1):
        if n in rows_layers:  # of the pre-activations: a unit that is rarely active still has its direction
            moments[n] = np.einsum("njd,nje->jde", Ta, Ta) / len(z)  # (N_n, d, d)
        last = T
    if a is not None:
        g = np.einsum("j,njd->nd", a, last)
        lead = g.T @ g / len(z)
    else:
        lead = sum(np.einsum("jde->de", c / np.maximum(np.trace(c, axis1=1, axis2=2), 1e-300)[:, None, None])
                   for c in moments.values())
    vals, vecs = np.linalg.eigh(lead)
    U = [vecs[:, -1]]
    pooled = sum(np.einsum("jde->de", c / np.maximum(np.trace(c, axis1=1, axis2=2), 1e-300)[:, None, None])
                 for c in moments.values()) if moments else np.eye(d)
    _, pvecs = np.linalg.eigh(pooled)
    for v in pvecs.T[::-1]:
        if len(U) >= min(count, d):
            break
        v = v - sum((v @ u) * u for u in U)
        if np.linalg.norm(v) > 1e-8:
            U.append(v / np.linalg.norm(v))
    assign = {n: np.argmax(np.einsum("kd,jde,ke->jk", np.array(U), c, np.array(U)), axis=1)
              for n, c in moments.items()}
    if not own:
        return np.array(U), assign
    for n, c in moments.items():  # every unit along its own direction, traced only to its layer
        first = n == 1 and layers[0].kind == "dense"
        for j in range(c.shape[0]):
            if first:  # sigma(a + b . z): along b every line gives the same 1-D integral, exactly
                g = (layers[0].weights @ L)[j]
            else:  # the top eigenvector of its pre-activation's gradient moments
                g = np.linalg.eigh(c[j])[1][:, -1] if np.trace(c[j]) > 0 else np.zeros(d)
            if np.linalg.norm(g) > 0:
                assign[n][j] = len(U)
                U.append(g / np.linalg.norm(g))
    return np.array(U), assign


def _complement(u: np.ndarray) -> np.ndarray:
    """(d, d-1): an orthonormal basis of the complement of the unit vector ``u``."""
    d = u.size
    q, _ = np.linalg.qr(np.column_stack([u, np.eye(d)]))
    return q[:, 1:d]


def _span(x):
    """A range of each column of the pilot values ``x`` (n, N) that holds all but ~1e-6 of a gaussian's
    mass and its like: the median plus 1.6 times its distance to the 0.1 % and 99.9 % quantiles, within
    1.2 times the pilot's own range around the median."""
    lo, med, hi = np.quantile(x, [0.001, 0.5, 0.999], axis=0)
    low, high = x.min(axis=0), x.max(axis=0)
    return (np.maximum(med - 1.6 * (med - lo), med - 1.2 * (med - low)),
            np.minimum(med + 1.6 * (hi - med), med + 1.2 * (high - med)))


def _pilot_ranges(layers, mean, L, z, rows_layers, a, c, u):
    """Abscissa ranges of every row from pilot inputs ``z`` (:func:`_span`, widened 5 %); a neuron whose
    smallest pilot value is taken by 1 % of the pilot or more (a ReLU unit's atom at 0) starts exactly there,
    so that the jump of its continuous part falls on a bin edge."""
    out, ro, floor = {}, None, {}
    x = mean + z @ L.T
    for n, layer in enumerate(layers, start=1):
        x = layer.forward(x)
        if n in rows_layers:
            out[n] = _span(x)
            lo = x.min(axis=0)
            floor[n] = np.where(np.mean(x == lo, axis=0) >= 0.01, lo, np.nan)
    if a is not None:  # and the read-out along its own direction out to |s| = 5.5 (P ~ 2e-8 each side)
        g = x @ a + c
        zp = z - np.outer(z @ u, u)
        for s in (-READOUT_S, READOUT_S):
            xs = mean + (zp + s * u) @ L.T
            for layer in layers:
                xs = layer.forward(xs)
            g = np.concatenate([g, xs @ a + c])
        ro = tuple(v[0] for v in _span((x @ a + c)[:, None]))
        ro = (min(ro[0], g.min()), max(ro[1], g.max()))
    pad = lambda lo, hi: (lo - 0.05 * (hi - lo) - 1e-9, hi + 0.05 * (hi - lo) + 1e-9)  # noqa: E731
    ranges = {}
    for n, (lo, hi) in out.items():
        plo, phi = pad(lo, hi)
        ranges[n] = (np.where(np.isnan(floor[n]), plo, floor[n]), phi)
    return ranges, floor, (pad(*ro) if ro else None)


class _Sums:
    """One estimate's sums (all rows), filled by trace_lines."""

    def __init__(self, R, m, T):
        self.pdf, self.cdf, self.surv = np.zeros((R, m)), np.zeros((R, m)), np.zeros((R, m))
        self.cdfd, self.survd = np.zeros((R, m + 1)), np.zeros((R, m + 1))
        self.atom, self.exceed = np.zeros(R), np.zeros(T)
        self.mom1, self.mom2 = np.zeros(R), np.zeros(R)

    def add(self, other: "_Sums") -> None:
        for name in ("pdf", "cdf", "surv", "cdfd", "survd", "atom", "exceed", "mom1", "mom2"):
            getattr(self, name).__iadd__(getattr(other, name))

    def finish(self) -> dict:
        return {"pdf": self.pdf, "cdf": self.cdf + np.cumsum(self.cdfd, axis=1)[:, :-1],
                "surv": self.surv + np.cumsum(self.survd, axis=1)[:, :-1], "atom": self.atom, "exceed": self.exceed,
                "mean": self.mom1, "var": np.maximum(self.mom2 - self.mom1**2, 0.0)}


def preintegrate(network: Network, law: InputLaw, *, layers: tuple, readout=None, thresholds=(), samples: int = 4096,
                 replicates: int = 8, seed: int = 0, marginal_points: int = 201, readout_points: int = 401,
                 directions: int = 3, outer: str = "sobol", tol: float = 1e-3, threads: int = 0,
                 sequence: str = "sobol", direction=None, own: bool = True) -> PushforwardRun:
    """The densities of the neurons of ``layers`` (each right after a
    noiseless layer) and, with ``readout = (a, c)``, the CDF, survival
    function and exceedances of ``g = a . X_L + c`` (the last layer
    noiseless), by preintegration (module doc).

    Parameters
    ----------
    samples : int
        Sobol lines per replicate and direction (a power of two; sobol outer rule).
    outer : "sobol" | "quadrature"
        The outer rule (quadrature: ``d - 1 <= 2`` and no noise before the last traced layer).
    tol : float
        The quadrature rule doubles its panels until two rules' densities differ
        by at most ``tol / 4`` in L1 (and the read-out's CDFs by ``tol / 40``),
        or it reaches ``MAX_LINES``.
    threads : int
        Threads over blocks of lines (0: every core).
    direction : (d,), optional
        The one direction (in z) every row is integrated along, instead of the chosen ones.
    own : bool
        Every unit along its own direction (module doc); otherwise each takes the shared direction that
        carries most of its gradient.
    """
    from scipy.special import ndtri

    start_time = time.perf_counter()
    mean, L = gaussian_factor(law)
    d = L.shape[1]
    last = max(layers) if readout is None else network.depth
    traced = [network[n] for n in range(last)]
    packed = _Packed.of(traced)
    rows_layers = tuple(layers)
    a, c = (None, 0.0) if readout is None else (np.asarray(readout[0], dtype=np.float64), float(readout[1]))
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    root = np.random.SeedSequence(seed)
    pilot_seq, main_seq = root.spawn(2)
    z = ndtri(next(sobol_points(d, pilot_seq, PILOT, PILOT, sequence)))
    U, assign = _directions(traced, mean, L, z, a, directions, rows_layers, own)
    if direction is not None:
        U = np.asarray(direction, dtype=np.float64)[None, :] / np.linalg.norm(direction)
        assign = {n: np.zeros(packed.widths[n], dtype=np.int64) for n in rows_layers}
    ranges, ranges_floor, ro_range = _pilot_ranges(traced, mean, L, z, rows_layers, a, c, U[0])
    if ro_range is not None and thresholds.size:
        span = ro_range[1] - ro_range[0]
        ro_range = (min(ro_range[0], thresholds.min() - 0.05 * span), max(ro_range[1], thresholds.max() + 0.05 * span))
    # rows: every neuron of the requested layers, then the read-out
    offsets = np.cumsum([0] + list(packed.widths[1:]))
    nrows = sum(packed.widths[n] for n in rows_layers)
    R = nrows + (readout is not None)
    m = max(marginal_points + 1, readout_points if readout is not None else 0)
    # a neuron's row: the CDF of its continuous part at the m + 1 edges of bins centred on its m abscissae
    y0, hstep, mrow = np.zeros(R), np.ones(R), np.full(R, marginal_points + 1, dtype=np.int64)
    row_of = {}
    r = 0
    for n in rows_layers:
        lo, hi = ranges[n]
        for j in range(packed.widths[n]):
            row_of[(n, j)] = r
            if lo[j] == ranges_floor[n][j]:  # an atom at lo: the first bin edge there
                hstep[r] = (hi[j] - lo[j]) / marginal_points
                y0[r] = lo[j]
            else:
                hstep[r] = (hi[j] - lo[j]) / (marginal_points - 1)
                y0[r] = lo[j] - 0.5 * hstep[r]
            r += 1
    readout_row = -1
    if readout is not None:
        readout_row = nrows
        y0[nrows], hstep[nrows] = ro_range[0], (ro_range[1] - ro_range[0]) / (readout_points - 1)
        mrow[nrows] = readout_points
        ro_vec = np.concatenate([a, [c]])
    else:
        ro_vec = np.zeros(packed.widths[-1] + 1)
    s_grid = np.linspace(-S_MAX, S_MAX, 2 if packed.exact else LINE_POINTS)
    noise_dims = int(sum(layer.n_out for layer in traced if not layer.noise.is_deterministic))
    threads = threads or os.cpu_count() or 1
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def run_lines(k, w, noise, weight, thr):
        """Sums of direction k over lines with outer coordinates ``w`` (n, d-1)."""
        rows = np.full(int(offsets[-1]), -1, dtype=np.int64)
        for n in rows_layers:
            for j in np.flatnonzero(assign[n] == k):
                rows[offsets[n - 1] + j] = row_of[(n, j)]
        ro_row = readout_row if k == 0 else -1
        direction = L @ U[k]
        basis = L @ _complement(U[k])
        # trace only as deep as this direction's rows (a first-layer unit's own direction: one layer)
        depth = len(traced) if ro_row >= 0 else max([n for n in rows_layers if np.any(assign[n] == k)], default=0)
        if depth == 0:
            return _Sums(R, m, thr.size)
        P = packed.upto(depth)
        rows = rows[:offsets[depth]]

        def block(lo, hi):
            sums = _Sums(R, m, thr.size)
            start = np.ascontiguousarray(mean + w[lo:hi] @ basis.T)
            nz = np.ascontiguousarray(noise[lo:hi]) if noise.shape[1] else np.zeros((hi - lo, 1))
            code = trace_lines(start, direction, np.ascontiguousarray(weight[lo:hi]), nz, P.W, P.w_off,
                               P.b, P.b_off, P.widths, P.act, P.par, P.residual,
                               P.step, P.n_off, P.noisy, rows, ro_vec, ro_row, s_grid, packed.exact,
                               y0, hstep, mrow, sums.pdf, sums.cdf, sums.cdfd, sums.surv, sums.survd, sums.atom, sums.mom1,
                               sums.mom2, thr,
                               sums.exceed, _CAPACITY)
            if code != 0:
                raise ValueError(f"a line needed more than {_CAPACITY} knots (zero crossings of the relu units)")
            return sums

        cuts = list(range(0, len(w), BLOCK)) + [len(w)]
        parts = list(zip(cuts[:-1], cuts[1:]))
        results = pool.map(lambda p: block(*p), parts) if pool is not None else [block(*p) for p in parts]
        total = _Sums(R, m, thr.size)
        for s in results:
            total.add(s)
        return total

    def estimate(rules):
        """Sum over directions of ``rules(k) -> (w, noise, weight)``."""
        total = _Sums(R, m, thresholds.size)
        for k in range(len(U)):
            w, noise, weight = rules(k)
            total.add(run_lines(k, w, noise, weight, thresholds))
        return total.finish()

    quad_dims = quadrature_dims(network, law, last)
    if outer == "quadrature" and (quad_dims is None or quad_dims > 2):
        raise ValueError("the quadrature outer rule needs d - 1 <= 2 outer dimensions and no noise before the last "
                         f"traced layer (d = {d})")
    try:
        if outer == "quadrature":
            results, pdf_error, ro_error, lines = _quadrature(estimate, quad_dims, tol, R, nrows, hstep, mrow)
            errors = {name: results.pop(name + "_error") for name in ("exceed", "mean", "var")}
            results["bins"] = np.diff(results["cdf"], axis=1)
            stats = {name: (value, np.zeros_like(value)) for name, value in results.items()}
            for name, error in errors.items():  # the two rules' difference
                stats[name] = (stats[name][0], error)
            reps = 1
        else:
            pdf_error, ro_error = None, 0.0
            acc = {}
            children = main_seq.spawn(replicates)
            dim = (d - 1) + noise_dims
            lines = samples if dim else 1
            for child in children:
                seqs = child.spawn(len(U))

                def rules(k, seqs=seqs):
                    if dim == 0:
                        return np.zeros((1, 0)), np.zeros((1, 0)), np.ones(1)
                    u = next(sobol_points(dim, seqs[k], samples, samples, sequence))
                    w = ndtri(u[:, :d - 1])
                    noise = np.zeros((samples, noise_dims))
                    col = d - 1
                    for n, layer in enumerate(traced):
                        if not layer.noise.is_deterministic:
                            off = packed.n_off[n]
                            noise[:, off:off + layer.n_out] = noise_from_uniform(layer.noise, u[:, col:col + layer.n_out])
                            col += layer.n_out
                    return w, noise, np.full(samples, 1.0 / samples)

                values = estimate(rules)
                values["bins"] = np.diff(values["cdf"], axis=1)  # bin masses: their spread, not the edges'
                for name, value in values.items():
                    acc.setdefault(name, _Replicates()).add(value)
            stats = {name: (np.asarray(v.mean), v.stderr()) for name, v in acc.items()}
            reps = replicates
    finally:
        if pool is not None:
            pool.shutdown()
    x, pdf, pdf_se, atom, evaluation, moments = {}, {}, {}, {}, {}, {}
    err = {} if pdf_error is not None else None
    for n in rows_layers:
        idx = [row_of[(n, j)] for j in range(packed.widths[n])]
        h = hstep[idx, None]
        x[n] = y0[idx, None] + h * (0.5 + np.arange(marginal_points))
        pdf[n], pdf_se[n], evaluation[n] = _bin_densities(stats["cdf"][0][idx, :marginal_points + 1],
                                                          stats["bins"][1][idx, :marginal_points], h)
        atom[n] = stats["atom"][0][idx]
        moments[n] = (stats["mean"][0][idx], stats["mean"][1][idx], stats["var"][0][idx], stats["var"][1][idx])
        if err is not None:
            err[n] = pdf_error[idx]
    ro = {}
    if readout is not None:
        k, mr = readout_row, readout_points
        ro = dict(readout_x=y0[k] + hstep[k] * np.arange(mr), readout_pdf=stats["pdf"][0][k, :mr],
                  readout_pdf_stderr=stats["pdf"][1][k, :mr], readout_cdf=stats["cdf"][0][k, :mr],
                  readout_cdf_stderr=stats["cdf"][1][k, :mr], readout_survival=stats["surv"][0][k, :mr],
                  readout_survival_stderr=stats["surv"][1][k, :mr])
    else:
        ro = {name: None for name in ("readout_x", "readout_pdf", "readout_pdf_stderr", "readout_cdf",
                                      "readout_cdf_stderr", "readout_survival", "readout_survival_stderr")}
    return PushforwardRun(rows_layers, x, pdf, pdf_se, atom, evaluation, err, moments, None if readout is None else (a, c), **ro,
                          thresholds=thresholds, exceedance=stats["exceed"][0], exceedance_stderr=stats["exceed"][1],
                          readout_error=ro_error, outer=outer, lines=lines, replicates=reps, directions=len(U),
                          seconds=time.perf_counter() - start_time)


def _bin_densities(cdf, bins_se, h):
    """Bin-average densities (N, m) from a CDF at the m + 1 bin edges, their standard errors (from those of
    the bin masses over the replicates), and the L1 evaluation error of each row (``evaluation_error`` of
    :class:`PushforwardRun`)."""
    pdf = np.diff(cdf, axis=1) / h
    se = bins_se / h
    wide = np.empty_like(pdf)
    wide[:, 1:-1] = (cdf[:, 3:] - cdf[:, :-3]) / (3 * h)
    wide[:, 0], wide[:, -1] = pdf[:, 0], pdf[:, -1]
    return pdf, se, EVALUATION_MARGIN * np.sum(np.abs(wide - pdf), axis=1) * h[:, 0] / 8.0


def _gauss_legendre(panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights times phi on [-S_MAX, S_MAX] (``panels`` panels)."""
    t, wt = np.polynomial.legendre.leggauss(GL_NODES)
    edges = np.linspace(-S_MAX, S_MAX, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    x = (mid[:, None] + half[:, None] * t).ravel()
    w = (half[:, None] * wt).ravel() * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    return x, w


def _quadrature(estimate, dims: int, tol: float, R: int, nrows: int, hstep, mrow):
    """Panels doubled until the neurons' densities of two rules differ by ``tol / 4`` in L1 or stall (their
    difference falls by less than 2.5 in a doubling: first order or worse), the read-out's CDFs by ``tol / 40``, or the rule would
    exceed MAX_LINES lines: ``(results, pdf L1 difference (neuron
    rows,), read-out CDF difference, lines)``."""
    def rule(panels):
        x, w = _gauss_legendre(panels)
        if dims == 0:
            return np.zeros((1, 0)), np.ones(1)
        if dims == 1:
            return x[:, None], w
        X, Y = np.meshgrid(x, x, indexing="ij")
        return np.column_stack([X.ravel(), Y.ravel()]), np.outer(w, w).ravel()

    def run(panels):
        w, weight = rule(panels)
        return estimate(lambda k: (w, np.zeros((len(w), 0)), weight)), len(w)

    if dims == 0:
        res, lines = run(1)
        res["exceed_error"] = np.zeros_like(res["exceed"])
        res["mean_error"], res["var_error"] = np.zeros(R), np.zeros(R)
        return res, np.zeros(nrows), 0.0, lines
    panels = MIN_PANELS
    prev, _ = run(panels)
    last = None
    while True:
        panels *= 2
        res, lines = run(panels)
        diff = np.array([np.sum(np.abs(np.diff(res["cdf"][r, :mrow[r]] - prev["cdf"][r, :mrow[r]])))
                         for r in range(nrows)])  # L1 of the bin densities' difference
        ro_diff = float(np.max(np.abs(res["cdf"][nrows] - prev["cdf"][nrows]))) if R > nrows else 0.0
        done = diff <= tol / 4
        if last is not None:  # a row whose difference falls by less than 2.5 a doubling stalls (a density singular
            done |= diff > last / 2.5  # at a saddle value of the map): its difference is its error estimate
        last = diff
        if (np.all(done) and ro_diff <= tol / 40) or (GL_NODES * 2 * panels) ** dims > MAX_LINES:
            res["exceed_error"] = np.abs(res["exceed"] - prev["exceed"])
            res["mean_error"], res["var_error"] = np.abs(res["mean"] - prev["mean"]), np.abs(res["var"] - prev["var"])
            return res, diff, ro_diff, lines
        prev = res

