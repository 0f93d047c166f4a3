"""The ``[analysis]`` case section: depth-theory diagnostics of a run.

Keys (all optional):

- ``mean_field = true``: the mean-field maps of the network's
  ``[network.random]`` parameters (activation, sigma_w, sigma_b, gaussian
  noise std): ``q_star``, ``c_star``, ``chi_1``, ``chi_q``, ``chi_c``,
  ``xi_q``, ``xi_c``, ``critical_sigma_w`` (at this sigma_b), and per layer
  the mean-field pre-activation variance ``q_mean_field`` beside the one the
  solver measured at this finite width, ``q_measured``
  (``mean_i E[(W X + b)_i^2]``).
- ``lyapunov = k``: the top-``k`` Lyapunov exponents along
  ``lyapunov_samples`` (256) noisy sample paths seeded by ``[case].seed``.
- ``distances = "last" | "previous"``: per layer, the largest over neurons
  of TV, Hellinger and KL between the neuron's marginal and the same
  neuron's marginal in the last layer (a proxy for the stationary law of a
  deep net) or in the previous layer; the cut-off of the TV profile.
  Needs a method with densities (not montecarlo) and equal widths of the compared layers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import integer
from ..errors import CaseError
from .distances import cutoff, distances_1d
from .lyapunov import lyapunov_exponents
from .meanfield import MeanField, critical_sigma_w

__all__ = ["AnalysisSpec", "run_analysis"]

KEYS = ("mean_field", "lyapunov", "lyapunov_samples", "distances")


@dataclass(frozen=True)
class AnalysisSpec:
    mean_field: bool = False
    lyapunov: int = 0
    lyapunov_samples: int = 256
    distances: str = "none"

    @classmethod
    def from_table(cls, table: dict, network_table: dict, widths, key: str = "analysis") -> "AnalysisSpec":
        for name in table:
            if name not in KEYS:
                raise CaseError(f"{key}.{name}", f"is not a key of [analysis] (valid: {sorted(KEYS)})", table[name])
        mean_field = table.get("mean_field", False)
        if not isinstance(mean_field, bool):
            raise CaseError(f"{key}.mean_field", "must be true or false", mean_field)
        if mean_field:
            random = network_table.get("random")
            noise = (random or {}).get("noise") or {}
            if random is None:
                raise CaseError(f"{key}.mean_field", "needs [network.random] (mean field describes i.i.d. random "
                                                     "weights of given sigma_w, sigma_b)", True)
            if noise.get("kind", "gaussian") not in ("gaussian", "none") or np.ndim(noise.get("std", 0.0)) != 0:
                raise CaseError(f"{key}.mean_field", "needs gaussian noise with one std for every neuron "
                                                     "(or none)", noise)
        lyapunov = integer(table.get("lyapunov", 0), f"{key}.lyapunov", 0)
        if lyapunov > min(widths):
            raise CaseError(f"{key}.lyapunov", f"must be <= the narrowest layer ({min(widths)})", lyapunov)
        samples = integer(table.get("lyapunov_samples", 256), f"{key}.lyapunov_samples", 2)
        distances = table.get("distances", "none")
        if distances not in ("none", "last", "previous"):
            raise CaseError(f"{key}.distances", "must be 'none', 'last' or 'previous'", distances)
        if distances == "last" and len(set(widths)) != 1 or distances == "previous" and len(set(widths[1:])) > 1:
            raise CaseError(f"{key}.distances", "compares neuron by neuron: the compared layers must have equal "
                                                "widths", list(widths))
        return cls(mean_field, lyapunov, samples, distances)

    def to_dict(self) -> dict:
        return {"mean_field": self.mean_field, "lyapunov": self.lyapunov,
                "lyapunov_samples": self.lyapunov_samples, "distances": self.distances}


def _mean_field(case, forward) -> dict:
    r = case.table["network"]["random"]
    noise = r.get("noise") or {}
    std = float(noise.get("std", 0.0)) if noise.get("kind", "gaussian") == "gaussian" else 0.0
    act = case.network[0].activation
    mf = MeanField(act, float(r.get("sigma_w", 1.0)), float(r.get("sigma_b", 0.0)), std)
    out = {"q_star": mf.fixed_q(), "chi_1": mf.chi_1(), "chi_q": mf.chi_q(), "c_star": mf.fixed_c(),
           "chi_c": mf.chi_c()}
    out["xi_q"], out["xi_c"] = mf.depth_scales()
    try:
        out["critical_sigma_w"] = critical_sigma_w(act, mf.sigma_b, std)
    except ValueError:  # no sign change in the bracket
        out["critical_sigma_w"] = float("nan")
    x0 = forward[0]
    q = [mf.sigma_w**2 * float(np.trace(x0.cov) + x0.mean @ x0.mean) / x0.mean.size + mf.sigma_b**2]
    for _ in range(case.network.depth - 1):
        q.append(mf.q_map(q[-1]))
    measured = []
    for layer, summary in zip(case.network, forward[:-1]):
        W, b = layer.weights, layer.bias
        m = W @ summary.mean + b
        measured.append(float(np.mean(np.einsum("ij,jk,ik->i", W, summary.cov, W) + m * m)))
    out["q_mean_field"] = np.array(q)
    out["q_measured"] = np.array(measured)
    return out


def _distances(spec, marginal, boxes, depth: int, widths) -> dict:
    tv, hel, kl = (np.full(depth + 1, np.nan) for _ in range(3))
    for n in range(depth + 1):
        ref = depth if spec.distances == "last" else n - 1
        if ref < 0 or marginal(n, 0) is None or marginal(ref, 0) is None or widths[n] != widths[ref]:
            continue
        best = {"tv": 0.0, "hellinger": 0.0, "kl": 0.0}
        for k in range(widths[n]):
            lo = min(boxes[n][k, 0], boxes[ref][k, 0])
            hi = max(boxes[n][k, 1], boxes[ref][k, 1])
            d = distances_1d(marginal(n, k), marginal(ref, k), lo, hi)
            best = {name: max(best[name], d[name]) for name in best}
        tv[n], hel[n], kl[n] = best["tv"], best["hellinger"], best["kl"]
    out = {"tv": tv, "hellinger": hel, "kl": kl}
    finite = tv[np.isfinite(tv)]
    if spec.distances == "last" and finite.size:
        c = cutoff(np.where(np.isfinite(tv), tv, 1.0))
        out.update({"cutoff_depth": c["depth"], "cutoff_window": c["window"]})
    return out


def run_analysis(case, solution) -> dict:
    """The ``[analysis]`` diagnostics of a finished run (``solution``: its
    :class:`mzpdf.solvers.Solution`; distances need a method with densities)."""
    spec = case.analysis
    forward = solution.forward
    out: dict = {}
    if spec.mean_field:
        out.update(_mean_field(case, forward))
    if spec.lyapunov:
        res = lyapunov_exponents(case.network, case.input, k=spec.lyapunov, samples=spec.lyapunov_samples,
                                 seed=case.seed)
        out["lyapunov"], out["lyapunov_stderr"] = res["exponents"], res["stderr"]
    if spec.distances != "none" and solution is not None:
        def marginal(n, k):
            if n == 0 and case.input.is_atomic:
                return None
            law = solution.law(n)
            return lambda x: law.marginal(k, x)
        boxes = [layer.box for layer in forward]
        out.update(_distances(spec, marginal, boxes, case.network.depth, case.network.widths))
    return out
