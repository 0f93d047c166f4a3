"""Case files: every kind of invalid input is refused with the dotted key named;
overrides and the effective case text."""
import numpy as np
import pytest

from mzpdf.errors import CaseError
from mzpdf.io.case import load_case, loads_case, parse_override

VALID = """
[case]
name = "tiny"
[network]
[[network.layers]]
weights = [[0.8, -0.3], [0.2, 0.9]]
bias = [0.1, 0.0]
activation = "tanh"
noise = { kind = "gaussian", std = 0.2 }
[[network.layers]]
weights = [[0.5, 0.5]]
activation = "sigmoid"
noise = { kind = "uniform", half_width = 0.1 }
[input]
kind = "gaussian"
mean = [0.0, 0.0]
std = 0.5
[solver]
method = "grid"
nodes = 16
[observable]
kind = "neuron"
index = 0
points = [[0.0, 0.0]]
"""

# (override, expected dotted key of the CaseError)
INVALID = [
    ("bogus.key=1", "bogus"),
    ("solver.colour=1", "solver.colour"),
    ("solver.nodes=1", "solver.nodes"),
    ("solver.nodes='many'", "solver.nodes"),
    ("solver.method='magic'", "solver.method"),
    ("solver.backend='cuda'", "solver.backend"),
    ("solver.tail=0.5", "solver.tail"),
    ("solver.domain=[1, 0]", "solver.domain"),
    ("solver.rule='simpson'", "solver.rule"),
    ("network.layers[0].noise.std=-0.1", "network.layers[0].noise.std"),
    ("network.layers[0].noise.kind='cauchy'", "network.layers[0].noise.kind"),
    ("network.layers[0].activation='tanhh'", "network.layers[0].activation"),
    ("network.layers[1].weights=[[1.0, 2.0, 3.0]]", "network.layers[1].weights"),
    ("network.layers[0].bias=[1.0, 2.0, 3.0]", "network.layers[0].bias"),
    ("network.layers[0].weights='abc'", "network.layers[0].weights"),
    ("network.layers[1].kind='residual'", "network.layers[1].weights"),
    ("network.layers[0].slope=0.1", "network.layers[0].slope"),
    ("network.layers[0].colour=1", "network.layers[0].colour"),
    ("network.layers[1].noise={kind='none'}", "network.layers[1].noise.kind"),
    ("input.cov=[[1.0, 2.0], [2.0, 1.0]]", "input.cov"),
    ("input.mean=[0.0, 0.0, 0.0]", "input"),
    ("input.kind='cauchy'", "input.kind"),
    ("observable.index=5", "observable.index"),
    ("observable.points=[[0.0]]", "observable.points"),
    ("observable.kind='quadratic'", "observable.kind"),
    ("projection.kind='chorin'", "projection"),
    ("montecarlo.samples=1", "montecarlo.samples"),
    ("montecarlo.seeds=1", "montecarlo.seeds"),
    ("case.seed=-1", "case.seed"),
    ("output.file='x.h5'", "output.file"),
]


def test_valid_case_builds_everything():
    case = loads_case(VALID)
    assert case.network.widths == [2, 2, 1]
    assert case.solver.nodes == 16 and case.observable.index == 0
    assert case.points.shape == (1, 2)


@pytest.mark.parametrize("override,key", INVALID)
def test_invalid_case_names_the_key(override, key):
    with pytest.raises(CaseError) as err:
        loads_case(VALID, [override])
    assert err.value.key == key, str(err.value)
    assert key in str(err.value)


@pytest.mark.parametrize("text", ["solver.nodes", "=3", "solver..nodes=3", "network.layers[9].bias=[0]"])
def test_bad_override_syntax_is_refused(text):
    with pytest.raises(CaseError) as err:
        loads_case(VALID, [text])
    assert err.value.key == "--set"


def test_override_values_are_parsed_as_toml():
    assert parse_override("solver.nodes=48") == (["solver", "nodes"], 48)
    assert parse_override("solver.tail=1e-10") == (["solver", "tail"], 1e-10)
    assert parse_override("network.layers[1].bias=[0.5]") == (["network", "layers", 1, "bias"], [0.5])
    assert parse_override("case.name=hello") == (["case", "name"], "hello")
    case = loads_case(VALID, ["network.layers[0].noise.std=[0.1, 0.3]", "solver.nodes=20"])
    assert np.array_equal(case.network[0].noise.scale, [0.1, 0.3])
    assert case.solver.nodes == 20


def test_effective_toml_round_trips():
    case = loads_case(VALID, ["solver.nodes=24"])
    again = loads_case(case.toml)
    assert again.table == case.table
    assert again.solver.nodes == 24


def test_missing_file_is_a_case_error(tmp_path):
    with pytest.raises(CaseError) as err:
        load_case(tmp_path / "nope.toml")
    assert "readable" in str(err.value)


def test_bad_toml_is_a_case_error():
    with pytest.raises(CaseError) as err:
        loads_case("[case\nname = 1")
    assert "TOML" in str(err.value)
