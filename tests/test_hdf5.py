"""Result files: exact round trip, never-clobber, nothing left behind by a
failed write, clear errors for foreign or broken files."""
import h5py
import numpy as np
import pytest

from mzpdf.errors import ResultFileError
from mzpdf.io.case import loads_case
from mzpdf.io.hdf5 import read_results, write_results
from mzpdf.run import run

from test_case import VALID


@pytest.fixture(scope="module")
def results():
    case = loads_case(VALID, ["montecarlo.samples=2000", "solver.nodes=12"])
    return run(case)


def test_round_trip_is_exact(results, tmp_path):
    path = write_results(results, tmp_path / "r.h5")
    back = read_results(path)
    assert back.case_name == "tiny" and back.case_toml == results.case_toml
    for a, b in zip(results.forward, back.forward):
        for name in ("mean", "cov", "marginal_x", "marginal_pdf", "box"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
        assert a.mass == b.mass
    assert np.array_equal(results.backward.q0, back.backward.q0)
    assert np.array_equal(results.montecarlo[2].marginal_pdf, back.montecarlo[2].marginal_pdf)
    assert np.array_equal(results.diagnostics["duality_gap"], back.diagnostics["duality_gap"])
    with h5py.File(path) as f:  # the names of the interface contract
        for name in ("forward/layer_000/mean", "forward/layer_002/marginals/pdf", "backward/q0",
                     "backward/points", "backward/mean", "montecarlo/layer_001/cov", "diagnostics/mass",
                     "diagnostics/lost_mass", "diagnostics/duality_gap", "diagnostics/time_per_layer_s"):
            assert name in f, name
        for attr in ("mzpdf_version", "schema_version", "case_name", "created", "wall_time_s"):
            assert attr in f.attrs
        assert "toml" in f["case"].attrs


def test_never_clobbers(results, tmp_path):
    path = tmp_path / "r.h5"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_results(results, path)
    assert path.read_bytes() == b"precious"
    write_results(results, path, overwrite=True)
    assert read_results(path).case_name == "tiny"


def test_failed_write_leaves_nothing(results, tmp_path):
    from dataclasses import replace

    broken = replace(results, diagnostics={"bad": np.array([object()], dtype=object)})
    with pytest.raises(TypeError):
        write_results(broken, tmp_path / "r.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ["text", "foreign", "truncated"])
def test_bad_files_give_result_file_error(results, tmp_path, content):
    path = tmp_path / "bad.h5"
    if content == "text":
        path.write_text("not hdf5")
    elif content == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = 1
    else:
        write_results(results, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ResultFileError) as err:
        read_results(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
