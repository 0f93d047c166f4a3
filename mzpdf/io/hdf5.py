"""Result files (HDF5) with the layout of ``shared/INTERFACE.md``.

Files are written never-clobber: to a temporary file in the target directory,
renamed onto the final path only when complete, so that a failed write leaves
nothing behind and an existing result survives unless ``overwrite=True``.
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..diagnostics import describe as describe_diagnostic
from ..errors import ResultFileError
from ..results import BackwardSummary, LayerSummary, MonteCarloLayer, MZSummary, Results
from ._dimensions import attach_dimensions, is_index_scale
from .summary import summarize

__all__ = ["SCHEMA_VERSION", "write_results", "read_results", "describe"]

SCHEMA_VERSION = 1

_DESCRIPTIONS = {
    "mean": "mean of the layer's neurons",
    "cov": "covariance matrix of the layer's neurons",
    "mass": "total probability mass held by the discretization",
    "box": "(N, 2) box the layer was discretized on",
    "x": "(N, m) abscissae, one row per neuron",
    "pdf": "(N, m) marginal density of each neuron at its abscissae",
    "stderr": "(N, m) standard error of the histogram density",
    "mean_stderr": "standard error of the mean",
    "points": "(P, N_0) inputs of the conditional expectation",
    "q0": "E[g(X_L) | X_0 = point]",
    "q0_stderr": "Monte Carlo standard error of q0",
    "pdf_stderr": "(N, m) standard error of the marginal density (sampling methods)",
}

def _dataset(group: h5py.Group, name: str, data, description: str | None = None) -> None:
    """Write ``data`` as ``group[name]``; text (str, bytes, arrays of them) as
    UTF-8 strings of variable length, which h5py's ``asstr()``, netCDF and
    xarray read as str (fixed-length bytes would read back as bytes)."""
    if _is_text(data):
        ds = group.create_dataset(name, data=_text(data), dtype=h5py.string_dtype())
    else:
        ds = group.create_dataset(name, data=data)
    text = description or _DESCRIPTIONS.get(name)
    if text:
        ds.attrs["description"] = text


def _is_text(data) -> bool:
    if isinstance(data, (str, bytes)):
        return True
    array = np.asarray(data)
    return array.dtype.kind in "SU" or (array.dtype.kind == "O" and array.size > 0
                                        and all(isinstance(v, (str, bytes)) for v in array.ravel()))


def _text(data):
    """``data`` (str, bytes, or an array of them) as str, an object array for arrays."""
    if isinstance(data, (str, bytes)):
        return data.decode() if isinstance(data, bytes) else data
    array = np.asarray(data)
    return np.array([v.decode() if isinstance(v, bytes) else v for v in array.ravel()],
                    dtype=object).reshape(array.shape)


def write_results(results: Results, path, overwrite: bool = False) -> Path:
    """Write ``results`` to ``path``; refuse an existing file unless ``overwrite``.

    The file is written to ``.<name>.tmp-<pid>`` beside ``path`` and moved onto
    ``path`` only once complete and closed; on any failure the temporary file
    is removed and the exception re-raised, so no partial result is left.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false (checked again, atomically,
        when the finished file is moved into place).
    """
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise _exists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            _write(f, results)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")


def _move_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` onto ``path`` unless ``path`` exists, atomically where the
    file system has hard links (a file created meanwhile is never replaced)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists(path) from None
    except OSError:  # no hard links here (some network or FAT file systems)
        if path.exists():
            raise _exists(path) from None
        os.replace(tmp, path)


# The tails of an observable (observable.thresholds, observable.quantiles).
_TAILS = {
    "thresholds": "(T,) thresholds t of the exceedance probabilities",
    "exceedance": "(T,) P(g(X_L) > t) under the input law",
    "exceedance_error": "(T,) a bound on the error of each exceedance probability",
    "quantile_levels": "(Q,) levels q of the quantiles",
    "quantiles": "(Q,) t_q with P(g(X_L) <= t_q) = q",
}

_JOINT = ("(m,) abscissae of neuron 0", "(m,) abscissae of neuron 1",
          "(m, m) 2-D marginal density of neurons 0 and 1, [i, j] at (x[i], y[j])")


def _write(f: h5py.File, r: Results) -> None:
    f.attrs["mzpdf_version"] = __version__
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["case_name"] = r.case_name
    f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    f.attrs["wall_time_s"] = float(r.wall_time_s)
    f.attrs["method"] = r.method
    for name, version in _provenance().items():
        f.attrs[name] = version
    f.create_group("case").attrs["toml"] = r.case_toml
    fwd = f.create_group("forward")
    for n, layer in enumerate(r.forward):
        g = fwd.create_group(f"layer_{n:03d}")
        for name in ("mean", "cov", "mass", "box"):
            _dataset(g, name, getattr(layer, name))
        _dataset(g, "marginals/x", layer.marginal_x, _DESCRIPTIONS["x"])
        _dataset(g, "marginals/pdf", layer.marginal_pdf, _DESCRIPTIONS["pdf"])
        if layer.mean_stderr is not None:
            _dataset(g, "mean_stderr", layer.mean_stderr, "(N,) standard error of the mean (sampling methods)")
        if layer.marginal_pdf_stderr is not None:
            _dataset(g, "marginals/pdf_stderr", layer.marginal_pdf_stderr, _DESCRIPTIONS["pdf_stderr"])
        if layer.joint is not None:
            for name, value, text in zip(("x", "y", "pdf"), layer.joint, _JOINT):
                _dataset(g, f"joint/{name}", value, text)
    if r.backward is not None:
        g = f.create_group("backward")
        _dataset(g, "points", r.backward.points)
        _dataset(g, "q0", r.backward.q0)
        if r.backward.q0_stderr is not None:
            _dataset(g, "q0_stderr", r.backward.q0_stderr, "(P,) standard error of q0 (sampling methods)")
        _dataset(g, "mean", r.backward.mean, "E[g(X_L)] under the input law")
        for name, text in _TAILS.items():
            if getattr(r.backward, name) is not None:
                _dataset(g, name, np.asarray(getattr(r.backward, name), dtype=np.float64), text)
    if r.montecarlo is not None or r.montecarlo_backward is not None:
        mc = f.create_group("montecarlo")
        for n, layer in enumerate(r.montecarlo or ()):
            g = mc.create_group(f"layer_{n:03d}")
            g.attrs["samples"] = layer.samples
            for name in ("mean", "mean_stderr", "cov"):
                _dataset(g, name, getattr(layer, name))
            _dataset(g, "marginals/x", layer.marginal_x, _DESCRIPTIONS["x"])
            _dataset(g, "marginals/pdf", layer.marginal_pdf, "(N, m) histogram density, bins centred on x")
            _dataset(g, "marginals/stderr", layer.marginal_stderr, _DESCRIPTIONS["stderr"])
        if r.montecarlo_backward is not None:
            g = mc.create_group("backward")
            _dataset(g, "points", r.montecarlo_backward.points)
            _dataset(g, "q0", r.montecarlo_backward.q0)
            if r.montecarlo_backward_stderr is not None:
                _dataset(g, "q0_stderr", r.montecarlo_backward_stderr)
            _dataset(g, "mean", r.montecarlo_backward.mean, "Monte Carlo E[g(X_L)]")
    if r.mz is not None:
        _write_mz(f.create_group("mz"), r.mz)
    if r.analysis is not None:
        g = f.create_group("analysis")
        for name, value in r.analysis.items():
            if np.ndim(value) == 0:
                g.attrs[name] = float(value)
            else:
                _dataset(g, name, np.asarray(value, dtype=np.float64), _ANALYSIS.get(name))
    diag = f.create_group("diagnostics")
    for name, value in r.diagnostics.items():
        if name == "error_estimate_confidence":  # an attribute of the estimate (INTERFACE.md), below
            continue
        _dataset(diag, name, value if isinstance(value, (str, bytes)) else np.asarray(value),
                 describe_diagnostic(name))
    if "error_estimate" in diag and "error_estimate_confidence" in r.diagnostics:
        diag["error_estimate"].attrs["confidence"] = float(r.diagnostics["error_estimate_confidence"])
    diag.attrs["method"] = r.method
    diag.attrs["method_reason"] = r.method_reason
    diag.attrs["accepted"] = np.int8(1 if r.accepted else 0)  # 0: the run failed its own accuracy checks
    diag.attrs["reason"] = r.reason
    diag.attrs["resumed_from_layer"] = np.int64(r.resumed_from_layer)  # 0: a fresh run
    attach_dimensions(f)  # last: names the axes of every dataset written above


_MZ_ARRAYS = {
    "kept": "kept neuron indices",
    "memory_norm": "[n, lag] norm of the memory kernel of that lag producing layer n+1 (lag 0: streaming "
                   "operator; NaN where lag > n)",
    "kappa": "(L,) norm of the orthogonal dynamics Q_n M_n Q_{n+1}, L2(mu_{n+1}) -> L2(mu_n), per layer",
    "kappa_bound": "(L,) bound on kappa: ||Q_n|| max_correlation_n ||Q_{n+1}|| (NaN where none applies)",
    "dobrushin": "(L,) Dobrushin coefficient bound of each layer (gaussian noise; NaN otherwise)",
    "canonical_correlation": "(L,) top canonical correlation of (X_n, X_n+1) for linear-gaussian layers (else NaN)",
    "error": "(L+1,) L1 distance between reduced and full kept marginals, per layer",
    "truncation_error": "[h, n] L1 distance of kept marginals with memory truncated at lag h",
}
# written when present (a reduction that does not compute them, or an older file, has none)
_MZ_OPTIONAL = {
    "bound": "[n, lag] bound on each kernel's norm, same norm as memory_norm: streaming norm at lag 0, "
             "exit factor x kappas spanned x entry factor at lag >= 1",
    "truncation_estimate": "(L,) for memory h = 0..L-1: upper bound on the largest L1 error of the kept "
                           "marginals (memory = 'auto' takes the first h within tol)",
    "max_correlation": "(L,) norm of M_n on zero-mean functions, L2(mu_{n+1}) -> L2(mu_n)",
}


def _write_mz(g: h5py.Group, mz) -> None:
    for key, value in mz.spec.items():
        g.attrs[key] = np.asarray(value) if isinstance(value, list) else value
    g.attrs["norm"] = mz.norm
    g.attrs["decay_rate"] = float(mz.decay_rate)
    g.attrs["min_memory"] = int(mz.min_memory)
    g.attrs["seconds"] = float(mz.seconds)
    for name, text in _MZ_ARRAYS.items():
        _dataset(g, name, getattr(mz, name), text)
    for name, text in _MZ_OPTIONAL.items():
        if getattr(mz, name, None) is not None:
            _dataset(g, name, np.asarray(getattr(mz, name), dtype=np.float64), text)
    _dataset(g, "memory_length", np.int64(mz.memory_length),
             "the largest lag the stored reduced recursion keeps (given, L-1 for full, chosen for auto)")
    for n, (x, pdf) in enumerate(zip(mz.reduced_x, mz.reduced_pdf)):
        layer = g.create_group(f"reduced/layer_{n:03d}")
        _dataset(layer, "marginals/x", x, "kept neurons' abscissae (rows of /forward marginals/x)")
        _dataset(layer, "marginals/pdf", pdf, "kept neurons' marginal densities from the reduced equation")
    if mz.backward_error is not None:
        _dataset(g, "backward/error", mz.backward_error,
                 "(L+1,) sup distance between reduced and projected full conditional expectations")
        _dataset(g, "backward/truncation_error", mz.backward_truncation_error,
                 "[h, n] that distance with memory truncated at lag h")


_ANALYSIS = {
    "q_mean_field": "(L,) mean-field pre-activation variance of layers 1..L (N -> infinity)",
    "q_measured": "(L,) pre-activation variance mean_i E[(W X + b)_i^2] of layers 1..L at this width",
    "lyapunov": "(k,) top Lyapunov exponents per layer along noisy sample paths",
    "lyapunov_stderr": "(k,) their standard errors across paths",
    "tv": "(L+1,) total variation, largest over neurons, between each layer's marginal and its reference layer's",
    "hellinger": "(L+1,) Hellinger distance, largest over neurons, to the reference layer",
    "kl": "(L+1,) KL divergence (layer || reference), largest over neurons",
}


def _read_analysis(g: h5py.Group) -> dict:
    out = {name: float(value) for name, value in g.attrs.items()}
    out.update({name: ds[()] for name, ds in g.items() if not is_index_scale(ds)})
    return out


def _read_mz(g: h5py.Group) -> MZSummary:
    spec = {}
    for key in ("kind", "keep", "reference", "basis", "memory", "tol"):
        if key in g.attrs:
            value = g.attrs[key]
            spec[key] = value.tolist() if isinstance(value, np.ndarray) else (
                value.item() if isinstance(value, np.generic) else value)
    reduced = _layers(g["reduced"])
    back = g.get("backward")
    return MZSummary(
        spec=spec, kept=g["kept"][()], norm=str(g.attrs["norm"]), memory_norm=g["memory_norm"][()],
        kappa=g["kappa"][()], kappa_bound=g["kappa_bound"][()], dobrushin=g["dobrushin"][()],
        canonical_correlation=g["canonical_correlation"][()], decay_rate=float(g.attrs["decay_rate"]),
        reduced_x=[layer["marginals/x"][()] for layer in reduced],
        reduced_pdf=[layer["marginals/pdf"][()] for layer in reduced],
        error=g["error"][()], truncation_error=g["truncation_error"][()], min_memory=int(g.attrs["min_memory"]),
        backward_error=back["error"][()] if back is not None else None,
        backward_truncation_error=back["truncation_error"][()] if back is not None else None,
        seconds=float(g.attrs.get("seconds", 0.0)),
        memory_length=int(g["memory_length"][()]) if "memory_length" in g else -1,
        **{name: g[name][()] for name in _MZ_OPTIONAL if name in g},
    )


def _provenance() -> dict:
    import platform

    import numba
    import scipy

    return {"python_version": platform.python_version(), "numpy_version": np.__version__,
            "scipy_version": scipy.__version__, "numba_version": numba.__version__,
            "h5py_version": h5py.__version__, "host": platform.node()}


def read_results(path) -> Results:
    """Read a result file written by :func:`write_results`.

    Raises
    ------
    ResultFileError
        For a missing, unreadable, truncated or foreign file, or a newer schema;
        its message is one line naming the path and what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        raise ResultFileError(f"{path}: is a directory, not a result file")
    if not path.is_file():
        raise ResultFileError(f"{path}: no such result file")
    try:
        f = h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError, sometimes others, for non-HDF5 bytes
        raise ResultFileError(f"{path}: not a readable HDF5 file ({_one_line(err)})") from None
    try:
        with f:
            version = f.attrs.get("schema_version")
            if version is None or "forward" not in f:
                raise ResultFileError(f"{path}: not an mzpdf result file (no schema_version or /forward)")
            try:
                version = int(version)
            except (TypeError, ValueError):
                raise ResultFileError(f"{path}: schema_version must be an integer, got {version!r}") from None
            if version > SCHEMA_VERSION:
                raise ResultFileError(f"{path}: schema_version {version} is newer than this mzpdf "
                                      f"({__version__}) reads ({SCHEMA_VERSION}); upgrade mzpdf")
            return _read(f)
    except ResultFileError:
        raise
    except Exception as err:  # truncated or damaged: KeyError, OSError, ValueError, RuntimeError...
        raise ResultFileError(f"{path}: corrupt or incomplete result file ({_one_line(err)})") from None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _layers(group: h5py.Group) -> list[h5py.Group]:
    return [group[name] for name in sorted(k for k in group if k.startswith("layer_"))]


