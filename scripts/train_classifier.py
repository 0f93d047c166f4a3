"""Train a small three-class classifier with PyTorch and save it for mzpdf.

Three gaussian blobs in the plane; the net (2 -> 3 -> 3, tanh hidden layer,
linear logits) is trained by cross-entropy with weight decay. ``cases/torch_classifier.toml``
then asks how the logits are distributed when the input is a noisy
measurement of a point near the decision boundary.

    python scripts/train_classifier.py [-o cases/torch_classifier.pt]

Deterministic on one machine (seeded, single thread); prints the final
training loss and held-out accuracy.
"""
import argparse
from pathlib import Path

import torch

CENTRES = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
# keeps the logits within a few units: a density solver resolves them on a
# modest grid, and the probabilities stay calibrated rather than saturated
WEIGHT_DECAY = 0.5


def sample(n: int):
    labels = torch.arange(n) % 3
    return CENTRES[labels] + 0.45 * torch.randn(n, 2), labels


def train(epochs: int = 600, seed: int = 0):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x, labels = sample(600)
    x_test, labels_test = sample(600)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=0.03, weight_decay=WEIGHT_DECAY)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == labels_test).double().mean()
    return model, loss.item(), accuracy.item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "cases" / "torch_classifier.pt"))
    args = p.parse_args(argv)
    model, loss, accuracy = train()
    torch.save(model, args.output)
    print(f"training cross-entropy {loss:.3f}, held-out accuracy {accuracy:.3f}; wrote {args.output}")


if __name__ == "__main__":
    main()
