"""The Monte Carlo reference (SPEC 3.4): seeded, chunked sample paths through
the network, streamed into moments, histograms and conditional means with
standard errors. Nothing but the running sums is kept in memory.

Reproducibility: chunk ``c`` of a run draws from
``PCG64(SeedSequence(seed).spawn(n_chunks)[c])``, so a run is bit-for-bit
repeatable for the same ``(seed, samples, chunk)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...network.inputs import InputLaw
from ...network.network import Network
from ...results import MonteCarloLayer
from ._kernels import accumulate_histogram, accumulate_moments

__all__ = ["MonteCarloRun", "simulate", "conditional_mean"]


@dataclass(frozen=True)
class MonteCarloRun:
    """Estimates of one sampling run.

    Attributes
    ----------
    layers : list of MonteCarloLayer
        ``L + 1`` entries, input first.
    outside_fraction : (L + 1,)
        Largest fraction, over neurons, of samples outside the histogram range.
    g_mean, g_stderr : float or None
        ``E[g(X_L)]`` and its standard error when an observable was given.
    """

    layers: list
    outside_fraction: np.ndarray
    g_mean: float | None = None
    g_stderr: float | None = None


class _LayerAccumulator:
    def __init__(self, shift: np.ndarray, abscissae: np.ndarray):
        dim, m = abscissae.shape
        self.shift = np.ascontiguousarray(shift, dtype=np.float64)
        self.x = abscissae
        self.width = (abscissae[:, -1] - abscissae[:, 0]) / max(m - 1, 1)
        self.width = np.where(self.width > 0, self.width, 1.0)
        self.left = abscissae[:, 0] - 0.5 * self.width
        self.n = 0
        self.sum1 = np.zeros(dim)
        self.sum2 = np.zeros((dim, dim))
        self.counts = np.zeros((dim, m), dtype=np.int64)

    def add(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float64)
        self.n += x.shape[0]
        accumulate_moments(x, self.shift, self.sum1, self.sum2)
        accumulate_histogram(x, self.left, self.width, self.counts)

    def result(self, atomic: bool) -> tuple[MonteCarloLayer, float]:
        n = self.n
        d = self.sum1 / n
        mean = self.shift + d
        cov = (self.sum2 - n * np.outer(d, d)) / (n - 1)
        if atomic:
            pdf = np.full(self.x.shape, np.inf)
            err = np.zeros(self.x.shape)
            outside = 0.0
        else:
            p = self.counts / n
            pdf = p / self.width[:, None]
            err = np.sqrt(p * (1 - p) / n) / self.width[:, None]
            outside = float(1.0 - self.counts.sum(axis=1).min() / n)
        layer = MonteCarloLayer(mean, np.sqrt(np.maximum(np.diag(cov), 0) / n), cov, self.x, pdf, err, n)
        return layer, outside


def _check(samples, chunk) -> tuple[int, int]:
    """``samples`` (>= 2) and ``chunk`` (>= 1) as ints; ValueError otherwise
    (a case's keys are checked by its options, MonteCarloOptions)."""
    for name, value, least in (("samples", samples, 2), ("chunk", chunk, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(samples), int(chunk)


def _paths(network: Network, x: np.ndarray, rng: np.random.Generator):
    """Yield X_1, ..., X_L of the paths started at the rows of ``x``."""
    for layer in network:
        x = layer.forward(x) + layer.noise.sample(rng, x.shape[0])
        yield x


def _chunks(samples: int, chunk: int, seed_seq: np.random.SeedSequence):
    n_chunks = -(-samples // chunk)
    for c, child in enumerate(seed_seq.spawn(n_chunks)):
        yield min(chunk, samples - c * chunk), np.random.Generator(np.random.PCG64(child))


def simulate(network: Network, input_law: InputLaw, *, samples: int, seed: int, chunk: int = 65_536,
             abscissae: list | None = None, marginal_points: int = 201, observable=None) -> MonteCarloRun:
    """Push ``samples`` paths through ``network`` and estimate every layer's law.

    Parameters
    ----------
    network : Network
    input_law : InputLaw
    samples, seed, chunk : int
    abscissae : list of (N_n, m) arrays, optional
        Equispaced abscissae per layer and neuron; histogram bins are centred
        on them. Chosen from a pilot run (range of ``chunk`` pilot paths, padded
        by 10 %) when omitted.
    marginal_points : int
        Bins per neuron when ``abscissae`` is omitted.
    observable : callable, optional
        ``g``: (n, N_L) -> (n,); its mean and standard error are estimated.
    """
    samples, chunk = _check(samples, chunk)
    if input_law.dim != network.widths[0]:
        raise ValueError(f"the input law has dimension {input_law.dim}, the network {network.widths[0]} inputs")
    if abscissae is not None and len(abscissae) != network.depth + 1:
        raise ValueError(f"abscissae must hold {network.depth + 1} arrays, one per layer")
    pilot_seq, main_seq = np.random.SeedSequence(seed).spawn(2)
    # A pilot run gives the shifts of the moment sums (and the histogram ranges
    # when none are given); it is not part of the estimates.
    rng = np.random.Generator(np.random.PCG64(pilot_seq))
    x = input_law.sample(rng, min(chunk, samples, 16_384))
    pilot = [x] + list(_paths(network, x, rng))
    if abscissae is None:
        abscissae = []
        for x in pilot:
            lo, hi = x.min(axis=0), x.max(axis=0)
            pad = 0.1 * np.maximum(hi - lo, 1e-12)
            abscissae.append(np.stack([np.linspace(a, b, marginal_points) for a, b in zip(lo - pad, hi + pad)]))
    accs = [_LayerAccumulator(x.mean(axis=0), np.asarray(a, dtype=np.float64)) for x, a in zip(pilot, abscissae)]
    g_sum = g_sq = 0.0
    for n, rng in _chunks(samples, chunk, main_seq):
        x = input_law.sample(rng, n)
        accs[0].add(x)
        for acc, x in zip(accs[1:], _paths(network, x, rng)):
            acc.add(x)
        if observable is not None:
            g = np.asarray(observable(x), dtype=np.float64)
            g_sum += g.sum()
            g_sq += g @ g
    results = [acc.result(input_law.is_atomic and i == 0) for i, acc in enumerate(accs)]
    g_mean = g_err = None
    if observable is not None:
        g_mean = g_sum / samples
        g_err = float(np.sqrt(max(g_sq / samples - g_mean**2, 0.0) / (samples - 1)))
    return MonteCarloRun([r[0] for r in results], np.array([r[1] for r in results]), g_mean, g_err)


def conditional_mean(network: Network, points: np.ndarray, observable, *, samples: int, seed: int,
                     chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """``E[g(X_L) | X_0 = point]`` and its standard error for each row of ``points``.

    Returns
    -------
    q0, stderr : (P,) arrays
    """
    samples, chunk = _check(samples, chunk)
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if points.shape[1] != network.widths[0]:
        raise ValueError(f"points must have {network.widths[0]} columns (the network's inputs), got shape {points.shape}")
    q0, err = np.empty(len(points)), np.empty(len(points))
    for p, child in enumerate(np.random.SeedSequence(seed).spawn(len(points))):
        total = sq = 0.0
        for n, rng in _chunks(samples, chunk, child):
            x = np.broadcast_to(points[p], (n, points.shape[1]))
            for x in _paths(network, x, rng):
                pass
            g = np.asarray(observable(x), dtype=np.float64)
            total += g.sum()
            sq += g @ g
        q0[p] = total / samples
        err[p] = np.sqrt(max(sq / samples - q0[p] ** 2, 0.0) / (samples - 1))
    return q0, err
