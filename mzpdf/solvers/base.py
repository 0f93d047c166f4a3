"""The one interface every solution method implements.

A method is a subclass of :class:`Solver` registered in
:data:`~mzpdf.solvers.registry.SOLVERS`. The base class owns the bookkeeping
every method shares, in the manner of SciPy's ``OdeSolver``: the memory
guard, progress, the layer loop with its timing, checkpoints and ``--resume``
(:func:`mzpdf.solvers.march.march`), the diagnostics of the run. A subclass
says what it can take (:class:`Capabilities`, :meth:`Solver.check_case`),
what it needs (:meth:`Solver.estimate_bytes`) and implements the
method-specific pieces: one layer step (:meth:`Solver._march` gives a
:class:`~mzpdf.solvers.march.LayerMarch`; a sampling method
:meth:`Solver._sample` instead), :meth:`Solver._summarize` (every layer's
:class:`~mzpdf.results.LayerSummary`), :meth:`Solver._solution` (its
immutable :class:`Solution`) and, where the method has them,
:meth:`Solver._pullback` and :meth:`Solver._reduce`.

A run gives a :class:`Solution`. Its ``diagnostics`` keys each have one
meaning (:mod:`mzpdf.diagnostics`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from ..diagnostics import DIAGNOSTICS
from ..errors import CaseError, MzpdfError
from ..laws import Law, SummaryLaw
from ..options import SolverOptions
from ..progress import Progress
from ..results import BackwardSummary
from ..tails import check_levels
from .march import LayerMarch, march
from .registry import accepting, check_memory, with_tails

__all__ = ["Capabilities", "CaseKeys", "DIAGNOSTICS", "JOINT_POINTS", "Solution", "Solver", "case_points",
           "noiseless_problem"]

JOINT_POINTS = 81  # per axis, of the stored 2-D marginal of neurons 0 and 1
DEFAULT_MAX_LOST_MASS = 1e-3  # solver.max_lost_mass: a run cutting off more of any layer's law fails its checks


@dataclass(frozen=True)
class Capabilities:
    """What a method can take.

    Attributes
    ----------
    layer_kinds : tuple of str
        Layer kinds (``dense``, ``residual``, ``layernorm``, ``softmax``) it
        propagates.
    noise_kinds : tuple of str
        Noise laws it takes on every layer.
    noiseless : bool
        Whether layers with ``noise = none`` are allowed.
    widening : bool
        Whether a layer may change the width.
    max_width : int or None
        The widest layer it is meant for (None: no limit by design).
    densities : bool
        Whether the layers' laws are densities one can evaluate anywhere
        (needed by ``[analysis] distances``).
    backward : bool
        Whether it computes conditional expectations (``[observable]``).
    observables : tuple of str
        The ``observable.kind`` values it takes (an indicator such as
        ``argmax`` only by the sampling methods, whose error does not depend
        on the smoothness of ``g``).
    projections : tuple of str
        The ``[projection]`` kinds its Mori-Zwanzig reduction takes.
    backends : tuple of str
        The ``solver.backend`` values it runs on.
    resume : bool
        Whether a killed run continues from layer checkpoints.
    distributed : bool
        Whether independent parts of the solve run as tasks of a Dask cluster
        (``mzpdf run --workers N`` or ``--scheduler ADDRESS``).
    tails : bool
        Whether it computes exceedance probabilities and quantiles to
        relative accuracy (``observable.thresholds``, ``observable.quantiles``).
    """

    layer_kinds: tuple = ("dense", "residual")
    noise_kinds: tuple = ("gaussian", "uniform", "laplace")
    noiseless: bool = False
    widening: bool = True
    max_width: int | None = None
    densities: bool = True
    backward: bool = True
    observables: tuple = ("neuron", "linear")
    projections: tuple = ()
    backends: tuple = ("cpu",)
    resume: bool = True
    distributed: bool = False
    tails: bool = False


@dataclass(frozen=True)
class CaseKeys:
    """The dotted keys of a case's network entries, for messages: how the
    network was given (``layers``, ``random`` or ``file``) decides them."""

    network_spec: dict = field(default_factory=dict)

    def noise(self, n: int) -> str:
        """The key of layer ``n``'s noise kind."""
        if "layers" in self.network_spec:
            return f"network.layers[{n}].noise.kind"
        if "random" in self.network_spec:
            return "network.random.noise.kind"
        per_layer = isinstance(self.network_spec.get("noise"), (list, tuple))  # a model file with one noise a layer
        return f"network.noise[{n}].kind" if per_layer else "network.noise.kind"

    def kind(self, n: int) -> str:
        """The key of layer ``n``'s kind."""
        return f"network.layers[{n}].kind" if "layers" in self.network_spec else self.layer(n)

    def shape(self, n: int) -> str:
        """The key of layer ``n``'s weights (its shape)."""
        return f"network.layers[{n}].weights" if "layers" in self.network_spec else self.layer(n)

    def layer(self, n: int) -> str:
        """The key a user changes to change layer ``n`` itself."""
        if "layers" in self.network_spec:
            return f"network.layers[{n}]"
        return "network.random.widths" if "random" in self.network_spec else "network.file"



