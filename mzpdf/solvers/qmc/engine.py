"""Randomized quasi-Monte Carlo with conditional densities (SPEC 3.4).

Each of ``replicates`` independent scramblings of a Sobol sequence
(:class:`scipy.stats.qmc.Sobol`, LMS + digital shift) gives ``samples``
points ``u`` in ``[0, 1)^D``: one coordinate per input coordinate (one more
for a mixture's component, none for a point input) and one per noise
coordinate of every sampled layer. Inverse CDFs map them to the input law and
the noise laws (:func:`input_from_uniform`, :func:`noise_from_uniform`), and
the network carries the samples forward.

Every estimate integrates the last noise exactly. With ``x_i`` the samples of
layer ``n - 1`` and ``f_i = F_{n-1}(x_i)``:

- marginal density of neuron j of layer n: ``mean_i rho_j(y - f_ij)``
  (only the noise's j-th 1-D factor; no histogram), the joint of neurons 0
  and 1 ``mean_i rho_0(y_0 - f_i0) rho_1(y_1 - f_i1)``;
- mean ``mean_i f_i`` and covariance ``cov_i f_i + diag(var xi)``;
- ``E[g(X_L)]`` and ``q_0`` for an affine ``g`` (every registered observable):
  ``g(f_i)`` with ``f_i`` from layer ``L - 1``, so the last layer's noise is
  never sampled.

Layer 0 (the input law) is in closed form. A layer that follows a noiseless
layer has no conditional density (X_n = F(X_{n-1}) exactly): its marginals
are NaN and ``no_density[n]`` is set; its moments are estimated from the
samples. Covariances of one replicate divide by ``n`` (with RQMC points the
variance of the sample mean is far below ``var / n``, so ``n - 1`` would
over-correct).

Standard errors: each replicate gives its own estimate; the result is their
average and its standard error their standard deviation over ``sqrt(R)``.

Reproducibility: ``SeedSequence(seed).spawn(3)`` gives the pilot (abscissae
and moment shifts), the forward replicates and the backward replicates; each
replicate's scrambling takes ``default_rng`` of one child of its
``spawn(replicates)``. Points are drawn in chunks (a power of two), so memory
is ``chunk x (D + widths)`` whatever ``samples`` is.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace

import numpy as np

from ...network.inputs import GaussianInput, InputLaw, MixtureInput, PointInput, UniformInput
from ...network.network import Network
from ...network.noise import GAUSSIAN, LAPLACE, UNIFORM
from ...observables import LinearObservable, NeuronObservable
from ...results import LayerSummary
from ._kernels import accumulate_conditional_pdf, conditional_pdf_numpy

__all__ = ["QMCRun", "INVERSE_CDF", "INPUT_KINDS", "input_dims", "input_from_uniform", "noise_from_uniform",
           "sobol_points", "simulate_qmc", "conditional_mean_qmc"]

PILOT_POINTS = 4096  # Sobol points of the pilot run that places the abscissae
_KERNEL_CODES = (GAUSSIAN, UNIFORM, LAPLACE)  # noise laws with a conditional-density kernel
_BITS = 52  # bits of the Sobol integers; each point is moved to the centre of its 2^-52 cell (never 0 or 1)


def _gaussian_icdf(scale, u):
    from scipy.special import ndtri

    return scale * ndtri(u)


def _uniform_icdf(scale, u):
    return scale * (2.0 * u - 1.0)


def _laplace_icdf(scale, u):
    # b log(2u) below the median, -b log(2(1 - u)) above it (each branch on its own half)
    return scale * np.where(u < 0.5, np.log(2.0 * np.minimum(u, 0.5)), -np.log(2.0 * (1.0 - np.maximum(u, 0.5))))


INVERSE_CDF = {"gaussian": _gaussian_icdf, "uniform": _uniform_icdf, "laplace": _laplace_icdf}
"""Noise kind -> inverse CDF ``(scale (N,), u (n, N)) -> (n, N)``: the noise laws qmc samples."""

INPUT_KINDS = ("gaussian", "uniform", "mixture", "point")
"""Input kinds :func:`input_from_uniform` maps."""


def input_dims(law: InputLaw) -> int:
    """Sobol coordinates the input law takes (a point none, a mixture one more for its component)."""
    if isinstance(law, PointInput):
        return 0
    return law.dim + 1 if isinstance(law, MixtureInput) else law.dim


def _cholesky(cov: np.ndarray) -> np.ndarray:
    return np.linalg.cholesky(cov)


def input_from_uniform(law: InputLaw, u: np.ndarray) -> np.ndarray:
    """Input samples (n, N_0) from uniforms ``u`` (n, :func:`input_dims`): inverse CDFs
    (a gaussian ``mean + L ndtri(u)``, ``L`` the Cholesky factor of its covariance)."""
    from scipy.special import ndtri

    n = u.shape[0]
    if isinstance(law, PointInput):
        return np.broadcast_to(law.x, (n, law.dim)).copy()
    if isinstance(law, UniformInput):
        return law.low + (law.high - law.low) * u
    if isinstance(law, GaussianInput):
        return law.mean_ + ndtri(u) @ _cholesky(law.cov_).T
    if isinstance(law, MixtureInput):
        comp = np.minimum(np.searchsorted(np.cumsum(law.weights), u[:, 0], side="right"), law.weights.size - 1)
        z = ndtri(u[:, 1:])
        x = np.empty((n, law.dim))
        for c, part in enumerate(law.components):
            rows = comp == c
            x[rows] = part.mean_ + z[rows] @ _cholesky(part.cov_).T
        return x
    raise ValueError(f"qmc cannot sample input kind {law.kind!r} (it maps {list(INPUT_KINDS)})")


def noise_from_uniform(noise, u: np.ndarray) -> np.ndarray:
    """Noise samples (n, N) of the law ``noise`` from uniforms ``u`` (n, N)."""
    try:
        icdf = INVERSE_CDF[noise.kind]
    except KeyError:
        raise ValueError(f"qmc cannot sample noise kind {noise.kind!r} (it maps {list(INVERSE_CDF)})") from None
    return icdf(noise.scale, u)


def sobol_points(dim: int, seed_seq: np.random.SeedSequence, samples: int, chunk: int, sequence: str = "sobol"):
    """Yield ``samples`` scrambled Sobol points in ``[0, 1)^dim``, ``chunk`` at a time
    (both powers of two), each in the centre of its cell of the 2^-52 lattice;
    with ``sequence = "random"`` pseudo-random points instead (plain conditional
    Monte Carlo, the same estimators)."""
    from scipy.stats import qmc

    if sequence == "random":
        rng = np.random.default_rng(seed_seq)
        for _ in range(samples // chunk):
            yield np.floor(rng.random((chunk, dim)) * 2.0**_BITS) / 2.0**_BITS + 2.0 ** -(_BITS + 1)
        return
    sampler = None
    if dim:
        try:
            sampler = qmc.Sobol(dim, scramble=True, bits=_BITS, rng=np.random.default_rng(seed_seq))
        except TypeError:  # SciPy < 1.15 names it seed
            sampler = qmc.Sobol(dim, scramble=True, bits=_BITS, seed=np.random.default_rng(seed_seq))
    for _ in range(samples // chunk):
        if sampler is None:
            yield np.empty((chunk, 0))
        else:
            yield sampler.random(chunk) + 2.0 ** -(_BITS + 1)


def _affine(observable) -> bool:
    return isinstance(observable, (NeuronObservable, LinearObservable))


class _Layout:
    """Which Sobol columns feed the input and each layer's noise."""

    def __init__(self, network: Network, law: InputLaw, sample_last: bool):
        self.input = slice(0, input_dims(law))
        start, self.noise = self.input.stop, []
        for n, layer in enumerate(network):
            if layer.noise.is_deterministic or (n == network.depth - 1 and not sample_last):
                self.noise.append(None)
            else:
                self.noise.append(slice(start, start + layer.n_out))
                start += layer.n_out
        self.dim = start


