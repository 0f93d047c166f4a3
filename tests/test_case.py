"""Case files: every kind of invalid input is refused with the dotted key named;
overrides; the effective case text.

Oracles: the exact ``CaseError.key`` expected for each invalid case (the key is
a contract: users fix the entry it names); exact equality of parsed override
values and of tables before and after a TOML round trip.
"""
import numpy as np
import pytest

from mzpdf.errors import CaseError
from mzpdf.io.case import apply_overrides, load_case, loads_case, parse_override

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

RANDOM = """
[network.random]
widths = [2, 3, 2]
sigma_w = 1.0
noise = { kind = "gaussian", std = 0.1 }
[input]
mean = [0.0, 0.0]
std = 1.0
"""

# (override applied to VALID, exact dotted key of the CaseError)
INVALID = [
    ("bogus.key=1", "bogus"),                                             # unknown section
    ("solver.colour=1", "solver.colour"),                                 # unknown key
    ("case.colour='red'", "case.colour"),                                 # unknown key in [case]
    ("solver.nodes=1", "solver.nodes"),                                   # below the minimum of 2
    ("solver.nodes='many'", "solver.nodes"),                              # wrong type
    ("solver.nodes=16.5", "solver.nodes"),                                # float for an int
    ("solver.method='magic'", "solver.method"),                           # unknown method
    ("solver.backend='gpu'", "solver.backend"),                           # not a backend
    ("solver.backend='tpu'", "solver.backend"),                           # unknown backend
    ("solver.tail=0.5", "solver.tail"),
    ("solver.domain=[1, 0]", "solver.domain"),
    ("solver.rule='simpson'", "solver.rule"),
    ("solver.marginal_points=1", "solver.marginal_points"),
    ("network=3", "network"),                                             # section not a table
    ("network.layers[0].noise.std=-0.1", "network.layers[0].noise.std"),  # negative std
    ("network.layers[0].noise={kind='gaussian'}", "network.layers[0].noise.std"),  # missing std
    ("network.layers[0].noise.kind='cauchy'", "network.layers[0].noise.kind"),
    ("network.layers[0].activation='tanhh'", "network.layers[0].activation"),  # unknown activation
    ("network.layers[1].weights=[[1.0, 2.0, 3.0]]", "network.layers[1].weights"),  # widths do not chain
    ("network.layers[0].weights=[[1.0, 2.0], [3.0]]", "network.layers[0].weights"),  # ragged weights
    ("network.layers[0].bias=[1.0, 2.0, 3.0]", "network.layers[0].bias"),  # wrong shape bias
    ("network.layers[0].weights='abc'", "network.layers[0].weights"),     # wrong type
    ("network.layers[1].kind='residual'", "network.layers[1].weights"),   # residual needs square W
    ("network.layers[0].slope=0.1", "network.layers[0].slope"),           # slope without leaky_relu
    ("network.layers[0].colour=1", "network.layers[0].colour"),
    ("network.layers[1].noise={kind='none'}", "network.layers[1].noise.kind"),  # singular for grids
    ("input.cov=[[1.0, 2.0], [2.0, 1.0]]", "input.cov"),                  # not positive definite
    ("input.std=-1.0", "input.std"),
    ("input.mean=[0.0, 0.0, 0.0]", "input"),                              # input dim != widths[0]
    ("input.kind='cauchy'", "input.kind"),
    ("observable.index=5", "observable.index"),                           # beyond the last layer
    ("observable.index=-1", "observable.index"),
    ("observable.points=[[0.0]]", "observable.points"),                   # width != N_0
    ("observable.points=[0.0, 0.0]", "observable.points"),                # not (P, N_0)
    ("observable.kind='quadratic'", "observable.kind"),
    ("projection.kind='chorin'", "projection.keep"),                      # keep is required
    ("montecarlo.samples=1", "montecarlo.samples"),
    ("montecarlo.seeds=1", "montecarlo.seeds"),
    ("montecarlo.seed=-3", "montecarlo.seed"),
    ("case.seed=-1", "case.seed"),
    ("case.name=3", "case.name"),
    ("case.name='a/b'", "case.name"),                                     # would escape the directory
    ("output.file='x.h5'", "output.file"),
    ("output.path=''", "output.path"),
]


def test_valid_case_builds_everything():
    case = loads_case(VALID)
    assert case.name == "tiny" and case.seed == 0 and case.backend == "cpu"
    assert case.network.widths == [2, 2, 1]
    assert case.solver.method == "grid" and case.solver.nodes == 16 and case.observable.index == 0
    assert case.points.shape == (1, 2) and case.montecarlo is None and case.output_path is None


