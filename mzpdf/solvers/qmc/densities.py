"""What qmc adds to a run of :func:`~mzpdf.solvers.qmc.engine.simulate_qmc`:
the densities of the layers right after noiseless layers and the tails of a
noiseless output, by preintegration (:mod:`mzpdf.solvers.qmc.pushforward`),
every layer's error estimate in ``solver.tol``'s meaning
(:mod:`mzpdf.solvers.confidence`), and the tails of a preintegrated read-out."""
from __future__ import annotations

import dataclasses

import numpy as np

from ...network.inputs import GaussianInput, InputLaw
from ...network.network import Network
from ...results import LayerSummary
from ..confidence import CONFIDENCE, layer_error, quantile_factor, second_difference_error
from .pushforward import ACTIVATION_CODES, PushforwardRun, preintegrate, quadrature_dims

__all__ = ["after_noiseless", "line_problem", "noiseless_readout", "outer_rule", "with_pushforward", "error_estimate",
           "readout_exceedance", "readout_quantile"]

TAIL_FACTOR = 4.0  # exceedance_error (sobol outer rule): this many standard errors over the replicates


def line_problem(network: Network, law: InputLaw) -> str | None:
    """Why the law after the noiseless layers of ``network`` cannot be computed by
    preintegration under ``law``, or None."""
    if not isinstance(law, GaussianInput):
        return (f"the density of a noiseless layer's output is computed by preintegration along a gaussian "
                f"input direction; input kind {law.kind!r} is not taken (give a gaussian input, or noise to the "
                "layers)")
    for layer in network:
        if layer.kind not in ("dense", "residual"):  # layernorm, softmax: maps of the whole layer vector
            return f"a layer of kind {layer.kind!r} has no line kernel"
        if layer.activation.name not in ACTIVATION_CODES:
            return f"activation {layer.activation.name!r} has no line kernel"
    return None


def after_noiseless(network) -> tuple:
    """The layers n >= 1 right after a noiseless layer (no conditional density)."""
    return tuple(n for n in range(1, network.depth + 1) if network[n - 1].noise.is_deterministic)


def noiseless_readout(case):
    """``(a, c)`` of the read-out whose tails preintegration computes: the case's
    affine observable, else the one output neuron; None when the last layer has
    noise (its tails are the closed-form conditional ones) or there is none."""
    net = case.network
    if not net[-1].noise.is_deterministic:
        return None
    if case.observable is not None and hasattr(case.observable, "readout"):
        try:
            return case.observable.readout(net.widths[-1])
        except ValueError:  # not affine (argmax, CaseError included): no read-out to preintegrate
            return None
    return (np.ones(1), 0.0) if net.widths[-1] == 1 else None


def outer_rule(case) -> str:
    """The outer rule preintegration takes: ``solver.outer``, and for ``auto``
    quadrature where the outer integral has at most 2 dimensions and no noise."""
    outer = case.solver.outer
    if outer != "auto":
        return outer
    layers = after_noiseless(case.network)
    if not layers or not isinstance(case.input, GaussianInput):
        return "sobol"
    last = case.network.depth if noiseless_readout(case) is not None else max(layers)
    dims = quadrature_dims(case.network, case.input, last)
    return "quadrature" if dims is not None and dims <= 2 else "sobol"


def with_pushforward(run, case, *, samples: int, seed: int, thresholds=(), cache=None):
    """``run`` with the densities of the layers after noiseless layers (and the
    read-out's tails) from preintegration, where the input is gaussian; ``run``
    itself otherwise. ``cache`` (a dict) keeps a quadrature result across calls."""
    opt, net = case.solver, case.network
    layers = after_noiseless(net)
    if not layers or line_problem(net, case.input) is not None:
        return run
    outer = outer_rule(case)
    key = ("quadrature",) if outer == "quadrature" else ("sobol", samples)
    if cache is not None and key in cache:
        pf = cache[key]
    else:
        pf = preintegrate(net, case.input, layers=layers, readout=noiseless_readout(case), thresholds=thresholds,
                          samples=samples, replicates=opt.replicates, seed=seed, marginal_points=opt.marginal_points,
                          directions=opt.directions, outer=outer, tol=opt.tol, threads=opt.threads,
                          sequence=opt.sequence)
        if cache is not None:
            cache[key] = pf
    summaries = list(run.layers)
    no_density = run.no_density.copy()
    lost = run.lost_mass.copy()
    for n in pf.layers:
        x, pdf = pf.x[n], pf.pdf[n]
        h = x[:, 1] - x[:, 0]
        outside = np.maximum(1.0 - pf.atom[n] - pdf.sum(axis=1) * h, 0.0)
        box = np.column_stack([x[:, 0] - h / 2, x[:, -1] + h / 2])
        old = summaries[n]
        mean, mean_se, var, _ = pf.moments[n]
        sd = np.sqrt(np.maximum(np.diag(old.cov), 0.0))
        corr = old.cov / np.where(np.outer(sd, sd) > 0, np.outer(sd, sd), np.inf)
        np.fill_diagonal(corr, 1.0)
        cov = corr * np.sqrt(np.outer(var, var))  # the preintegrated variances, the sampled correlations
        summaries[n] = LayerSummary(mean, cov, 1.0 - float(outside.max()), x, pdf, box, None,
                                    mean_stderr=mean_se, marginal_pdf_stderr=pf.pdf_stderr[n])
        no_density[n] = False
        lost[n] = float(outside.max())
    return dataclasses.replace(run, layers=summaries, no_density=no_density, lost_mass=lost, pushforward=pf)