def _walk(network: Network, x: np.ndarray, u: np.ndarray, layout: _Layout, times=None):
    """Yield ``(n, f)`` with ``f = F_n(X_n)`` for n = 0..L-1 along the samples started at ``x``;
    the next layer's samples are ``f`` plus the noise drawn from ``u``'s columns."""
    for n, layer in enumerate(network):
        start = time.perf_counter()
        f = layer.forward(x)
        cols = layout.noise[n]
        x = f if cols is None else f + noise_from_uniform(layer.noise, u[:, cols])
        if times is not None:
            times[n] += time.perf_counter() - start
        yield n, f, x


class _Replicates:
    """Mean and variance over replicates (Welford), for standard errors."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, value) -> None:
        value = np.asarray(value, dtype=np.float64)
        self.count += 1
        delta = value - self.mean
        self.mean = self.mean + delta / self.count
        self.m2 = self.m2 + delta * (value - self.mean)

    def stderr(self):
        if self.count < 2:
            return np.zeros_like(np.asarray(self.mean, dtype=np.float64))
        return np.sqrt(self.m2 / (self.count - 1) / self.count)


@dataclass(frozen=True)
class _Abscissae:
    """Equispaced abscissae ``y0 + h k`` (k < m) per neuron, and the joint's of neurons 0 and 1."""

    y0: np.ndarray
    h: np.ndarray
    m: int
    joint: tuple | None

    @property
    def x(self) -> np.ndarray:
        return self.y0[:, None] + self.h[:, None] * np.arange(self.m)

    @classmethod
    def span(cls, lo, hi, m: int, joint_points: int):
        hi = np.maximum(hi, lo + 1e-12)
        h = (hi - lo) / (m - 1)
        joint = None
        if lo.size >= 2:
            joint = tuple(a + (b - a) / (joint_points - 1) * np.arange(joint_points) for a, b in zip(lo[:2], hi[:2]))
        return cls(np.asarray(lo, dtype=np.float64), h, m, joint)


