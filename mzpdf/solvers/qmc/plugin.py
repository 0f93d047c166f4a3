"""``method = "qmc"``: randomized quasi-Monte Carlo with conditional densities
(SPEC 3.4, :mod:`mzpdf.solvers.qmc.engine`).

Scrambled Sobol points over the input and the noises; every layer's
marginals (and the joint of neurons 0 and 1) by the conditional-density
estimator ``p_n(y) = mean_i rho_{n-1}(y - F_{n-1}(x_i))``, moments with the
last noise integrated exactly, ``q_0`` at ``[observable].points`` and
``E[g(X_L)]``, each with a standard error from ``replicates`` independent
scramblings (``mean_stderr``, ``marginals/pdf_stderr``, ``/backward/q0_stderr``
in the result file). Any width, layer kind and registered noise law.

Noiseless layers pass the samples through. The layer after one has no
conditional density (it is ``F`` of the previous layer exactly); under a
gaussian input its marginals come from preintegration
(:mod:`mzpdf.solvers.qmc.pushforward`: one input direction integrated
exactly along lines, the others by scrambled Sobol points, or by composite
Gauss-Legendre where at most 2 remain: ``solver.outer``), and a hidden ReLU
unit's atom at 0 is ``/diagnostics/atom_mass`` (the stored density is that of
its continuous part). Under another input law such a layer's marginals are
NaN, ``/diagnostics/no_density`` marks it, its moments are estimated, and
``law(n).marginal`` raises :class:`SingularDensityError`.

Error contract: ``/diagnostics/error_estimate`` (L + 1,) at the confidence
``error_estimate_confidence`` (:mod:`mzpdf.solvers.confidence`); while it
exceeds ``solver.tol`` the samples are doubled within ``solver.max_seconds``,
and a run that still misses it is flagged (accepted = 0).

Tails (``observable.thresholds``, ``observable.quantiles``): conditional
(R)QMC. The run keeps the noiseless read-outs ``a . F_{L-1}(X_{L-1}) + c`` of
every point, and ``P(g(X_L) > t)`` is their mean of the last noise's
closed-form survival function (:mod:`mzpdf.tails`), so it has no sampling
floor at 1/samples; ``exceedance_error`` is ``TAIL_STDERRS`` standard errors
over the replicates (a statistical bound, not a deterministic one: the grid
gives those), quantiles invert the pooled estimate. A noiseless last layer
under a gaussian input: ``P(g > t)`` by preintegration, exact along the
integrated direction (relative error bars far in the tail), quantiles from
its CDF on the read-out's abscissae.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from ...laws import MomentLaw, SummaryLaw
from ...network.network import LAYER_KINDS
from ...observables import make_observable
from ...results import BackwardSummary
from ...tails import case_problem, invert_tail, log_tail, readout
from ..base import Capabilities, Solution, Solver, case_points
from ..confidence import CONFIDENCE
from ..registry import SOLVERS
from .densities import (after_noiseless, error_estimate, line_problem, noiseless_readout, outer_rule,
                        readout_exceedance, readout_quantile, with_pushforward)
from .engine import INPUT_KINDS, INVERSE_CDF, conditional_mean_qmc, simulate_qmc
from .options import QMCOptions
from .pushforward import quadrature_dims

# exceedance_error of qmc: this many standard errors (the spread of the replicates' estimates over sqrt(R)),
# a two-sided normal coverage of 1 - 6e-5 where the estimate is normal over the replicates
TAIL_STDERRS = 4.0

# conditional-density evaluations per second on 2 cores (width 64, 5 tanh layers, 2^17 points: 8.5 s a layer)
EVALUATIONS_PER_SECOND = 2e8
QUADRATURE_LINES = 16_384  # lines of a typical quadrature outer rule (one outer dimension, ~2000 panels)


@SOLVERS.register("qmc")
class QuasiMonteCarlo(Solver):
    """Randomized QMC: any width, layer kind, noise (also none); smooth
    conditional-density marginals with standard errors."""

    name = "qmc"
    checks_lost_mass = False
    options_class = QMCOptions
    capabilities = Capabilities(noise_kinds=("gaussian", "uniform", "laplace"), noiseless=True, resume=False,
                                tails=True, distributed=True,
                                layer_kinds=LAYER_KINDS, observables=("neuron", "linear", "argmax"))
    auto_priority = 10
    auto_description = ("randomized quasi-Monte Carlo with standard errors, any width and layer; the densities of "
                        "noiseless layers by preintegration (deterministic for up to 3 uncertain inputs)")

    @classmethod
    def estimate_seconds(cls, case) -> float:
        """Conditional-density evaluations (every point of every replicate
        against each layer's marginal abscissae, joint grid and weights) at
        ``EVALUATIONS_PER_SECOND``."""
        opt, net = case.solver, case.network
        points = opt.samples * opt.replicates
        work = sum(layer.n_out * (opt.marginal_points + layer.n_in) + opt.joint_points**2 for layer in net)
        seconds = 0.5 + points * work / EVALUATIONS_PER_SECOND
        layers = after_noiseless(net)
        if layers and line_problem(net, case.input) is None:  # preintegration: a line costs ~40 forward passes
            lines = QUADRATURE_LINES if outer_rule(case) == "quadrature" else points
            rows = sum(net.widths[n] for n in layers)
            forward = sum(layer.n_out * layer.n_in for layer in net)
            seconds += lines * min(opt.directions, case.input.dim) * (40 * forward + rows * opt.marginal_points * 4) \
                / EVALUATIONS_PER_SECOND
        return seconds

    @classmethod
    def _problem(cls, case, keys):
        if case.input.kind not in INPUT_KINDS:
            return ("input.kind", f"must be one of {list(INPUT_KINDS)} with solver.method = {cls.name!r}",
                    case.input.kind)
        for n, layer in enumerate(case.network):
            if not layer.noise.is_deterministic and layer.noise.kind not in INVERSE_CDF:
                return (keys.noise(n), f"must be one of {list(INVERSE_CDF)} with solver.method = {cls.name!r} (a noise "
                        "law qmc has an inverse CDF for)", layer.noise.kind)
        net = case.network
        if getattr(case.solver, "outer", "auto") == "quadrature":  # (another method's case has no such key)
            layers = after_noiseless(net)
            dims = None
            if layers and line_problem(net, case.input) is None:
                last = net.depth if noiseless_readout(case) is not None else max(layers)
                dims = quadrature_dims(net, case.input, last)
            if dims is None or dims > 2:
                return ("solver.outer", "must not be 'quadrature' here: the deterministic outer rule takes a gaussian "
                        "input of dimension <= 3 and noiseless layers before the last traced one (use 'sobol' or "
                        "'auto')", "quadrature")
        tails = getattr(case, "tails", None)
        if tails is not None and net[-1].noise.is_deterministic:
            if not hasattr(case.observable, "readout"):
                return case_problem(case)
            reason = line_problem(net, case.input)
            return None if reason is None else (tails.key, "needs noise on the last layer or " + reason, tails.value)
        return case_problem(case)

    @classmethod
    def estimate_bytes(cls, case) -> int:
        opt, net = case.solver, case.network
        chunk = min(1 << (opt.chunk.bit_length() - 1), opt.samples)
        dim = case.input.dim + 1 + sum(layer.n_out for layer in net)  # Sobol coordinates (an upper bound)
        per_layer = sum(w * (4 * opt.marginal_points + 3 * w) + 3 * opt.joint_points**2 for w in net.widths)
        return 8 * (chunk * (dim + 4 * max(net.widths) + 2 * opt.joint_points) + 2 * per_layer)

    @classmethod
    def memory_key(cls, case):
        return "solver.chunk", "lower the chunk", case.solver.chunk

    def _seed(self) -> int:
        return self.case.seed if self.options.seed is None else self.options.seed

    def _sample(self, report):
        """Runs with ``samples`` doubled while the error estimate exceeds
        ``solver.tol``, falls by more than 10 % a doubling, and the doubled
        run is expected (twice the last run's time) to end within
        ``solver.max_seconds`` of the start."""
        opt, start, cache = self.options, time.perf_counter(), {}
        samples, before = opt.samples, np.inf
        while True:
            began = time.perf_counter()
            native = self._run(samples, report, cache)
            took = time.perf_counter() - began
            worst = float(np.nanmax(native.error_estimate))
            if (not worst > opt.tol or time.perf_counter() - start + 2.0 * took > opt.max_seconds
                    or worst > 0.9 * before):  # more points no longer help (a deterministic part dominates)
                return native
            samples, before = samples * 2, worst

    def _run(self, samples, report, cache):
        opt, case = self.options, self.case
        report.unit = "blocks of points"
        noiseless_tails = case.network[-1].noise.is_deterministic
        keep = None if case.tails is None or noiseless_tails else readout(case.observable, case.network.widths[-1])
        run = simulate_qmc(case.network, case.input, samples=samples, replicates=opt.replicates,
                           seed=self._seed(), chunk=opt.chunk, marginal_points=opt.marginal_points,
                           joint_points=opt.joint_points, tail=opt.tail, observable=case.observable,
                           report=report, readout=keep, executor=self.executor, sequence=opt.sequence)
        thresholds = case.tails.thresholds if case.tails is not None else ()
        run = with_pushforward(run, case, samples=samples, seed=self._seed(), thresholds=thresholds, cache=cache)
        return dataclasses.replace(run, error_estimate=error_estimate(run), confidence=CONFIDENCE)

    def _summarize(self, native) -> list:
        return list(native.layers)

    def _diagnostics(self, native) -> dict:
        diag = {"mass": 1.0 - native.lost_mass, "lost_mass": native.lost_mass,
                "time_per_layer_s": native.time_per_layer_s, "samples": np.int64(native.samples),
                "replicates": np.int64(native.replicates), "no_density": native.no_density.astype(np.int8),
                "error_estimate": native.error_estimate, "error_estimate_confidence": np.float64(native.confidence)}
        pf = native.pushforward
        if pf is not None:
            widths = self.case.network.widths
            atoms = np.zeros((len(widths), max(widths)))
            for n in pf.layers:
                atoms[n, :widths[n]] = pf.atom[n]
            diag.update(atom_mass=atoms, outer_rule=pf.outer, lines=np.int64(pf.lines),
                        directions=np.int64(pf.directions))
        return diag

    def _accuracy_problems(self, solution) -> list[str]:
        """A layer whose error estimate (at the stated confidence) exceeds ``solver.tol``."""
        est = np.asarray(solution.diagnostics.get("error_estimate", ()), dtype=np.float64)
        tol = self.options.tol
        return [f"layer {k}: error estimate {est[k]:.3g} (at confidence {CONFIDENCE:g}) is above solver.tol = "
                f"{tol:g} (raise solver.samples or solver.max_seconds)" for k in range(est.size) if est[k] > tol]

    def _solution(self, forward, backward, diagnostics, native, native_backward, resumed_from):
        case = self.case
        keep = None if native.readouts is None else readout(case.observable, case.network.widths[-1])
        return QMCSolution(self.name, forward, backward, diagnostics, native, native_backward, resumed_from,
                           readout=keep, last_noise=case.network[-1].noise, width=case.network.widths[-1])

    def _pullback(self, native, report):
        opt, case = self.options, self.case
        points = case_points(case)
        q0 = err = np.zeros(0)
        if len(points):
            report.unit = "blocks of points (q0)"
            q0, err = conditional_mean_qmc(case.network, points, case.observable, samples=opt.samples,
                                           replicates=opt.replicates, seed=self._seed(), chunk=opt.chunk,
                                           report=report, sequence=opt.sequence)
        fields, tails = {}, case.tails
        pf = native.pushforward
        if tails is not None and pf is not None and pf.readout is not None:
            prob, bound = readout_exceedance(pf, tails.thresholds)
            fields = {"thresholds": tails.thresholds, "exceedance": prob, "exceedance_error": bound,
                      "quantile_levels": tails.quantiles, "quantiles": readout_quantile(pf, tails.quantiles)}
        elif tails is not None:
            a, c = readout(case.observable, case.network.widths[-1])
            noise = case.network[-1].noise
            prob, bound = exceedances(native.readouts, a, noise, tails.thresholds)
            fields = {"thresholds": tails.thresholds, "exceedance": prob, "exceedance_error": bound,
                      "quantile_levels": tails.quantiles,
                      "quantiles": quantiles(native.readouts, a, noise, tails.quantiles)}
        summary = BackwardSummary(points, q0, float(native.g_mean), q0_stderr=err, **fields)
        return summary, None, {"mean_stderr": np.float64(native.g_stderr)}



@dataclass(frozen=True)
class QMCSolution(Solution):
    """qmc's result: the stored summaries' laws (cubic splines: conditional
    densities are smooth), and tails from the kept read-outs of the case's
    observable."""

    readout: tuple | None = field(repr=False, default=None)  # (a, c) of the case's observable, where kept
    last_noise: object = field(repr=False, default=None)
    width: int = 0

    def _law(self, n):
        layer = self.forward[n]
        pf = self.native.pushforward
        if pf is not None and n in pf.layers:
            return SummaryLaw(layer)  # linear between abscissae: a hidden ReLU unit's density jumps at 0
        if n > 0 and self.native.no_density[n]:
            return MomentLaw(layer, f"layer {n} follows the noiseless layer {n - 1}: it is a map of the samples "
                             "before it and qmc's conditional-density estimator gives it no density (its mean and "
                             "covariance are estimated)")
        return SummaryLaw(layer, cubic=True)  # conditional densities are smooth: no histogram to ring

    def _readout(self, g) -> np.ndarray:
        """The read-out ``a``; ``g`` must be the case's observable (or None for it)."""
        if self.readout is None:
            raise ValueError("qmc keeps the read-outs that exceedance probabilities and quantiles are computed "
                             "from only when [observable] gives thresholds or quantiles")
        a, c = self.readout
        if g is not None:
            b, d = readout(make_observable(g) if isinstance(g, dict) else g, self.width)
            if not (np.array_equal(a, b) and c == d):
                raise ValueError("qmc's exceedance probabilities are of the case's [observable] only (the run "
                                 "kept that read-out): run the case with this observable")
        return a

    def _pushforward_readout(self, g):
        """The preintegrated read-out when the last layer is noiseless (``g`` the case's observable or None)."""
        pf = self.native.pushforward
        if pf is None or pf.readout is None:
            return None
        if g is not None:
            a, c = pf.readout
            b, d = readout(make_observable(g) if isinstance(g, dict) else g, self.width)
            if not (np.array_equal(a, b) and c == d):
                raise ValueError("qmc's exceedance probabilities are of the case's [observable] only (the run "
                                 "integrated that read-out): run the case with this observable")
        return pf

    def _exceedance(self, g, t):
        pf = self._pushforward_readout(g)
        if pf is not None:
            return readout_exceedance(pf, t)
        return exceedances(self.native.readouts, self._readout(g), self.last_noise, t)

    def _quantile(self, g, q):
        pf = self._pushforward_readout(g)
        if pf is not None:
            return readout_quantile(pf, q)
        return quantiles(self.native.readouts, self._readout(g), self.last_noise, q)


# -- tails: conditional (R)QMC, the last noise integrated in closed form over the kept read-outs -----
def exceedances(readouts: np.ndarray, a: np.ndarray, noise, t) -> tuple[np.ndarray, np.ndarray]:
    """``P(g(X_L) > t)`` averaged over the replicates (rows of the kept
    read-outs ``readouts``, (R, samples)) and ``TAIL_STDERRS`` standard
    errors of it (the spread over the replicates)."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    R, n = readouts.shape
    w = np.full(n, 1.0 / n)
    per = np.array([np.exp(log_tail(w, readouts[r], noise, a, t)) for r in range(R)])
    return per.mean(axis=0), TAIL_STDERRS * per.std(axis=0, ddof=1) / np.sqrt(R)


def quantiles(readouts: np.ndarray, a: np.ndarray, noise, q) -> np.ndarray:
    """Quantiles of the pooled estimate (all replicates: the estimate is their mean)."""
    q = np.asarray(q, dtype=np.float64)
    if q.size == 0:
        return np.zeros(0)
    m = readouts.ravel()
    w = np.full(m.size, 1.0 / m.size)
    spread = float(np.sqrt(m.var() + a**2 @ noise.variance()))
    return invert_tail(lambda s: log_tail(w, m, noise, a, [s])[0],
                       lambda s: log_tail(w, m, noise, a, [s], lower=True)[0], q, float(m.mean()), spread)
