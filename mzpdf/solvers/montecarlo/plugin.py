"""``method = "montecarlo"``: sampling (SPEC 3.4), :mod:`mzpdf.solvers.montecarlo`; also
the ``[montecarlo]`` reference run beside any other method."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...network.network import LAYER_KINDS
from ...results import BackwardSummary, LayerSummary, MonteCarloLayer
from ..base import Capabilities, Solver, case_points
from ..confidence import CONFIDENCE, layer_error, quantile_factor, second_difference_error
from ..registry import SOLVERS
from .engine import MonteCarloRun, conditional_mean, simulate
from .options import MonteCarloOptions


@dataclass(frozen=True)
class Sampled:
    """A sampling run and ``q0`` at the observable's points with its standard errors."""

    run: MonteCarloRun
    q0: np.ndarray
    q0_stderr: np.ndarray


@SOLVERS.register("montecarlo")
class MonteCarlo(Solver):
    """Sample paths through the network: any width, layer kind and noise
    (also none); histogram marginals with standard errors."""

    name = "montecarlo"
    checks_lost_mass = False
    options_class = MonteCarloOptions
    capabilities = Capabilities(noise_kinds=("gaussian", "uniform", "laplace"), noiseless=True, densities=False,
                                resume=False,
                                layer_kinds=LAYER_KINDS, observables=("neuron", "linear", "argmax"))

    @classmethod
    def estimate_bytes(cls, case) -> int:
        return cls.reference_bytes(case.solver, case)

    @staticmethod
    def reference_bytes(options, case) -> int:
        """Bytes of a sampling run with ``options`` (MonteCarloOptions) on ``case``."""
        return 4 * 8 * options.chunk * max(case.network.widths)

    @staticmethod
    def reference(case, abscissae=None):
        """The ``[montecarlo]`` reference run beside another method (its
        options ``case.montecarlo``), histograms on ``abscissae``: ``(run,
        q0, q0 stderr)`` (:func:`sample`)."""
        return sample(case, case.montecarlo, abscissae)

    @classmethod
    def memory_key(cls, case):
        return "solver.chunk", "lower the chunk", case.solver.chunk

    def _sample(self, report):
        return Sampled(*sample(self.case, self.options))

    def _summarize(self, native) -> list:
        return [summary_from_montecarlo(layer) for layer in native.run.layers]

    def _diagnostics(self, native) -> dict:
        run = native.run
        return {"mass": 1.0 - run.outside_fraction, "lost_mass": run.outside_fraction,
                "samples": np.int64(self.options.samples), "error_estimate": error_estimate(run),
                "error_estimate_confidence": np.float64(CONFIDENCE)}

    def _pullback(self, native, report):
        summary = BackwardSummary(self._points(), native.q0, float(native.run.g_mean), q0_stderr=native.q0_stderr)
        return summary, None, {"q0_stderr": native.q0_stderr, "mean_stderr": np.float64(native.run.g_stderr)}


def summary_from_montecarlo(layer: MonteCarloLayer) -> LayerSummary:
    """A sampled layer as a LayerSummary (its box spans the histogram's bins),
    with the standard errors of its means and histogram densities."""
    x = layer.marginal_x
    h = (x[:, -1:] - x[:, :1]) / max(x.shape[1] - 1, 1) if x.shape[1] > 1 else np.zeros((x.shape[0], 1))
    box = np.column_stack([x[:, 0] - h[:, 0] / 2, x[:, -1] + h[:, 0] / 2])
    mass = float(np.min(np.sum(layer.marginal_pdf * h, axis=1))) if np.all(np.isfinite(layer.marginal_pdf)) else 1.0
    return LayerSummary(layer.mean, layer.cov, mass, x, layer.marginal_pdf, box, mean_stderr=layer.mean_stderr,
                        marginal_pdf_stderr=layer.marginal_stderr)


def sample(case, opt, abscissae=None):
    """Monte Carlo run of ``case`` with options ``opt`` (MonteCarloOptions):
    ``(run, q0, q0 stderr)`` (q0 empty without an observable or points)."""
    seed = case.seed if opt.seed is None else opt.seed
    marginal_points = getattr(opt, "marginal_points", 201)
    mc = simulate(case.network, case.input, samples=opt.samples, seed=seed, chunk=opt.chunk,
                  abscissae=abscissae, marginal_points=marginal_points, observable=case.observable)
    points = case_points(case)
    if case.observable is None or not len(points):
        return mc, np.zeros(0), np.zeros(0)
    q0, err = conditional_mean(case.network, points, case.observable, samples=opt.samples, seed=seed,
                               chunk=opt.chunk)
    return mc, q0, err


def error_estimate(run: MonteCarloRun) -> np.ndarray:
    """(L + 1,) the error estimate of every layer at ``CONFIDENCE``
    (:mod:`mzpdf.solvers.confidence`): the histograms' binomial standard errors
    (normal quantile), their binning error (second differences) and the share
    of paths outside the bins; the mean's standard error; the variance's
    relative standard error of a gaussian, ``sqrt(2 / (n - 1))`` (no fourth
    moments are kept: heavy-tailed layers are understated). Not checked
    against ``solver.tol``: the method does not refine."""
    z = quantile_factor(CONFIDENCE)
    out = np.zeros(len(run.layers))
    for n, layer in enumerate(run.layers):
        var = np.maximum(np.diag(layer.cov), 0.0)
        parts = dict(mean_stderr=layer.mean_stderr, var_stderr=var * np.sqrt(2.0 / max(layer.samples - 1, 1)))
        x = layer.marginal_x
        if np.all(np.isfinite(layer.marginal_pdf)) and x.shape[1] > 1:
            h = x[:, 1] - x[:, 0]
            parts.update(pdf_stderr=layer.marginal_stderr, h=h,
                         evaluation=second_difference_error(layer.marginal_pdf, h),
                         outside=np.full(x.shape[0], run.outside_fraction[n]))
        out[n] = layer_error(z, np.sqrt(var), **parts)
    return out
