"""Exact Mori-Zwanzig equations of a network (SPEC 4), whatever method
solved it: :class:`MoriZwanzig` holds the kernels a method assembled
(``solvers/<method>/mz.py``) and answers what they say about memory.

With projections ``P_n = E_n R_n`` (see :mod:`mzpdf.mz.projections`) and
reduced densities ``r_n = R_n p_n``, the forward equation is

    r_{n+1} = sum_{k=0}^{n} K[n, k] r_k + f_n,
    K[n, k] = R_{n+1} N_n Q_n N_{n-1} ... Q_{k+1} N_k E_k,
    f_n     = R_{n+1} N_n Q_n ... Q_1 N_0 Q_0 p_0,

where ``K[n, n]`` is the streaming (Markovian) operator and ``K[n, k]`` for
``k < n`` the memory kernel of lag ``n - k``; ``f_n`` (the noise term, lag n)
carries the part of the input the projection does not see. A method computes
every kernel from its full layer operators by pushing the columns of ``E_k``
through the orthogonal dynamics.

The observable equation uses the adjoint kernels ``H_n^-1 K[j-1, n]^T H_j``
(``H`` the reduced pairing) and its own noise term
``R_n M_n Q_{n+1} ... Q_L g``. Truncating memory at lag h keeps the terms of
lag <= h: a recursion on the kept neurons that remembers h layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..options import is_auto
from ..results import MZSummary
from .norms import kernel_bounds, truncation_estimate
from .spec import ProjectionSpec

__all__ = ["MoriZwanzig"]


@dataclass(frozen=True, eq=False)
class MoriZwanzig:
    """The exact reduced equations of one forward solution, and what they say
    about memory.

    Attributes
    ----------
    spec : ProjectionSpec
    projections : list of Projection
        ``L + 1``, one per layer.
    kernels : dict
        ``kernels[n, k]``: reduced density kernel from layer k to layer n + 1.
    noise : list of ndarray
        ``L`` forward noise terms ``f_n``.
    projected : list of ndarray
        ``R_n p_n`` of the full solution (what the reduced recursion must give).
    kappa : (L,) ndarray
        ``||Q_{n+1} N_n Q_n||`` in L2(1/mu) (equivalently ``||Q_n M_n Q_{n+1}||``
        from L2(mu_{n+1}) to L2(mu_n); :mod:`mzpdf.mz.norms`).
    kappa_bound : (L,) ndarray
        ``||Q_n|| rho_n ||Q_{n+1}||`` with ``rho_n`` the maximal correlation
        (:attr:`max_correlation`); NaN where not computed.
    dobrushin, canonical_correlation : (L,) ndarray
        Two a-priori coefficients per layer from the network alone (total
        variation contraction, gaussian noise; top canonical correlation,
        linear-gaussian layers; NaN where they do not apply).
    backward_noise, backward_projected : list or None
        Observable-side noise terms and ``R_n q_n`` when an observable was given.
    seconds : float
        Wall time of the kernel computation.
    max_correlation, entry, exit : (L,) ndarray or None
        ``rho_n``, ``b_n = ||Q_{n+1} N_n E_n||`` and ``a_n = ||R_{n+1} N_n Q_n||``
        (None where the norms are not computed).
    """

    spec: ProjectionSpec
    projections: list
    kernels: dict
    noise: list
    projected: list
    kappa: np.ndarray
    kappa_bound: np.ndarray
    dobrushin: np.ndarray
    canonical_correlation: np.ndarray
    backward_noise: list | None = None
    backward_projected: list | None = None
    seconds: float = 0.0
    extras: dict = field(default_factory=dict)
    max_correlation: np.ndarray | None = None
    entry: np.ndarray | None = None
    exit: np.ndarray | None = None

    @property
    def depth(self) -> int:
        return len(self.noise)

    @property
    def norm_name(self) -> str:
        return self.projections[0].norm_name

    # -- memory ---------------------------------------------------------------
    def memory_norm(self) -> np.ndarray:
        """``[n, lag]``: norm of ``K[n, n - lag]`` (lag 0 is the streaming
        operator); NaN where ``lag > n``."""
        L = self.depth
        out = np.full((L, L), np.nan)
        for (n, k), kern in self.kernels.items():
            out[n, n - k] = self.projections[n + 1].kernel_norm(kern, self.projections[k])
        return out

    def bound(self) -> np.ndarray:
        """``[n, lag]``: a bound on each kernel's norm from one-layer factors
        (:func:`mzpdf.mz.norms.kernel_bounds`); all NaN without them."""
        L = self.depth
        if self.entry is None:
            return np.full((L, L), np.nan)
        return kernel_bounds(self.memory_norm()[:, 0], self.exit, self.kappa, self.entry)

    def truncation_estimate(self) -> np.ndarray:
        """``(L,)``: an upper bound on the largest L1 error of the kept
        marginals with memory ``h = 0 .. L-1`` (:func:`mzpdf.mz.norms.truncation_estimate`)."""
        return truncation_estimate(self)

    @property
    def memory_length(self) -> int:
        """The largest lag the case's recursion keeps: the given ``memory``,
        ``L - 1`` for ``"full"`` (every lag), and for ``"auto"`` the smallest h
        whose :meth:`truncation_estimate` is at most ``spec.tol``."""
        memory = self.spec.memory
        if memory is None:
            return self.depth - 1
        if is_auto(memory):
            ok = np.flatnonzero(self.truncation_estimate() <= self.spec.tol)
            return int(ok[0]) if ok.size else self.depth - 1
        return int(memory)

    def decay_rate(self) -> float:
        """Geometric decay rate of the memory kernels of the deepest layer with
        lag >= 1, from a least-squares fit of log norm against lag (NaN with
        fewer than two kernels above round-off, 1e-12 of the streaming norm)."""
        norms = self.memory_norm()
        row = norms[-1, 1:]
        lags = np.arange(1, row.size + 1)
        ok = np.isfinite(row) & (row > 1e-12 * norms[-1, 0])  # below that: round-off, not memory
        if ok.sum() < 2:
            return float("nan")
        slope = np.polyfit(lags[ok], np.log(row[ok]), 1)[0]
        return float(np.exp(slope))

    # -- the reduced recursions ----------------------------------------------
    def forward(self, memory: int | None = None) -> list[np.ndarray]:
        """Reduced densities ``r_0 ... r_L`` from the recursion with lags
        ``<= memory`` (``None``: all, exact)."""
        h = self.depth if memory is None else memory
        r = [self.projected[0]]
        for n in range(self.depth):
            nxt = self.noise[n].copy() if n <= h else np.zeros_like(self.noise[n])
            for k in range(max(0, n - h), n + 1):
                nxt += self.kernels[n, k] @ r[k]
            r.append(nxt)
        return r

    def backward(self, memory: int | None = None) -> list[np.ndarray]:
        """Reduced observables ``s_0 ... s_L`` (``s_L = R_L g``) from the
        adjoint recursion with lags ``<= memory``."""
        if self.backward_noise is None:
            raise ValueError("no observable was given to the reduction")
        L = self.depth
        h = L if memory is None else memory
        s = [None] * (L + 1)
        s[L] = self.backward_projected[L]
        for n in range(L - 1, -1, -1):
            acc = self.backward_noise[n].copy() if L - 1 - n <= h else np.zeros_like(self.backward_noise[n])
            h_n = self.projections[n].pairing
            for j in range(n + 1, min(L, n + 1 + h) + 1):
                kern = self.kernels[j - 1, n]
                acc += np.linalg.solve(h_n, kern.T @ (self.projections[j].pairing @ s[j]))
            s[n] = acc
        return s

    def kept_marginals(self, reduced: list[np.ndarray]) -> list[np.ndarray]:
        """Nodal kept-neuron marginals (on each layer's kept grid) of reduced densities."""
        return [proj.kept_marginal(r) for proj, r in zip(self.projections, reduced)]

    def marginal_error(self, memory: int | None = None) -> np.ndarray:
        """``(L+1,)`` L1 distance between the kept marginals of the reduced
        recursion and of the full solution."""
        reduced = self.kept_marginals(self.forward(memory))
        exact = self.kept_marginals(self.projected)
        return np.array([p.l1(a, b) for p, a, b in zip(self.projections, reduced, exact)])

    def truncation_error(self) -> np.ndarray:
        """``[h, n]``: :meth:`marginal_error` with memory ``h = 0 .. L-1``
        (``h = L - 1`` keeps every term)."""
        return np.stack([self.marginal_error(h) for h in range(self.depth)])

    def min_memory(self, tol: float | None = None) -> int:
        """Smallest lag h whose truncated recursion keeps every layer's kept
        marginal within ``tol`` (L1) of the full solution; -1 if none does."""
        tol = self.spec.tol if tol is None else tol
        for h, err in enumerate(self.truncation_error()):
            if np.max(err) <= tol:
                return h
        return -1

    def backward_error(self, memory: int | None = None) -> np.ndarray:
        """``(L+1,)`` sup-norm distance, on each layer's nodes, between the
        reduced conditional expectation ``E s_n`` and the projected full one."""
        return np.array([np.max(np.abs(p.extend_fn((a - b)[:, None])))
                         for p, a, b in zip(self.projections, self.backward(memory), self.backward_projected)])

    def summary(self, abscissae: list[np.ndarray]) -> MZSummary:
        """The reduction as stored in a result file; ``abscissae[n]`` is layer
        n's (N_n, m) marginal abscissae, of which the kept rows are used."""
        memory = self.memory_length
        xs, pdfs = [], []
        for proj, nodal, x in zip(self.projections, self.kept_marginals(self.forward(memory)), abscissae):
            rows = np.asarray(x)[list(proj.keep)]
            pdfs.append(proj.kept_pdf(nodal, rows))
            xs.append(rows)
        has_back = self.backward_noise is not None
        return MZSummary(
            spec=self.spec.to_dict(), kept=np.array(self.spec.keep), norm=self.norm_name,
            memory_norm=self.memory_norm(), kappa=self.kappa, kappa_bound=self.kappa_bound,
            dobrushin=self.dobrushin, canonical_correlation=self.canonical_correlation,
            decay_rate=self.decay_rate(), reduced_x=xs, reduced_pdf=pdfs, error=self.marginal_error(memory),
            truncation_error=self.truncation_error(), min_memory=self.min_memory(),
            backward_error=self.backward_error(memory) if has_back else None,
            backward_truncation_error=np.stack([self.backward_error(h) for h in range(self.depth)])
            if has_back else None,
            seconds=self.seconds, bound=self.bound(), memory_length=memory,
            truncation_estimate=self.truncation_estimate(),
            max_correlation=np.full(self.depth, np.nan) if self.max_correlation is None else self.max_correlation,
        )
