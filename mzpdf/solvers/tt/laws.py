"""The pieces of a TT layer step that the forward step, the quadrature step
(:mod:`~mzpdf.solvers.tt.quadrature`) and the pull-back
(:mod:`~mzpdf.solvers.tt.backward`) share: the law of one layer's neurons
(:class:`XLaw` and its kinds), the frame of a pre-activation step
(:class:`StepFrame`), the kernel rows of a layer and the typical indices
that seed a cross."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...discretization.tensor_train import TTFunction, contract_rows
from ...network import InputLaw

__all__ = ["WEIGHT_FLOOR", "InputXLaw", "KernelRows", "NoisyXLaw", "StepFrame", "XLaw", "pushforward_moments",
           "typical_indices"]

WEIGHT_FLOOR = 1e-8  # floor of the squared cross weights s_k^2 (relative to their peak)
_START_POINTS = 256  # typical points seeding the cross (drawn from the moment-matched gaussian)
_CHECK_POINTS = 512  # points of the a-posteriori error estimate
_CHUNK_VALUES = 2**20  # kernel-row values per chunk of points (8 MB)


def typical_indices(mean, cov, lo, hi, sizes, rng) -> tuple[np.ndarray, np.ndarray]:
    """Grid multi-indices nearest to draws from ``N(mean, cov)`` on the
    equispaced boxes ``[lo, hi]`` of ``sizes`` nodes: ``_START_POINTS`` to seed
    a cross approximation and ``_CHECK_POINTS`` for its error estimate."""
    chol = np.linalg.cholesky(cov + 1e-300 * np.eye(len(mean)))
    draws = mean + rng.standard_normal((_START_POINTS + _CHECK_POINTS, len(mean))) @ chol.T
    h = (np.asarray(hi) - lo) / (np.asarray(sizes) - 1)
    idx = np.clip(np.rint((draws - lo) / h), 0, np.asarray(sizes) - 1).astype(np.int64)
    return idx[:_START_POINTS], idx[_START_POINTS:]


class KernelRows:
    """The noise-kernel rows of one layer for all its neurons at once:
    ``rows(x)[k][p, i] = weights[k][i] rho_k(x[p, k] - centres[k][i])``.

    These rows are most of a TT layer's time; the gaussian case is computed
    in place on one ``(P, N, n)`` array (four passes instead of eight, one
    NumPy call per pass instead of one per neuron)."""

    def __init__(self, noise, centres: list, weights: list):
        N, n = len(centres), max(c.size for c in centres)
        self.noise, self.sizes = noise, [c.size for c in centres]
        self.centres, self.factor = np.zeros((N, n)), np.zeros((N, n))  # padding: factor 0
        for k, (c, w) in enumerate(zip(centres, weights)):
            self.centres[k, : c.size], self.factor[k, : c.size] = c, w
        self.gaussian = noise.kind == "gaussian"
        if self.gaussian:
            self.factor /= np.sqrt(2.0 * np.pi) * noise.scale[:, None]
            self.coef = (-0.5 / noise.scale**2)[None, :, None]

    def table(self, x: np.ndarray) -> np.ndarray:
        """The ``(P, N, n)`` array of rows (zero on padding)."""
        d = x[:, :, None] - self.centres[None]
        if self.gaussian:
            d *= d
            d *= self.coef
            np.exp(d, out=d)
        else:
            d = self.noise.pdf(d.transpose(0, 2, 1)).transpose(0, 2, 1)
        d *= self.factor[None]
        return d

    def __call__(self, x: np.ndarray) -> list:
        d = self.table(x)
        return [d[:, k, :m] for k, m in enumerate(self.sizes)]


# -- the law of one layer's neurons ---------------------------------------------------

class XLaw:
    """The law of ``X_n``: density at points, moments, marginals, box."""

    dim: int

    def pdf(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def moments(self) -> tuple[float, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def marginal(self, k: int, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def box(self, tail: float) -> np.ndarray:
        raise NotImplementedError

    def joint01(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """The 2-D marginal density of neurons 0 and 1 on the grid ``x`` by
        ``y`` (None where not available)."""
        raise NotImplementedError


class InputXLaw(XLaw):
    def __init__(self, law: InputLaw):
        self.law, self.dim = law, law.dim

    def pdf(self, x):
        return self.law.pdf(x)

    def moments(self):
        return 1.0, self.law.mean(), self.law.cov()

    def marginal(self, k, x):
        return self.law.marginal_pdf(k, x)

    def box(self, tail):
        return self.law.box(tail)

    def joint01(self, x, y):
        if self.dim != 2:
            return None  # a 2-D marginal of a general input law has no closed form here
        X, Y = np.meshgrid(x, y, indexing="ij")
        return self.law.pdf(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)


class NoisyXLaw(XLaw):
    """``X = sigma(Z) + xi`` with ``Z`` an atom (``z``) or a TT density (``tt``)."""

    def __init__(self, layer, tt: TTFunction | None = None, z: np.ndarray | None = None,
                 centre: np.ndarray | None = None):
        self.layer, self.tt, self.z = layer, tt, z
        self.dim = layer.n_out
        self.laws = [type(layer.noise)(layer.noise.scale[k:k + 1]) for k in range(self.dim)]
        if tt is not None:
            self.act = [layer.activation(r.nodes) for r in tt.rules]
            weights = [r.weights for r in tt.rules]
        elif centre is not None:  # X = c + xi for a constant c = F(x_0) (a point input and any layer kind)
            self.act = [np.array([ck]) for ck in centre]
            weights = [np.ones(1)] * self.dim
        else:
            self.act = [layer.activation(np.array([zk])) for zk in z]
            weights = [np.ones(1)] * self.dim
        self.rows = KernelRows(layer.noise, self.act, weights)  # rows w_i rho_k(x_k - sigma(z_{k,i}))

    def pdf(self, x):
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if self.tt is None:
            return np.prod(self.rows.table(x)[:, :, 0], axis=1)
        out = np.empty(x.shape[0])
        chunk = max(1, _CHUNK_VALUES // self.rows.centres.size)
        for a in range(0, x.shape[0], chunk):
            out[a:a + chunk] = contract_rows(self.tt.cores, self.rows(x[a:a + chunk]))
        return out

    def moments(self):
        var = self.layer.noise.variance()
        if self.tt is None:
            return 1.0, self.act_atom(), np.diag(var)
        mass, mean, cov = self.tt.moments(values=self.act)
        return mass, mean, cov + np.diag(var)

    def act_atom(self) -> np.ndarray:
        return np.array([a[0] for a in self.act])

    def marginal(self, k, x):
        if self.tt is None:
            x = np.asarray(x, dtype=np.float64)
            return self.laws[k].pdf((x[:, None] - self.act[k][None, :])[..., None])[..., 0][:, 0]
        return self.marginal_of(k, x, self._marginals[k])

    def marginal_of(self, k, x, z_marginal: np.ndarray) -> np.ndarray:
        """Density of ``sigma(Z_k) + xi_k`` at ``x`` for the nodal pre-activation
        marginal ``z_marginal`` on the train's rule of neuron k."""
        x = np.asarray(x, dtype=np.float64)
        rho = self.laws[k].pdf((x[:, None] - self.act[k][None, :])[..., None])[..., 0]
        return rho @ (self.tt.rules[k].weights * z_marginal)

    def prepare_marginals(self) -> None:
        if self.tt is not None:
            self._marginals = self.tt.marginals()
            self._mass = self.tt.integral()

    def joint01(self, x, y):
        rows = []
        for k, pts in ((0, x), (1, y)):
            rho = self.laws[k].pdf((np.asarray(pts)[:, None] - self.act[k][None, :])[..., None])[..., 0]
            rows.append(rho * (self.tt.rules[k].weights[None, :] if self.tt is not None else 1.0))
        if self.tt is None:
            return np.outer(rows[0][:, 0], rows[1][:, 0])
        return rows[0] @ self.tt.marginal2(0, 1) @ rows[1].T

    def box(self, tail):
        r = self.layer.noise.tail_radius(tail)
        lo = np.array([a.min() for a in self.act]) - r
        hi = np.array([a.max() for a in self.act]) + r
        return np.column_stack([lo, hi])


