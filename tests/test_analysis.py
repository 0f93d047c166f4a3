"""The [analysis] case section end to end: parsing, /analysis in the result,
describe and plot.

Oracles: the closed form of a linear-gaussian unit started at its stationary
variance (layer n is N(m_n, v), so TV to the last layer is
2 Phi(|m_n - m_L| / (2 sqrt v)) - 1; acceptance 1e-6); the closed form of
layer moments of a linear-gaussian net for the measured pre-activation
variance (to the solver's 1e-9 moment accuracy); MeanField called directly
for the mean-field numbers (the section must report what the library
computes); the keys named by each refusal.
"""
import numpy as np
import pytest
import tomli_w
from scipy import special

from mzpdf.cli import main
from mzpdf.errors import CaseError
from mzpdf.io.case import loads_case
from mzpdf.io.hdf5 import read_results
from mzpdf.theory import MeanField

A, B, S, M0, DEPTH = 0.6, 0.4, 0.5, 6.0, 8
V = S**2 / (1 - A**2)
UNIT = {"network": {"layers": [{"weights": [[A]], "bias": [B], "activation": "identity",
                                "noise": {"kind": "gaussian", "std": S}}] * DEPTH},
        "input": {"kind": "gaussian", "mean": [M0], "std": float(np.sqrt(V))},
        "solver": {"method": "grid", "nodes": 48},
        "analysis": {"distances": "last"}}

RANDOM = {"case": {"name": "an", "seed": 3},
          "network": {"random": {"widths": [2, 2, 2, 2], "activation": "tanh", "sigma_w": 1.5, "sigma_b": 0.3,
                                 "seed": 4, "noise": {"kind": "gaussian", "std": 0.3}}},
          "input": {"kind": "gaussian", "mean": [0.5, -0.5], "std": 0.4},
          "solver": {"method": "grid", "nodes": 40},
          "analysis": {"mean_field": True, "lyapunov": 2, "lyapunov_samples": 64, "distances": "previous"}}


def _run(tmp_path, table, name="a"):
    path, out = tmp_path / f"{name}.toml", tmp_path / f"{name}.h5"
    path.write_text(tomli_w.dumps(table))
    assert main(["run", str(path), "-o", str(out), "--quiet"]) == 0
    return out


def test_distances_to_last_layer_match_closed_form(tmp_path):
    r = read_results(_run(tmp_path, UNIT))
    m_inf = B / (1 - A)
    means = m_inf + A ** np.arange(DEPTH + 1) * (M0 - m_inf)
    exact = 2 * special.ndtr(np.abs(means - means[-1]) / (2 * np.sqrt(V))) - 1
    assert np.max(np.abs(r.analysis["tv"] - exact)) <= 1e-6


def test_mean_field_lyapunov_and_measured_variance(tmp_path, capsys):
    out = _run(tmp_path, RANDOM)
    r = read_results(out)
    a = r.analysis
    mf = MeanField("tanh", 1.5, 0.3, 0.3)
    assert a["q_star"] == mf.fixed_q() and a["chi_1"] == mf.chi_1()
    assert a["lyapunov"].shape == (2,) and a["lyapunov"][0] >= a["lyapunov"][1]
    assert a["q_measured"].shape == (3,) and a["q_mean_field"].shape == (3,)
    assert np.isnan(a["tv"][0]) and np.all(a["tv"][1:] > 0)
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mean field: q* =" in text and "Lyapunov exponents" in text


def test_measured_variance_matches_linear_gaussian_closed_form(tmp_path):
    table = {"network": {"random": {"widths": [2, 2, 2], "activation": "identity", "sigma_w": 0.8,
                                    "sigma_b": 0.2, "seed": 1, "noise": {"kind": "gaussian", "std": 0.5}}},
             "input": {"kind": "gaussian", "mean": [0.3, -0.2], "std": 0.5},
             "solver": {"method": "grid", "nodes": 40}, "analysis": {"mean_field": True}}
    case = loads_case(tomli_w.dumps(table))
    r = read_results(_run(tmp_path, table))
    m, c = case.input.mean(), case.input.cov()
    expected = []
    for layer in case.network:
        W, b = layer.weights, layer.bias
        expected.append(np.mean(np.diag(W @ c @ W.T) + (W @ m + b) ** 2))
        m, c = W @ m + b, W @ c @ W.T + np.diag(layer.noise.variance())
    assert np.allclose(r.analysis["q_measured"], expected, rtol=1e-8, atol=0)


def test_plot_draws_the_analysis_panels(tmp_path):
    import matplotlib.image as mpimg

    out = _run(tmp_path, RANDOM)
    png = tmp_path / "a.png"
    assert main(["plot", str(out), "-o", str(png)]) == 0
    img = mpimg.imread(png)
    assert img[..., :3].std() > 0.05  # not blank
    from mzpdf.io.hdf5 import read_results as read
    from mzpdf.plot import figures

    fig = figures(read(out))[""]
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) >= 3  # the marginals and the analysis panels (distances, variance)
    tops = [round(ax.get_position().y1, 3) for ax in panels]
    assert max(tops.count(t) for t in set(tops)) <= 4  # at most four a row (mzpdf.plot's rule)


@pytest.mark.parametrize("override, key", [
    ("analysis.colour=1", "analysis.colour"),
    ("analysis.mean_field=1", "analysis.mean_field"),
    ("analysis.lyapunov=3", "analysis.lyapunov"),
    ("analysis.lyapunov=-1", "analysis.lyapunov"),
    ("analysis.distances='first'", "analysis.distances"),
])
def test_bad_analysis_is_refused_naming_the_key(override, key):
    with pytest.raises(CaseError) as info:
        loads_case(tomli_w.dumps(RANDOM), [override])
    assert info.value.key == key


def test_distances_need_densities():
    with pytest.raises(CaseError) as info:
        loads_case(tomli_w.dumps({**RANDOM, "solver": {"method": "montecarlo", "samples": 1000}}))
    assert info.value.key == "analysis.distances"


def test_mean_field_needs_a_random_network():
    with pytest.raises(CaseError) as info:
        loads_case(tomli_w.dumps({**UNIT, "analysis": {"mean_field": True}}))
    assert info.value.key == "analysis.mean_field"
