"""The one-screen summary of a result (``mzpdf info``), and the one line
``mzpdf run`` prints about the file it wrote. Formatting only: the caller
reads the file (:func:`mzpdf.io.hdf5.describe`)."""
from __future__ import annotations

import numpy as np

from ..options import is_auto
from ..results import Results

__all__ = ["headline", "summarize"]

_MAX_ROWS = 12  # rows of a table shown before eliding the middle
_MAX_ENTRIES = 8  # entries of a vector shown before eliding the middle (numpy's threshold)
# The footnote of a sampling method's table: its "lost_mass" is not mass a discretization cut off.
_BEYOND = ("beyond x: the largest share, over neurons, of the layer's sampled law outside its stored abscissae "
           "(the range of its densities); it is not lost: means, standard errors and covariances use every sample")


def headline(r: Results) -> str:
    """One line: the case, the method, the run's size and time, and whether it
    met its own accuracy checks."""
    verdict = "accepted (it met its own accuracy checks)" if r.accepted else f"NOT ACCEPTED: {r.reason}"
    return (f"case {r.case_name!r}, method {r.method}, {r.depth} layers, widths "
            f"{[layer.mean.size for layer in r.forward]}, {r.wall_time_s:.2f} s; {verdict}")


def summarize(r: Results, path, attrs: dict) -> str:
    """A one-screen summary of ``r`` read from ``path`` (long tables are elided
    in the middle); ``attrs`` holds the file's ``mzpdf_version``,
    ``schema_version`` and ``created``."""
    widths = [layer.mean.size for layer in r.forward]
    lines = [f"{path}: case {r.case_name!r}, method {r.method}, {r.depth} layers, widths {widths}, "
             f"{r.wall_time_s:.2f} s",
             f"written {attrs['created']} by mzpdf {attrs['mzpdf_version']} (schema {attrs['schema_version']})"]
    if r.method_reason:
        lines.append(f"method {r.method}: {r.method_reason}")
    if r.resumed_from_layer:
        lines.append(f"resumed from a checkpoint after layer {r.resumed_from_layer}")
    if not r.accepted:
        lines.append(f"NOT ACCEPTED: the run failed its own accuracy checks: {r.reason}")
    d = r.diagnostics
    lines += _layer_table(r)
    gap = np.asarray(d.get("duality_gap", np.zeros(0)), dtype=float)
    if gap.size and np.any(np.isfinite(gap)):
        lines.append(f"duality gap (max over layers): {np.nanmax(gap):.1e}")
    if "tt_max_rank" in d:
        err = np.asarray(d.get("cross_error", np.zeros(0)))
        lines.append(f"TT ranks (largest per layer): {np.asarray(d['tt_max_rank']).tolist()}; cross error "
                     f"estimate (max over layers): {np.max(err) if err.size else 0.0:.1e}")
    if r.backward is not None:
        back = r.backward
        lines.append(f"E[g(X_L)] = {back.mean:.8g}{_pm(d.get('mean_stderr'))}")
        lines += _describe_tails(back)
        err = back.q0_stderr if back.q0_stderr is not None and np.shape(back.q0_stderr) == np.shape(back.q0) \
            else [None] * len(back.q0)
        lines += _elide([f"  q0({_vector(p, 3)}) = {q:.8g}{_pm(e)}" for p, q, e in zip(back.points, back.q0, err)])
    if r.montecarlo is not None:
        lines.append(f"Monte Carlo reference: {r.montecarlo[0].samples} samples")
    if r.montecarlo_backward is not None:
        mcb, err = r.montecarlo_backward, r.montecarlo_backward_stderr
        lines.append(f"  MC E[g(X_L)] = {mcb.mean:.6g}{_pm(d.get('montecarlo_mean_stderr', d.get('mean_stderr')))}")
        if err is None or np.shape(err) != np.shape(mcb.q0):
            err = np.full(np.shape(mcb.q0), np.nan)
        lines += _elide([f"  MC q0({_vector(p, 3)}) = {q:.6g}{_pm(e)}" for p, q, e in zip(mcb.points, mcb.q0, err)])
    if d.get("warnings"):
        lines.append("numerical-health warnings:")
        lines += _elide([f"  {w}" for w in str(d["warnings"]).splitlines()])
    if r.mz is not None:
        lines += _describe_mz(r.mz)
    if r.analysis:
        lines += _describe_analysis(r.analysis)
    return "\n".join(lines)


def _layer_table(r: Results) -> list[str]:
    """One row a layer: mass and lost mass (a sampling method: the share
    beyond its abscissae instead, with a footnote), the means (with ``±`` their
    standard errors where the file has them) and the standard deviations."""
    d = r.diagnostics
    lost = np.asarray(d.get("lost_mass", np.zeros(0)), dtype=np.float64)
    mass = np.asarray(d.get("mass", np.zeros(0)), dtype=np.float64)  # before any normalization: the true mass
    sampled = any(layer.mean_stderr is not None for layer in r.forward)
    means = [_estimates(layer.mean, layer.mean_stderr) for layer in r.forward]
    stds = [_vector(np.sqrt(np.clip(np.diag(np.atleast_2d(layer.cov)), 0.0, None)), 4) for layer in r.forward]
    title = "mean ± standard error" if sampled else "mean"
    width = max([len(title)] + [len(m) for m in means])
    rows = []
    for n, layer in enumerate(r.forward):
        share = f"{lost[n]:.1e}" if lost.ndim == 1 and n < lost.size else ""
        if sampled:
            first = f"{n:>5} {share:>9}"
        else:
            m = mass[n] if mass.ndim == 1 and n < mass.size else layer.mass
            first = f"{n:>5} {m:12.9f} {share:>10}"
        rows.append(f"{first}  {means[n]:<{width}}  {stds[n]}")
    header = f"{'layer':>5} {'beyond x':>9}" if sampled else f"{'layer':>5} {'mass':>12} {'lost mass':>10}"
    return [f"{header}  {title:<{width}}  std"] + _elide(rows) + ([_BEYOND] if sampled else [])