class _LayerSums:
    """One replicate's running sums for the layer after ``layer``: moments of
    ``f = F(x)``, the conditional-density sums, the estimator's mass beyond
    the abscissae and the joint of neurons 0 and 1."""

    def __init__(self, layer, shift: np.ndarray, grid: _Abscissae):
        self.noise, self.grid = layer.noise, grid
        self.density = not layer.noise.is_deterministic
        dim = shift.size
        self.shift = shift
        self.n, self.sum1, self.sum2 = 0, np.zeros(dim), np.zeros((dim, dim))
        self.pdf = np.zeros((dim, grid.m))
        self.lost = np.zeros(dim)
        self.joint = None
        if self.density and grid.joint is not None:
            self.joint = np.zeros((grid.joint[0].size, grid.joint[1].size))
            self.factors = [replace(layer.noise, scale=layer.noise.scale[j:j + 1]) for j in (0, 1)]

    def add(self, f: np.ndarray) -> None:
        f = np.ascontiguousarray(f, dtype=np.float64)
        self.n += f.shape[0]
        d = f - self.shift
        self.sum1 += d.sum(axis=0)
        self.sum2 += d.T @ d
        if not self.density:
            return
        g = self.grid
        noise = self.noise
        if noise.code in _KERNEL_CODES:
            accumulate_conditional_pdf(f, noise.code, noise.scale, noise.window_radius(), g.y0, g.h, self.pdf)
        else:  # a noise law without a kernel: its own 1-D densities
            self.pdf += conditional_pdf_numpy(f, noise, g.x)
        top = g.y0 + g.h * (g.m - 1)
        self.lost += (noise.cdf(g.y0 - f) + 1.0 - noise.cdf(top - f)).sum(axis=0)
        if self.joint is not None:
            rows = [self.factors[j].pdf((g.joint[j][None, :] - f[:, j:j + 1])[..., None])[..., 0] for j in (0, 1)]
            self.joint += rows[0].T @ rows[1]

    def estimates(self) -> dict:
        n = self.n
        d = self.sum1 / n
        cov = self.sum2 / n - np.outer(d, d) + np.diag(self.noise.variance())
        out = {"mean": self.shift + d, "cov": cov}
        if self.density:
            out.update(pdf=self.pdf / n, lost=self.lost / n)
            if self.joint is not None:
                out["joint"] = self.joint / n
        return out


