"""Named axes of result-file datasets: HDF5 dimension scales, netCDF style.

One table, :data:`DIMENSIONS`, maps a dataset to the names of its axes;
:func:`attach_dimensions` applies it to a finished file in one pass, so that
``xarray.open_dataset(path, group=G, engine="h5netcdf")`` opens every group
with named dimensions (no ``phony_dim_*``). A dataset added later needs only a
table entry.

Conventions (those of netCDF-4, which h5netcdf reads):

- A dimension lives in the group of the dataset that uses it and has one
  length there; the two axes of a square matrix have two names
  (``neuron``, ``neuron_j``).
- Where a 1-D dataset of the group has the dimension's name and length (the
  joint density's ``x`` and ``y``, ``/mz/kept``), that dataset itself becomes
  the dimension scale: a coordinate. Otherwise the scale is an index dataset
  marked "a netCDF dimension but not a netCDF variable", which netCDF readers
  list as a dimension only; :func:`is_index_scale` tells readers to skip it.
- A density's abscissae are a coordinate of the density: ``marginals/x``
  (N, m), one row per neuron, cannot be a dimension (netCDF's dimension
  coordinates are 1-D), so the densities of the group name it in their
  netCDF-CF attribute ``coordinates`` (table :data:`COORDINATES`), and xarray
  opens it as a 2-D coordinate of ``pdf`` on ``(neuron, abscissa)``:
  ``ds.pdf.isel(neuron=i).swap_dims(abscissa="x").sel(x=...)`` selects by
  abscissa. Thresholds and quantile levels are 1-D and name their own axes
  (``thresholds``, ``quantile_levels``), so they are dimension coordinates:
  ``ds.exceedance.sel(thresholds=t)``.
- A dataset without a table entry, or whose entry does not match its rank, gets
  the axis names ``<name>_axis<k>``; a name already used in the group with
  another length is suffixed with the dataset's name (``layer_<name>``). Both
  keep the file readable; the table is the place to name axes properly.
"""
from __future__ import annotations

import re

import h5py
import numpy as np

__all__ = ["COORDINATES", "DIMENSIONS", "attach_dimensions", "dimension_names", "is_index_scale"]

# Axis names of the datasets of a result file. A key is a dataset's name or the
# end of its path ("marginals/x", "mz/error"), with layer_LLL standing for any
# layer group; the longest key matching the end of a path wins. Scalars need no
# entry. Axis meanings: neuron (of the layer), neuron_j (second axis of a
# (N, N) matrix), abscissa (points of a neuron's marginal), bound ([low, high]),
# input_neuron (coordinates of an input point), point (rows of
# [observable].points), layer (0..L: the input law and every layer), step
# (1..L: the map from layer n-1 to layer n), lag (memory lag 0..L-1), memory
# (the largest lag h kept), kept (kept neurons), thresholds and quantile_levels
# (the datasets of those names, which are their coordinates), exponent
# (Lyapunov exponents), bond (TT ranks r_0..r_N).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    # one layer: /forward/layer_LLL, /montecarlo/layer_LLL
    "mean": ("neuron",),
    "mean_stderr": ("neuron",),
    "cov": ("neuron", "neuron_j"),
    "box": ("neuron", "bound"),
    "marginals/x": ("neuron", "abscissa"),
    "marginals/pdf": ("neuron", "abscissa"),
    "marginals/stderr": ("neuron", "abscissa"),
    "marginals/pdf_stderr": ("neuron", "abscissa"),
    "joint/x": ("x",),
    "joint/y": ("y",),
    "joint/pdf": ("x", "y"),
    # /backward and /montecarlo/backward
    "points": ("point", "input_neuron"),
    "q0": ("point",),
    "q0_stderr": ("point",),
    "thresholds": ("thresholds",),
    "exceedance": ("thresholds",),
    "exceedance_error": ("thresholds",),
    "quantile_levels": ("quantile_levels",),
    "quantiles": ("quantile_levels",),
    # /mz
    "mz/kept": ("kept",),
    "mz/memory_norm": ("step", "lag"),
    "mz/bound": ("step", "lag"),
    "mz/kappa": ("step",),
    "mz/kappa_bound": ("step",),
    "mz/dobrushin": ("step",),
    "mz/canonical_correlation": ("step",),
    "mz/error": ("layer",),
    "mz/truncation_error": ("memory", "layer"),
    "mz/truncation_estimate": ("memory",),
    "mz/max_correlation": ("step",),
    "mz/backward/error": ("layer",),
    "mz/backward/truncation_error": ("memory", "layer"),
    "reduced/layer_LLL/marginals/x": ("kept", "abscissa"),
    "reduced/layer_LLL/marginals/pdf": ("kept", "abscissa"),
    # /diagnostics
    "diagnostics/mass": ("layer",),
    "diagnostics/lost_mass": ("layer",),
    "diagnostics/no_density": ("layer",),
    "diagnostics/error_estimate": ("layer",),
    "diagnostics/atom_mass": ("layer", "neuron"),
    "diagnostics/duality_gap": ("step",),
    "diagnostics/time_per_layer_s": ("step",),
    "diagnostics/quadrature_mass_error": ("step",),
    "diagnostics/kernel": ("step",),
    "diagnostics/points": ("layer",),
    "diagnostics/quadrature_points": ("layer",),
    "diagnostics/tt_max_rank": ("layer",),
    "diagnostics/tt_ranks": ("layer", "bond"),
    "diagnostics/cross_error": ("layer",),
    "diagnostics/rounding_error": ("layer",),
    "diagnostics/evaluations": ("layer",),
    "diagnostics/sweeps": ("layer",),
    "diagnostics/backward_tt_max_rank": ("layer",),
    "diagnostics/backward_cross_error": ("layer",),
    "diagnostics/backward_evaluations": ("layer",),
    # /analysis
    "analysis/q_mean_field": ("step",),
    "analysis/q_measured": ("step",),
    "analysis/lyapunov": ("exponent",),
    "analysis/lyapunov_stderr": ("exponent",),
    "analysis/tv": ("layer",),
    "analysis/hellinger": ("layer",),
    "analysis/kl": ("layer",),
}

