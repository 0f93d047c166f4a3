"""The law of one layer, as every result offers it (``law(n)``).

:class:`Law` is the interface: ``mean`` (N,), ``cov`` (N, N), ``mass``,
``marginal(i, x)``, ``joint(i, j, x, y)``, ``cdf(i, x)``, ``quantile(i, q)``,
``sample(n, seed)`` and ``error_estimate``. A method's Solution gives a
:class:`FunctionLaw` (its own functions), an :class:`AtomLaw` (a point) or a
:class:`MomentLaw` (moments, no density); results read from a file give a
:class:`SummaryLaw` (the stored summary, interpolated).

``cdf`` integrates the law's own marginal density adaptively, panel by panel:
8-point Gauss-Legendre on a panel against the same rule on its two halves,
halved until the two agree to ``_PANEL_TOL`` of the total. The panels start
at the stored abscissae where the law has them, so a stored density
interpolated linearly or by cubic splines is integrated exactly (a polynomial
of degree <= 3 on each panel). Inside a panel the density is the degree-7
polynomial through its Gauss nodes, integrated in closed form: after the first
call for a neuron, ``cdf`` and ``quantile`` evaluate no density.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._special import ndtr
from .errors import SingularDensityError

__all__ = ["Law", "FunctionLaw", "AtomLaw", "SummaryLaw", "MomentLaw"]

_ORDER = 8  # Gauss-Legendre nodes a panel: exact for polynomials of degree 15
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(_ORDER)
# Legendre coefficients of the degree-7 interpolant from its values at the nodes: c_l = (2l+1)/2 sum_j w_j P_l(t_j) v_j
_TO_LEGENDRE = (np.polynomial.legendre.legvander(_NODES, _ORDER - 1) * _WEIGHTS[:, None]).T \
    * ((2 * np.arange(_ORDER) + 1) / 2)[:, None]
_PANEL_TOL = 1e-12  # a panel is done when its two rules agree to this share of the total, prorated by width
_MAX_ROUNDS = 40  # halvings of a panel at most (a kink or a jump stops there, at 2^-40 of its first width)
_SPAN = 12.0  # standard deviations each side where nothing tells where a marginal lives (laplace tail: 4e-8)
_PANELS = 256  # first panels over that span
_TAIL_PANELS = 32  # first panels each side between stored abscissae and the span
_CHUNK = 1 << 15  # density evaluations a call (a grid's marginal builds a (points, nodes) matrix)
_NEWTON_STEPS = 100  # safeguarded Newton steps of a quantile at most (bisection alone needs 52)


class Law:
    """The law of one layer: ``mean`` (N,), ``cov`` (N, N), ``mass``,
    ``marginal(i, x)`` (density of neuron i at the points ``x``, any shape),
    ``joint(i, j, x, y)`` (the 2-D marginal on the grid ``x`` by ``y``),
    ``cdf(i, x)``, ``quantile(i, q)``, ``sample(n, seed)`` and
    ``error_estimate`` (the layer's ``/diagnostics/error_estimate``: a bound
    of its error in ``solver.tol``'s meaning; NaN where the method stores none)."""

    mean: np.ndarray
    cov: np.ndarray
    mass: float
    error_estimate: float = float("nan")
    _abscissae: np.ndarray | None = None  # (N, m) where the method tabulated the marginals, when known

    def marginal(self, i: int, x) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def joint(self, i: int, j: int, x, y) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def cdf(self, i: int, x) -> np.ndarray:
        """``P(X_i <= x)`` at the points ``x`` (any shape): the integral of
        ``marginal(i, .)`` (negative values, an interpolant's ringing, counted
        as 0), normalized by its total so that it reaches 1 (a discretization's
        mass defect, at most ``solver.max_lost_mass``, is spread over the law).

        Raises
        ------
        SingularDensityError
            For a layer without a density (``marginal`` says why).
        """
        self._check(i)
        return self._table(int(i)).cdf(np.asarray(x, dtype=np.float64))

    def quantile(self, i: int, q) -> np.ndarray:
        """The ``q``-quantile of neuron ``i`` (``q`` any shape, in (0, 1)): the
        smallest ``x`` with ``cdf(i, x) >= q``, by safeguarded Newton steps
        inside the panel that brackets it.

        Raises
        ------
        ValueError
            For a level outside (0, 1).
        """
        self._check(i)
        q = _levels(q)
        return self._table(int(i)).quantile(q)

    def sample(self, n: int, seed=None) -> np.ndarray:
        """``n`` draws of the whole layer, (n, N), from ``numpy.random.default_rng(seed)``.

        The law is known by its marginals and its covariance, not by its joint
        density, so what is sampled is the **gaussian copula** with these: a
        gaussian ``Z`` with the law's correlation matrix, mapped neuron by
        neuron through ``quantile(i, Phi(Z_i))``. Each neuron's draws follow
        its marginal exactly; their correlation is the law's for gaussian
        marginals (a linear-gaussian network: the draws are its law) and close
        to it otherwise, and the dependence beyond correlation is the gaussian
        copula's, not the network's. A neuron of variance 0 is its mean.
        """
        n = _count(n)
        rng = np.random.default_rng(seed)
        sd = np.sqrt(np.clip(np.diag(self.cov), 0.0, None))
        free = np.flatnonzero(sd > 0)
        out = np.tile(np.asarray(self.mean, dtype=np.float64), (n, 1))
        if free.size:
            corr = self.cov[np.ix_(free, free)] / np.outer(sd[free], sd[free])
            w, v = np.linalg.eigh(0.5 * (corr + corr.T))
            z = rng.standard_normal((n, free.size)) @ (v * np.sqrt(np.clip(w, 0.0, None))).T
            u = np.clip(ndtr(z), np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)
            for col, i in enumerate(free):
                out[:, i] = self.quantile(i, u[:, col])
        return out

    def _check(self, *neurons: int) -> None:
        for i in neurons:
            if not 0 <= int(i) < self.mean.size:
                raise IndexError(f"neuron {i} out of range for a layer of {self.mean.size} neurons")

    def _attach(self, summary, error_estimate: float) -> Law:
        """The law with its layer's stored abscissae (where its marginals live)
        and ``error_estimate``; the law itself, for chaining."""
        self.error_estimate = float(error_estimate)
        x = getattr(summary, "marginal_x", None)
        if self._abscissae is None and x is not None and np.shape(x)[:1] == (self.mean.size,) \
                and np.all(np.isfinite(x)):
            self._abscissae = np.asarray(x, dtype=np.float64)
        return self

    def _edges(self, i: int) -> np.ndarray:
        """The first panels of neuron ``i``'s cdf: ``_SPAN`` standard
        deviations each side of its mean, and the stored abscissae if known."""
        mean, sd = float(self.mean[i]), float(np.sqrt(max(self.cov[i, i], 0.0)))
        lo, hi = mean - _SPAN * sd, mean + _SPAN * sd
        if self._abscissae is None:
            if not sd > 0:
                raise ValueError(f"neuron {i} has variance 0 and no abscissae: it is a point, its cdf a step")
            return np.linspace(lo, hi, _PANELS + 1)
        xs = np.unique(self._abscissae[i])
        parts = [xs]
        if lo < xs[0]:
            parts.insert(0, np.linspace(lo, xs[0], _TAIL_PANELS + 1))
        if hi > xs[-1]:
            parts.append(np.linspace(xs[-1], hi, _TAIL_PANELS + 1))
        return np.unique(np.concatenate(parts))

    def _table(self, i: int) -> _CumulativeTable:
        tables = self.__dict__.setdefault("_tables", {})
        if i not in tables:
            tables[i] = _CumulativeTable(lambda x: self.marginal(i, x), self._edges(i), f"neuron {i}")
        return tables[i]


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
    """The law of a layer that is one point (after a point input): no
    density; its cdf is the step ``x >= x0``, every quantile is ``x0`` and
    every sample is ``x0``."""

    def __init__(self, x0: np.ndarray):
        self.mean, self.cov, self.mass = np.asarray(x0), np.zeros((x0.size, x0.size)), 1.0

    def marginal(self, i, x):
        raise SingularDensityError(f"the layer is the point {self.mean.tolist()}: it has no density")

    joint = marginal

    def cdf(self, i, x):
        self._check(i)
        return (np.asarray(x, dtype=np.float64) >= self.mean[int(i)]).astype(np.float64)

    def quantile(self, i, q):
        self._check(i)
        return np.full(_levels(q).shape, float(self.mean[int(i)]))

    def sample(self, n, seed=None):
        """``n`` copies of the point, (n, N) (``seed`` is not used: nothing is random)."""
        return np.tile(np.asarray(self.mean, dtype=np.float64), (_count(n), 1))


class SummaryLaw(Law):
    """A layer's law from its stored summary (a result file, or a sampling
    method): moments as stored, densities linearly interpolated between the
    stored abscissae (cubic splines with ``cubic``, clipped at 0: for smooth
    densities on fine abscissae, whose linear interpolation error ~h^2 f''/8
    is ~5e-4 in L1 for a peak of width 0.15 on 201 points) and 0 outside them.
    ``cdf`` integrates that interpolant (exactly where it is a polynomial:
    linear, or the splines where not clipped); ``sample`` is the gaussian
    copula of :meth:`Law.sample` (a histogram's marginals and the sample
    correlation, for a sampling method)."""

    def __init__(self, layer, cubic: bool = False):
        self.mean, self.cov, self.mass, self._layer = layer.mean, layer.cov, float(layer.mass), layer
        self._cubic = cubic

    @property
    def _point(self) -> AtomLaw | None:
        """The point the layer is, where it was stored as one (results.atom_summary)."""
        return AtomLaw(self.mean) if np.all(np.isinf(self._layer.marginal_pdf)) else None

    def marginal(self, i, x):
        self._check(i)
        x = np.asarray(x, dtype=np.float64)
        xs, pdf = self._layer.marginal_x[i], self._layer.marginal_pdf[i]
        point = self._point
        if point is not None:
            return point.marginal(i, x)
        if not np.all(np.isfinite(pdf)):  # NaN: a layer stored without a density
            raise SingularDensityError(f"layer with mean {np.round(self.mean, 6).tolist()} has no density: it is "
                                       "a deterministic map of the layer before it (a noiseless layer), so only "
                                       "its mean and covariance were stored")
        if not self._cubic:
            return np.interp(x.ravel(), xs, pdf, left=0.0, right=0.0).reshape(x.shape)
        from scipy.interpolate import CubicSpline  # on use: reading a result file stays quick (0.25 s)

        t = x.ravel()
        out = np.maximum(CubicSpline(xs, pdf)(t), 0.0)
        out[(t < xs[0]) | (t > xs[-1])] = 0.0
        return out.reshape(x.shape)

    def joint(self, i, j, x, y):
        self._check(i, j)
        if self._layer.joint is None or (int(i), int(j)) != (0, 1):
            raise NotImplementedError(f"the stored results hold the joint of neurons 0 and 1 only "
                                      f"(asked for {i} and {j})")
        from scipy.interpolate import RegularGridInterpolator  # on use (above)

        gx, gy, pdf = self._layer.joint
        X, Y = np.meshgrid(np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel(),
                           indexing="ij")
        f = RegularGridInterpolator((gx, gy), pdf, bounds_error=False, fill_value=0.0)
        return f(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)

    def cdf(self, i, x):
        point = self._point
        return super().cdf(i, x) if point is None else point.cdf(i, x)

    def quantile(self, i, q):
        point = self._point
        return super().quantile(i, q) if point is None else point.quantile(i, q)

    def sample(self, n, seed=None):
        point = self._point
        return super().sample(n, seed) if point is None else point.sample(n, seed)

    sample.__doc__ = Law.sample.__doc__

    def _edges(self, i):
        return np.unique(self._layer.marginal_x[i])  # the interpolant is 0 outside, a polynomial between


class MomentLaw(SummaryLaw):
    """A layer whose law has moments but no density (the push-forward of the
    layer before it through a noiseless layer): ``marginal``, ``joint``,
    ``cdf``, ``quantile`` and ``sample`` raise
    :class:`~mzpdf.errors.SingularDensityError` saying ``why`` (its mean
    and covariance alone fix no law to sample)."""

    def __init__(self, layer, why: str):
        super().__init__(layer)
        self._why = why

    def marginal(self, i, x):
        self._check(i)
        raise SingularDensityError(self._why)

    def joint(self, i, j, x, y):
        self._check(i, j)
        return self.marginal(i, x)

    def sample(self, n, seed=None):
        _count(n)
        raise SingularDensityError(f"no sampler: {self._why}")


class _CumulativeTable:
    """The cdf of one neuron: its density integrated over panels ``[a, b]``
    (contiguous, increasing), with ``cumulative[k]`` the integral up to
    ``a[k]`` and, per panel, the Legendre coefficients of the density's
    interpolant (``density``) and of its integral from ``a`` (``integral``),
    both in the panel's variable ``t`` in [-1, 1]."""

    def __init__(self, density: Callable, edges: np.ndarray, what: str):
        self._what = what
        a, b = edges[:-1], edges[1:]
        whole, _ = self._gauss(density, a, b)
        width = edges[-1] - edges[0]
        total = max(float(np.sum(whole)), np.finfo(np.float64).tiny)
        done = []  # (a, b, values at the nodes)
        for _ in range(_MAX_ROUNDS):
            m = 0.5 * (a + b)
            left, v_left = self._gauss(density, a, m)
            right, v_right = self._gauss(density, m, b)
            halves = left + right
            ok = np.abs(halves - whole) <= np.maximum(_PANEL_TOL * total * (b - a) / width, 64 * np.finfo(
                np.float64).eps * np.abs(halves))
            done += [(a[ok], m[ok], v_left[ok]), (m[ok], b[ok], v_right[ok])]
            total = max(total + float(np.sum(halves - whole)), np.finfo(np.float64).tiny)
            a, b, whole = (np.concatenate([a[~ok], m[~ok]]), np.concatenate([m[~ok], b[~ok]]),
                           np.concatenate([left[~ok], right[~ok]]))
            if a.size == 0:
                break
        else:  # halved _MAX_ROUNDS times (a jump): take the last halves as they are
            done.append((a, b, self._gauss(density, a, b)[1]))
        a, b, values = (np.concatenate(parts) for parts in zip(*done))
        order = np.argsort(a)
        self.a, self.b, values = a[order], b[order], values[order]
        self.density = values @ _TO_LEGENDRE.T  # (panels, 8)
        self.integral = np.polynomial.legendre.legint(self.density, lbnd=-1, axis=1) \
            * (0.5 * (self.b - self.a))[:, None]  # (panels, 9): the integral from a, in x's units
        self.cumulative = np.concatenate([[0.0], np.cumsum(self._panel())])
        self.total = float(self.cumulative[-1])
        if not self.total > 0:
            raise ValueError(f"the marginal of {what} integrates to {self.total:g} on [{edges[0]:g}, {edges[-1]:g}]: "
                             "no cdf")

    def _panel(self) -> np.ndarray:
        """Each panel's integral: the integral polynomial at t = 1."""
        return np.polynomial.legendre.legval(1.0, self.integral.T)

    def _gauss(self, density: Callable, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre integrals over ``[a, b]`` and the density's values
        (negative ones as 0) at the nodes, (panels, 8)."""
        x = (0.5 * (a + b))[:, None] + (0.5 * (b - a))[:, None] * _NODES
        flat = x.ravel()
        values = np.concatenate([np.asarray(density(flat[k:k + _CHUNK]), dtype=np.float64).ravel()
                                 for k in range(0, flat.size, _CHUNK)] or [np.zeros(0)]).reshape(x.shape)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"the marginal of {self._what} is not finite at {flat[~np.isfinite(values.ravel())][:3]}")
        values = np.maximum(values, 0.0)
        return 0.5 * (b - a) * (values @ _WEIGHTS), values

    def _locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.clip(np.searchsorted(self.a, x, side="right") - 1, 0, self.a.size - 1)
        t = np.clip((2 * x - self.a[k] - self.b[k]) / (self.b[k] - self.a[k]), -1.0, 1.0)
        return k, t

    def cdf(self, x: np.ndarray) -> np.ndarray:
        flat = x.ravel()
        k, t = self._locate(flat)
        below = self.cumulative[k] + _rows(self.integral, k, t)
        out = np.where(flat < self.a[0], 0.0, np.where(flat >= self.b[-1], self.total, below))
        return np.clip(out / self.total, 0.0, 1.0).reshape(x.shape)

    def quantile(self, q: np.ndarray) -> np.ndarray:
        target = q.ravel() * self.total
        k = np.clip(np.searchsorted(self.cumulative, target, side="left") - 1, 0, self.a.size - 1)
        base, h = self.cumulative[k], 0.5 * (self.b[k] - self.a[k])
        span = self.cumulative[k + 1] - base
        lo, hi = np.full(target.shape, -1.0), np.ones(target.shape)
        t = np.clip(-1.0 + 2.0 * np.divide(target - base, span, out=np.ones_like(span), where=span > 0), -1.0, 1.0)
        active = np.ones(target.shape, dtype=bool)
        for _ in range(_NEWTON_STEPS):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            ki, ti = k[idx], t[idx]
            g = base[idx] + _rows(self.integral, ki, ti) - target[idx]
            slope = h[idx] * _rows(self.density, ki, ti)
            lo[idx] = np.where(g < 0, ti, lo[idx])
            hi[idx] = np.where(g >= 0, ti, hi[idx])
            with np.errstate(divide="ignore", invalid="ignore"):
                step = ti - g / slope
            bisect = ~(slope > 0) | ~(step > lo[idx]) | ~(step < hi[idx])
            step = np.where(g == 0, ti, np.where(bisect, 0.5 * (lo[idx] + hi[idx]), step))
            t[idx] = step
            active[idx] = (np.abs(step - ti) > 4 * np.finfo(np.float64).eps) & (hi[idx] - lo[idx] > 4 * np.finfo(
                np.float64).eps) & (g != 0)
        return (self.a[k] + (t + 1.0) * h).reshape(q.shape)


def _rows(coefficients: np.ndarray, k: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Row ``k[p]`` of a Legendre coefficient table at ``t[p]``, for every p."""
    basis = np.polynomial.legendre.legvander(t, coefficients.shape[1] - 1)
    return np.einsum("pl,pl->p", basis, coefficients[k])


def _levels(q) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    bad = ~((q > 0) & (q < 1))
    if np.any(bad):
        raise ValueError(f"quantile levels must lie in (0, 1), got {q[bad].ravel()[:5].tolist()}")
    return q


def _count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"the number of samples must be an integer >= 0, got {n!r}")
    return int(n)