# -- one layer step ------------------------------------------------------------------------

@dataclass(eq=False)
class StepFrame:
    """The geometry of one TT step from ``X_n`` to ``Z_{n+1}`` (module doc):
    ``u = T x + c``, the grid of ``U`` (``rules``; the first ``n_out`` are
    ``Z_{n+1}``'s, the rest null-space coordinates integrated out), the cross
    weights ``s_k`` at the nodes, typical indices to seed and check a cross,
    and the generator that drew them. Built by :meth:`TTSolver.frame`; the
    Mori-Zwanzig module pushes other functions through the same frames."""

    n: int
    T: np.ndarray
    c: np.ndarray
    Tinv: np.ndarray
    scale: float  # 1 / |det T|
    n_out: int
    rules: list
    weights: list
    start: np.ndarray
    checks: np.ndarray
    rng: np.random.Generator

    def __post_init__(self):
        n_in = len(self.rules)
        self.sizes = [r.size for r in self.rules]
        self._nodes = np.full((n_in, max(self.sizes)), np.nan)
        self._wtab = np.ones((n_in, max(self.sizes)))
        for k, (r, w) in enumerate(zip(self.rules, self.weights)):
            self._nodes[k, : r.size], self._wtab[k, : r.size] = r.nodes, w
        self._cols = np.arange(n_in)

    def points(self, idx: np.ndarray) -> np.ndarray:
        """``x = T^-1 (u - c)`` at the grid multi-indices ``idx`` of ``U``."""
        return (self._nodes[self._cols, idx] - self.c) @ self.Tinv.T

    def weight_at(self, idx: np.ndarray) -> np.ndarray:
        """The cross weight ``s(u)`` at the multi-indices ``idx``."""
        return np.prod(self._wtab[self._cols, idx], axis=1)

    def finish(self, cores: list, weights: list, rules: list, tol: float, max_rank: int):
        """A cross of ``f / s`` on modes with ``weights`` and ``rules`` (those of
        :attr:`rules`, possibly with other modes inserted before the
        null-space coordinates, which come last) to the train of ``f`` with
        the null-space coordinates integrated out, rounded to ``tol`` in the
        weighted norm. Returns ``(train, rounding error, capped)``."""
        n_null = len(self.rules) - self.n_out
        cores = [core * w[None, :, None] for core, w in zip(cores, weights)]
        if n_null:
            tail_vec = np.ones(1)
            for k in range(len(cores) - 1, len(cores) - n_null - 1, -1):
                tail_vec = np.tensordot(cores[k], rules[k].weights, axes=(1, 0)) @ tail_vec
            last = len(cores) - n_null - 1
            cores = cores[:last] + [np.tensordot(cores[last], tail_vec, axes=(2, 0))[:, :, None]]
            weights, rules = weights[: last + 1], rules[: last + 1]
        cores = [core / w[None, :, None] for core, w in zip(cores, weights)]
        tt, rounding, capped = TTFunction(cores, rules).round(tol, max_rank)
        return TTFunction([core * w[None, :, None] for core, w in zip(tt.cores, weights)], rules), rounding, capped


def pushforward_moments(image: np.ndarray, masses: np.ndarray) -> tuple:
    """``(mass, mean, cov, box)`` of a law without a density, the image
    ``G(x_q)`` ``(Q, N)`` of quadrature nodes of masses ``m_q``: moments by
    the same quadrature, the box spanning the images of nodes of positive
    mass."""
    mass = float(masses.sum())
    mean = masses @ image / mass
    dev = image - mean
    cov = dev.T @ (masses[:, None] * dev) / mass
    support = image[masses > 0] if np.any(masses > 0) else image
    return mass, mean, cov, np.column_stack([support.min(axis=0), support.max(axis=0)])