def test_enough_distinct_invalid_cases():
    assert len({key for _, key in INVALID}) >= 15


@pytest.mark.parametrize("override,key", INVALID)
def test_invalid_case_names_the_key(override, key):
    with pytest.raises(CaseError) as err:
        loads_case(VALID, [override])
    assert err.value.key == key, str(err.value)
    assert str(err.value).startswith(key + " ")


def test_error_names_rule_and_value():
    with pytest.raises(CaseError) as err:
        loads_case(VALID, ["network.layers[0].noise.std=-0.1"])
    assert "> 0" in err.value.rule and "-0.1" in str(err.value)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(CaseError) as err:
        loads_case(VALID, ["bogus.key=1"])
    assert "network" in str(err.value) and "solver" in str(err.value)
    with pytest.raises(CaseError) as err:
        loads_case(VALID, ["solver.method='magic'"])
    assert "grid" in str(err.value) and "montecarlo" in str(err.value)


@pytest.mark.parametrize("missing", ["network", "input"])
def test_required_sections(missing):
    table = loads_case(VALID).table
    del table[missing]
    with pytest.raises(CaseError) as err:
        load_case(table)
    assert err.value.key == missing


def test_noiseless_random_network_names_its_key():
    with pytest.raises(CaseError) as err:
        loads_case(RANDOM, ["network.random.noise={kind='none'}", "solver.method='grid'"])
    assert err.value.key == "network.random.noise.kind"
    assert loads_case(RANDOM, ["network.random.noise={kind='none'}", "solver.method='montecarlo'"])
    # with no method named, 'auto' takes a method that accepts noiseless layers
    assert loads_case(RANDOM, ["network.random.noise={kind='none'}"]).solver.method == "qmc"


@pytest.mark.parametrize("text", ["solver.nodes", "=3", "solver..nodes=3", "solver.nodes x=3",
                                  "network.layers[9].bias=[0]", "network.layers[0][1]=2"])
def test_bad_override_syntax_names_the_override(text):
    with pytest.raises(CaseError) as err:
        loads_case(VALID, [text])
    assert err.value.key == "--set" and err.value.value == text


def test_override_values_are_parsed_as_toml():
    assert parse_override("solver.nodes=48") == (["solver", "nodes"], 48)
    assert parse_override("solver.tail=1e-10") == (["solver", "tail"], 1e-10)
    assert parse_override("input.std=-0.25") == (["input", "std"], -0.25)
    assert parse_override("network.layers[1].bias=[0.5]") == (["network", "layers", 1, "bias"], [0.5])
    assert parse_override("input.cov=[[1, 0], [0, 2]]") == (["input", "cov"], [[1, 0], [0, 2]])
    assert parse_override("case.name=hello") == (["case", "name"], "hello")  # not TOML: raw string
    assert parse_override("case.name='a b'") == (["case", "name"], "a b")
    assert parse_override("case.name=a=b") == (["case", "name"], "a=b")  # split at the first '='
    assert parse_override("x.flag=true") == (["x", "flag"], True)
    assert parse_override("network.layers[0].noise={kind='laplace', scale=0.3}") == (
        ["network", "layers", 0, "noise"], {"kind": "laplace", "scale": 0.3})
    assert parse_override(" solver.nodes = 7 ") == (["solver", "nodes"], 7)
    types = [type(parse_override(t)[1]) for t in ("a.b=1", "a.b=1.0", "a.b=[1]", "a.b=s")]
    assert types == [int, float, list, str]


def test_overrides_nested_and_indexed_reach_the_objects():
    case = loads_case(VALID, ["network.layers[0].noise.std=[0.1, 0.3]", "solver.nodes=20",
                              "network.layers[1].activation=relu"])
    assert np.array_equal(case.network[0].noise.scale, [0.1, 0.3])
    assert case.network[1].activation.name == "relu"
    assert case.solver.nodes == 20
    assert case.table["network"]["layers"][0]["noise"]["std"] == [0.1, 0.3]


def test_override_on_random_network():
    base = loads_case(RANDOM)
    case = loads_case(RANDOM, ["network.random.sigma_w=2"])
    assert case.table["network"]["random"]["sigma_w"] == 2
    # same seed, W ~ N(0, sigma_w^2 / N_in): the weights scale exactly by 2
    np.testing.assert_allclose(case.network[0].weights, 2.0 * base.network[0].weights, rtol=1e-15)


