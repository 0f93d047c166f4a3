"""Result files open with xarray (engine h5netcdf) with named dimensions.

Oracles: shared/INTERFACE.md says every dataset's axes carry HDF5 dimension
scales, so every group opens with named dimensions; h5netcdf names an axis
without a scale ``phony_dim_<k>``, so any such name is a failure (a file from
before the scales were written fails this test: checked by hand on an old
tt_tanh result, every layer group showed phony_dim_0..4). The axis names
themselves are those of the table in mzpdf/io/_dimensions.py; a dataset the
table misses gets ``<name>_axis<k>``, which the coverage test rejects. Reading
back with read_results must give the arrays bit for bit (HDF5 stores float64
exactly), so the extra scale datasets change nothing a reader sees.

Coordinates (issue 39): INTERFACE.md says a density's abscissae are a
coordinate of its pdf and thresholds and quantile levels of the tails
datasets. The oracle is the file itself read with h5py: the coordinate xarray
shows must hold the stored abscissae (thresholds, levels) bit for bit, and
selecting by a value must give the stored entry at that value's index. Files
written before the change fail these tests (the abscissae were a data
variable, the tails had index dimensions without coordinates, and byte-string
diagnostics came back as bytes).
"""
import dataclasses
import warnings

import h5py
import numpy as np
import pytest

import mzpdf
from mzpdf.io._dimensions import dimension_names
from mzpdf.io.hdf5 import describe, read_results, write_results

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

# Example cases cut to a few layers and 2e4 paths so that each runs in about a
# second; one file per kind of group (forward + joint + backward + Monte Carlo
# reference, method montecarlo, Mori-Zwanzig, depth analysis, TT diagnostics).
KINDS = {
    "forward": ("quickstart", ["montecarlo.samples=20000", "observable.thresholds=[-0.5, 0.0, 0.5]",
                               "observable.quantiles=[0.1, 0.5, 0.9]"], []),
    "montecarlo": ("quickstart", ['solver.method="montecarlo"', "solver.samples=20000", "montecarlo.samples=20000"],
                   []),
    "mz": ("mz_reduce_tanh", ["network.random.widths=[3, 3, 3, 3]"], []),
    "analysis": ("depth_analysis", ["network.random.widths=[2, 2, 2, 2]"], []),
    "tt": ("tt_tanh", ["network.random.widths=[4, 4, 4]", "montecarlo.samples=20000"], []),
}
EXPECTED_GROUPS = {"forward": ["backward", "montecarlo/backward", "diagnostics", "forward/layer_001/joint"],
                   "montecarlo": ["backward", "forward/layer_001/marginals", "diagnostics"],
                   "mz": ["mz", "mz/backward", "mz/reduced/layer_002/marginals"],
                   "analysis": ["analysis"], "tt": ["diagnostics", "backward"]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("xarray")
    out = {}
    for kind, (case, overrides, unset) in KINDS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numerical-health notes of the shortened cases are not under test
            results = mzpdf.run(mzpdf.load_case(f"cases/{case}.toml", overrides=overrides, unset=unset))
        out[kind] = (results, write_results(results, root / f"{kind}.h5"))
    return out


def _groups(path) -> list[str]:
    names = ["/"]
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Group) else None)
    return names


