"""``method = "tt"``: tensor trains (SPEC 3.3), :class:`mzpdf.solvers.tt.engine.TTSolver`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...laws import AtomLaw, FunctionLaw, MomentLaw
from ...results import BackwardSummary, LayerSummary, atom_summary
from ..base import JOINT_POINTS, Capabilities, Solution, Solver, noiseless_problem
from ..registry import SOLVERS
from .engine import CROSS_ERROR_FACTOR, TTSolver, predicted_nodes, unsupported
from .mz import reduce_tt
from .options import TTOptions
from .quadrature import is_quadrature_layer

_TAIL = 1e-10  # mass per side beyond the box of a layer's stored marginals
UNRESOLVABLE = 4.0  # refuse a step forecast to need this many times the grid's cap of nodes (trapezoid error ~ tol^(1/16))
MIN_REFUSED_WIDTH = 4  # ... for a step of at least this many variables


@SOLVERS.register("tt")
class TT(Solver):
    """Pre-activation densities as tensor trains by cross approximation:
    dense square or narrowing layers of many neurons (width 32+ with local
    weights); widening and residual layers of up to 3 inputs by quadrature
    over their input (:mod:`mzpdf.solvers.tt.quadrature`), without the backward solve
    or the Mori-Zwanzig reduction."""

    name = "tt"
    options_class = TTOptions
    capabilities = Capabilities(layer_kinds=("dense", "residual"), widening=True, noiseless=True,
                                projections=("chorin",))

    @classmethod
    def _problem(cls, case, keys):
        problem = noiseless_problem(cls.name, case, keys)
        if problem is not None:
            return problem
        found = unsupported(case.network)
        if found is not None:
            n, part, rule, value = found
            key = {"kind": keys.kind, "noise": keys.noise, "weights": keys.shape}[part](n)
            return key, f"{rule} with solver.method = 'tt'", value
        refused = cls._unresolvable(case, keys)
        if refused is not None:
            return refused
        stepped = [n for n, layer in enumerate(case.network)
                   if is_quadrature_layer(layer) or layer.noise.is_deterministic]
        if stepped and (case.observable is not None or case.projection is not None):
            section = "observable" if case.observable is not None else "projection"
            what = "the backward (Koopman) solve" if section == "observable" else "the Mori-Zwanzig reduction"
            return (section, f"is not computed by solver.method = 'tt' for a net with widening, residual or "
                    f"noiseless layers ({keys.layer(stepped[0])} is stepped by quadrature in its own coordinates; "
                    f"{what} on tt works "
                    "in pre-activation coordinates)", case.observable.kind if section == "observable"
                    else case.projection.kind)
        if case.projection is not None and case.projection.reference != "marginal":
            return ("projection.reference", "must be 'marginal' with solver.method = 'tt' (the reference density "
                    "is the dropped marginal of the layer's train)", case.projection.reference)
        return None

    @classmethod
    def _unresolvable(cls, case, keys):
        """Refuse a net whose pre-activation densities are too thin for the
        grid: a dense layer with ill-conditioned weights (random gaussian
        square weights have condition numbers ~N and often far more) maps
        the nearly isotropic law of its input onto a thin slab, and a step
        whose variables need more than ``UNRESOLVABLE`` x the 4 x
        ``solver.nodes`` the grid may take would run for a long time and
        then fail its accuracy checks (width 16, 5 layers: no answer in 25
        minutes; width 4, a step needing 4.4 x the cap: cross error 0.76
        and 56 % of the mass lost). Steps of fewer than
        ``MIN_REFUSED_WIDTH`` variables are not refused: their trains are
        small whatever the ranks, and the run's accuracy checks (exit 3)
        judge them. The forecast is :func:`~mzpdf.solvers.tt.engine.predicted_nodes`."""
        opt = case.solver if isinstance(case.solver, TTOptions) else TTOptions()  # asked for another method's case
        for n, need in predicted_nodes(case.network, case.input, opt):
            if need > UNRESOLVABLE * 4 * opt.nodes and case.network[n].n_in >= MIN_REFUSED_WIDTH:
                cond = np.linalg.cond(case.network[n].weights)
                return (keys.shape(n), f"must map its input onto a pre-activation density the TT grid can resolve "
                        f"with solver.method = 'tt': layer {n} needs about {need} nodes per variable, more than "
                        f"4 x solver.nodes = {4 * opt.nodes} (ill-conditioned weights give a thin slab of density, "
                        "also of high TT rank)", f"condition number {cond:.3g}")
        return None

    @classmethod
    def estimate_bytes(cls, case) -> int:  # cores of every layer at up to 4 x nodes, plus one batched contraction
        opt = case.solver
        return 64 * 2**20 + sum(8 * w * 4 * opt.nodes * opt.max_rank**2 for w in case.network.state_widths)

    @classmethod
    def memory_key(cls, case):
        return "solver.max_rank", "lower solver.max_rank or solver.nodes", case.solver.max_rank

    def _march(self, report):
        return TTSolver(self.options).march(self.case.network, self.case.input, getattr(report, "note", None))

    def _summarize(self, native) -> list:
        return summarize_tt(native, self.options.marginal_points)

    def _diagnostics(self, native) -> dict:
        """Per-layer diagnostics over the given network's layers: a layer
        inside a run of noiseless layers keeps the mass before it, has
        ``no_density`` 1 and zeros for the step's numbers, which the run's
        step records at its last layer."""
        d = dict(native.diagnostics)
        if native.given is None:
            return d
        segments = native.given.segments()
        L = native.given.depth
        ends = [0] + [stop for _, stop in segments]
        out = dict(d)
        for name, value in d.items():
            value = np.asarray(value)
            if value.ndim and value.shape[0] == len(segments) + 1:  # per law (input first)
                full = np.zeros((L + 1,) + value.shape[1:], dtype=value.dtype)
                full[ends] = value
                if name == "mass":
                    for s, (start, stop) in enumerate(segments):
                        full[start + 1:stop] = value[s]
                out[name] = full
            elif value.ndim and value.shape[0] == len(segments):  # per step, at the step's last layer
                full = np.full((L,) + value.shape[1:], np.nan if name == "duality_gap" else 0, dtype=value.dtype)
                full[[stop - 1 for _, stop in segments]] = value
                out[name] = full
        out["no_density"] = np.zeros(L + 1, dtype=np.int8)
        out["no_density"][0] = native.input_law.is_atomic
        for start, stop in segments:
            out["no_density"][start + 1:stop] = 1
        return out

    def _solution(self, forward, backward, diagnostics, native, native_backward, resumed_from):
        return TTSolution(self.name, forward, backward, diagnostics, native, native_backward, resumed_from)

    def _pullback(self, native, report):
        points = self._points()
        back = TTSolver(self.options).pullback(native, self.case.observable, points if len(points) else None,
                                     progress=getattr(report, "note", None))
        summary = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean)
        extra = dict(back.diagnostics)
        extra["duality_gap"] = back.duality_gap
        extra["backward_duality_gap"] = np.float64(back.duality_gap.max())
        return summary, back, extra

    def _accuracy_problems(self, solution):
        """A layer whose cross error estimate is above ``CROSS_ERROR_FACTOR``
        x ``solver.tol`` (normal runs stay within ~30 x: the estimate is a
        relative error on the typical set), or whose ranks reached
        ``solver.max_rank`` with the error still above ``solver.tol``."""
        d, opt, problems = solution.diagnostics, self.options, []
        cross = np.asarray(d.get("cross_error", ()), dtype=np.float64)
        ranks = np.asarray(d.get("tt_max_rank", ()))
        for k in range(cross.size):
            if not np.isfinite(cross[k]) or cross[k] > CROSS_ERROR_FACTOR * opt.tol:
                problems.append(f"layer {k}: TT cross error estimate {cross[k]:.3g} is above "
                                f"{CROSS_ERROR_FACTOR:g} x solver.tol = {opt.tol:g}")
            elif k < ranks.size and ranks[k] >= opt.max_rank and cross[k] > opt.tol:
                problems.append(f"layer {k}: TT ranks reached solver.max_rank = {opt.max_rank} with the cross error "
                                f"estimate {cross[k]:.3g} above solver.tol = {opt.tol:g}")
        return problems

    def _reduce(self, solution, report):
        return reduce_tt(solution.native, self.case.projection, self.options, progress=report)


@dataclass(frozen=True)
class TTSolution(Solution):
    """tt's result: laws from the layers' trains."""

    def _law(self, n):
        native = self.native
        if n == 0 and native.input_law.is_atomic:
            return AtomLaw(native.input_law.mean())
        if native.given is not None:
            if n in native.pushforwards:
                return MomentLaw(self.forward[n], f"layer {n} is the output of the noiseless layer {n - 1}: a "
                                 "map of the last layer with a density, so it has no density of its own (its mean "
                                 f"and covariance are quadratures of that map; give layer {n - 1} noise for a "
                                 "density)")
            n = ([0] + [stop for _, stop in native.given.segments()]).index(n)
        law = native.laws[n]
        mass, mean, cov = law.moments()

        def joint(i, j, x, y):
            if (i, j) != (0, 1):
                raise NotImplementedError(f"tt: the 2-D marginal of neurons 0 and 1 only (asked for {i} and {j})")
            return law.joint01(x, y)

        return FunctionLaw(mass if n else 1.0, mean, cov, law.marginal, joint, "tt")


def summarize_tt(solution, marginal_points: int = 201) -> list[LayerSummary]:
    """Moments and marginals of every layer of a TT solution (marginals on
    ``marginal_points`` equispaced abscissae per neuron spanning the box that
    cuts ``_TAIL`` mass per side)."""
    out = []
    for n, law in enumerate(solution.laws):
        if solution.given is not None and n > 0:  # the layers inside the noiseless run that ends here
            stop = solution.given.segments()[n - 1][1]
            for k in range(solution.given.segments()[n - 1][0] + 1, stop):
                mass, mean, cov, box = solution.pushforwards[k]
                xs = np.stack([np.linspace(lo, hi, marginal_points) for lo, hi in box])
                out.append(LayerSummary(mean, cov, mass, xs, np.full(xs.shape, np.nan), box))
        if n == 0 and solution.input_law.is_atomic:
            out.append(atom_summary(solution.input_law.mean(), marginal_points))
            continue
        mass, mean, cov = law.moments()
        box = law.box(_TAIL)
        xs = np.stack([np.linspace(lo, hi, marginal_points) for lo, hi in box])
        pdf = np.stack([law.marginal(k, xs[k]) for k in range(law.dim)])
        joint = None
        if law.dim >= 2:
            x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in box[:2])
            pdf2 = law.joint01(x, y)
            joint = None if pdf2 is None else (x, y, pdf2)
        out.append(LayerSummary(mean, cov, float(mass) if n else 1.0, xs, pdf, box, joint))
    return out
