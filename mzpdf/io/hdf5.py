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
from ..errors import ResultFileError
from ..results import BackwardSummary, LayerSummary, MonteCarloLayer, Results

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
}


def _dataset(group: h5py.Group, name: str, data, description: str | None = None) -> None:
    ds = group.create_dataset(name, data=data)
    text = description or _DESCRIPTIONS.get(name)
    if text:
        ds.attrs["description"] = text


def write_results(results: Results, path, overwrite: bool = False) -> Path:
    """Write ``results`` to ``path``; refuse an existing file unless ``overwrite``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            _write(f, results)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
    if r.backward is not None:
        g = f.create_group("backward")
        _dataset(g, "points", r.backward.points)
        _dataset(g, "q0", r.backward.q0)
        _dataset(g, "mean", r.backward.mean, "E[g(X_L)] under the input law")
    if r.montecarlo is not None:
        mc = f.create_group("montecarlo")
        for n, layer in enumerate(r.montecarlo):
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
            _dataset(g, "q0_stderr", r.montecarlo_backward_stderr)
            _dataset(g, "mean", r.montecarlo_backward.mean, "Monte Carlo E[g(X_L)]")
    diag = f.create_group("diagnostics")
    for name, value in r.diagnostics.items():
        _dataset(diag, name, np.asarray(value))


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
        For a missing, unreadable, truncated or foreign file, or a newer schema.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"{path}: no such result file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ResultFileError(f"{path}: not a readable HDF5 file ({err})") from None
    try:
        with f:
            version = f.attrs.get("schema_version")
            if version is None or "forward" not in f:
                raise ResultFileError(f"{path}: not an mzpdf result file (no schema_version or /forward)")
            if int(version) > SCHEMA_VERSION:
                raise ResultFileError(f"{path}: schema_version {int(version)} is newer than this mzpdf "
                                      f"({__version__}) reads ({SCHEMA_VERSION}); upgrade mzpdf")
            return _read(f)
    except ResultFileError:
        raise
    except (KeyError, OSError, ValueError) as err:
        raise ResultFileError(f"{path}: corrupt or incomplete result file ({err})") from None


def _layers(group: h5py.Group) -> list[h5py.Group]:
    return [group[name] for name in sorted(k for k in group if k.startswith("layer_"))]


def _read(f: h5py.File) -> Results:
    forward = [LayerSummary(g["mean"][()], g["cov"][()], float(g["mass"][()]), g["marginals/x"][()],
                            g["marginals/pdf"][()], g["box"][()]) for g in _layers(f["forward"])]
    backward = None
    if "backward" in f:
        g = f["backward"]
        backward = BackwardSummary(g["points"][()], g["q0"][()], float(g["mean"][()]))
    montecarlo = mc_back = mc_err = None
    if "montecarlo" in f:
        montecarlo = [MonteCarloLayer(g["mean"][()], g["mean_stderr"][()], g["cov"][()], g["marginals/x"][()],
                                      g["marginals/pdf"][()], g["marginals/stderr"][()], int(g.attrs["samples"]))
                      for g in _layers(f["montecarlo"])]
        if "backward" in f["montecarlo"]:
            g = f["montecarlo/backward"]
            mc_back = BackwardSummary(g["points"][()], g["q0"][()], float(g["mean"][()]))
            mc_err = g["q0_stderr"][()]
    diagnostics = {name: ds[()] for name, ds in f["diagnostics"].items()} if "diagnostics" in f else {}
    return Results(
        case_name=str(f.attrs["case_name"]), case_toml=str(f["case"].attrs["toml"]), method=str(f.attrs["method"]),
        forward=forward, backward=backward, montecarlo=montecarlo, montecarlo_backward=mc_back,
        montecarlo_backward_stderr=mc_err, diagnostics=diagnostics, wall_time_s=float(f.attrs["wall_time_s"]),
    )


def describe(path) -> str:
    """A one-screen summary of a result file."""
    r = read_results(path)
    widths = [layer.mean.size for layer in r.forward]
    lines = [f"{path}: case {r.case_name!r}, method {r.method}, {r.depth} layers, widths {widths}, "
             f"{r.wall_time_s:.2f} s"]
    d = r.diagnostics
    lines.append(f"{'layer':>5} {'mass':>12} {'lost mass':>10}  mean")
    for n, layer in enumerate(r.forward):
        lost = d.get("lost_mass")
        lost_text = f"{lost[n]:10.1e}" if lost is not None and np.ndim(lost) == 1 else f"{'':>10}"
        mean = np.array2string(layer.mean, precision=4, separator=", ", suppress_small=True)
        lines.append(f"{n:>5} {layer.mass:12.9f} {lost_text}  {mean}")
    if "duality_gap" in d:
        lines.append(f"duality gap (max over layers): {np.max(d['duality_gap']):.1e}")
    if r.backward is not None:
        lines.append(f"E[g(X_L)] = {r.backward.mean:.8g}")
        for p, q in zip(r.backward.points, r.backward.q0):
            lines.append(f"  q0({np.array2string(p, precision=3, separator=', ')}) = {q:.8g}")
    if r.montecarlo is not None:
        lines.append(f"Monte Carlo reference: {r.montecarlo[0].samples} samples")
        if r.montecarlo_backward is not None:
            lines.append(f"  MC E[g(X_L)] = {r.montecarlo_backward.mean:.6g}")
            for p, q, e in zip(r.montecarlo_backward.points, r.montecarlo_backward.q0, r.montecarlo_backward_stderr):
                lines.append(f"  MC q0({np.array2string(p, precision=3, separator=', ')}) = {q:.6g} +- {e:.1g}")
    return "\n".join(lines)
