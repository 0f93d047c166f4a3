"""Train a small regression net with PyTorch and save it for mzpdf.

The net (2 -> 3 -> 2 -> 1, tanh hidden layers, linear read-out) learns
``y = sin(x_1) + 0.5 x_2^2 - 0.5`` on ``[-1.5, 1.5]^2`` from 512 noisy samples.
``cases/torch_regression.toml`` then propagates an uncertain input
(gaussian around a nominal operating point) through the trained net with
neuron noise, and compares with Monte Carlo.

    python scripts/train_regression.py [-o cases/torch_regression.pt]

Deterministic on one machine (seeded, single thread); prints the final
training and held-out mean squared errors.
"""
import argparse
from pathlib import Path

import torch


def target(x):
    return torch.sin(x[:, :1]) + 0.5 * x[:, 1:] ** 2 - 0.5


def train(epochs: int = 1500, seed: int = 0):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x = 3.0 * torch.rand(512, 2) - 1.5
    y = target(x) + 0.01 * torch.randn(512, 1)
    x_test = 3.0 * torch.rand(256, 2) - 1.5
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2), torch.nn.Tanh(),
                                torch.nn.Linear(2, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()
    with torch.no_grad():
        test = torch.mean((model(x_test) - target(x_test)) ** 2)
    return model, loss.item(), test.item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "cases" / "torch_regression.pt"))
    args = p.parse_args(argv)
    model, loss, test = train()
    torch.save(model, args.output)
    print(f"training MSE {loss:.2e}, held-out MSE {test:.2e}; wrote {args.output}")


if __name__ == "__main__":
    main()