# Coordinates of a dataset that are not its dimensions (netCDF-CF attribute
# "coordinates"): keys as in DIMENSIONS; a name is written only where the
# group holds a dataset of that name whose shape the dataset's shape equals.
COORDINATES: dict[str, tuple[str, ...]] = {
    "marginals/pdf": ("x",),
    "marginals/stderr": ("x",),
    "marginals/pdf_stderr": ("x",),
}

# netCDF-4's NAME of a dimension scale that is not also a variable (h5netcdf and
# netCDF-C list such a dataset as a dimension only).
_NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."
_LAYER = re.compile(r"^layer_\d+$")


def dimension_names(path: str, shape: tuple) -> tuple[str, ...]:
    """The axis names of the dataset at ``path`` (an HDF5 path) with ``shape``.

    Parameters
    ----------
    path : str
        The dataset's path in the file, e.g. ``"/forward/layer_002/marginals/x"``.
    shape : tuple of int
        Its shape.

    Returns
    -------
    tuple of str
        One name per axis: the longest :data:`DIMENSIONS` key matching the end
        of ``path`` (``layer_LLL`` matching any layer group), or
        ``<name>_axis<k>`` when no key matches or the entry's rank differs.
    """
    parts = _parts(path)
    names = _lookup(DIMENSIONS, parts)
    if names is not None and len(names) == len(shape):
        return names
    return tuple(f"{parts[-1]}_axis{k}" for k in range(len(shape)))


def _parts(path: str) -> list[str]:
    return ["layer_LLL" if _LAYER.match(p) else p for p in path.strip("/").split("/")]


def _lookup(table: dict, parts: list[str]):
    """The entry of the longest key matching the end of ``parts`` (None if none)."""
    for start in range(len(parts)):
        entry = table.get("/".join(parts[start:]))
        if entry is not None:
            return entry
    return None


def is_index_scale(ds: h5py.Dataset) -> bool:
    """Whether ``ds`` is an index dimension scale written by :func:`attach_dimensions`
    (not data: readers iterating over a group skip it)."""
    name = ds.attrs.get("NAME", b"")
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    return str(name).startswith(_NOT_A_VARIABLE)


def attach_dimensions(f: h5py.File) -> None:
    """Name every axis of every dataset in ``f`` with a dimension scale, and
    name each dataset's other coordinates (:data:`COORDINATES`).

    Scalars are left alone. Scales are created in the dataset's own group, as
    described in the module docstring.
    """
    datasets: list[h5py.Dataset] = []
    f.visititems(lambda _, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
    scales: dict[tuple[str, str], h5py.Dataset] = {}  # (group path, dimension name) -> scale
    for ds in datasets:
        if ds.ndim == 0 or h5py.h5ds.is_scale(ds.id):
            continue
        group = ds.parent
        name = ds.name.rsplit("/", 1)[-1]
        for axis, dim in enumerate(dimension_names(ds.name, ds.shape)):
            scale = _scale(group, dim, ds.shape[axis], name, scales)
            if scale != ds:
                ds.dims[axis].attach_scale(scale)
        coordinates = [c for c in _lookup(COORDINATES, _parts(ds.name)) or ()
                       if isinstance(group.get(c), h5py.Dataset) and group[c].shape == ds.shape]
        if coordinates:
            ds.attrs["coordinates"] = " ".join(coordinates)


def _scale(group: h5py.Group, dim: str, length: int, user: str, scales: dict) -> h5py.Dataset:
    """The scale named ``dim`` of ``length`` in ``group``, made on first use."""
    key = (group.name, dim)
    known = scales.get(key)
    if known is not None and len(known) == length:
        return known
    if known is not None or (dim in group and not _fits(group[dim], length)):
        dim = f"{dim}_{user}"  # the name is taken with another length: a distinct dimension
        return _scale(group, dim, length, user, scales)
    if dim in group:  # a 1-D dataset of this name and length: it is the coordinate
        scale = group[dim]
        scale.make_scale(dim)
    else:
        scale = group.create_dataset(dim, data=np.arange(length, dtype=np.int64))
        scale.make_scale(f"{_NOT_A_VARIABLE}{length:10d}")
        scale.attrs["description"] = f"index of the {dim!r} axis (a dimension scale)"
    scales[key] = scale
    return scale


def _fits(ds, length: int) -> bool:
    return isinstance(ds, h5py.Dataset) and ds.shape == (length,) and not h5py.h5ds.is_scale(ds.id)
