"""The one interface every solution method implements.

A method is a subclass of :class:`Solver` registered in :data:`SOLVERS`. The
base class owns the bookkeeping every method shares, in the manner of SciPy's
``OdeSolver``: the memory guard, progress, wall time, layer checkpoints and
``--resume``, the observable's backward solve, the diagnostics of the run.
A subclass says what it can take (:class:`Capabilities`, :meth:`check_case`),
what it needs (:meth:`estimate_bytes`) and implements the method-specific
pieces: :meth:`_propagate` (the forward solve, with checkpoint states),
:meth:`_summarize` (the laws of every layer as :class:`LayerSummary`),
:meth:`_law` (one layer's law as a :class:`Law`) and, where the method has
them, :meth:`_pullback` and :meth:`_reduce`.

A run gives a :class:`Solution`, the same for every method. Its
``diagnostics`` keys each have one meaning (``DIAGNOSTICS``); a method adds
its own extras under names of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np

from .._registry import Registry
from ..errors import CaseError
from ..options import SolverOptions
from ..memory import BASE_BYTES, available_bytes, format_bytes
from ..progress import Progress
from ..results import BackwardSummary, LayerSummary

__all__ = ["Capabilities", "CaseKeys", "DIAGNOSTICS", "Law", "MomentLaw", "Solution", "Solver", "SOLVERS", "SummaryLaw",
           "accepting", "check_memory", "estimate_bytes"]

SOLVERS: Registry = Registry("solver method")

DEFAULT_MAX_LOST_MASS = 1e-3  # solver.max_lost_mass: a run cutting off more of any layer's law fails its checks

# The diagnostics every method stores, each with one meaning.
DIAGNOSTICS = {
    "mass": "(L+1,) probability mass of each layer's discretized law before any normalization (1 for samples "
            "inside the box)",
    "lost_mass": "(L+1,) mass the discretization of each layer cut off (tails beyond the box, noise landing "
                 "outside it); 0 where nothing is cut",
    "duality_gap": "(L,) how far layer n's transfer operator N_n and Koopman operator K_n are from adjoint on one "
                   "test function u: |<u, N_n p_n> - <K_n u, p_n>| relative to the pairing's size (grid: a random "
                   "positive u, relative to |<u, N_n p_n>|; tt and sparse: u = q_{n+1}, the pulled-back observable, "
                   "relative to |E g| + sd(g), NaN without an [observable]; not stored by montecarlo and qmc)",
    "time_per_layer_s": "(L,) wall time of each layer's forward step (0 for a layer restored from a checkpoint "
                        "keeps the time of the run that computed it)",
}


@dataclass(frozen=True)
class Capabilities:
    """What a method can take.

    Attributes
    ----------
    layer_kinds : tuple of str
        Layer kinds (``dense``, ``residual``) it propagates.
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


class Law:
    """The law of one layer: ``mean`` (N,), ``cov`` (N, N), ``mass``,
    ``marginal(i, x)`` (density of neuron i at the points ``x``, any shape)
    and ``joint(i, j, x, y)`` (the 2-D marginal on the grid ``x`` by ``y``)."""

    mean: np.ndarray
    cov: np.ndarray
    mass: float

    def marginal(self, i: int, x) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def joint(self, i: int, j: int, x, y) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def _check(self, *neurons: int) -> None:
        for i in neurons:
            if not 0 <= int(i) < self.mean.size:
                raise IndexError(f"neuron {i} out of range for a layer of {self.mean.size} neurons")


class FunctionLaw(Law):
    """A law given by its moments and two functions: ``marginal_fn(i, x)``
    for 1-D arrays ``x`` and ``joint_fn(i, j, x, y)`` (or None)."""

    def __init__(self, mass, mean, cov, marginal_fn: Callable, joint_fn: Callable | None = None, what: str = ""):
        self.mass, self.mean, self.cov = float(mass), np.asarray(mean), np.asarray(cov)
        self._marginal, self._joint, self._what = marginal_fn, joint_fn, what

    def marginal(self, i, x):
        self._check(i)
        x = np.asarray(x, dtype=np.float64)
        return np.asarray(self._marginal(int(i), x.ravel())).reshape(x.shape)

    def joint(self, i, j, x, y):
        self._check(i, j)
        if self._joint is None:
            raise NotImplementedError(f"{self._what}: no 2-D marginals of neurons {i} and {j}")
        return self._joint(int(i), int(j), np.asarray(x, dtype=np.float64).ravel(),
                           np.asarray(y, dtype=np.float64).ravel())


