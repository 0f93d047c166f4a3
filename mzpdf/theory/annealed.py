"""Annealed random networks of finite width (issue 9, item 2).

When every pass redraws ``W_ij ~ N(0, sigma_w^2 / N)`` and
``b_i ~ N(0, sigma_b^2)``, the pre-activations of layer ``l + 1`` given the
layer ``x_l`` are i.i.d. ``N(0, sigma_w^2 Q_l + sigma_b^2)`` with
``Q_l = |x_l|^2 / N``. So ``Q_l`` is a Markov chain on the half line, and
``Q_{l+1}`` given ``Q_l = Q`` is the mean of ``N`` i.i.d. copies of
``Y = (phi(s z) + xi)^2``, ``s^2 = sigma_w^2 Q + sigma_b^2``: its
characteristic function is ``psi(t / N)^N`` with

    psi(t) = E_z[(1 - 2 i t v)^(-1/2) exp(i t phi(s z)^2 / (1 - 2 i t v))]

(``v`` the noise variance; the gaussian expectation over ``xi`` is closed
form, the one over ``z`` uses the composite rule of
:mod:`mzpdf.theory.meanfield`). The transition density follows by a discrete
Fourier inversion on a grid of ``Q``, so the law of ``Q_l`` -- and hence the
finite-width pre-activation variance ``q_l = sigma_w^2 E[Q_l] + sigma_b^2``
that mean field approximates -- is propagated exactly up to quadrature and
the grid (no sampling). As ``N`` grows, the law concentrates on the mean-field
trajectory with spread ``O(1/sqrt N)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .meanfield import MeanField, _rule

__all__ = ["AnnealedChain"]


@dataclass
class AnnealedChain:
    """The chain ``Q_l`` of an annealed net of width ``width``.

    Parameters
    ----------
    mean_field : MeanField
        Activation, ``sigma_w``, ``sigma_b`` and noise of the layers.
    width : int
    window : (float, float), optional
        Grid of ``Q`` (default: the mean-field trajectory and fixed point
        widened by 14 standard deviations of ``Q'``, estimated as
        ``sqrt(Var Y / N)``, and clipped at 0).
    nodes : int
        Grid points of ``Q`` (a power of two suits the FFT).
    """

    mean_field: MeanField
    width: int
    window: tuple | None = None
    nodes: int = 256

    def propagate(self, q0: float, depth: int) -> dict:
        """Law of ``Q_l`` for ``l = 0..depth`` from ``Q_0 = q0`` (a point).

        Returns ``{"grid", "density" (depth+1, nodes) [row 0 empty: a point],
        "mean_Q", "std_Q", "q" (the finite-width pre-activation variance
        sigma_w^2 E[Q_l] + sigma_b^2, l >= 1), "q_mean_field", "mass"}``."""
        mf = self.mean_field
        q_mf = [q0]
        for _ in range(depth):
            q_mf.append((mf.q_map(mf.sigma_w**2 * q_mf[-1] + mf.sigma_b**2) - mf.sigma_b**2) / mf.sigma_w**2)
        if self.window is None:
            spread = max(self._sd_y(Q) for Q in (min(q_mf), max(q_mf))) / np.sqrt(self.width)
            lo, hi = max(0.0, min(q_mf) - 14 * spread), max(q_mf) + 14 * spread
        else:
            lo, hi = self.window
        grid = np.linspace(lo, hi, self.nodes, endpoint=False)
        h = grid[1] - grid[0]
        K = self._transition_at(grid, grid)  # K[j, i]: density of Q' = grid[j] given Q = grid[i]
        dens = np.zeros((depth + 1, grid.size))
        dens[1] = self._transition_at(np.array([q0]), grid)[:, 0]
        for l in range(2, depth + 1):
            dens[l] = K @ (dens[l - 1] * h)
        mass = dens[1:].sum(axis=1) * h
        mean_Q = np.concatenate([[q0], (dens[1:] @ grid) * h / mass])
        second = np.concatenate([[q0 * q0], (dens[1:] @ grid**2) * h / mass])
        return {"grid": grid, "density": dens, "mean_Q": mean_Q,
                "std_Q": np.sqrt(np.maximum(second - mean_Q**2, 0.0)),
                "q": mf.sigma_w**2 * mean_Q + mf.sigma_b**2,
                "q_mean_field": mf.sigma_w**2 * np.array(q_mf) + mf.sigma_b**2,
                "mass": np.concatenate([[1.0], mass])}

    def _sd_y(self, Q: float) -> float:
        """Standard deviation of one ``Y = (phi(s z) + xi)^2`` at ``Q``."""
        mf = self.mean_field
        u, w = _rule(mf.sigma_w**2 * Q + mf.sigma_b**2, 8)
        a2 = mf.activation(u) ** 2
        v = mf.noise_std**2
        m1 = w @ (a2 + v)
        m2 = w @ (a2 * a2 + 6 * a2 * v + 3 * v * v)  # E[(a + xi)^4]
        return float(np.sqrt(max(m2 - m1 * m1, 1e-300)))

    def _transition_at(self, sources: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """Density of ``Q'`` on ``grid`` (rows) given ``Q`` = each source (columns),
        by DFT of ``psi(t / N)^N`` (the grid starts at 0 and must hold
        the support: mass outside the window would alias)."""
        mf, N = self.mean_field, self.width
        h = grid[1] - grid[0]
        M = grid.size
        t = 2 * np.pi * np.fft.fftfreq(M, d=h)
        shift = np.exp(-1j * t * grid[0])  # the grid starts at grid[0], not 0
        v = mf.noise_std**2
        out = np.empty((M, sources.size))
        for i, Q in enumerate(sources):
            s2 = mf.sigma_w**2 * Q + mf.sigma_b**2
            # 8 points per panel of 1/2: error ~1e-13 for the smooth phi^2 of the registered activations
            u, w = _rule(s2, 8) if s2 > 0 else (np.zeros(1), np.ones(1))
            a2 = mf.activation(u) ** 2
            tn = t / N
            denom = 1.0 - 2j * tn * v
            psi = (np.exp(1j * tn[:, None] * a2[None, :] / denom[:, None]) @ w) / np.sqrt(denom)
            out[:, i] = np.maximum(np.real(np.fft.fft(psi**N * shift)) / (M * h), 0.0)
        return out
