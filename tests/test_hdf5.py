"""Result files: exact round trip, the interface layout, never-clobber, nothing
left behind by a failed write, one-line errors for foreign or broken files.

Oracles: a hand-built :class:`Results` (independent of any solver) must come
back with every array exactly equal (HDF5 stores float64 bit for bit); the
dataset names are those of shared/INTERFACE.md; the bytes of an existing file
must be unchanged after a refused write.
"""
import dataclasses
import datetime as dt
import os

import h5py
import numpy as np
import pytest

import mzpdf
from mzpdf.errors import ResultFileError
from mzpdf.io import hdf5
from mzpdf.io.hdf5 import SCHEMA_VERSION, describe, read_results, write_results
from mzpdf.results import BackwardSummary, LayerSummary, MonteCarloLayer, Results

WIDTHS = [2, 3, 1]
M = 7  # abscissae per neuron


def _results(montecarlo=True) -> Results:
    rng = np.random.default_rng(1234)
    forward, mc = [], []
    for n, w in enumerate(WIDTHS):
        a = rng.standard_normal((w, w))
        x = np.sort(rng.standard_normal((w, M)), axis=1)
        forward.append(LayerSummary(rng.standard_normal(w), a @ a.T, 1.0 - 1e-13 * n, x,
                                    rng.random((w, M)), np.column_stack([x[:, 0], x[:, -1]])))
        mc.append(MonteCarloLayer(rng.standard_normal(w), rng.random(w), a @ a.T, x, rng.random((w, M)),
                                  rng.random((w, M)), 4096))
    forward[0] = dataclasses.replace(forward[0], marginal_pdf=np.full((2, M), np.inf))  # a point input
    points = rng.standard_normal((4, 2))
    return Results(
        case_name="hand built", case_toml='[case]\nname = "hand built"\n', method="grid", forward=forward,
        backward=BackwardSummary(points, rng.standard_normal(4), 0.123456789012345),
        montecarlo=mc if montecarlo else None,
        montecarlo_backward=BackwardSummary(points, rng.standard_normal(4), -0.5) if montecarlo else None,
        montecarlo_backward_stderr=rng.random(4) if montecarlo else None,
        diagnostics={"mass": np.array([1.0, 1 - 1e-13, 1 - 2e-13]), "lost_mass": np.array([0.0, 1e-13, 2e-13]),
                     "duality_gap": np.array([1e-15, 3e-15]), "time_per_layer_s": np.array([0.01, 0.02]),
                     "samples": np.int64(4096), "backward_duality_gap": np.float64(np.nan),
                     "flags": np.array([True, False]), "note": "windowed kernel"},
        wall_time_s=1.25,
    )