def test_overrides_apply_in_order_and_create_sections():
    case = loads_case(VALID, ["solver.nodes=20", "solver.nodes=24", "montecarlo.samples=2000"])
    assert case.solver.nodes == 24
    assert case.montecarlo.samples == 2000
    raw = {"a": {"b": [1, {"c": 2}]}}
    assert apply_overrides(raw, ["a.b[1].c=3"]) == {"a": {"b": [1, {"c": 3}]}}
    assert raw == {"a": {"b": [1, {"c": 2}]}}  # the input table is not modified


def test_effective_toml_round_trips():
    case = loads_case(VALID, ["solver.nodes=24", "montecarlo.samples=500"])
    again = loads_case(case.toml)
    assert again.table == case.table
    assert again.solver == case.solver and again.montecarlo == case.montecarlo
    assert again.solver.nodes == 24


def test_effective_table_writes_out_defaults():
    table = loads_case(VALID).table
    assert table["case"] == {"name": "tiny", "seed": 0}
    assert table["solver"]["backend"] == "cpu" and table["solver"]["rule"] == "trapezoid"
    assert list(table) == ["case", "network", "input", "solver", "observable"]


def test_name_defaults_to_file_stem_and_files_resolve_beside_the_case(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    W0, b0, W1 = rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal((2, 3))
    np.savez(tmp_path / "w.npz", W0=W0, b0=b0, W1=W1)
    (tmp_path / "net.toml").write_text(
        '[network]\nfile = "w.npz"\nnoise = { kind = "gaussian", std = 0.1 }\n'
        "[input]\nmean = [0.0, 0.0]\nstd = 1.0\n")
    monkeypatch.chdir(tmp_path.parent)
    case = load_case(tmp_path / "net.toml")
    assert case.name == "net" and case.network.widths == [2, 3, 2]
    assert np.array_equal(case.network[0].weights, W0) and np.array_equal(case.network[1].bias, np.zeros(2))
    assert loads_case(case.toml, base_dir=tmp_path).name == "net"  # the stem is echoed into the text


def test_dict_source_accepts_numpy_and_refuses_non_toml_values():
    table = loads_case(VALID).table
    table["network"]["layers"][0]["weights"] = np.array(table["network"]["layers"][0]["weights"])
    table["solver"]["nodes"] = np.int64(12)
    case = load_case(table)
    assert case.solver.nodes == 12 and isinstance(case.table["solver"]["nodes"], int)
    assert "nodes = 12" in case.toml
    table["solver"]["domain"] = None
    with pytest.raises(CaseError) as err:
        load_case(table)
    assert err.value.key == "solver.domain"


def test_missing_file_is_a_case_error(tmp_path):
    with pytest.raises(CaseError) as err:
        load_case(tmp_path / "nope.toml")
    assert err.value.key == str(tmp_path / "nope.toml") and "readable" in str(err.value)


def test_bad_toml_is_a_case_error(tmp_path):
    with pytest.raises(CaseError) as err:
        loads_case("[case\nname = 1")
    assert "TOML" in str(err.value)
    path = tmp_path / "bad.toml"
    path.write_text("[solver]\nnodes = = 3\n")
    with pytest.raises(CaseError) as err:
        load_case(path)
    assert err.value.key == str(path) and "line 2" in str(err.value)


def test_cuda_backend_is_for_the_grid_method():
    assert loads_case(VALID, ["solver.backend=cuda"]).backend == "cuda"
    with pytest.raises(CaseError) as err:
        loads_case(VALID, ["solver.backend=cuda", "solver.method=montecarlo"])
    assert err.value.key == "solver.backend" and "grid method only" in err.value.rule


def test_projection_is_validated_and_written_out_with_defaults():
    case = loads_case(VALID, ["projection.kind=chorin", "projection.keep=[0]"])
    assert case.projection.keep == (0,) and case.projection.memory is None
    assert case.table["projection"] == {"kind": "chorin", "keep": [0], "reference": "marginal", "memory": "full",
                                         "tol": 1e-3}
    assert loads_case(case.toml).table == case.table  # the effective case validates to itself


@pytest.mark.parametrize("bias", ['["0", "0"]', "[true, 0.0]"])
def test_numbers_given_as_strings_or_booleans_are_refused(bias):
    # found by tests/test_reliability.py's random invalid cases: NumPy parses "0" and True as numbers
    with pytest.raises(CaseError) as err:
        loads_case(VALID, [f"network.layers[0].bias={bias}"])
    assert err.value.key == "network.layers[0].bias" and "numbers" in err.value.rule