class AtomLaw(Law):
    """The law of a layer that is one point (after a point input)."""

    def __init__(self, x0: np.ndarray):
        self.mean, self.cov, self.mass = np.asarray(x0), np.zeros((x0.size, x0.size)), 1.0

    def marginal(self, i, x):
        from ..errors import SingularDensityError

        raise SingularDensityError(f"the layer is the point {self.mean.tolist()}: it has no density")

    joint = marginal


class SummaryLaw(Law):
    """A layer's law from its stored summary (a result file, or a sampling
    method): moments as stored, densities linearly interpolated between the
    stored abscissae (cubic splines with ``cubic``, clipped at 0: for smooth
    densities on fine abscissae, whose linear interpolation error ~h^2 f''/8
    is ~5e-4 in L1 for a peak of width 0.15 on 201 points) and 0 outside them."""

    def __init__(self, layer: LayerSummary, cubic: bool = False):
        self.mean, self.cov, self.mass, self._layer = layer.mean, layer.cov, float(layer.mass), layer
        self._cubic = cubic

    def marginal(self, i, x):
        self._check(i)
        x = np.asarray(x, dtype=np.float64)
        xs, pdf = self._layer.marginal_x[i], self._layer.marginal_pdf[i]
        if not np.all(np.isfinite(pdf)):
            return AtomLaw(self.mean).marginal(i, x)
        if not self._cubic:
            return np.interp(x.ravel(), xs, pdf, left=0.0, right=0.0).reshape(x.shape)
        from scipy.interpolate import CubicSpline

        t = x.ravel()
        out = np.maximum(CubicSpline(xs, pdf)(t), 0.0)
        out[(t < xs[0]) | (t > xs[-1])] = 0.0
        return out.reshape(x.shape)

    def joint(self, i, j, x, y):
        self._check(i, j)
        if self._layer.joint is None or (int(i), int(j)) != (0, 1):
            raise NotImplementedError(f"the stored results hold the joint of neurons 0 and 1 only "
                                      f"(asked for {i} and {j})")
        from scipy.interpolate import RegularGridInterpolator

        gx, gy, pdf = self._layer.joint
        X, Y = np.meshgrid(np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel(),
                           indexing="ij")
        f = RegularGridInterpolator((gx, gy), pdf, bounds_error=False, fill_value=0.0)
        return f(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)



class MomentLaw(SummaryLaw):
    """A layer whose law has moments but no density (the push-forward of the
    layer before it through a noiseless layer): ``marginal`` and ``joint``
    raise :class:`~mzpdf.errors.SingularDensityError` saying ``why``."""

    def __init__(self, layer: LayerSummary, why: str):
        super().__init__(layer)
        self._why = why

    def marginal(self, i, x):
        from ..errors import SingularDensityError

        self._check(i)
        raise SingularDensityError(self._why)

    def joint(self, i, j, x, y):
        self._check(i, j)
        return self.marginal(i, x)

@dataclass(frozen=True)
class Solution:
    """What a solve computed, the same for every method.

    Attributes
    ----------
    method : str
    forward : list of LayerSummary
        The law of every layer, input first (``L + 1`` entries).
    backward : BackwardSummary or None
        ``q0`` at ``[observable].points`` and ``E[g(X_L)]``.
    diagnostics : dict
        The keys of :data:`DIAGNOSTICS`, each with its one meaning, plus the
        method's extras.
    native, native_backward : object
        The discretization's own solution objects (for the Mori-Zwanzig
        reduction and for users who want the functions themselves).
    """

    method: str
    forward: list
    backward: BackwardSummary | None
    diagnostics: dict
    native: object = field(repr=False, default=None)
    native_backward: object = field(repr=False, default=None)
    solver: "Solver" = field(repr=False, compare=False, default=None)

    @property
    def depth(self) -> int:
        return len(self.forward) - 1

    def law(self, n: int) -> Law:
        """The law of layer ``n`` (0 = input; negative counts from the end)."""
        n = range(self.depth + 1)[n]
        return self.solver._law(self, n)

    def exceedance(self, g, t, error: bool = False):
        """``P(g(X_L) > t)`` under the input law, (T,) for thresholds ``t``.

        ``g`` is an observable (:mod:`mzpdf.observables`), its ``[observable]``
        table, or None for the case's. With ``error`` also a bound on the
        error of each probability: ``(probability, error)``."""
        return self.solver._exceedance(self, g, np.atleast_1d(np.asarray(t, dtype=np.float64)), error)

    def quantile(self, g, q) -> np.ndarray:
        """Quantiles ``t_q`` with ``P(g(X_L) <= t_q) = q``, (Q,) for levels ``q`` in (0, 1)."""
        return self.solver._quantile(self, g, np.atleast_1d(np.asarray(q, dtype=np.float64)))


