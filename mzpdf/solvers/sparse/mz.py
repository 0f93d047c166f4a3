"""Mori-Zwanzig reduction of sparse-grid solutions (SPEC 4 on SPEC 3.2).

A sparse solve (:mod:`mzpdf.solvers.sparse.engine`) carries each layer ``n`` as a law
with *atoms*: points ``x_i`` of a positive rule and weights ``w_i`` with
``E_n[f] ~ sum_i w_i f(x_i)``. The next layer's density is the mixture over
them,

    p_{n+1}(y) = sum_i w_i k_n(y | G_n(x_i)),                     (M_n w)

``k_n`` the noise kernel; its log-density is interpolated on a Leja sparse
grid ``Y_{n+1}`` (standardized coordinates, radially clipped, tilted to the
exact moments), and that interpolant gives the next atoms' weights
``w'_i ~ rule_i exp(h(x'_i))``. Marginals are exact sums over the mixture.

Reduced densities. A density at layer ``n >= 1`` is a mixture ``M_{n-1} s``
over the atoms of layer ``n - 1`` (any weights ``s``) plus a part ``E_n a``
of the projection; at the input, any function known at its atoms.

* Chorin projection onto the kept neurons with reference ``nu_n`` on the
  dropped ones (the layer's own dropped marginal -- an exact sum over the
  mixture --, the gaussian with its moments, or uniform on its box): ``R_n
  p`` is the kept marginal at the nodes of a Clenshaw-Curtis grid over the
  kept neurons' box (the stored marginals' abscissae span it; 65 nodes for
  one kept neuron), ``R_n M_{n-1} s`` the exact sum over the atoms. ``E_n
  a = a(x^) nu_n(x~)``, ``a`` interpolating its nodal values, is carried as
  the discrete measure that the kept grid's rule and, at each kept node
  ``t``, a rule around the conditional gaussian of the dropped neurons
  (Gauss-Hermite, 16 points a neuron, up to two dropped neurons; 2^10
  scrambled Sobol points beyond) give it: atoms ``(t, x~_tb)`` of weights ``w_t a_t omega_tb
  nu(x~_tb) / Z_t``, ``Z_t`` normalizing each fibre, so that ``R_n E_n = I``
  exactly and ``E_n e_t`` is a positive density of mass ``w_t``.
  ``R_n p_n`` of the solution is the solver's own kept marginal.

The layer operator ``N_n``: the solve's own step, linearized at the solution.
On the mixture part the solver interpolates ``log p`` on ``Y_n``; its
response to a perturbation ``f`` of ``p_n`` is the interpolant of ``f / p_n``
(on the same grid, at the same clipped points), times ``w_n``:

    N_n (M_{n-1} s) = w_n * I_n[ (M_{n-1} s)(Y_n) / p_n(Y_n) ](x_n),

so ``N_n p_n = w_n`` exactly (the interpolant of 1 is 1): the solution's own
next atoms, hence its own next mixture. The projection's part ``E_n a`` is
itself a mixture's weights (over its fibre atoms), and ``N_n`` maps it to the
mixture over those atoms: the transfer integral by the projection's rule.
Both are linear, and every density of the kernel computation is a sum of
the two kinds, so the reduction is small matrices: per layer the kernel
sums from the atoms (the layer's and the fibres') to the next grid and to
the next kept nodes, against the interpolation matrix of the grid. With full memory the reduced recursion
reproduces the solution's own kept marginals to round-off
(tests/test_mz_sparse.py).

Not computed on sparse solutions: kappa and the kernel bounds (NaN: they
need the full operator's norm in L2(mu), and the solver never forms it), the
observable (backward) equation, the Mori projection. The truncation
estimate (and so ``memory = "auto"``) works in L1, as on tensor trains
(:mod:`mzpdf.mz.norms`). Refused (the solver method's check): point
inputs, networks with noiseless layers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from ...discretization.leja import newton_basis
from ...discretization.rules import make_rule
from ...discretization.tensor_grid import TensorGrid
from ...mz.bounds import canonical_correlations, dobrushin_coefficient
from ...mz.norms import KeptNodalL1
from ...mz.reduction import MoriZwanzig
from ...mz.spec import ProjectionSpec
from .rules import gauss_rule, sobol_rule
from .transfer import log_noise

__all__ = ["reduce_sparse", "SparseChorinLayer", "KEPT_NODES"]

KEPT_NODES = {1: 65, 2: 25}  # Clenshaw-Curtis nodes per kept neuron (by the number kept; 9 beyond)
_FIBRE_POINTS = 16  # Gauss-Hermite points per dropped neuron of the fibre rules, up to two dropped neurons
_FIBRE_SOBOL = 10  # beyond: 2^10 scrambled Sobol points (their error, ~1e-3, is the E columns', not the identity's)
_CHUNK = 2**22  # kernel values per block of atoms


@dataclass(frozen=True, eq=False)
class SparseChorinLayer(KeptNodalL1):
    """The Chorin projection of one layer of a sparse solution seen from its
    reduced space: nodal values of the kept marginal on ``kept_grid``."""

    keep: tuple
    kept_grid: TensorGrid

    def kept_pdf(self, nodal, rows) -> np.ndarray:
        """``(kept, m)``: the 1-D marginals of a nodal kept marginal,
        interpolated at abscissae ``rows[i]`` for kept neuron i."""
        grid = self.kept_grid
        return np.stack([grid.rules[i].interpolation_matrix(rows[i]) @ grid.marginal(nodal, i)
                         for i in range(grid.ndim)])


def _kernel(noise, y: np.ndarray, centres: np.ndarray, neurons) -> np.ndarray:
    """``prod_{k in neurons} rho_k(y[p, k] - centres[i, k])``, ``(P, I)``
    (``y`` and ``centres`` hold the listed neurons' columns only). Gaussian
    noise: one product ``y . c`` (centred, scaled) and one exponential per
    entry."""
    neurons = list(neurons)
    if noise.kind == "gaussian":
        s = noise.scale[neurons]
        centre = centres.mean(axis=0) if centres.shape[0] else 0.0
        a, c = (y - centre) / s, (centres - centre) / s
        out = a @ c.T
        out -= 0.5 * np.sum(a * a, axis=1)[:, None]
        out -= 0.5 * np.sum(c * c, axis=1)[None, :]
        np.exp(out, out=out)
        return out * float(np.prod(1.0 / (np.sqrt(2.0 * np.pi) * s)))
    out = np.zeros((y.shape[0], centres.shape[0]))
    for col, k in enumerate(neurons):
        out += log_noise(noise, y[:, col, None] - centres[None, :, col], k)
    return np.exp(out)


def _mixture_at(noise, y: np.ndarray, centres: np.ndarray, weights: np.ndarray, neurons) -> np.ndarray:
    """``sum_i weights[i] prod_{k in neurons} rho_k(y_k - centres[i, k])`` at
    ``y`` ``(P, len(neurons))``, in blocks."""
    out = np.zeros(y.shape[0])
    step = max(1, _CHUNK // max(centres.shape[0], 1))
    for a in range(0, y.shape[0], step):
        out[a:a + step] = _kernel(noise, y[a:a + step], centres, neurons) @ weights
    return out


class _Transition:
    """The atoms of layer ``n`` that make layer ``n + 1``'s mixture: points
    ``x`` ``(Q, N_n)`` and signed weights ``w`` (a Richardson pair's two rules
    flattened, with their coefficients) and the images ``G_n(x)``."""

    def __init__(self, solver, law, layer, source):
        rule0 = solver.moment_rule(law)
        x0, w0 = law.atoms(rule0)
        g0 = layer.forward(x0)
        sd_g = np.sqrt(np.maximum(w0 @ (g0 - w0 @ g0) ** 2, 0.0))
        rule = solver.transition_rule(law.dim, layer.noise.kind, float(np.max(sd_g / layer.noise.scale)))
        x, w = law.atoms(rule)
        parts = [(x, w, 1.0)]
        if source.richardson and source.coarse is not None:
            xc, wc = law.atoms(rule.coarse)
            parts = [(x, w, 4.0 / 3.0), (xc, wc, -1.0 / 3.0)]
        self.x = np.concatenate([p[0] for p in parts])
        self.w = np.concatenate([p[1] * p[2] for p in parts])
        self.images = layer.forward(self.x)
        self.layer = layer
        mine = layer.forward(x)
        if mine.shape != source.centres.shape or not np.allclose(mine, source.centres, rtol=1e-12, atol=1e-12) \
                or not np.allclose(w, source.weights, rtol=1e-12, atol=1e-15):
            raise ValueError(f"the atoms of the sparse solution's layer feeding {layer} differ from the ones its "
                             "solver chooses now (a solution from another version or options?)")
        self.noise = layer.noise


class _Layer:
    """Layer ``n``'s side of the reduction: its kept grid, reference ``nu``,
    and (for ``n >= 1``) the interpolation of relative perturbations from
    its Leja grid to any points."""

    def __init__(self, n: int, law, keep: tuple, reference: str, box: np.ndarray, source, source_atoms):
        self.n, self.law, self.keep, self.reference = n, law, keep, reference
        self.box = np.asarray(box, dtype=np.float64)
        self.drop = tuple(k for k in range(law.dim) if k not in keep)
        m = KEPT_NODES.get(len(keep), 9)
        self.kept_grid = TensorGrid(tuple(make_rule("clenshaw_curtis", m, *self.box[k], "projection.keep")
                                          for k in keep))
        self.source, self.source_atoms = source, source_atoms  # the mixture of layer n (None for the input)
        self.noise = None if source_atoms is None else source_atoms.noise

    # -- E_n ----------------------------------------------------------------------------------
    def nu(self, x: np.ndarray) -> np.ndarray:
        """The reference density of the dropped neurons at the points ``x``
        ``(P, N)`` (its integral is 1 exactly)."""
        if not self.drop:
            return np.ones(x.shape[0])
        xd = x[:, list(self.drop)]
        if self.reference == "gaussian":
            mean, cov = self.law.mean[list(self.drop)], self.law.cov[np.ix_(self.drop, self.drop)]
            d = xd - mean
            q = np.einsum("pi,ij,pj->p", d, np.linalg.inv(cov), d)
            return np.exp(-0.5 * q) / np.sqrt(np.linalg.det(2.0 * np.pi * cov))
        if self.reference == "uniform":
            lo, hi = self.box[list(self.drop), 0], self.box[list(self.drop), 1]
            inside = np.all((xd >= lo) & (xd <= hi), axis=1)
            return inside / float(np.prod(hi - lo))
        if self.source is None:  # the input law: its own dropped marginal
            return self.law.marginal(list(self.drop), xd)
        at = self.source_atoms
        return _mixture_at(at.noise, xd, at.images[:, list(self.drop)], at.w, self.drop)

    @cached_property
    def fibres(self) -> tuple[np.ndarray, np.ndarray]:
        """``E_n`` as a discrete measure (module doc): points ``(kd B, N)``
        (``B`` per kept node, node by node) and their weights per unit of
        ``a_t``, ``(kd B,)``: ``w_t omega_tb nu(x~_tb) / Z_t``."""
        law, keep, drop = self.law, list(self.keep), list(self.drop)
        t = self.kept_grid.points
        w_t = self.kept_grid.weights
        if not drop:
            return t, w_t
        cov = law.cov
        c_kk, c_dk, c_dd = cov[np.ix_(keep, keep)], cov[np.ix_(drop, keep)], cov[np.ix_(drop, drop)]
        gain = np.linalg.solve(c_kk, c_dk.T).T
        cond = c_dd - gain @ c_dk.T
        lc = np.linalg.cholesky(0.5 * (cond + cond.T))
        rule = gauss_rule(len(drop), _FIBRE_POINTS, False) if len(drop) <= 2 else sobol_rule(len(drop), _FIBRE_SOBOL)
        v, rw = rule.points, rule.weights
        omega = rw * np.exp(0.5 * np.sum(v * v, axis=1) + 0.5 * len(drop) * np.log(2.0 * np.pi)
                            + float(np.sum(np.log(np.diag(lc)))))  # int f dx~ ~ omega @ f(x~_b)
        centre = law.mean[drop] + (t - law.mean[keep]) @ gain.T  # (kd, d)
        pts = np.empty((t.shape[0], v.shape[0], law.dim))
        pts[:, :, keep] = t[:, None, :]
        pts[:, :, drop] = centre[:, None, :] + (v @ lc.T)[None, :, :]
        pts = pts.reshape(-1, law.dim)
        mass = (omega[None, :] * self.nu(pts).reshape(t.shape[0], -1))  # (kd, B)
        z = mass.sum(axis=1)
        weights = w_t[:, None] * mass / np.where(z > 0, z, 1.0)[:, None]
        return pts, weights.reshape(-1)

    def kept_kernel(self, images: np.ndarray) -> np.ndarray:
        """``(kept size, Q)``: the kept marginal at this layer's kept nodes of
        the kernel around each image ``G(x)`` ``(Q, N)`` of the layer before
        (``R_n`` of one atom's mixture component)."""
        return _kernel(self.noise, self.kept_grid.points, images[:, list(self.keep)], self.keep)

    # -- relative interpolation on the Leja grid (n >= 1) ---------------------------------------
    @cached_property
    def _hierarchize(self) -> np.ndarray:
        grid = self.law.grid
        return np.asarray(grid.hierarchize(np.eye(grid.size)))

    def interpolation(self, x: np.ndarray) -> np.ndarray:
        """``(P, grid size)``: the interpolant of nodal values at the points
        ``x``, at the clipped standardized coordinates the law evaluates its
        log-density (``I_n``)."""
        law, grid = self.law, self.law.grid
        u = (np.atleast_2d(x) - law.mean) / law.sd
        rad = np.sqrt(np.maximum(np.einsum("pi,ij,pj->p", u, law.corr_inv, u), 1e-300))
        uc = u * np.minimum(1.0, law.radius / rad)[:, None]
        basis = newton_basis(uc, grid.degree)  # (P, N, degree + 1)
        psi = np.ones((uc.shape[0], grid.size))
        for k in range(grid.ndim):
            psi *= basis[:, k, grid.indices[:, k]]
        return psi @ self._hierarchize

    @property
    def points(self) -> np.ndarray:
        return self.law.points


def reduce_sparse(solution, spec: ProjectionSpec, solver, boxes: list,
                  progress: Callable[[int, int], None] | None = None) -> MoriZwanzig:
    """The exact MZ equations of a sparse-grid solution for a Chorin
    projection (module doc). ``solver``: the SparseSolver that made it (its
    rules); ``boxes[n]``: ``(N_n, 2)`` the box of layer n's stored marginals."""
    laws, net = solution.laws, solution.network
    if laws[0] is None:
        raise ValueError("the Mori-Zwanzig reduction needs an input density, not a point input")
    if spec.kind != "chorin":
        raise ValueError(f"sparse solutions take the Chorin projection only, not {spec.kind!r}")
    start = time.perf_counter()
    keep = tuple(spec.keep)
    L = solution.depth
    atoms = [_Transition(solver, laws[n], net.layers[n], laws[n + 1].source) for n in range(L)]
    layers = [_Layer(n, laws[n], keep, spec.reference, boxes[n], laws[n].source if n else None,
                     atoms[n - 1] if n else None) for n in range(L + 1)]
    # per transition n, the two parts of a density after N_n: relative values g on layer n's grid
    # (weights W g on its atoms) and E coefficients b (weights on its fibre atoms)
    # (at the input, g is the density relative to p_0 at the atoms themselves: W is diagonal, a vector)
    W = [atoms[n].w[:, None] * layers[n].interpolation(atoms[n].x) if n else atoms[0].w for n in range(L)]

    def times_w(k, n):
        return k * W[n][None, :] if W[n].ndim == 1 else k @ W[n]

    # ... and their kernel sums into layer n + 1's grid (K) and kept nodes (M)
    KW, KU, MW, MU, p_grid = [], [], [], [], []
    for n in range(L):
        at, here, nxt = atoms[n], layers[n], layers[n + 1]
        pts, weights = here.fibres
        images = at.layer.forward(pts)
        kd = here.kept_grid.size
        block = weights.reshape(kd, -1)
        MW.append(times_w(nxt.kept_kernel(at.images), n))
        MU.append(np.einsum("tsb,sb->ts", nxt.kept_kernel(images).reshape(-1, kd, block.shape[1]), block))
        if n + 1 < L:
            every = range(at.images.shape[1])
            KW.append(times_w(_kernel(at.noise, nxt.points, at.images, every), n))
            k = _kernel(at.noise, nxt.points, images, every).reshape(-1, kd, block.shape[1])
            KU.append(np.einsum("ysb,sb->ys", k, block))
            p_grid.append(KW[n].sum(axis=1))  # p_{n+1} on its grid: M_n w_n (exactly N_n's denominator)
        if progress is not None:
            progress(n + 1, L)
    ones = [np.ones(W[n].shape[-1]) for n in range(L)]
    projected = [layers[0].law.marginal(list(keep), layers[0].kept_grid.points)] + \
        [MW[n] @ ones[n] for n in range(L)]
    # the chains: (g, b) blocks after N_n, with their source layer; the noise chain starts from Q_0 p_0
    kernels, noise = {}, []
    chains = [("noise", ones[0][:, None], -projected[0][:, None])]
    for n in range(L):
        if n > 0:  # N_n Q_n of every chain in flight: g' = (KW g + KU b) / p_n, b' = -R_n
            moved = []
            for k, g, b in chains:
                r = MW[n - 1] @ g + MU[n - 1] @ b
                moved.append((k, (KW[n - 1] @ g + KU[n - 1] @ b) / p_grid[n - 1][:, None], -r))
            chains = moved
        dim = layers[n].kept_grid.size
        chains.append((n, np.zeros((W[n].shape[-1], dim)), np.eye(dim)))  # N_n E_n: the sources of layer n
        for k, g, b in chains:
            r = MW[n] @ g + MU[n] @ b
            if k == "noise":
                noise.append(r[:, 0])
            else:
                kernels[n, k] = r
    projections = [SparseChorinLayer(keep, layer.kept_grid) for layer in layers]
    dob = np.array([dobrushin_coefficient(layer, box) for layer, box in zip(net, boxes)])
    canon = canonical_correlations(net, solution.input_law)
    return MoriZwanzig(spec, projections, kernels, noise, projected, np.full(L, np.nan), np.full(L, np.nan),
                       dob, canon, seconds=time.perf_counter() - start)