@dataclass(frozen=True)
class QMCRun:
    """Estimates of a randomized QMC run.

    Attributes
    ----------
    layers : list of LayerSummary
        ``L + 1`` entries, input first, with ``mean_stderr`` and
        ``marginal_pdf_stderr`` (zero for the closed-form input layer).
    lost_mass : (L + 1,)
        Largest mass, over neurons, of the estimated marginal outside its
        abscissae (exact for the estimator: from the noise CDF).
    no_density : (L + 1,) bool
        Layers without a density (after a noiseless layer; a point input).
    g_mean, g_stderr : float or None
        ``E[g(X_L)]`` and its standard error for an observable.
    cov_stderr : list of (N_n, N_n)
        Standard errors of the covariances (zero for the input layer).
    samples, replicates : int
    time_per_layer_s : (L,)
        Wall time spent in each layer's map and estimators, all replicates.
    readouts : (replicates, samples) or None
        ``a . F_{L-1}(X_{L-1}) + c`` of every point, with ``readout = (a, c)``:
        the last layer's noiseless read-outs, from which exceedance
        probabilities integrate the last noise in closed form.
    pushforward : PushforwardRun or None
        The densities of the layers after noiseless layers and the read-out's
        tails by preintegration (:mod:`mzpdf.solvers.qmc.pushforward`), merged
        into ``layers`` by the plugin.
    error_estimate : (L + 1,) or None
        The error estimate in ``solver.tol``'s meaning at ``confidence``
        (:mod:`mzpdf.solvers.confidence`).
    """

    layers: list
    lost_mass: np.ndarray
    no_density: np.ndarray
    g_mean: float | None
    g_stderr: float | None
    cov_stderr: list
    samples: int
    replicates: int
    time_per_layer_s: np.ndarray
    readouts: np.ndarray | None = None
    pushforward: object = None
    error_estimate: np.ndarray | None = None
    confidence: float = 0.95


def _pilot(network, law, layout, seed_seq, tail, marginal_points, joint_points, sequence="sobol"):
    """Shifts of the moment sums and abscissae of every layer n >= 1 from a
    pilot scrambling of PILOT_POINTS points: the range of F_{n-1} padded by
    10 % and the noise's ``tail`` radius, or the samples' range padded by 10 %
    after a noiseless layer. Mass the estimate puts beyond the abscissae
    (samples beyond the pilot's range) is reported as ``lost_mass``."""
    u = next(sobol_points(layout.dim, seed_seq, PILOT_POINTS, PILOT_POINTS, sequence))
    x = input_from_uniform(law, u[:, layout.input])
    shifts, grids = [], []
    for n, f, x in _walk(network, x, u, layout):
        noise = network[n].noise
        if noise.is_deterministic:
            lo, hi = f.min(axis=0), f.max(axis=0)
            pad = 0.1 * (hi - lo)
        else:
            lo, hi = f.min(axis=0), f.max(axis=0)
            pad = 0.1 * (hi - lo) + noise.tail_radius(tail)
        shifts.append(f.mean(axis=0))
        grids.append(_Abscissae.span(lo - pad, hi + pad, marginal_points, joint_points))
    return shifts, grids


def _input_summary(law: InputLaw, tail: float, m: int, joint_points: int) -> LayerSummary:
    """Layer 0 in closed form from the input law."""
    mean, cov = law.mean(), law.cov()
    zero = np.zeros(mean.size)
    if law.is_atomic:
        xs = np.repeat(mean[:, None], m, axis=1)
        return LayerSummary(mean, cov, 1.0, xs, np.full(xs.shape, np.inf), np.column_stack([mean, mean]),
                            mean_stderr=zero, marginal_pdf_stderr=np.zeros(xs.shape))
    box = law.box(tail)
    grid = _Abscissae.span(box[:, 0], box[:, 1], m, joint_points)
    xs = grid.x
    pdf = np.stack([law.marginal_pdf(k, xs[k]) for k in range(mean.size)])
    joint = None
    if grid.joint is not None:
        gx, gy = grid.joint
        X, Y = np.meshgrid(gx, gy, indexing="ij")
        joint = (gx, gy, _input_joint(law, X, Y))
    mass = 1.0 - law.tail_mass(box)
    return LayerSummary(mean, cov, mass, xs, pdf, box, joint, mean_stderr=zero, marginal_pdf_stderr=np.zeros(xs.shape))


