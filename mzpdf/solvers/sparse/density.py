"""The laws of the sparse solver's layers.

:class:`LogDensity` -- a layer after a noisy layer. In the layer's
standardized coordinates ``u = (x - m) / sd`` (``m``, ``sd`` its mean and
standard deviations, ``R`` its correlation matrix)

    log p(x) = h(clip u) + a.u + u.B.u / 2 - u.R^-1.u / 2 + const,

``h`` the deviation from the gaussian with the layer's moments (zero for a
linear-gaussian net), interpolated on a Leja sparse grid
(:mod:`mzpdf.discretization.leja`; standardizing neuron by neuron keeps the
saturation of each neuron on a grid axis, where a full whitening would
spread it over all of them). ``clip`` pulls a point back to the Mahalanobis
radius ``R_clip`` (beyond it the density continues with gaussian tails, and
no polynomial extrapolates), and ``h`` is capped one unit above its largest
nodal value. The quadratic tilt ``a, B`` is fitted so that the law's mean
and covariance are the layer's exact ones (the mixture's, from the layer
before); the interpolant's error then leaves the first two moments
untouched, which are what the next layer's moments depend on most.

:class:`InputDensity` -- the input law itself (gaussian or mixture).
:class:`KernelDensity` -- the law after a point input: the noise around the
image of the point.

Expectations use positive rules (:mod:`mzpdf.solvers.sparse.rules`) in whitened
coordinates ``x = m + A v`` (``A A^T`` the covariance), weighted by ``p / N(m, A A^T)``.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from ...discretization.leja import LejaGrid
from .rules import AtomRule, gauss_rule
from .transfer import Mixture, laplace_sum, log_noise

__all__ = ["LogDensity", "LatticeDensity", "InputDensity", "KernelDensity", "MarginalReference", "GaussianReference"]

_LOG_2PI = np.log(2.0 * np.pi)
H_CAP = 0.0  # h is capped this far above its largest nodal value (the polynomial overshoots between far points)
REFERENCE_POINTS = 401  # abscissae per neuron of a MarginalReference
REFERENCE_SPAN = 10.0  # their span, in standard deviations either side of the mean
LATTICE_TAIL = 14.0  # a lattice reaches this many noise scales beyond its centres (e^-14 / 2: 4e-7 a side)
LATTICE_PRUNE = 1e-13  # lattice nodes below this fraction of the largest value are no atoms
LATTICE_MAX_NODES = 2**25  # nodes of the largest lattice (256 MiB per array)
_TILT_STEPS = 12
_TILT_TOL = 1e-12


class GaussianReference:
    """``log N(x; m, C)`` (the reference of layers with gaussian noise: the
    deviation ``h`` is zero for a linear-gaussian net)."""

    def __init__(self, law):
        self.law = law

    def log(self, x: np.ndarray) -> np.ndarray:
        u = (np.atleast_2d(x) - self.law.mean) / self.law.sd
        return self.law.lognorm - self.law._quad(u)


class MarginalReference:
    """``sum_k log m_k(x_k)``, ``m_k`` the layer's exact 1-D marginals (sums
    over its source mixture), tabulated on ``REFERENCE_POINTS`` abscissae
    over mean +- ``REFERENCE_SPAN`` sd per neuron and interpolated by cubic
    splines in log (continued linearly in log beyond: exponential tails).
    ``h`` is then the log-density of the law's copula: gentle where the
    marginals are not (a Laplace layer's log-marginals are linear in the
    tails and turn sharply where the noise meets the bounded activation;
    degree 24 per neuron would not reproduce them to 5e-3), and a quadratic
    for a gaussian law."""

    def __init__(self, abscissae: np.ndarray, log_values: np.ndarray):
        from scipy.interpolate import CubicSpline

        self.abscissae, self.log_values = np.asarray(abscissae), np.asarray(log_values)
        self._splines = [CubicSpline(x, v) for x, v in zip(self.abscissae, self.log_values)]
        self._slopes = [(s.derivative()(x[0]), s.derivative()(x[-1])) for s, x in zip(self._splines, self.abscissae)]

    @classmethod
    def of(cls, mixture: Mixture, mean: np.ndarray, sd: np.ndarray) -> "MarginalReference":
        xs = mean[:, None] + sd[:, None] * np.linspace(-REFERENCE_SPAN, REFERENCE_SPAN, REFERENCE_POINTS)[None, :]
        logs = np.stack([np.log(np.maximum(mixture.marginal(k, xs[k]), 1e-300)) for k in range(mean.size)])
        return cls(xs, logs)

    def log(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        out = np.zeros(x.shape[0])
        for k, (spline, (lo_slope, hi_slope)) in enumerate(zip(self._splines, self._slopes)):
            a, b = self.abscissae[k, 0], self.abscissae[k, -1]
            t = np.clip(x[:, k], a, b)
            out += spline(t) + np.where(x[:, k] < a, (x[:, k] - a) * lo_slope, 0.0) \
                + np.where(x[:, k] > b, (x[:, k] - b) * hi_slope, 0.0)
        return out


class _Gaussian:
    """Mean, covariance and the maps every law shares."""

    def _set_moments(self, mean, cov):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = 0.5 * (cov + cov.T)
        self.chol = np.linalg.cholesky(self.cov)
        self.sd = np.sqrt(np.diag(self.cov))
        self.lognorm = -0.5 * self.mean.size * _LOG_2PI - float(np.sum(np.log(np.diag(self.chol))))

    @property
    def dim(self) -> int:
        return self.mean.size

    def whiten(self, x: np.ndarray) -> np.ndarray:
        return solve_triangular(self.chol, (np.atleast_2d(x) - self.mean).T, lower=True).T

    def pdf(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self.log_pdf(x))

    def moments(self) -> tuple[float, np.ndarray, np.ndarray]:
        """Mass (1), mean and covariance."""
        return 1.0, self.mean.copy(), self.cov.copy()

    def expect_map(self, fn, rule: AtomRule) -> tuple[float, np.ndarray, np.ndarray]:
        """Mass, mean and covariance of ``fn(X)`` by ``rule``."""
        x, w = self.atoms(rule)
        y = fn(x)
        mean = w @ y
        d = y - mean
        return 1.0, mean, (d * w[:, None]).T @ d

    def atoms(self, rule: AtomRule) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError


class LogDensity(_Gaussian):
    """A layer's law (module doc). ``values``: the nodal values of ``h``;
    ``source``: the mixture that defines the layer (its marginals are exact
    sums over it), or None."""

    def __init__(self, mean, cov, grid: LejaGrid, values, radius: float, source: Mixture | None = None,
                 tilt: tuple | None = None, logz: float = 0.0, reference: MarginalReference | None = None):
        self._set_moments(mean, cov)
        self.corr_inv = np.linalg.inv(self.cov / np.outer(self.sd, self.sd))
        self.marginal_reference = reference
        self.reference = GaussianReference(self) if reference is None else reference
        self.noise_kind = source.noise.kind if source is not None else "gaussian"  # (chooses its rules)
        self.grid, self.radius, self.source = grid, float(radius), source
        self.values = np.asarray(values, dtype=np.float64)
        self.coefficients = grid.hierarchize(self.values)
        self.h_cap = float(self.values.max()) + H_CAP
        n = self.dim
        self.tilt_a, self.tilt_b = (np.zeros(n), np.zeros((n, n))) if tilt is None else \
            (np.asarray(tilt[0], dtype=np.float64), np.asarray(tilt[1], dtype=np.float64))
        self.logz = float(logz)
        self._cache: dict = {}

    @classmethod
    def from_log_values(cls, mean, cov, grid: LejaGrid, log_values, radius, source=None,
                        reference: MarginalReference | None = None) -> "LogDensity":
        """The law whose log-density at the grid's points is ``log_values``
        (``reference``: the product of its marginals, else the gaussian with its moments)."""
        law = cls(mean, cov, grid, np.zeros(grid.size), radius, source, reference=reference)
        h = np.asarray(log_values) - law.reference.log(law.points)
        return cls(mean, cov, grid, h, radius, source, reference=reference)

    @property
    def points(self) -> np.ndarray:
        """The grid's points in neuron coordinates, ``(A, N)``."""
        return self.mean + self.grid.points * self.sd

    def _quad(self, u):
        return 0.5 * np.einsum("pi,ij,pj->p", u, self.corr_inv, u)

    def _h(self, u: np.ndarray) -> np.ndarray:
        """``min(h(clip u), cap) + tilt(u)`` (``clip``: to the Mahalanobis radius)."""
        rad = np.sqrt(np.maximum(2.0 * self._quad(u), 1e-300))
        uc = u * np.minimum(1.0, self.radius / rad)[:, None]
        h = np.minimum(self.grid.evaluate(self.coefficients, uc), self.h_cap)
        return h + u @ self.tilt_a + 0.5 * np.einsum("pi,ij,pj->p", u, self.tilt_b, u)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        u = (x - self.mean) / self.sd
        return self._h(u) + self.reference.log(x) - self.logz

    def _rule_values(self, rule: AtomRule):
        """Points of ``rule`` in neuron and standardized coordinates and
        ``h`` there, untilted, plus ``log(reference / N(m, C))`` (cached per rule)."""
        key = id(rule)
        if key not in self._cache:
            x = self.mean + rule.points @ self.chol.T
            u = (x - self.mean) / self.sd
            rad = np.sqrt(np.maximum(2.0 * self._quad(u), 1e-300))
            uc = u * np.minimum(1.0, self.radius / rad)[:, None]
            h = np.minimum(self.grid.evaluate(self.coefficients, uc), self.h_cap)
            if self.marginal_reference is not None:  # the rule's weights are for N(m, C): reweight to the reference
                h = h + self.reference.log(x) - (self.lognorm - 0.5 * np.sum(rule.points ** 2, axis=1))
            self._cache[key] = (rule, x, u, h)
        return self._cache[key][1:]

    def atoms(self, rule: AtomRule) -> tuple[np.ndarray, np.ndarray]:
        """Points ``x`` and positive weights (summing to 1) with
        ``E_p[f] ~ w @ f(x)``: the rule's weights times ``p / N(m, C)``."""
        x, u, h = self._rule_values(rule)
        logw = np.log(rule.weights) + h + u @ self.tilt_a + 0.5 * np.einsum("pi,ij,pj->p", u, self.tilt_b, u)
        w = np.exp(logw - logw.max())
        return x, w / w.sum()

    def fit_moments(self, rule: AtomRule, tilt: bool = True) -> float:
        """Tilt (unless ``tilt`` is False) and normalize the law so that, by
        ``rule``, its mass is 1 and its mean and covariance are ``self.mean``,
        ``self.cov``; returns the interpolant's mass before (1 for an exact
        discretization)."""
        x, u, h = self._rule_values(rule)
        n = self.dim
        iu = np.triu_indices(n)
        stats = np.concatenate([u, (u[:, :, None] * u[:, None, :])[:, iu[0], iu[1]]], axis=1)
        corr = np.linalg.inv(self.corr_inv)
        target = np.concatenate([np.zeros(n), corr[iu]])
        base = np.log(rule.weights) + h
        mass = float(np.exp(base).sum())
        theta = np.zeros(stats.shape[1])
        for _ in range(_TILT_STEPS if tilt else 0):
            logw = base + stats @ theta
            w = np.exp(logw - logw.max())
            w /= w.sum()
            mean_t = w @ stats
            grad = mean_t - target
            if np.max(np.abs(grad)) < _TILT_TOL:
                break
            d = stats - mean_t
            hess = (d * w[:, None]).T @ d
            step = -np.linalg.lstsq(hess, grad, rcond=1e-14)[0]
            for _ in range(30):  # keep the tilted quadratic decaying
                a, b = self._tilt_of(theta + step, n, iu)
                if np.linalg.eigvalsh(self.corr_inv - b).min() > 0:
                    break
                step *= 0.5
            theta = theta + step
        self.tilt_a, self.tilt_b = self._tilt_of(theta, n, iu)
        logw = base + stats @ theta
        top = logw.max()
        self.logz = float(top + np.log(np.exp(logw - top).sum()))
        return mass

    @staticmethod
    def _tilt_of(theta, n, iu):
        a = theta[:n].copy()
        upper = np.zeros((n, n))
        upper[iu] = theta[n:]
        return a, upper + upper.T  # u.B.u / 2 = sum_{i<=j} theta_ij u_i u_j

    def marginal(self, keep: list[int], xs: np.ndarray) -> np.ndarray:
        """Density of the neurons ``keep`` (one or two) at the points ``xs``
        ``(P, len(keep))``: exact sums over the source mixture when there is
        one, else a Gauss-Hermite rule over the other neurons around their
        conditional gaussian."""
        xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
        if self.source is not None and len(keep) == 1:
            return self.source.marginal(keep[0], xs[:, 0])
        if self.source is not None and len(keep) == 2:
            return self.source.joint_points(keep[0], keep[1], xs)
        return conditional_marginal(self, keep, xs)

    def joint(self, i: int, j: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The 2-D marginal of neurons ``i`` and ``j`` on the grid ``x`` by ``y``."""
        if self.source is not None:
            return self.source.joint(i, j, x, y)
        X, Y = np.meshgrid(x, y, indexing="ij")
        return self.marginal([i, j], np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)

    def state(self) -> dict:
        """What rebuilds the law (checkpoints): see :meth:`from_state`."""
        return {"mean": self.mean, "cov": self.cov, "indices": self.grid.indices, "values": self.values,
                "radius": self.radius, "tilt_a": self.tilt_a, "tilt_b": self.tilt_b, "logz": self.logz,
                "noise_kind": self.noise_kind,
                "reference_x": np.zeros((0, 0)) if self.marginal_reference is None else self.marginal_reference.abscissae,
                "reference_log": np.zeros((0, 0)) if self.marginal_reference is None
                else self.marginal_reference.log_values}

    @classmethod
    def from_state(cls, state: dict, source: Mixture | None = None) -> "LogDensity":
        ref = np.asarray(state["reference_x"])
        reference = MarginalReference(ref, state["reference_log"]) if ref.size else None
        law = cls(state["mean"], state["cov"], LejaGrid(state["indices"]), state["values"], float(state["radius"]),
                  source, (state["tilt_a"], state["tilt_b"]), float(state["logz"]), reference)
        law.noise_kind = str(state["noise_kind"])
        return law


class LatticeDensity(_Gaussian):
    """The law of a layer with Laplace noise of up to 3 neurons, kept as
    its mixture (``source``): no interpolant. Its atoms for a trapezoid rule
    of step ``h`` (:data:`mzpdf.solvers.sparse.engine.LATTICE_STEPS`) are the nodes of the lattice ``mean_k + h sd_k Z`` (axis
    by axis; the rule's companion of step ``2h`` is its even sub-lattice)
    over the centres' range widened by ``LATTICE_TAIL`` noise scales, each
    weighted by the mixture's density there. That density is summed exactly
    for all nodes at once (:func:`mzpdf.solvers.sparse.transfer.laplace_sum`:
    the product-Laplace kernel factors into one-sided exponentials, which
    first-order recursions carry along the lattice's axes), in
    ``O(J + 24 nodes)`` for ``J`` centres, where a direct sum costs ``J``
    per node; the mixture's own Richardson pair is combined node by node.

    Why (issue 26): the Leja interpolant of a Laplace layer's log-copula
    overshoots between its points; on a 3-neuron tanh net (Laplace 0.2) it
    left the second and third layers' marginals 3.7e-3 and 5.4e-3 (L1) from
    a conditional-density QMC reference, the lattice 1e-4 or less.

    ``lattice_error[h]``: what the lattice of step ``h`` carries into the
    next layer -- the L1 gap between its Richardson-combined and plain
    densities plus the mass its box leaves out (``|1 - mass|``);
    ``transition_step``: the step of the rule that made the next layer's
    atoms (set by the solver)."""

    def __init__(self, source: Mixture):
        if source.noise.kind != "laplace" or source.dim > 3:
            raise ValueError("a LatticeDensity is a Laplace mixture of up to 3 neurons")
        mean, cov = source.moments
        self._set_moments(mean, cov)
        self.source, self.noise_kind = source, "laplace"
        self._lattices: dict = {}
        self.lattice_error: dict = {}
        self.steps: dict = {}
        self.transition_step: float | None = None

    def log_pdf(self, x):
        return self.source.log_pdf(x)

    def _layout(self, h: float):
        """Origin, steps and sizes of the lattice of step ``h`` sd (coarser
        where it would have more than ``LATTICE_MAX_NODES`` nodes)."""
        c, b = self.source.centres, self.source.noise.scale
        lo = c.min(axis=0) - LATTICE_TAIL * b
        hi = c.max(axis=0) + LATTICE_TAIL * b
        while True:
            step = h * self.sd
            below = np.ceil((self.mean - lo) / step)
            above = np.ceil((hi - self.mean) / step)
            size = (below + above + 1).astype(np.int64)
            if np.prod(size.astype(np.float64)) <= LATTICE_MAX_NODES:
                return self.mean - below * step, step, size, h
            h *= 1.1

    def lattice(self, h: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Nodes ``(P, N)`` (pruned below ``LATTICE_PRUNE`` of the largest
        value), the density there, and the trapezoid mass of the whole
        lattice (cached per step; ``self.steps[h]``: the step taken, coarser
        than ``h`` where the lattice would exceed ``LATTICE_MAX_NODES``)."""
        key = float(h)
        half = 0.5 * key
        if key not in self._lattices and half in self._lattices:  # the even sub-lattice of a finer one
            x, values, mass_half = self._lattices[half]
            taken = self.steps[half]
            even = np.all(np.abs(np.round((x - self.mean) / (taken * self.sd))) % 2 == 0, axis=1)
            mass = float(np.prod(2.0 * taken * self.sd)) * float(values[even].sum())
            self.lattice_error[key] = self.lattice_error[half] - abs(1.0 - mass_half) + abs(1.0 - mass)
            self._lattices[key], self.steps[key] = (np.ascontiguousarray(x[even]), values[even], mass), 2 * taken
        if key not in self._lattices:
            origin, step, size, taken = self._layout(key)
            fine = _lattice_sum(self.source, origin, step, size)
            values = fine
            if self.source.richardson and self.source.coarse is not None:
                coarse = _lattice_sum(self.source.coarse, origin, step, size)
                ratio = coarse / np.maximum(fine, 1e-300)
                ok = (ratio > 0.5) & (ratio < 2.0)
                values = np.where(ok, (4.0 * fine - coarse) / 3.0, fine)
            cell = float(np.prod(step))
            mass = cell * float(values.sum())
            self.lattice_error[key] = cell * float(np.abs(values - fine).sum()) + abs(1.0 - mass)
            keep = np.flatnonzero(values.ravel() > LATTICE_PRUNE * values.max())
            idx = np.column_stack(np.unravel_index(keep, tuple(size)))
            self._lattices[key] = (np.ascontiguousarray(origin + idx * step), values.ravel()[keep], mass)
            self.steps[key] = taken
        return self._lattices[key]

    def atoms(self, rule: AtomRule) -> tuple[np.ndarray, np.ndarray]:
        """A trapezoid rule: the lattice of its step (class doc); any other
        rule: its points in whitened coordinates, weighted by the mixture's
        density over the gaussian with the law's moments (a direct sum)."""
        if rule.kind == "trapezoid":
            x, values, _ = self.lattice(rule.step)
            return x, values / values.sum()
        x = self.mean + rule.points @ self.chol.T
        logw = np.log(rule.weights) + self.source.log_pdf(x) + 0.5 * np.sum(rule.points ** 2, axis=1)
        w = np.exp(logw - logw.max())
        return x, w / w.sum()

    def marginal(self, keep, xs):
        xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
        if len(keep) == 1:
            return self.source.marginal(keep[0], xs[:, 0])
        return self.source.joint_points(keep[0], keep[1], xs)

    def joint(self, i, j, x, y):
        return self.source.joint(i, j, x, y)


def _lattice_sum(mixture: Mixture, origin, step, size) -> np.ndarray:
    """The mixture's density on the lattice ``origin + step * i`` (``i < size``)."""
    return laplace_sum(mixture.centres, mixture.weights, mixture.noise.scale,
                       [o + d * np.arange(n) for o, d, n in zip(origin, step, size)])


def conditional_marginal(law, keep: list[int], xs: np.ndarray, points: int = 24) -> np.ndarray:
    """Density of the neurons ``keep`` at ``xs`` ``(P, len(keep))`` by a
    tensor Gauss-Hermite rule (``points`` per neuron, pruned) over the other
    neurons around their conditional gaussian (from the law's moments)."""
    rest = [k for k in range(law.dim) if k not in keep]
    if not rest:
        return law.pdf(xs)
    cov = law.cov
    c_kk, c_rk, c_rr = cov[np.ix_(keep, keep)], cov[np.ix_(rest, keep)], cov[np.ix_(rest, rest)]
    gain = np.linalg.solve(c_kk, c_rk.T).T
    cond = c_rr - gain @ c_rk.T
    lc = np.linalg.cholesky(0.5 * (cond + cond.T))
    rule = gauss_rule(len(rest), max(6, points if len(rest) <= 2 else 36 // len(rest)), False)
    v, w = rule.points, rule.weights
    logdet = float(np.sum(np.log(np.diag(lc)))) + 0.5 * len(rest) * _LOG_2PI
    out = np.empty(xs.shape[0])
    for s in range(0, xs.shape[0], 256):
        block = xs[s: s + 256]
        centre = law.mean[rest] + (block - law.mean[keep]) @ gain.T
        pts = np.empty((block.shape[0], v.shape[0], law.dim))
        pts[:, :, keep] = block[:, None, :]
        pts[:, :, rest] = centre[:, None, :] + (v @ lc.T)[None, :, :]
        lp = law.log_pdf(pts.reshape(-1, law.dim)).reshape(block.shape[0], -1)
        out[s: s + 256] = np.exp(lp + 0.5 * np.sum(v * v, axis=1)[None, :] + logdet) @ w
    return out


class InputDensity(_Gaussian):
    """The input law (gaussian or mixture) as a law of the solver: exact
    density, marginals and atoms (a mixture: each component's rule, weighted)."""

    def __init__(self, input_law):
        self.input_law = input_law
        self._set_moments(input_law.mean(), input_law.cov())
        comps = getattr(input_law, "components", None)
        self._parts = [(1.0, input_law.mean(), input_law.cov())] if comps is None else \
            [(float(w), c.mean(), c.cov()) for w, c in zip(input_law.weights, comps)]

    def log_pdf(self, x):
        return np.log(np.maximum(self.input_law.pdf(np.atleast_2d(x)), 1e-300))

    def atoms(self, rule: AtomRule):
        xs, ws = [], []
        for weight, m, c in self._parts:
            xs.append(m + rule.points @ np.linalg.cholesky(c).T)
            ws.append(weight * rule.weights)
        return np.concatenate(xs), np.concatenate(ws)

    def marginal(self, keep, xs):
        xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
        if len(keep) == 1:
            return self.input_law.marginal_pdf(keep[0], xs[:, 0])
        out = np.zeros(xs.shape[0])
        for weight, m, c in self._parts:
            sub = c[np.ix_(keep, keep)]
            d = xs - m[keep]
            q = np.einsum("pi,ij,pj->p", d, np.linalg.inv(sub), d)
            out += weight * np.exp(-0.5 * q) / np.sqrt(np.linalg.det(2.0 * np.pi * sub))
        return out

    def joint(self, i, j, x, y):
        X, Y = np.meshgrid(x, y, indexing="ij")
        return self.marginal([i, j], np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)


class KernelDensity(_Gaussian):
    """The law after a point input: ``prod_k rho_k(y_k - c_k)``, ``c`` the
    image of the point. Atoms: the rule in whitened coordinates weighted by
    ``p / N(c, S)`` (1 for gaussian noise)."""

    def __init__(self, centre: np.ndarray, noise):
        self.centre, self.noise = np.asarray(centre, dtype=np.float64), noise
        self.noise_kind = noise.kind
        self._set_moments(self.centre, np.diag(noise.variance()))
        self.source = Mixture(self.centre[None, :], np.ones(1), noise)

    def log_pdf(self, x):
        return np.sum(log_noise(self.noise, np.atleast_2d(x) - self.centre), axis=1)

    def atoms(self, rule: AtomRule):
        x = self.mean + rule.points @ self.chol.T
        logw = np.log(rule.weights) + self.log_pdf(x) - self.lognorm + 0.5 * np.sum(rule.points ** 2, axis=1)
        w = np.exp(logw - logw.max())
        return x, w / w.sum()

    def marginal(self, keep, xs):
        xs = np.atleast_2d(np.asarray(xs, dtype=np.float64))
        return np.exp(sum(log_noise(self.noise, xs[:, a] - self.centre[k], k) for a, k in enumerate(keep)))

    def joint(self, i, j, x, y):
        return self.source.joint(i, j, x, y)