def _read(f: h5py.File) -> Results:
    forward = [LayerSummary(g["mean"][()], g["cov"][()], float(g["mass"][()]), g["marginals/x"][()],
                            g["marginals/pdf"][()], g["box"][()],
                            tuple(g[f"joint/{k}"][()] for k in ("x", "y", "pdf")) if "joint" in g else None,
                            mean_stderr=g["mean_stderr"][()] if "mean_stderr" in g else None,
                            marginal_pdf_stderr=g["marginals/pdf_stderr"][()] if "marginals/pdf_stderr" in g else None)
               for g in _layers(f["forward"])]
    backward = None
    if "backward" in f:
        g = f["backward"]
        backward = BackwardSummary(g["points"][()], g["q0"][()], float(g["mean"][()]),
                                   q0_stderr=g["q0_stderr"][()] if "q0_stderr" in g else None,
                                   **{name: g[name][()] for name in _TAILS if name in g})
    montecarlo = mc_back = mc_err = None
    reference = f.get("montecarlo")  # the group of the sampling reference run
    if reference is not None:
        montecarlo = [MonteCarloLayer(g["mean"][()], g["mean_stderr"][()], g["cov"][()], g["marginals/x"][()],
                                      g["marginals/pdf"][()], g["marginals/stderr"][()], int(g.attrs["samples"]))
                      for g in _layers(reference)] or None
        if "backward" in reference:
            g = reference["backward"]
            mc_back = BackwardSummary(g["points"][()], g["q0"][()], float(g["mean"][()]))
            mc_err = g["q0_stderr"][()] if "q0_stderr" in g else None
    diagnostics = {}
    for name, ds in (f["diagnostics"].items() if "diagnostics" in f else ()):
        if is_index_scale(ds):
            continue
        diagnostics[name] = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
        if name == "error_estimate" and "confidence" in ds.attrs:
            diagnostics["error_estimate_confidence"] = float(ds.attrs["confidence"])
    return Results(
        case_name=str(f.attrs["case_name"]), case_toml=str(f["case"].attrs["toml"]), method=str(f.attrs["method"]),
        forward=forward, backward=backward, montecarlo=montecarlo, montecarlo_backward=mc_back,
        montecarlo_backward_stderr=mc_err, mz=_read_mz(f["mz"]) if "mz" in f else None, diagnostics=diagnostics,
        analysis=_read_analysis(f["analysis"]) if "analysis" in f else None,
        wall_time_s=float(f.attrs["wall_time_s"]), **_acceptance(f.get("diagnostics")),
    )


def _acceptance(diag) -> dict:
    """``accepted``, ``reason``, ``method_reason`` and ``resumed_from_layer``
    from /diagnostics's attributes (files written before they existed count
    as accepted, fresh runs)."""
    attrs = diag.attrs if diag is not None else {}
    return {"accepted": bool(int(attrs.get("accepted", 1))), "reason": str(attrs.get("reason", "")),
            "method_reason": str(attrs.get("method_reason", "")),
            "resumed_from_layer": int(attrs.get("resumed_from_layer", 0))}


def describe(path) -> str:
    """A one-screen summary of a result file (:func:`mzpdf.io.summary.summarize`).

    Raises
    ------
    ResultFileError
        As :func:`read_results`.
    """
    r = read_results(path)
    with h5py.File(path, "r") as f:
        attrs = {k: f.attrs.get(k, "?") for k in ("mzpdf_version", "schema_version", "created")}
    return summarize(r, path, attrs)
