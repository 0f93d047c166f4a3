"""Train the iris classifier of ``cases/iris_classifier.toml`` and write the case.

    python scripts/train_iris.py [cases/iris_classifier.toml]

A scikit-learn ``MLPClassifier`` 4 -> 8 -> 8 -> 3 (tanh hidden layers,
logits out) on scikit-learn's bundled iris data (no download), features
standardized. The standardization is folded into the first layer, so the
case's input law is in the data's units (cm): a measurement of one flower
with a standard uncertainty of 0.1 cm per feature. Every layer gets gaussian
noise of std 0.05 (weight noise of an analog or quantized device, say), and
a 1e6-path Monte Carlo reference is stored beside the solution. The case has
no [solver] section: ``method = "auto"`` chooses (qmc: an 8-neuron layer is
beyond the tensor grid).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def train():
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    data = load_iris()
    X, y = data.data, data.target
    mu, sd = X.mean(axis=0), X.std(axis=0)
    model = MLPClassifier(hidden_layer_sizes=(8, 8), activation="tanh", max_iter=3000, random_state=0)
    model.fit((X - mu) / sd, y)
    return model, mu, sd, X, y


def layers(model, mu, sd) -> list[dict]:
    """The network as [[network.layers]] tables: standardization folded into
    layer 0 (W (x - mu) / sd + b = (W / sd) x + (b - W mu / sd))."""
    import mzpdf

    net = mzpdf.from_sklearn(model, noise={"kind": "gaussian", "std": 0.05})
    out = []
    for n, layer in enumerate(net):
        W, b = np.array(layer.weights), np.array(layer.bias)
        if n == 0:
            W, b = W / sd, b - (W / sd) @ mu
        out.append({"weights": W.round(12).tolist(), "bias": b.round(12).tolist(),
                    "activation": layer.activation.name, "noise": {"kind": "gaussian", "std": 0.05}})
    return out


def _compact(text: str) -> str:
    """tomli_w's TOML with each innermost array on one line (a weight row per line)."""
    import re

    return re.sub(r"\[\n((?:\s+-?[\d.e+-]+,\n)+)\s*\]",
                  lambda m: "[" + ", ".join(v.strip().rstrip(",") for v in m.group(1).splitlines()) + "]", text)


def main(argv: list[str]) -> int:
    import tomli_w

    target = Path(argv[1]) if len(argv) > 1 else ROOT / "cases" / "iris_classifier.toml"
    model, mu, sd, X, y = train()
    flower = X[y == 1][0]  # the first versicolor of the data set
    case = {
        "case": {"name": "iris_classifier", "seed": 7},
        "network": {"layers": layers(model, mu, sd)},
        "input": {"kind": "gaussian", "mean": flower.tolist(), "std": 0.1},
        "montecarlo": {"samples": 1_000_000, "seed": 11},
    }
    head = ("# An iris classifier 4 -> 8 -> 8 -> 3 (tanh, logits out) trained by scripts/train_iris.py on\n"
            "# scikit-learn's iris data, standardization folded into layer 0: the input is one flower's\n"
            f"# measurement in cm (training accuracy {model.score((X - mu) / sd, y):.3f}) with 0.1 cm uncertainty,\n"
            "# every layer with gaussian noise 0.05. No [solver] section: method 'auto' chooses (qmc).\n")
    target.write_text(head + _compact(tomli_w.dumps(case)))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
