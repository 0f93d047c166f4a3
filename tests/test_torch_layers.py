"""PyTorch models with BatchNorm1d, GELU, SiLU, ELU and Dropout (issue 28).

Oracles: the torch model's own forward pass in float64 and evaluation mode
(folding a normalization reorders a few multiplications: round-off ~1e-15 on
O(1) outputs, so 1e-12 has a wide margin yet catches a wrong epsilon, 1e-5
vs its float32 rounding, or training-mode statistics); and a saved model read
back with ``torch.load(weights_only=True)`` giving the same network.
"""
import numpy as np
import pytest

import torch  # part of the test extra

import mzpdf
from mzpdf.errors import CaseError
from mzpdf.network.torch_model import from_torch, load_torch

FORWARD_TOL = 1e-12
NOISE = {"kind": "gaussian", "std": 0.1}


def _model():
    torch.manual_seed(11)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.GELU(), nn.Dropout(0.3),
                          nn.Linear(4, 3), nn.BatchNorm1d(3, eps=1e-3), nn.SiLU(),
                          nn.Linear(3, 2), nn.BatchNorm1d(2, affine=False), nn.ELU(alpha=0.7)).double()
    with torch.no_grad():  # running statistics and affine parameters far from their (0, 1) defaults
        for m in model:
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-1.0, 1.0)
                m.running_var.uniform_(0.3, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def test_batchnorm_folding_and_new_activations_match_the_torch_forward_pass():
    model = _model()
    net = from_torch(model, NOISE)
    assert net.widths == [3, 4, 3, 2]
    assert [layer.activation.name for layer in net] == ["gelu", "silu", "elu"]
    assert net[2].activation.params == {"alpha": 0.7}
    x = np.random.default_rng(0).normal(size=(80, 3)) * 2.0
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    err = np.max(np.abs(net.forward(x) - expected))
    print(f"torch BatchNorm1d folded: largest forward difference {err:.1e}")
    assert err <= FORWARD_TOL


def test_saved_model_loads_with_weights_only_and_per_layer_noise(tmp_path):
    model = _model()
    torch.save(model, tmp_path / "m.pt")
    noise = [NOISE, {"kind": "none"}, {"kind": "laplace", "scale": 0.2}]
    net = load_torch(tmp_path / "m.pt", noise)
    ref = from_torch(model, noise)
    for a, b in zip(net, ref):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    assert [layer.noise.kind for layer in net] == ["gaussian", "none", "laplace"]
    with pytest.raises(CaseError, match="has 2 entries, the network has 3 layers") as err:
        load_torch(tmp_path / "m.pt", noise[:2])
    assert err.value.key == "network.noise"


def test_batchnorm_in_training_mode_is_refused():
    model = _model().train()
    with pytest.raises(CaseError, match=r"BatchNorm1d at \[1\] in training mode.*model.eval\(\)"):
        from_torch(model, NOISE)


def test_committed_torch_cases_still_load():
    # oracle: the committed .pt files (saved before this change) load through weights_only=True
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "cases"
    for name in ("torch_classifier.toml", "torch_regression.toml"):
        case = mzpdf.load_case(root / name)
        assert case.network.depth >= 2