def error_estimate(run) -> np.ndarray:
    """(L + 1,) the error estimate of every layer at ``CONFIDENCE`` (module doc
    of :mod:`mzpdf.solvers.confidence`): densities from their standard errors
    over the replicates, the evaluation error of their abscissae and the mass
    beyond them; a quadrature outer rule's densities from the difference of
    its last two rules; moments from theirs."""
    z = quantile_factor(CONFIDENCE, run.replicates)
    pf = run.pushforward
    out = np.zeros(len(run.layers))
    out[0] = max(1.0 - run.layers[0].mass, 0.0)
    for n in range(1, len(run.layers)):
        layer = run.layers[n]
        std = np.sqrt(np.maximum(np.diag(layer.cov), 0.0))
        var_se = np.diag(run.cov_stderr[n])
        parts = dict(mean_stderr=layer.mean_stderr, var_stderr=var_se)
        x = layer.marginal_x
        h = x[:, 1] - x[:, 0] if x.shape[1] > 1 else np.zeros(x.shape[0])
        if pf is not None and n in pf.layers:
            parts.update(var_stderr=pf.moments[n][3])
            evaluation = pf.evaluation_error[n] + (pf.pdf_error[n] if pf.pdf_error is not None else 0.0)
            outside = np.maximum(1.0 - pf.atom[n] - layer.marginal_pdf.sum(axis=1) * h, 0.0)
            parts.update(pdf_stderr=pf.pdf_stderr[n], h=h, evaluation=evaluation, outside=outside)
        elif not run.no_density[n]:
            parts.update(pdf_stderr=layer.marginal_pdf_stderr, h=h,
                         evaluation=second_difference_error(layer.marginal_pdf, h),
                         outside=np.full(std.size, run.lost_mass[n]))
        out[n] = layer_error(z, std, **parts)
    return out


def readout_exceedance(run: PushforwardRun, t) -> tuple[np.ndarray, np.ndarray]:
    """``P(g > t)`` and a bound on its error: at the thresholds the run was given,
    computed exactly along the lines (error: ``TAIL_FACTOR`` standard errors over
    the replicates, or the quadrature rules' difference); elsewhere the survival
    function on the read-out's abscissae, interpolated linearly in its log (and
    its error so), 0 above them and 1 below."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    factor = 1.0 if run.outer == "quadrature" else TAIL_FACTOR
    prob, err = np.empty(t.shape), np.empty(t.shape)
    x, surv, se = run.readout_x, run.readout_survival, run.readout_survival_stderr
    with np.errstate(divide="ignore"):
        log_s = np.log(np.maximum(surv, 0.0))
    for i, ti in enumerate(t):
        hit = np.flatnonzero(run.thresholds == ti)
        if hit.size:
            prob[i], err[i] = run.exceedance[hit[0]], factor * run.exceedance_stderr[hit[0]]
        elif ti < x[0]:
            prob[i], err[i] = 1.0, 1.0 - surv[0] + factor * se[0]
        elif ti >= x[-1]:
            prob[i], err[i] = 0.0, surv[-1] + factor * se[-1]
        else:
            prob[i] = float(np.exp(np.interp(ti, x, log_s)))
            err[i] = factor * float(np.interp(ti, x, se)) if run.outer != "quadrature" else run.readout_error
    return prob, err


def readout_quantile(run: PushforwardRun, q) -> np.ndarray:
    """Quantiles of the read-out from its CDF (levels below 1/2) or survival
    function (above) on its abscissae, interpolated linearly in their logs."""
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    x = run.readout_x
    out = np.empty(q.shape)
    for i, level in enumerate(q):
        tail, target = (run.readout_survival, 1.0 - level) if level >= 0.5 else (run.readout_cdf, level)
        tail = np.maximum(tail, 0.0)
        inside = np.flatnonzero((tail[:-1] - target) * (tail[1:] - target) <= 0)
        if not inside.size or target <= 0.0:
            raise ValueError(f"observable.quantiles: level {level!r} is beyond the read-out's abscissae "
                             f"[{x[0]:.6g}, {x[-1]:.6g}]")
        k = inside[0] if level < 0.5 else inside[-1]
        a, b = tail[k], tail[k + 1]
        if a > 0 and b > 0 and a != b:
            lam = (np.log(target) - np.log(a)) / (np.log(b) - np.log(a))
        else:
            lam = 0.0 if a == b else (target - a) / (b - a)
        out[i] = x[k] + lam * (x[k + 1] - x[k])
    return out
