"""Annealed random networks of finite width (issue 9, item 2).

Oracles: a Monte Carlo simulation of the annealed network itself (50 000
paths of width 10, weights and biases redrawn per pass) for the mean and spread of
Q_l = |x_l|^2 / N, 5 standard errors; and mean field as the N -> infinity
limit: the finite-width gap in q_l must vanish like 1/N (N x gap constant to
1% between N = 1000 and 10000; measured -0.2252 and -0.2251).
"""
import numpy as np

from mzpdf.theory import AnnealedChain, MeanField

MF = MeanField("tanh", 1.5, 0.3, 0.1)
Q0, DEPTH = 0.5, 10


def test_chain_matches_a_simulation_of_the_annealed_net():
    N, S = 10, 50_000
    res = AnnealedChain(MF, N).propagate(Q0, DEPTH)
    assert abs(res["mass"][-1] - 1.0) < 1e-6
    rng = np.random.default_rng(0)
    x = rng.standard_normal((S, N))
    x *= np.sqrt(Q0 * N) / np.linalg.norm(x, axis=1, keepdims=True)  # |x_0|^2 / N = Q0 exactly
    for _ in range(DEPTH):  # the annealed net itself: fresh W, b on every pass of every path
        W = rng.standard_normal((S, N, N)) * MF.sigma_w / np.sqrt(N)
        b = rng.standard_normal((S, N)) * MF.sigma_b
        x = np.tanh(np.einsum("sij,sj->si", W, x) + b) + MF.noise_std * rng.standard_normal((S, N))
    Q = (x**2).mean(axis=1)
    assert abs(res["mean_Q"][-1] - Q.mean()) <= 5 * Q.std() / np.sqrt(S)
    second, mc_second = res["std_Q"][-1] ** 2 + res["mean_Q"][-1] ** 2, (Q**2).mean()
    assert abs(second - mc_second) <= 5 * (Q**2).std() / np.sqrt(S)


def test_finite_width_gap_vanishes_like_one_over_n():
    gaps = {}
    for N in (1000, 10_000):
        res = AnnealedChain(MF, N).propagate(Q0, DEPTH)
        gaps[N] = N * (res["q"][-1] - res["q_mean_field"][-1])
    assert abs(gaps[1000] - gaps[10_000]) <= 0.01 * abs(gaps[10_000])