class Solver:
    """Base of every solution method (module doc). Subclasses set ``name``
    and ``capabilities`` and implement the ``_``-methods."""

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
        problem = cls.problem(case, keys or CaseKeys(case.table.get("network", {})))
        if problem is not None:
            key, rule, value = problem
            others = [name for name in accepting(case) if name != cls.name]
            hint = f" (methods that take this case: {', '.join(others)})" if others else ""
            raise CaseError(key, rule + hint, value)

    @classmethod
    def problem(cls, case, keys: CaseKeys):
        """``(key, rule, value)`` of the first thing in ``case`` this method
        cannot take, or None. Subclasses extend :meth:`_problem`."""
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
                return (keys.kind(n), f"must be a layer of kind {list(cap.layer_kinds)} with solver.method = "
                        f"{name!r}", layer.kind)
            if not cap.widening and layer.n_out > layer.n_in:
                return (keys.shape(n), f"must not widen the layer with solver.method = {name!r} (layer {n} maps "
                        f"{layer.n_in} to {layer.n_out} neurons)", [layer.n_in, layer.n_out])
        if case.observable is not None and not cap.backward:
            return "observable", f"is not computed by solver.method = {name!r}", case.observable.kind
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
        with ``checkpoint`` every finished layer is stored, and ``resume``
        continues from a checkpoint of this very case."""
        case = self.case
        check_memory(case)
        if resume and not self.capabilities.resume:
            raise CaseError("--resume", f"is not possible with solver.method = {self.name!r} (it computes no "
                            "layer by layer checkpoints): run without --resume", True)
        states, on_layer = [], None
        if checkpoint is not None and self.capabilities.resume:
            states = checkpoint.load() if resume else []
            if not states:
                checkpoint.start()
            on_layer = checkpoint.save
        report = Progress(case.name, "layers", enabled=progress)
        try:
            native = self._propagate(report, states, on_layer)
            forward = self._summarize(native)
            diagnostics = self._diagnostics(native)
            backward = native_backward = None
            if case.observable is not None:
                backward, native_backward, extra = self._pullback(native, report)
                diagnostics.update(extra)
        finally:
            report.close()
        return Solution(self.name, forward, backward, diagnostics, native, native_backward, self)

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
    def _propagate(self, report, states: list, on_layer):  # pragma: no cover - interface
        raise NotImplementedError

    def _summarize(self, native) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    def _diagnostics(self, native) -> dict:
        return dict(native.diagnostics)

    def _law(self, solution: Solution, n: int) -> Law:
        return SummaryLaw(solution.forward[n])

    def _pullback(self, native, report):
        raise CaseError("observable", f"is not computed by solver.method = {self.name!r}", None)

    def _reduce(self, solution: Solution, report):
        raise CaseError("projection", f"is not taken by solver.method = {self.name!r}", None)

    def _exceedance(self, solution: Solution, g, t: np.ndarray, error: bool):
        raise CaseError("observable.thresholds", f"is not computed by solver.method = {self.name!r} (methods "
                        f"that compute it: {', '.join(_with_tails())})", t.tolist())

    def _quantile(self, solution: Solution, g, q: np.ndarray):
        raise CaseError("observable.quantiles", f"is not computed by solver.method = {self.name!r} (methods "
                        f"that compute it: {', '.join(_with_tails())})", q.tolist())

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


def _with_tails() -> list[str]:
    return [name for name in SOLVERS if SOLVERS.get(name).capabilities.tails]


def accepting(case) -> list[str]:
    """Names of the registered methods whose capabilities take ``case``
    (memory aside)."""
    keys = CaseKeys(case.table.get("network", {}))
    return [name for name in SOLVERS if SOLVERS.get(name).problem(case, keys) is None]


def estimate_bytes(case) -> int:
    """Peak memory of running ``case`` (a validated Case), in bytes: the
    method's solve, the Monte Carlo reference and the interpreter."""
    total = BASE_BYTES + SOLVERS.get(case.solver.method, "solver.method").estimate_bytes(case)
    if case.montecarlo is not None:
        total += SOLVERS.get("montecarlo").reference_bytes(case.montecarlo, case)
    return total


def check_memory(case, available: int | None = None) -> int:
    """Raise a CaseError naming the key to change if ``case`` needs more
    memory than is available; return the estimate otherwise. Costs
    microseconds (nothing is allocated or imported)."""
    need = estimate_bytes(case)
    have = available_bytes() if available is None else available
    if need <= have:
        return need
    cls = SOLVERS.get(case.solver.method)
    if cls.estimate_bytes(case) + BASE_BYTES <= have and case.montecarlo is not None:
        key, advice, value = "montecarlo.chunk", "lower the chunk", case.montecarlo.chunk
    else:
        key, advice, value = cls.memory_key(case)
    raise CaseError(key, f"needs about {format_bytes(need)}, more than the {format_bytes(have)} available: {advice}",
                    value)