def _input_joint(law: InputLaw, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Density of input coordinates 0 and 1 on the grid ``X, Y``."""
    if isinstance(law, UniformInput):
        return law.marginal_pdf(0, X) * law.marginal_pdf(1, Y)
    parts = law.components if isinstance(law, MixtureInput) else (law,)
    weights = law.weights if isinstance(law, MixtureInput) else (1.0,)
    out = np.zeros(X.shape)
    for w, c in zip(weights, parts):
        s = c.cov_[:2, :2]
        inv = np.linalg.inv(s)
        dx, dy = X - c.mean_[0], Y - c.mean_[1]
        q = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
        out += w * np.exp(-0.5 * q) / (2 * np.pi * np.sqrt(np.linalg.det(s)))
    return out


class _ReplicateTask:
    """One replicate of :func:`simulate_qmc` (one scrambling, all its blocks):
    a picklable callable, so replicates can run as tasks of a Dask cluster.
    Returns the layers' estimates, the replicate's mean of g, its kept
    read-outs (or None) and the seconds spent per layer."""

    def __init__(self, network, input_law, layout, shifts, grids, samples, chunk, observable, sample_last, readout,
                 sequence="sobol"):
        self.network, self.input_law, self.layout, self.shifts, self.grids = network, input_law, layout, shifts, grids
        self.samples, self.chunk, self.observable, self.sample_last = samples, chunk, observable, sample_last
        self.readout, self.sequence = readout, sequence

    def __call__(self, child, on_block=None):
        network, layout, observable = self.network, self.layout, self.observable
        sums = [_LayerSums(layer, shift, grid) for layer, shift, grid in zip(network, self.shifts, self.grids)]
        times = np.zeros(network.depth)
        kept = None if self.readout is None else np.empty(self.samples)
        g_sum, filled = 0.0, 0
        for u in sobol_points(layout.dim, child, self.samples, self.chunk, self.sequence):
            x = input_from_uniform(self.input_law, u[:, layout.input])
            for n, f, x in _walk(network, x, u, layout, times):
                start = time.perf_counter()
                sums[n].add(f)
                times[n] += time.perf_counter() - start
            if kept is not None:  # f is the last layer's map, before its noise
                kept[filled:filled + len(f)] = f @ self.readout[0] + self.readout[1]
                filled += len(f)
            if observable is not None:
                g_sum += float(np.sum(observable(x if self.sample_last else f)))
            if on_block is not None:
                on_block()
        return [s.estimates() for s in sums], g_sum / self.samples, kept, times


def simulate_qmc(network: Network, input_law: InputLaw, *, samples: int, replicates: int, seed: int,
                 chunk: int = 8192, marginal_points: int = 201, joint_points: int = 81, tail: float = 1e-6,
                 observable=None, report=None, readout=None, executor=None, sequence="sobol") -> QMCRun:
    """Randomized QMC estimates of every layer's law (module doc).

    Parameters
    ----------
    network : Network
    input_law : InputLaw
    samples : int
        Sobol points per replicate, a power of two.
    replicates : int
        Independent scramblings (>= 2 for standard errors).
    seed : int
    chunk : int
        Points per block (rounded down to a power of two, at most ``samples``).
    marginal_points, joint_points : int
        Abscissae per neuron, and per axis of the joint of neurons 0 and 1.
    tail : float
        Noise mass per side that the abscissae may leave beyond the sampled
        range of ``F`` (the pilot's).
    observable : Observable, optional
        Its mean ``E[g(X_L)]`` and standard error are estimated.
    report : callable, optional
        ``report(done, total)`` after each block.
    readout : (a (N_L,), c), optional
        Keep ``a . F_{L-1}(X_{L-1}) + c`` of every point (``QMCRun.readouts``).
    executor : callable, optional
        ``executor(fn, items)`` -> ``[fn(item) for item in items]`` in order,
        computed anywhere (a Dask cluster: :func:`mzpdf.sweep.dask_executor`);
        the replicates then run as its tasks, with the same numbers.
    sequence : "sobol" | "random"
        Scrambled Sobol points (randomized QMC) or pseudo-random ones (plain
        conditional Monte Carlo: the same estimators, error ~ n^-1/2).
    """
    samples, chunk = _check_sizes(samples, chunk)
    root = np.random.SeedSequence(seed)
    pilot_seq, forward_seq, _ = root.spawn(3)
    sample_last = observable is not None and not _affine(observable)
    layout = _Layout(network, input_law, sample_last)
    shifts, grids = _pilot(network, input_law, layout, pilot_seq, tail, marginal_points, joint_points, sequence)
    stats = [dict() for _ in network]
    g_stats = _Replicates()
    times = np.zeros(network.depth)
    readouts = None if readout is None else np.empty((replicates, samples))
    task = _ReplicateTask(network, input_law, layout, shifts, grids, samples, chunk, observable, sample_last, readout,
                          sequence)
    children = forward_seq.spawn(replicates)
    if executor is None:  # here, block by block, with progress
        blocks, ticks = replicates * (samples // chunk), itertools.count(1)
        on_block = None if report is None else (lambda: report(next(ticks), blocks))
        outcomes = [task(child, on_block) for child in children]
    else:  # one task a replicate; the same numbers whatever the workers, combined in replicate order
        outcomes = executor(task, children)
        if report is not None:
            report(replicates, replicates)
    for r, (estimates, g_mean_r, kept, seconds) in enumerate(outcomes):
        for n, est in enumerate(estimates):
            for name, value in est.items():
                stats[n].setdefault(name, _Replicates()).add(value)
        g_stats.add(g_mean_r)
        times += seconds
        if readouts is not None:
            readouts[r] = kept
    layers = [_input_summary(input_law, tail, marginal_points, joint_points)]
    lost = [1.0 - layers[0].mass]
    cov_err = [np.zeros_like(layers[0].cov)]
    for n, (st, grid) in enumerate(zip(stats, grids)):
        xs = grid.x
        box = np.column_stack([xs[:, 0], xs[:, -1]])
        if "pdf" in st:
            lost_n = float(np.max(st["lost"].mean))
            joint = (grid.joint[0], grid.joint[1], st["joint"].mean) if "joint" in st else None
            pdf, pdf_err = st["pdf"].mean, st["pdf"].stderr()
        else:
            lost_n, joint = 0.0, None
            pdf = pdf_err = np.full(xs.shape, np.nan)
        lost.append(lost_n)
        cov_err.append(st["cov"].stderr())
        layers.append(LayerSummary(st["mean"].mean, st["cov"].mean, 1.0 - lost_n, xs, pdf, box, joint,
                                   mean_stderr=st["mean"].stderr(), marginal_pdf_stderr=pdf_err))
    no_density = np.array([input_law.is_atomic] + [layer.noise.is_deterministic for layer in network])
    g_mean = float(g_stats.mean) if observable is not None else None
    g_err = float(g_stats.stderr()) if observable is not None else None
    return QMCRun(layers, np.array(lost), no_density, g_mean, g_err, cov_err, samples, replicates, times, readouts)


def conditional_mean_qmc(network: Network, points: np.ndarray, observable, *, samples: int, replicates: int,
                         seed: int, chunk: int = 8192, report=None, sequence: str = "sobol"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``q_0(x) = E[g(X_L) | X_0 = x]`` at each row of ``points`` and its standard
    error: the net run from each point with the same scrambled Sobol points of
    the noises (for an affine ``g`` the last noise is integrated exactly).

    Returns
    -------
    q0, stderr : (P,) arrays
    """
    samples, chunk = _check_sizes(samples, chunk)
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    sample_last = not _affine(observable)
    layout = _Layout(network, PointInput(points[0]), sample_last)
    _, _, backward_seq = np.random.SeedSequence(seed).spawn(3)
    stats = _Replicates()
    blocks, done = replicates * (samples // chunk), 0
    for child in backward_seq.spawn(replicates):
        total = np.zeros(len(points))
        for u in sobol_points(layout.dim, child, samples, chunk, sequence):
            for p, point in enumerate(points):
                x = np.broadcast_to(point, (chunk, point.size))
                for _, f, x in _walk(network, x, u, layout):
                    pass
                total[p] += float(np.sum(observable(x if sample_last else f)))
            done += 1
            if report is not None:
                report(done, blocks)
        stats.add(total / samples)
    return np.asarray(stats.mean), stats.stderr()


def _check_sizes(samples: int, chunk: int) -> tuple[int, int]:
    if samples < 1 or samples & (samples - 1):
        raise ValueError(f"samples must be a power of two, got {samples}")
    chunk = 1 << (max(int(chunk), 1).bit_length() - 1)  # a power of two, at most chunk
    return samples, min(chunk, samples)
