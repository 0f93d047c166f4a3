"""PyTorch models (issue 7, item 1): ``from_torch``, ``network.file = "*.pt"``.

Oracles: the equivalent case file written out by hand (the densities must be
identical: the same float64 weights give the same arithmetic), and a Monte
Carlo simulation that runs the torch model itself, with its own noise,
checked with the Bonferroni band of ``test_against_montecarlo``.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import torch  # part of the test extra: these tests never skip

import mzpdf
from mzpdf.errors import CaseError
from mzpdf.io.case import load_case
from mzpdf.solvers.grid.engine import GridSolver
from mzpdf.network.torch_model import from_torch, residual
from test_against_montecarlo import band_violations

ROOT = Path(__file__).resolve().parents[1]
NOISE = {"kind": "gaussian", "std": 0.15}


def _blocks():
    torch.manual_seed(3)
    return [torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()),
            torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()),
            torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sigmoid())]


def _case_text(model_file: str | None, blocks) -> str:
    head = '[case]\nname = "t"\n[input]\nkind = "gaussian"\nmean = [0.2, -0.1]\nstd = 0.6\n' \
           '[solver]\nmethod = "grid"\nnodes = 40\n'
    if model_file is not None:
        return head + f'[network]\nfile = "{model_file}"\nnoise = {{ kind = "gaussian", std = 0.15 }}\n'
    names = {torch.nn.Tanh: "tanh", torch.nn.ReLU: "relu", torch.nn.Sigmoid: "sigmoid"}
    text = head
    for block in blocks:
        lin, act = block[0], block[1]
        W = lin.weight.detach().double().numpy()
        b = lin.bias.detach().double().numpy()
        text += ("[[network.layers]]\n"
                 f"weights = [{', '.join('[' + ', '.join(repr(float(v)) for v in row) + ']' for row in W)}]\n"
                 f"bias = [{', '.join(repr(float(v)) for v in b)}]\n"
                 f'activation = "{names[type(act)]}"\nnoise = {{ kind = "gaussian", std = 0.15 }}\n')
    return text


def test_model_file_gives_the_densities_of_the_equivalent_case_file(tmp_path):
    blocks = _blocks()
    torch.save(torch.nn.Sequential(*blocks), tmp_path / "model.pt")
    (tmp_path / "a.toml").write_text(_case_text("model.pt", blocks))
    (tmp_path / "b.toml").write_text(_case_text(None, blocks))
    ra = mzpdf.run(load_case(tmp_path / "a.toml"))
    rb = mzpdf.run(load_case(tmp_path / "b.toml"))
    worst = max(np.max(np.abs(la.marginal_pdf - lb.marginal_pdf)) for la, lb in zip(ra.forward, rb.forward))
    print(f"model file vs case file: largest marginal difference {worst:.1e}")
    for la, lb in zip(ra.forward, rb.forward):
        assert np.max(np.abs(la.marginal_pdf - lb.marginal_pdf)) <= 1e-12
        assert np.max(np.abs(la.cov - lb.cov)) <= 1e-12


def _torch_monte_carlo(blocks, law, std, samples, abscissae, seed=5):
    """Histograms of every layer of the noisy torch network, with bins centred
    on ``abscissae[n][k]`` (the layout ``band_violations`` reads)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(law.sample(np.random.default_rng(seed), samples))
    layers = [None]
    with torch.no_grad():
        for n, block in enumerate(blocks):
            x = block.double()(x) + std * torch.randn(x.shape[0], block[0].out_features, generator=gen,
                                                      dtype=torch.float64)
            xs = abscissae[n + 1]
            pdf = np.empty(xs.shape)
            for k in range(xs.shape[0]):
                h = xs[k, 1] - xs[k, 0]
                edges = np.concatenate([xs[k] - h / 2, [xs[k, -1] + h / 2]])
                pdf[k] = np.histogram(x[:, k].numpy(), bins=edges)[0] / (samples * h)
            layers.append(type("Layer", (), {"marginal_x": xs, "marginal_pdf": pdf}))
    return type("Run", (), {"layers": layers})


@pytest.mark.slow
def test_torch_monte_carlo_inside_the_band_and_the_band_can_fail():
    blocks = _blocks()
    net = from_torch(torch.nn.Sequential(*blocks), NOISE)
    law = mzpdf.GaussianInput(np.array([0.2, -0.1]), 0.36 * np.eye(2))
    solution = GridSolver(nodes=40).propagate(net, law)
    abscissae = [None] + [np.stack([np.linspace(lo, hi, 81) for lo, hi in d.grid.box]) for d in solution.densities[1:]]
    samples = 1_000_000
    mc = _torch_monte_carlo(blocks, law, 0.15, samples, abscissae)
    scores, z = band_violations(solution, mc, samples)
    print(f"torch Monte Carlo: worst of {scores.size} bins at {scores.max():.2f} standard errors (band {z:.2f})")
    assert scores.max() < z, f"worst bin at {scores.max():.2f} standard errors, band {z:.2f}"
    # the same sample against a network whose noise is 5% off must leave the band
    wrong = GridSolver(nodes=40).propagate(from_torch(torch.nn.Sequential(*blocks), {"kind": "gaussian", "std": 0.1575}),
                                           law)
    scores_wrong, _ = band_violations(wrong, mc, samples)
    print(f"noise 5% off: worst bin at {scores_wrong.max():.2f} standard errors")
    assert scores_wrong.max() > z


