"""``method = "qmc"``: randomized quasi-Monte Carlo with conditional densities
(SPEC 3.4, :mod:`mzpdf.montecarlo.qmc`).

Scrambled Sobol points over the input and the noises; every layer's
marginals (and the joint of neurons 0 and 1) by the conditional-density
estimator ``p_n(y) = mean_i rho_{n-1}(y - F_{n-1}(x_i))``, moments with the
last noise integrated exactly, ``q_0`` at ``[observable].points`` and
``E[g(X_L)]``, each with a standard error from ``replicates`` independent
scramblings (``mean_stderr``, ``marginals/pdf_stderr``, ``/backward/q0_stderr``
in the result file). Any width, layer kind and registered noise law.

Noiseless layers pass the samples through. The layer after one has no
conditional density (it is ``F`` of the previous layer exactly): its
marginals are NaN, ``/diagnostics/no_density`` marks it, its moments are
estimated, and ``law(n).marginal`` raises :class:`SingularDensityError`.
"""
from __future__ import annotations

import numpy as np

from ..options import QMCOptions
from ..results import BackwardSummary
from .base import SOLVERS, Capabilities, MomentLaw, Solver, SummaryLaw, case_points


# conditional-density evaluations per second on 2 cores (width 64, 5 tanh layers, 2^17 points: 8.5 s a layer)
EVALUATIONS_PER_SECOND = 2e8


@SOLVERS.register("qmc")
class QuasiMonteCarlo(Solver):
    """Randomized QMC: any width, layer kind, noise (also none); smooth
    conditional-density marginals with standard errors."""

    name = "qmc"
    checks_lost_mass = False
    options_class = QMCOptions
    capabilities = Capabilities(noise_kinds=("gaussian", "uniform", "laplace"), noiseless=True, resume=False)
    auto_priority = 10
    auto_description = "randomized quasi-Monte Carlo with standard errors, any width and layer"

    @classmethod
    def estimate_seconds(cls, case) -> float:
        """Conditional-density evaluations (every point of every replicate
        against each layer's marginal abscissae, joint grid and weights) at
        ``EVALUATIONS_PER_SECOND``."""
        opt, net = case.solver, case.network
        points = opt.samples * opt.replicates
        work = sum(layer.n_out * (opt.marginal_points + layer.n_in) + opt.joint_points**2 for layer in net)
        return 0.5 + points * work / EVALUATIONS_PER_SECOND

    @classmethod
    def _problem(cls, case, keys):
        from ..montecarlo.qmc import INPUT_KINDS, INVERSE_CDF

        if case.input.kind not in INPUT_KINDS:
            return ("input.kind", f"must be one of {list(INPUT_KINDS)} with solver.method = {cls.name!r}",
                    case.input.kind)
        for n, layer in enumerate(case.network):
            if not layer.noise.is_deterministic and layer.noise.kind not in INVERSE_CDF:
                return (keys.noise(n), f"must be one of {list(INVERSE_CDF)} with solver.method = {cls.name!r} (a noise "
                        "law qmc has an inverse CDF for)", layer.noise.kind)
        return None

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

    def _propagate(self, report, states, on_layer):
        from ..montecarlo.qmc import simulate_qmc

        opt = self.options
        report.unit = "blocks of points"
        return simulate_qmc(self.case.network, self.case.input, samples=opt.samples, replicates=opt.replicates,
                            seed=self._seed(), chunk=opt.chunk, marginal_points=opt.marginal_points,
                            joint_points=opt.joint_points, tail=opt.tail, observable=self.case.observable,
                            report=report)

    def _summarize(self, native) -> list:
        return list(native.layers)

    def _diagnostics(self, native) -> dict:
        return {"mass": 1.0 - native.lost_mass, "lost_mass": native.lost_mass,
                "time_per_layer_s": native.time_per_layer_s, "samples": np.int64(native.samples),
                "replicates": np.int64(native.replicates), "no_density": native.no_density.astype(np.int8)}

    def _law(self, solution, n):
        layer = solution.forward[n]
        if n > 0 and solution.native.no_density[n]:
            return MomentLaw(layer, f"layer {n} follows the noiseless layer {n - 1}: it is a map of the samples "
                             "before it and qmc's conditional-density estimator gives it no density (its mean and "
                             "covariance are estimated)")
        return SummaryLaw(layer)

    def _pullback(self, native, report):
        from ..montecarlo.qmc import conditional_mean_qmc

        opt, case = self.options, self.case
        points = case_points(case)
        q0 = err = np.zeros(0)
        if len(points):
            report.unit = "blocks of points (q0)"
            q0, err = conditional_mean_qmc(case.network, points, case.observable, samples=opt.samples,
                                           replicates=opt.replicates, seed=self._seed(), chunk=opt.chunk,
                                           report=report)
        summary = BackwardSummary(points, q0, float(native.g_mean), q0_stderr=err)
        return summary, None, {"mean_stderr": np.float64(native.g_stderr)}
