"""Immutable results of a run, independent of how they were computed or stored.

:func:`mzpdf.run` returns a :class:`Results`; :mod:`mzpdf.io.hdf5` writes and
reads it with the layout of ``shared/INTERFACE.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .laws import SummaryLaw

__all__ = ["LayerSummary", "BackwardSummary", "DualPairing", "MonteCarloLayer", "MZSummary", "Results", "atom_summary"]


@dataclass
class DualPairing:
    """What a backward solve returns besides its functions: ``q_0`` at
    ``points``, ``E[g(X_L)]`` from the backward side (``mean``) and from the
    forward one (``mean_forward``), the pairings ``<p_n, q_n>`` and the
    relative duality gap of each layer (each solver's docstring says how)."""

    points: np.ndarray | None
    q0: np.ndarray | None
    mean: float
    mean_forward: float
    pairings: np.ndarray
    duality_gap: np.ndarray


@dataclass(frozen=True)
class LayerSummary:
    """The law of one layer ``X_n`` (``n = 0`` is the input).

    Attributes
    ----------
    mean : (N_n,)
    cov : (N_n, N_n)
    mass : float
        Total probability mass held by the discretization.
    marginal_x : (N_n, m)
        One row of abscissae per neuron.
    marginal_pdf : (N_n, m)
        The neuron's marginal density at those abscissae (``inf`` rows for a point input).
    box : (N_n, 2)
        The box the layer was discretized on.
    joint : (x, y, pdf) or None
        The 2-D marginal density of neurons 0 and 1 on the grid ``x`` (m,) by
        ``y`` (m,): ``pdf[i, j]`` at ``(x[i], y[j])``; ``None`` for one neuron
        or a method that does not provide it.
    mean_stderr : (N_n,) or None
        Standard error of ``mean`` (sampling methods; None for the others).
    marginal_pdf_stderr : (N_n, m) or None
        Standard error of ``marginal_pdf`` (sampling methods; None for the others).
    """

    mean: np.ndarray
    cov: np.ndarray
    mass: float
    marginal_x: np.ndarray
    marginal_pdf: np.ndarray
    box: np.ndarray
    joint: tuple | None = None
    mean_stderr: np.ndarray | None = None
    marginal_pdf_stderr: np.ndarray | None = None


@dataclass(frozen=True)
class BackwardSummary:
    """The backward (Koopman) solve of an observable ``g``.

    Attributes
    ----------
    points : (P, N_0)
    q0 : (P,)
        ``E[g(X_L) | X_0 = point]``.
    mean : float
        ``E[g(X_L)]`` under the input law.
    thresholds, exceedance, exceedance_error : (T,) or None
        ``observable.thresholds``, ``P(g(X_L) > t)`` under the input law and a
        bound on its error (None when no thresholds were asked for).
    quantile_levels, quantiles : (Q,) or None
        ``observable.quantiles`` and the ``t_q`` with ``P(g(X_L) <= t_q) = q``.
    q0_stderr : (P,) or None
        Standard error of ``q0`` (sampling methods; None for the others).
    """

    points: np.ndarray
    q0: np.ndarray
    mean: float
    thresholds: np.ndarray | None = None
    exceedance: np.ndarray | None = None
    exceedance_error: np.ndarray | None = None
    quantile_levels: np.ndarray | None = None
    quantiles: np.ndarray | None = None
    q0_stderr: np.ndarray | None = None


@dataclass(frozen=True)
class MonteCarloLayer:
    """Sampling estimates of one layer, on the abscissae of the forward solution.

    ``*_stderr`` are standard errors; ``marginal_pdf`` is a histogram with bins
    centred on the abscissae.
    """

    mean: np.ndarray
    mean_stderr: np.ndarray
    cov: np.ndarray
    marginal_x: np.ndarray
    marginal_pdf: np.ndarray
    marginal_stderr: np.ndarray
    samples: int


@dataclass(frozen=True)
class MZSummary:
    """The Mori-Zwanzig reduction of a run (``[projection]``).

    Attributes
    ----------
    spec : dict
        The effective ``[projection]`` table.
    kept : (K,) int
    norm : str
        The norm of ``memory_norm`` and ``kappa``.
    memory_norm : (L, L)
        ``[n, lag]``: norm of the kernel of that lag producing layer n + 1
        (lag 0: the streaming operator); NaN where ``lag > n``.
    kappa, kappa_bound, dobrushin, canonical_correlation : (L,)
        Measured contraction of the orthogonal dynamics per layer, its
        a-priori bound, and the two coefficients behind it (NaN where none applies).
    decay_rate : float
        Fitted geometric decay of the deepest layer's memory norms with lag.
    reduced_x, reduced_pdf : list of (K, m)
        Per layer, kept-neuron marginals of the reduced recursion (with the
        case's memory) on the abscissae of the forward solution.
    error : (L+1,)
        L1 distance per layer between reduced and full kept marginals.
    truncation_error : (L, L+1)
        ``[h, n]``: that distance with memory truncated at lag h.
    min_memory : int
        Smallest h with every layer within ``spec["tol"]`` (-1 if none).
    backward_error, backward_truncation_error : ndarray or None
        For an observable: sup-norm distance per layer between the reduced
        conditional expectation and the projected full one, with the case's
        memory and with every h.
    seconds : float
    bound : (L, L) or None
        ``[n, lag]``: bound on each kernel's norm (same norm as ``memory_norm``)
        from one-layer factors: the streaming norm at lag 0, exit factor times
        the kappas spanned times entry factor at lag >= 1.
    memory_length : int
        The largest lag the stored reduced recursion keeps (the given memory,
        L - 1 for "full", the chosen one for "auto"; -1 if unknown).
    truncation_estimate : (L,) or None
        For memory h = 0 .. L-1, an upper bound on the largest L1 error of the
        kept marginals (what ``memory = "auto"`` compares with ``tol``).
    max_correlation : (L,) or None
        Norm of the Koopman operator on zero-mean functions, L2(mu_{n+1}) to
        L2(mu_n), per layer (NaN where not computed).
    """

    spec: dict
    kept: np.ndarray
    norm: str
    memory_norm: np.ndarray
    kappa: np.ndarray
    kappa_bound: np.ndarray
    dobrushin: np.ndarray
    canonical_correlation: np.ndarray
    decay_rate: float
    reduced_x: list
    reduced_pdf: list
    error: np.ndarray
    truncation_error: np.ndarray
    min_memory: int
    backward_error: np.ndarray | None = None
    backward_truncation_error: np.ndarray | None = None
    seconds: float = 0.0
    bound: np.ndarray | None = None
    memory_length: int = -1
    truncation_estimate: np.ndarray | None = None
    max_correlation: np.ndarray | None = None


@dataclass(frozen=True)
class Results:
    """Everything one run produced.

    Attributes
    ----------
    case_name, case_toml : str
        The case's name and its effective text (after overrides).
    method : str
        Solver method that produced ``forward``.
    forward : list of LayerSummary
        ``L + 1`` entries, input first.
    backward : BackwardSummary or None
    montecarlo : list of MonteCarloLayer or None
        ``L + 1`` entries when a sampling reference was run.
    montecarlo_backward : BackwardSummary or None
        Monte Carlo conditional means (``q0``) at the same points, with
        ``montecarlo_backward_stderr`` their standard errors.
    mz : MZSummary or None
        The Mori-Zwanzig reduction, when the case has ``[projection]``.
    analysis : dict or None
        The ``[analysis]`` diagnostics (see :mod:`mzpdf.theory.analysis`):
        names to numbers or arrays.
    diagnostics : dict of str to ndarray
        ``mass`` (L+1,), ``lost_mass`` (L+1,), ``duality_gap`` (L,),
        ``time_per_layer_s`` (L,), and solver-specific extras.
    wall_time_s : float
    accepted : bool
        Whether the run passed the solver's own accuracy checks
        (``Solver.accuracy_problems``); ``reason`` says what failed.
    reason : str
    method_reason : str
        Why the method was chosen (``solver.method = "auto"``), or that the
        case named it.
    solution : mzpdf.solvers.Solution or None
        The solver's Solution (in memory only; not stored in result files).
    resumed_from_layer : int
        The last layer a ``--resume`` restored from a checkpoint (0: a fresh run).
    """

    case_name: str
    case_toml: str
    method: str
    forward: list
    backward: BackwardSummary | None = None
    montecarlo: list | None = None
    montecarlo_backward: BackwardSummary | None = None
    montecarlo_backward_stderr: np.ndarray | None = None
    mz: MZSummary | None = None
    diagnostics: dict = field(default_factory=dict)
    analysis: dict | None = None
    wall_time_s: float = 0.0
    solution: object = field(default=None, repr=False, compare=False)
    accepted: bool = True
    reason: str = ""
    method_reason: str = ""
    resumed_from_layer: int = 0

    @property
    def depth(self) -> int:
        return len(self.forward) - 1

    def law(self, n: int):
        """The law of layer ``n`` (0 = input; negative counts from the end) as
        a :class:`mzpdf.laws.Law`: ``mean``, ``cov``, ``mass``,
        ``marginal(i, x)``, ``joint(i, j, x, y)``, ``cdf(i, x)``,
        ``quantile(i, q)``, ``sample(n, seed)`` and ``error_estimate`` (the
        layer's ``/diagnostics/error_estimate``, NaN where the method stores
        none). From the solver's own functions after :func:`mzpdf.run`; from
        the stored summaries (densities interpolated between the stored
        abscissae) for results read from a file."""
        n = range(self.depth + 1)[n]
        law = self.solution.law(n) if self.solution is not None else SummaryLaw(self.forward[n])
        return law._attach(self.forward[n], self._error_estimate(n))

    def _error_estimate(self, n: int) -> float:
        estimate = np.asarray(self.diagnostics.get("error_estimate", np.nan), dtype=np.float64)
        if estimate.ndim == 0:
            return float(estimate)
        return float(estimate[n]) if estimate.shape == (self.depth + 1,) else float("nan")


def atom_summary(x0: np.ndarray, marginal_points: int) -> LayerSummary:
    """The summary of a layer that is the point ``x0``."""
    xs = np.repeat(x0[:, None], marginal_points, axis=1)
    return LayerSummary(x0, np.zeros((x0.size, x0.size)), 1.0, xs, np.full(xs.shape, np.inf),
                        np.column_stack([x0, x0]))