def test_residual_blocks_and_nested_sequentials():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(),
                                torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LeakyReLU(0.1), torch.nn.Dropout()),
                                residual(torch.nn.Linear(2, 2), torch.nn.Sigmoid(), 0.5), torch.nn.Identity(),
                                torch.nn.Linear(2, 1))
    net = from_torch(model, NOISE)
    assert net.widths == [2, 3, 2, 2, 1]
    assert [layer.kind for layer in net] == ["dense", "dense", "residual", "dense"]
    assert [layer.activation.name for layer in net] == ["tanh", "leaky_relu", "sigmoid", "identity"]
    model.eval()
    x = np.random.default_rng(0).standard_normal((50, 2))
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(net.forward(x) - expected)) < 1e-14


def test_per_layer_noise_list():
    net = from_torch(torch.nn.Sequential(*_blocks()), [NOISE, {"kind": "laplace", "scale": 0.2}, NOISE])
    assert type(net[1].noise).__name__ == "LaplaceNoise"
    with pytest.raises(CaseError, match="one per layer"):
        from_torch(torch.nn.Sequential(*_blocks()), [NOISE, NOISE])


@pytest.mark.parametrize("modules, match", [
    (lambda nn: [nn.Conv1d(1, 1, 1), nn.Linear(2, 2), nn.LogSoftmax(dim=1)], r"Conv1d at \[0\]; LogSoftmax at \[2\]"),
    (lambda nn: [nn.Linear(2, 2), nn.Softmax(dim=0)], "dim = -1 or 1"),  # Softmax and GELU(tanh): issue 39
    (lambda nn: [nn.Linear(2, 2), nn.Tanh(), nn.BatchNorm1d(2)], "must directly follow a Linear"),
    (lambda nn: [nn.Tanh(), nn.Linear(2, 2)], "does not follow a Linear"),
    (lambda nn: [nn.Linear(2, 2), nn.Tanh(), nn.ReLU()], "does not follow a Linear"),
    (lambda nn: [nn.Linear(2, 2), nn.Softplus(beta=2.0)], "beta = 1"),
    (lambda nn: [nn.Dropout()], "at least one Linear"),
])
def test_unsupported_models_are_refused_by_name(modules, match):
    with pytest.raises(CaseError, match=match):
        from_torch(torch.nn.Sequential(*modules(torch.nn)), NOISE)


def test_model_files_that_cannot_be_read_exit_2_naming_the_key(tmp_path):
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LogSoftmax(dim=1)), tmp_path / "logsoftmax.pt")
    torch.save(torch.nn.Sequential(*_blocks()).state_dict(), tmp_path / "weights.pt")
    for name, match in (("logsoftmax.pt", "LogSoftmax"), ("weights.pt", "state_dict"), ("missing.pt", "existing file")):
        (tmp_path / "c.toml").write_text(_case_text(name, []))
        out = subprocess.run([sys.executable, "-m", "mzpdf", "run", str(tmp_path / "c.toml"), "-o",
                              str(tmp_path / "c.h5")], capture_output=True, text=True)
        assert out.returncode == 2 and "network.file" in out.stderr and match in out.stderr, out.stderr
        assert not (tmp_path / "c.h5").exists()
    text = _case_text("logsoftmax.pt", []).replace('noise = {', 'activation = "tanh"\nnoise = {')
    with pytest.raises(CaseError, match="network.activation"):
        mzpdf.load_case(_write(tmp_path / "d.toml", text))


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("script, bound", [("train_regression.py", "held-out MSE"),
                                           ("train_classifier.py", "held-out accuracy")])
def test_training_scripts_reach_their_targets(tmp_path, script, bound):
    # oracle: the task's own held-out error; the committed models came from these scripts
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "-o", str(tmp_path / "m.pt")],
                         capture_output=True, text=True, check=True)
    value = float(out.stdout.split(bound)[1].split(";")[0])
    assert (value < 0.02) if "MSE" in bound else (value > 0.93), out.stdout
    net = mzpdf.load_torch(tmp_path / "m.pt", NOISE)
    assert net.widths[0] == 2