@pytest.mark.parametrize("kind", KINDS)
def test_every_group_opens_without_phony_dimensions(files, kind):
    path = files[kind][1]
    groups = _groups(path)
    for name in EXPECTED_GROUPS[kind]:  # the kind of file really holds the groups it stands for
        assert name in groups, name
    phony = []
    for group in groups:
        with xr.open_dataset(path, group=group, engine="h5netcdf") as ds:
            phony += [f"{group}:{d}" for d in ds.sizes if str(d).startswith("phony_dim")]
            for var in ds.data_vars.values():  # every array of the group is there with its shape
                with h5py.File(path, "r") as f:
                    assert var.shape == f[group][var.name].shape
    assert phony == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_axis_is_named_by_the_table(files, kind):
    """No dataset falls back to <name>_axis<k> or to a renamed clash: the table covers it."""
    fallback = []
    with h5py.File(files[kind][1], "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim and not h5py.h5ds.is_scale(obj.id):
                dims = [obj.dims[k][0].name.rsplit("/", 1)[-1] for k in range(obj.ndim)]
                if dims != list(dimension_names(obj.name, obj.shape)) or any("_axis" in d for d in dims):
                    fallback.append(f"{name}: {dims}")
        f.visititems(visit)
    assert fallback == []


def test_named_dimensions_of_a_layer(files):
    """The layout of INTERFACE.md with names: mean (neuron), cov (neuron, neuron_j),
    marginals (neuron, abscissa), the joint density on its own x and y coordinates."""
    results, path = files["forward"]
    layer = xr.open_dataset(path, group="forward/layer_001", engine="h5netcdf")
    assert layer["mean"].dims == ("neuron",) and layer["cov"].dims == ("neuron", "neuron_j")
    assert layer["box"].dims == ("neuron", "bound")
    marginals = xr.open_dataset(path, group="forward/layer_001/marginals", engine="h5netcdf")
    assert marginals["pdf"].dims == marginals["x"].dims == ("neuron", "abscissa")
    np.testing.assert_array_equal(marginals["pdf"].values, results.forward[1].marginal_pdf)
    joint = xr.open_dataset(path, group="forward/layer_001/joint", engine="h5netcdf")
    assert joint["pdf"].dims == ("x", "y")
    np.testing.assert_array_equal(joint["x"].values, results.forward[1].joint[0])  # a coordinate
    back = xr.open_dataset(path, group="backward", engine="h5netcdf")
    assert back["q0"].dims == ("point",) and back["points"].dims == ("point", "input_neuron")
    diag = xr.open_dataset(path, group="diagnostics", engine="h5netcdf")
    assert diag["mass"].dims == ("layer",) and diag["time_per_layer_s"].dims == ("step",)
    mz = xr.open_dataset(files["mz"][1], group="mz", engine="h5netcdf")
    assert mz["memory_norm"].dims == ("step", "lag") and mz["error"].dims == ("layer",)
    for ds in (layer, marginals, joint, back, diag, mz):
        ds.close()


@pytest.mark.parametrize("kind", KINDS)
def test_read_back_and_info_are_unchanged(files, kind):
    """read_results sees no scale datasets: diagnostics and analysis have exactly
    the keys the run produced, and every array is equal bit for bit."""
    results, path = files[kind]
    back = read_results(path)
    assert back.diagnostics.keys() == results.diagnostics.keys()
    for name, value in results.diagnostics.items():
        if np.asarray(value).dtype.kind in "biuf":  # numbers (byte strings come back as str, as before)
            np.testing.assert_array_equal(np.asarray(back.diagnostics[name]), np.asarray(value))
    if results.analysis is not None:
        assert back.analysis.keys() == results.analysis.keys()
    for a, b in zip(results.forward, back.forward):
        np.testing.assert_array_equal(a.marginal_pdf, b.marginal_pdf)
        np.testing.assert_array_equal(a.cov, b.cov)
    assert "layer" in describe(path)


@pytest.mark.parametrize("path, shape, expected", [
    ("/forward/layer_007/marginals/pdf", (3, 5), ("neuron", "abscissa")),
    ("/mz/reduced/layer_002/marginals/x", (1, 5), ("kept", "abscissa")),
    ("/backward/exceedance_error", (4,), ("thresholds",)),
    ("/backward/quantiles", (2,), ("quantile_levels",)),
    ("/forward/layer_001/marginals/pdf_stderr", (3, 5), ("neuron", "abscissa")),
    ("/diagnostics/something_new", (3, 2), ("something_new_axis0", "something_new_axis1")),  # not in the table
    ("/forward/layer_001/cov", (3,), ("cov_axis0",)),  # rank differs from the table's entry
])
def test_dimension_names_from_the_table(path, shape, expected):
    assert dimension_names(path, shape) == expected


def test_a_name_taken_with_another_length_becomes_distinct(tmp_path):
    """Two datasets of one group whose table names clash in length get distinct
    dimensions (netCDF: one length per name and group), and xarray opens it."""
    path = tmp_path / "clash.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("diagnostics/mass", data=np.ones(4))
        f.create_dataset("diagnostics/lost_mass", data=np.zeros(3))  # table says layer too
        from mzpdf.io._dimensions import attach_dimensions
        attach_dimensions(f)
    with xr.open_dataset(path, group="diagnostics", engine="h5netcdf") as ds:
        dims = {ds["mass"].dims, ds["lost_mass"].dims}
        assert dims in ({("layer",), ("layer_lost_mass",)}, {("layer",), ("layer_mass",)}), dims
        assert ds.sizes["layer"] in (3, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_every_density_has_its_abscissae_as_coordinate(files, kind):
    """In every group, every array on an abscissa axis (pdf, pdf_stderr,
    stderr) has the coordinate x holding the stored abscissae bit for bit, and
    selecting neuron k's density at its j-th abscissa by value gives the
    stored pdf[k, j]; thresholds and quantile levels index their datasets."""
    path = files[kind][1]
    densities = 0
    with h5py.File(path, "r") as f:
        for group in _groups(path):
            with xr.open_dataset(path, group=group, engine="h5netcdf") as ds:
                for name, var in ds.data_vars.items():
                    if "abscissa" in var.dims:
                        densities += 1
                        assert "x" in var.coords, f"{group}/{name}"
                        np.testing.assert_array_equal(var.coords["x"].values, f[group]["x"][()])
                        rows, j = var.dims[0], var.sizes["abscissa"] // 3
                        for k in range(var.sizes[rows]):
                            one = var.isel({rows: k}).swap_dims(abscissa="x")
                            stored = f[group][name][k, j]
                            picked = one.sel(x=f[group]["x"][k, j]).values
                            assert stored in np.atleast_1d(picked), f"{group}/{name}[{k}]"  # x may repeat (a point)
                    for axis in ("thresholds", "quantile_levels"):
                        if axis in var.dims:
                            assert axis in ds.indexes, f"{group}/{name}"
    assert densities > 0


def test_tails_are_selected_by_threshold_and_level(files):
    """/backward opens with thresholds and quantile_levels as dimension
    coordinates: .sel by a threshold gives its exceedance and error bound, by
    a level its quantile, as the run computed them."""
    results, path = files["forward"]
    back = results.backward
    assert back.thresholds is not None and back.quantiles is not None
    with xr.open_dataset(path, group="backward", engine="h5netcdf") as ds:
        assert {"thresholds", "quantile_levels"} <= set(ds.coords)
        assert ds["exceedance"].dims == ds["exceedance_error"].dims == ("thresholds",)
        assert ds["quantiles"].dims == ("quantile_levels",)
        for k, t in enumerate(back.thresholds):
            assert ds["exceedance"].sel(thresholds=t).item() == back.exceedance[k]
            assert ds["exceedance_error"].sel(thresholds=t).item() == back.exceedance_error[k]
        for k, q in enumerate(back.quantile_levels):
            assert ds["quantiles"].sel(quantile_levels=q).item() == back.quantiles[k]
    again = read_results(path).backward  # and mzpdf reads them back unchanged
    for name in ("thresholds", "exceedance", "exceedance_error", "quantile_levels", "quantiles"):
        np.testing.assert_array_equal(getattr(again, name), getattr(back, name))


def test_text_diagnostics_read_back_as_str(files, tmp_path):
    """Text diagnostics (the warnings, one a line; an array of byte strings such
    as the grid's kernel names) are stored as UTF-8 strings: xarray, h5py's
    asstr() and read_results give str, never bytes."""
    results, _ = files["forward"]
    text = dict(results.diagnostics, warnings="MassLossWarning: layer 1: a\nNumericalHealthWarning: b",
                kernel=np.array([b"dense", b"windowed"], dtype="S8"))
    path = write_results(dataclasses.replace(results, diagnostics=text), tmp_path / "text.h5")
    with xr.open_dataset(path, group="diagnostics", engine="h5netcdf") as ds:
        assert isinstance(ds["warnings"].values.item(), str)
        assert ds["warnings"].values.item() == text["warnings"]
        assert [type(v) for v in ds["kernel"].values.tolist()] == [str, str]
        assert ds["kernel"].values.tolist() == ["dense", "windowed"]
    with h5py.File(path, "r") as f:
        assert h5py.check_string_dtype(f["diagnostics/kernel"].dtype).length is None  # variable length: str
        assert f["diagnostics/warnings"].asstr()[()] == text["warnings"]
    back = read_results(path).diagnostics
    assert back["warnings"] == text["warnings"] and back["kernel"].tolist() == ["dense", "windowed"]