@dataclass(frozen=True)
class Solution:
    """What a solve computed: an immutable result that holds all it needs
    (it never calls back into the solver that made it).

    A method whose laws are functions (grid, tt, sparse) or that answers
    tails returns a subclass that overrides :meth:`_law`,
    :meth:`_exceedance` and :meth:`_quantile`; this base class gives the
    laws of the stored summaries.

    Attributes
    ----------
    method : str
    forward : tuple of LayerSummary
        The law of every layer, input first (``L + 1`` entries).
    backward : BackwardSummary or None
        ``q0`` at ``[observable].points`` and ``E[g(X_L)]``.
    diagnostics : dict
        The keys of :data:`DIAGNOSTICS`, each with its one meaning, plus the
        method's extras.
    native, native_backward : object
        The discretization's own solution objects (for the Mori-Zwanzig
        reduction and for users who want the functions themselves).
    resumed_from_layer : int
        The last layer restored from a checkpoint (0: a fresh run).
    """

    method: str
    forward: tuple
    backward: BackwardSummary | None
    diagnostics: dict
    native: object = field(repr=False, default=None)
    native_backward: object = field(repr=False, default=None)
    resumed_from_layer: int = 0

    @property
    def depth(self) -> int:
        return len(self.forward) - 1

    def law(self, n: int) -> Law:
        """The law of layer ``n`` (0 = input; negative counts from the end)."""
        return self._law(range(self.depth + 1)[n])

    def exceedance(self, g, t, error: bool = False):
        """``P(g(X_L) > t)`` under the input law, (T,) for thresholds ``t``.

        ``g`` is an observable (:mod:`mzpdf.observables`), its ``[observable]``
        table, or None for the case's. With ``error`` also a bound on the
        error of each probability: ``(probability, error)``."""
        prob, bound = self._exceedance(g, np.atleast_1d(np.asarray(t, dtype=np.float64)))
        return (prob, bound) if error else prob

    def quantile(self, g, q) -> np.ndarray:
        """Quantiles ``t_q`` with ``P(g(X_L) <= t_q) = q``, (Q,) for levels ``q`` in (0, 1)."""
        q = np.atleast_1d(np.asarray(q, dtype=np.float64))
        check_levels(q)
        return self._quantile(g, q)

    # -- what a method's Solution overrides ------------------------------------------------------
    def _law(self, n: int) -> Law:
        return SummaryLaw(self.forward[n])

    def _exceedance(self, g, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise MzpdfError(f"exceedance probabilities are not computed by method {self.method!r} (methods that "
                         f"compute them: {', '.join(with_tails())})")

    def _quantile(self, g, q: np.ndarray) -> np.ndarray:
        raise MzpdfError(f"quantiles are not computed by method {self.method!r} (methods that compute them: "
                         f"{', '.join(with_tails())})")


class Solver:
    """Base of every solution method (module doc). Subclasses set ``name``,
    ``capabilities`` and ``options_class`` and implement the ``_``-methods."""

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    options_class: ClassVar[type] = SolverOptions  # the [solver] keys, defaults and their checks
    # whether lost_mass is mass the discretization cut off (checked against solver.max_lost_mass); for the
    # sampling methods it is the share of samples beyond the stored abscissae, which biases no estimate
    checks_lost_mass: ClassVar[bool] = True
    # solver.method = "auto" (mzpdf.solvers.auto): candidates by priority, lower first; None: only when named
    auto_priority: ClassVar[int | None] = None
    auto_description: ClassVar[str] = ""  # what the method gives, for the reason of an automatic choice

    def __init__(self, case, executor=None):
        self.case = case
        self.options = case.solver
        self.executor = executor  # executor(fn, items) -> results in order, for a method with `distributed`

    # -- what the method takes and needs ---------------------------------------------------------
    @classmethod
    def check_case(cls, case, keys: CaseKeys | None = None) -> None:
        """Raise a CaseError naming the key if ``case`` is outside this
        method's capabilities; the message names methods that take it."""
        problem = cls.problem(case, keys)
        if problem is not None:
            key, rule, value = problem
            others = [name for name in accepting(case) if name != cls.name]
            hint = f" (methods that take this case: {', '.join(others)})" if others else ""
            raise CaseError(key, rule + hint, value)

    @classmethod
    def problem(cls, case, keys: CaseKeys | None = None):
        """``(key, rule, value)`` of the first thing in ``case`` this method
        cannot take, or None. Subclasses extend :meth:`_problem`."""
        keys = keys or CaseKeys(case.table.get("network", {}))
        cap = cls.capabilities
        name = cls.name
        if case.backend not in cap.backends:
            return "solver.backend", f"must be one of {list(cap.backends)} with solver.method = {name!r}", case.backend
        for n, layer in enumerate(case.network):
            if layer.noise.is_deterministic and not cap.noiseless:
                return (keys.noise(n), f"must not be 'none' with solver.method = {name!r}: the density after a "
                        "noiseless layer is singular (give the layer noise)", "none")
            if not layer.noise.is_deterministic and layer.noise.kind not in cap.noise_kinds:
                return (keys.noise(n), f"must be one of {list(cap.noise_kinds)} with solver.method = {name!r}",
                        layer.noise.kind)
            if layer.kind not in cap.layer_kinds:
                why = "" if layer.elementwise else ": it maps the whole layer vector, not neuron by neuron"
                return (keys.kind(n), f"must be a layer of kind {list(cap.layer_kinds)} with solver.method = "
                        f"{name!r} (layer {n} is a {layer.kind} layer{why})", layer.kind)
            if not cap.widening and layer.n_out > layer.n_in:
                return (keys.shape(n), f"must not widen the layer with solver.method = {name!r} (layer {n} maps "
                        f"{layer.n_in} to {layer.n_out} neurons)", [layer.n_in, layer.n_out])
        if case.observable is not None and not cap.backward:
            return "observable", f"is not computed by solver.method = {name!r}", case.observable.kind
        if case.observable is not None and case.observable.kind not in cap.observables:
            return ("observable.kind", f"must be one of {list(cap.observables)} with solver.method = {name!r} (an "
                    "indicator is not smooth: its error is controlled by the sampling methods)", case.observable.kind)
        tails = getattr(case, "tails", None)
        if tails is not None and not cap.tails:
            return (tails.key, f"is not computed by solver.method = {name!r} (exceedance probabilities and "
                    "quantiles to relative accuracy need a method with the tails capability)", tails.value)
        if case.projection is not None and case.projection.kind not in cap.projections:
            allowed = f"one of {list(cap.projections)}" if cap.projections else "absent"
            return ("projection.kind" if cap.projections else "solver.method",
                    f"must be {allowed} with solver.method = {name!r} ([projection] needs a method whose "
                    "Mori-Zwanzig reduction takes it)", case.projection.kind if cap.projections else name)
        if case.analysis is not None and getattr(case.analysis, "distances", "none") != "none" and not cap.densities:
            return "analysis.distances", f"needs densities, which solver.method = {name!r} does not give", \
                case.analysis.distances
        return cls._problem(case, keys)

    @classmethod
    def _problem(cls, case, keys: CaseKeys):
        """Method-specific refusals (module doc of each method)."""
        return None

    @classmethod
    def estimate_bytes(cls, case) -> int:
        """Peak memory of the solve itself (without the interpreter and the
        Monte Carlo reference), in bytes: an upper bound within a small factor."""
        return 0

    @classmethod
    def auto_refine(cls, case, build: Callable):
        """The case ``solver.method = "auto"`` runs once it took this method:
        ``case`` itself, or ``build(defaults)`` (the case with ``defaults``
        for the [solver] keys the case does not give) for a finer default
        that is still cheap."""
        return case

    @classmethod
    def estimate_seconds(cls, case) -> float:
        """Wall time of the solve on 2 cores, within a factor of a few (used
        by ``solver.method = "auto"``; inf: unknown)."""
        return float("inf")

    @classmethod
    def memory_key(cls, case) -> tuple[str, str, object]:
        """``(key, advice, value)`` for a refusal by the memory guard."""
        return "solver.method", "choose a method that needs less memory", cls.name

    # -- the run -------------------------------------------------------------------------------
    def solve(self, progress: bool = False, checkpoint=None, resume: bool = False) -> Solution:
        """Propagate the case's input law through its network, pull back its
        observable, and return the Solution. The memory guard runs first;
        a method that solves layer by layer runs the one layer loop
        (:func:`mzpdf.solvers.march.march`): with ``checkpoint`` every
        finished layer is stored, and ``resume`` continues from a checkpoint
        of this very case."""
        case = self.case
        check_memory(case)
        if resume and not self.capabilities.resume:
            raise CaseError("--resume", f"is not possible with solver.method = {self.name!r} (it computes no "
                            "layer by layer checkpoints): run without --resume", True)
        report = Progress(case.name, "layers", enabled=progress)
        try:
            if self.capabilities.resume:
                native, resumed_from = march(self._march(report), report, checkpoint, resume)
                native = self._complete(native)
            else:
                native, resumed_from = self._sample(report), 0
            forward = tuple(self._summarize(native))
            diagnostics = self._diagnostics(native)
            backward = native_backward = None
            if case.observable is not None:
                backward, native_backward, extra = self._pullback(native, report)
                diagnostics.update(extra)
        finally:
            report.close()
        return self._solution(forward, backward, diagnostics, native, native_backward, resumed_from)

    def reduce(self, solution: Solution, progress: bool = False):
        """The Mori-Zwanzig reduction of ``solution`` for the case's
        ``[projection]``, summarized on the layers' abscissae."""
        report = Progress(f"{self.case.name}: memory kernels", "layers", enabled=progress)
        try:
            mz = self._reduce(solution, report)
        finally:
            report.close()
        return mz.summary([layer.marginal_x for layer in solution.forward])

    # -- what a method implements --------------------------------------------------------------
    def _march(self, report) -> LayerMarch:  # pragma: no cover - interface
        """A method that solves layer by layer (``capabilities.resume``): its
        forward solve as a :class:`~mzpdf.solvers.march.LayerMarch`, one
        step per layer (or run of noiseless layers)."""
        raise NotImplementedError

    def _complete(self, native):
        """A layered method's last word on its finished forward solve (the
        grid widens its boxes once more for tails): ``native`` or a new one."""
        return native

    def _sample(self, report):  # pragma: no cover - interface
        """A method that does not solve layer by layer (sampling): its whole
        forward computation."""
        raise NotImplementedError

    def _summarize(self, native) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    def _diagnostics(self, native) -> dict:
        return dict(native.diagnostics)

    def _solution(self, forward, backward, diagnostics, native, native_backward, resumed_from) -> Solution:
        """The method's immutable Solution (the base class: the stored summaries' laws)."""
        return Solution(self.name, forward, backward, diagnostics, native, native_backward, resumed_from)

    def _pullback(self, native, report):
        raise CaseError("observable", f"is not computed by solver.method = {self.name!r}", None)

    def _reduce(self, solution: Solution, report):
        raise CaseError("projection", f"is not taken by solver.method = {self.name!r}", None)

    def _points(self) -> np.ndarray:
        return case_points(self.case)

    # -- the solver's own accuracy checks -----------------------------------------------------------
    def accuracy_problems(self, solution: Solution) -> list[str]:
        """What of ``solution`` fails the method's own accuracy checks, one
        sentence each naming the check and the numbers (empty: accepted).

        Every method: the mass a layer's discretization cut off
        (``lost_mass``) must not exceed ``solver.max_lost_mass``. A method
        adds its own checks in :meth:`_accuracy_problems`."""
        problems = []
        lost = np.atleast_1d(np.asarray(solution.diagnostics.get("lost_mass", 0.0) if self.checks_lost_mass
                                        else 0.0, dtype=np.float64))
        limit = getattr(self.case, "max_lost_mass", DEFAULT_MAX_LOST_MASS)
        if lost.size and not np.all(lost <= limit):
            k = int(np.argmax(np.where(np.isfinite(lost), lost, np.inf)))
            where = f" at layer {k}" if lost.size > 1 else ""
            problems.append(f"lost mass {lost[k]:.3g}{where} is above solver.max_lost_mass = {limit:g}")
        return problems + self._accuracy_problems(solution)

    def _accuracy_problems(self, solution: Solution) -> list[str]:
        return []


def case_points(case) -> np.ndarray:
    """``[observable].points`` as a (P, N_0) array (P = 0 when none are given)."""
    if case.points is None:
        return np.zeros((0, case.network.widths[0]))
    return np.asarray(case.points, dtype=np.float64)


def noiseless_problem(name: str, case, keys):
    """What a method that composes noiseless layers with the noisy layer
    after them (grid, tt) cannot take of them: a noiseless last layer, a
    Mori-Zwanzig reduction, layer-to-layer distances (``(key, rule, value)``
    or None)."""
    net = case.network
    if not net.has_noiseless:
        return None
    L = net.depth
    if net[-1].noise.is_deterministic:
        return (keys.noise(L - 1), f"must not be 'none' on the last layer with solver.method = {name!r}: "
                f"X_{L} = G(X_{L - 1}) is a map with no density on its {net.widths[-1]} neurons for a grid to "
                "hold (give the output layer noise, e.g. an observation noise, or use solver.method = 'qmc', "
                "which gives the moments of a noiseless output)", "none")
    if case.projection is not None:
        return ("projection", f"is not taken by solver.method = {name!r} on a network with noiseless "
                f"layers (layers {_noiseless(net)}): the Mori-Zwanzig reduction needs every layer's density "
                "(give those layers noise, or drop [projection])", case.projection.kind)
    analysis = getattr(case, "analysis", None)
    if analysis is not None and getattr(analysis, "distances", "none") != "none":
        return ("analysis.distances", f"needs every layer's density, which solver.method = {name!r} "
                f"does not give on the noiseless layers {_noiseless(net)} (set it to 'none', or give "
                "those layers noise)", analysis.distances)
    return None


def _noiseless(network) -> list[int]:
    return [n for n, layer in enumerate(network) if layer.noise.is_deterministic]