def _assert_same(a, b):
    """Field by field: arrays exactly equal (NaN == NaN), scalars equal."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b)
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, str):
        assert a == b
    elif a is None:
        assert b is None
    else:
        assert np.shape(a) == np.shape(b)
        assert np.asarray(a).dtype == np.asarray(b).dtype or np.ndim(a) == 0
        assert np.array_equal(a, b, equal_nan=np.asarray(a).dtype.kind == "f")


@pytest.mark.parametrize("montecarlo", [True, False])
def test_round_trip_is_exact(tmp_path, montecarlo):
    results = _results(montecarlo)
    path = write_results(results, tmp_path / "r.h5")
    assert path == tmp_path / "r.h5"
    _assert_same(results, read_results(path))


def test_layout_is_the_interface(tmp_path):
    path = write_results(_results(), tmp_path / "r.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["mzpdf_version"] == mzpdf.__version__
        assert f.attrs["schema_version"] == SCHEMA_VERSION == 1
        assert np.issubdtype(type(f.attrs["schema_version"]), np.integer)
        assert f.attrs["case_name"] == "hand built" and f.attrs["method"] == "grid"
        assert f.attrs["wall_time_s"] == 1.25
        created = dt.datetime.fromisoformat(f.attrs["created"])
        assert created.utcoffset() == dt.timedelta(0)
        assert f["case"].attrs["toml"] == '[case]\nname = "hand built"\n'
        for n, w in enumerate(WIDTHS):
            g = f[f"forward/layer_{n:03d}"]
            assert g["mean"].shape == (w,) and g["cov"].shape == (w, w) and g["mass"].shape == ()
            assert g["box"].shape == (w, 2)
            assert g["marginals/x"].shape == g["marginals/pdf"].shape == (w, M)
            m = f[f"montecarlo/layer_{n:03d}"]
            assert m.attrs["samples"] == 4096
            for name in ("mean", "mean_stderr", "cov", "marginals/x", "marginals/pdf", "marginals/stderr"):
                assert name in m, name
        assert "forward/layer_003" not in f
        assert f["backward/points"].shape == (4, 2) and f["backward/q0"].shape == (4,)
        assert f["backward/mean"].shape == ()
        assert f["montecarlo/backward/q0"].shape == f["montecarlo/backward/q0_stderr"].shape == (4,)
        for name in ("mass", "lost_mass", "duality_gap", "time_per_layer_s"):
            assert f"diagnostics/{name}" in f
        undescribed = []
        f.visititems(lambda name, obj: undescribed.append(name)
                     if isinstance(obj, h5py.Dataset) and not obj.attrs.get("description") else None)
        assert undescribed == []


def test_no_backward_group_without_observable(tmp_path):
    results = dataclasses.replace(_results(montecarlo=False), backward=None)
    path = write_results(results, tmp_path / "r.h5")
    with h5py.File(path, "r") as f:
        assert "backward" not in f and "montecarlo" not in f
    assert read_results(path).backward is None


def test_never_clobbers(tmp_path):
    path = tmp_path / "r.h5"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite") as err:
        write_results(_results(), path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]
    write_results(_results(), path, overwrite=True)
    assert read_results(path).case_name == "hand built"


def test_file_appearing_during_the_write_is_not_clobbered(tmp_path, monkeypatch):
    path = tmp_path / "r.h5"
    real_write = hdf5._write

    def racing_write(f, results):  # another process creates the target meanwhile
        real_write(f, results)
        path.write_bytes(b"theirs")

    monkeypatch.setattr(hdf5, "_write", racing_write)
    with pytest.raises(FileExistsError):
        write_results(_results(), path)
    assert path.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_failed_write_leaves_nothing(tmp_path):
    broken = dataclasses.replace(_results(), diagnostics={"mass": np.ones(3),
                                                          "bad": np.array([object()], dtype=object)})
    with pytest.raises(TypeError):
        write_results(broken, tmp_path / "r.h5")
    assert list(tmp_path.iterdir()) == []  # neither the result nor .r.h5.tmp-<pid>


def test_failed_overwrite_keeps_the_old_file(tmp_path):
    path = write_results(_results(), tmp_path / "r.h5")
    before = path.read_bytes()
    broken = dataclasses.replace(_results(), diagnostics={"bad": np.array([object()], dtype=object)})
    with pytest.raises(TypeError):
        write_results(broken, path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_write_creates_parent_directories(tmp_path):
    path = write_results(_results(), tmp_path / "a" / "b" / "r.h5")
    assert read_results(path).method == "grid"


@pytest.mark.parametrize("content", ["missing", "directory", "text", "empty", "foreign", "truncated", "newer"])
def test_bad_files_give_one_line_result_file_error(tmp_path, content):
    path = tmp_path / "bad.h5"
    if content == "directory":
        path.mkdir()
    elif content == "text":
        path.write_text("not hdf5")
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = 1
    elif content == "truncated":
        write_results(_results(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif content == "newer":
        write_results(_results(), path)
        with h5py.File(path, "a") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ResultFileError) as err:
        read_results(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    if content == "newer":
        assert "newer" in message and str(SCHEMA_VERSION + 1) in message
    if content == "foreign":
        assert "not an mzpdf result file" in message


def test_describe_summarizes(tmp_path):
    path = write_results(_results(), tmp_path / "r.h5")
    text = describe(path)
    assert "'hand built'" in text and "method grid" in text and "widths [2, 3, 1]" in text
    assert f"mzpdf {mzpdf.__version__}" in text and "schema 1" in text
    assert "E[g(X_L)] = 0.12345679" in text  # 8 significant digits
    assert "4096 samples" in text
    assert len(text.splitlines()) < 40  # one screen


def test_temporary_name_is_hidden_and_per_process(tmp_path, monkeypatch):
    seen = []
    real_write = hdf5._write

    def spy(f, results):
        seen.append(os.path.basename(f.filename))
        real_write(f, results)

    monkeypatch.setattr(hdf5, "_write", spy)
    write_results(_results(), tmp_path / "r.h5")
    assert seen == [f".r.h5.tmp-{os.getpid()}"]


def test_read_back_laws_say_why_a_layer_has_no_density(tmp_path):
    """A layer after a noiseless layer, read back from a file, has no density
    because it is a map of the layer before, not because it is a point; a
    point input is a point; a resumed-from attribute reads back."""
    from mzpdf.errors import SingularDensityError
    from mzpdf.io.case import loads_case

    case = loads_case("""
        [case]
        name = "noiseless"
        [[network.layers]]
        weights = [[0.9, 0.2], [-0.3, 0.8]]
        activation = "tanh"
        noise = { kind = "none" }
        [[network.layers]]
        weights = [[0.7, -0.4], [0.5, 0.6]]
        activation = "tanh"
        noise = { kind = "gaussian", std = 0.3 }
        [input]
        kind = "gaussian"
        mean = [0.1, -0.2]
        std = 0.5
        [solver]
        method = "grid"
        nodes = 16
        """)
    write_results(mzpdf.run(case), tmp_path / "a.h5")
    back = read_results(tmp_path / "a.h5")
    assert back.resumed_from_layer == 0
    with pytest.raises(SingularDensityError, match="no density: it is a deterministic map") as err:
        back.law(1).marginal(0, np.zeros(3))
    assert "point" not in str(err.value)
    assert np.all(back.law(2).marginal(0, np.zeros(3)) > 0)
    point = mzpdf.run(loads_case(case.toml, ["input={kind='point', x=[0.1, -0.2]}"]))
    write_results(point, tmp_path / "p.h5")
    with pytest.raises(SingularDensityError, match="is the point"):
        read_results(tmp_path / "p.h5").law(0).marginal(0, np.zeros(3))