def _estimates(mean: np.ndarray, stderr: np.ndarray | None) -> str:
    """``[m_1 ± e_1, ...]`` (the middle elided beyond 8 entries), or the means alone."""
    if stderr is None or np.shape(stderr) != np.shape(mean):
        return _vector(mean, 4)
    items = [_estimate(m, e) for m, e in zip(np.ravel(mean), np.ravel(stderr))]
    if len(items) > _MAX_ENTRIES:
        items = items[:3] + ["..."] + items[-3:]
    return "[" + ", ".join(items) + "]"


def _estimate(mean: float, err: float) -> str:
    """``m ± e`` with ``m`` to one digit past the error's first, at most the 4
    decimals of the table's other means (``0.087 ± 0.03``, ``-0.9352 ± 3e-07``)."""
    if not (np.isfinite(err) and err > 0):
        return f"{mean:.4g}{_pm(err)}"
    digits = int(np.clip(1 - np.floor(np.log10(err)), 0, 4))
    return f"{mean:.{digits}f}{_pm(err)}"


def _pm(err) -> str:
    """`` ± e`` for a finite scalar standard error, else nothing."""
    if err is None or np.ndim(err) != 0 or not np.isfinite(float(err)):
        return ""
    return f" ± {float(err):.1g}"


def _describe_analysis(a: dict) -> list[str]:
    lines = []
    if "q_star" in a:
        lines.append(f"mean field: q* = {a['q_star']:.6g}, chi_1 = {a['chi_1']:.6g}, c* = {a['c_star']:.6g}, "
                     f"depth scales xi_q = {a['xi_q']:.4g}, xi_c = {a['xi_c']:.4g}, critical sigma_w = "
                     f"{a['critical_sigma_w']:.6g}")
    if "lyapunov" in a:
        lines.append(f"Lyapunov exponents per layer: {_vector(np.asarray(a['lyapunov']), 4)}")
    if "tv" in a:
        lines.append(f"total variation to the reference layer by depth: {_vector(np.asarray(a['tv']), 3)}")
        if "cutoff_depth" in a:
            lines.append(f"  cut-off at depth {a['cutoff_depth']:.3g} (window {a['cutoff_window']:.3g} layers)")
    return lines


def _describe_tails(back) -> list[str]:
    lines = []
    if back.thresholds is not None and np.size(back.thresholds):
        lines.append(f"  {'threshold t':>14} {'P(g > t)':>13} {'error bound':>12}")
        lines += _elide([f"  {t:14.8g} {p:13.6e} {e:12.2e}" for t, p, e in
                         zip(back.thresholds, back.exceedance, back.exceedance_error)])
    if back.quantiles is not None and np.size(back.quantiles):
        lines += _elide([f"  quantile at level {q:.12g}: {t:.10g}" for q, t in
                         zip(back.quantile_levels, back.quantiles)])
    return lines


def _describe_mz(mz) -> list[str]:
    spec = mz.spec
    detail = f"reference {spec.get('reference')}" if spec.get("kind") == "chorin" else f"basis {spec.get('basis')}"
    lines = [f"Mori-Zwanzig: {spec.get('kind')} projection onto neurons {[int(k) for k in mz.kept]}, {detail}, "
             f"memory {spec.get('memory')}; norm {mz.norm}",
             f"{'layer':>5} {'kappa':>9} {'bound':>9} {'L1 error':>9}  memory norm by lag 0, 1, 2, ..."]
    rows = []
    for n in range(mz.kappa.size):
        norms = mz.memory_norm[n, : n + 1]
        rows.append(f"{n + 1:>5} {mz.kappa[n]:9.3g} {mz.kappa_bound[n]:9.3g} {mz.error[n + 1]:9.2e}  "
                    f"{_vector(norms, 2)}")
    lines += _elide(rows)
    worst = np.max(mz.truncation_error, axis=1)
    lines.append("largest L1 error with memory h = 0, 1, ...: [" + ", ".join(f"{e:.1e}" for e in worst[:8])
                 + (", ...]" if worst.size > 8 else "]"))
    tol = spec.get("tol")
    shallow = (f"memory h = {mz.min_memory} keeps every layer within {tol:g}" if mz.min_memory >= 0
               else f"no truncation keeps every layer within {tol:g}")
    lines.append(f"decay rate of memory with lag: {mz.decay_rate:.3g}; {shallow}")
    if mz.truncation_estimate is not None:
        lines.append("estimated L1 error (upper bound) with memory h = 0, 1, ...: ["
                     + ", ".join(f"{e:.1e}" for e in mz.truncation_estimate[:8])
                     + (", ...]" if mz.truncation_estimate.size > 8 else "]"))
    if mz.memory_length >= 0:
        lines.append(f"memory length used: h = {mz.memory_length}"
                     + (f" (chosen by memory = 'auto' for tol {tol:g})" if is_auto(spec.get("memory")) else ""))
    return lines


def _vector(v: np.ndarray, precision: int) -> str:
    return np.array2string(np.asarray(v), precision=precision, separator=", ", suppress_small=True,
                           threshold=8, edgeitems=3, max_line_width=10_000)


def _elide(rows: list[str]) -> list[str]:
    if len(rows) <= _MAX_ROWS:
        return rows
    half = _MAX_ROWS // 2
    return rows[:half] + [f"  ... ({len(rows) - 2 * half} more)"] + rows[-half:]
