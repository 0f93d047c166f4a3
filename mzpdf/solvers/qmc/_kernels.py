"""Numba kernel of qmc's conditional-density estimator, with its NumPy twin
(for the tests)."""
from __future__ import annotations

import math

import numpy as np

from ..._numba import jit, jit_inline

# Noise codes of mzpdf.network.noise (GAUSSIAN, UNIFORM, LAPLACE), repeated here so
# that the kernel module imports nothing but numba's policy.
_GAUSSIAN, _UNIFORM, _LAPLACE = 0, 1, 2


@jit
def accumulate_conditional_pdf(f, code, scale, radius, y0, h, out):
    """out[j, k] += sum_i rho_j(y0[j] + k h[j] - f[i, j]): the conditional-density
    sum of one block of mapped samples at equispaced abscissae.

    Shapes: f (n, N), scale, radius, y0, h (N,), out (N, m). ``code`` is the
    noise law's (gaussian 0, uniform 1, laplace 2) and ``scale`` its std,
    half-width or scale. Terms with ``|y - f| > radius[j]`` are dropped
    (``radius`` = the noise's ``window_radius``: rho below 1e-16 of its peak).

    No exponential per term: from the abscissa nearest to ``f`` outwards a
    gaussian's ratio of neighbours is itself geometric (two multiplications
    per term), a laplace's is constant, and a uniform adds one constant over
    an index range (a difference array), so a term costs a few flops.
    """
    n, dim = f.shape
    m = out.shape[1]
    diff = np.zeros(m + 1)
    for j in range(dim):
        s, r, a0, hj = scale[j], radius[j], y0[j], h[j]
        if code == _UNIFORM:
            diff[:] = 0.0
            c = 0.5 / s
            for i in range(n):
                lo = max(np.ceil((f[i, j] - s - a0) / hj), 0.0)
                hi = min(np.floor((f[i, j] + s - a0) / hj), m - 1.0)
                if lo <= hi:
                    diff[np.int64(lo)] += c
                    diff[np.int64(hi) + 1] -= c
            acc = 0.0
            for k in range(m):
                acc += diff[k]
                out[j, k] += acc
        elif code == _GAUSSIAN:
            norm = 1.0 / (np.sqrt(2.0 * np.pi) * s)
            inv = 0.5 / (s * s)
            q = np.exp(-2.0 * hj * hj * inv)
            for i in range(n):
                k0 = np.int64(min(max(np.floor((f[i, j] - a0) / hj + 0.5), 0.0), m - 1.0))
                d = a0 + k0 * hj - f[i, j]
                if abs(d) > r:  # the nearest abscissa is beyond the window: so is every other
                    continue
                peak = norm * np.exp(-d * d * inv)
                g, rk, dk = peak, np.exp(-(2.0 * d * hj + hj * hj) * inv), d
                for k in range(k0, m):  # rightwards: g_{k+1} = g_k r_k, r_{k+1} = r_k q
                    if dk > r:
                        break
                    out[j, k] += g
                    g *= rk
                    rk *= q
                    dk += hj
                rk = np.exp((2.0 * d * hj - hj * hj) * inv)
                g, rk, dk = peak * rk, rk * q, d - hj
                for k in range(k0 - 1, -1, -1):  # leftwards, the mirror image
                    if dk < -r:
                        break
                    out[j, k] += g
                    g *= rk
                    rk *= q
                    dk -= hj
        elif code == _LAPLACE:
            norm = 0.5 / s
            e = np.exp(-hj / s)
            for i in range(n):
                k0 = np.int64(min(max(np.ceil((f[i, j] - a0) / hj), 0.0), np.float64(m)))
                dk = a0 + k0 * hj - f[i, j]  # >= 0 up to round-off: right of f
                g = norm * np.exp(-abs(dk) / s)
                for k in range(k0, m):
                    if dk > r:
                        break
                    out[j, k] += g
                    g *= e
                    dk += hj
                dk = a0 + (k0 - 1) * hj - f[i, j]  # < 0: left of f
                g = norm * np.exp(-abs(dk) / s)
                for k in range(k0 - 1, -1, -1):
                    if dk < -r:
                        break
                    out[j, k] += g
                    g *= e
                    dk -= hj


def conditional_pdf_numpy(f, noise, x):
    """Twin of :func:`accumulate_conditional_pdf` for one block, by direct
    evaluation of the noise law's 1-D factors (no window): (N, m) sums
    ``sum_i rho_j(x[j, k] - f[i, j])``.

    ``noise`` is a NoiseLaw of ``N`` neurons; ``x`` (N, m) any abscissae."""
    z = x.T[None, :, :] - f[:, None, :]  # (n, m, N): rho's last axis is the neuron
    return noise.pdf(z).sum(axis=0).T


# -- preintegration along lines: the density of a noiseless map (mzpdf.solvers.qmc.pushforward) ------------
# Activation codes of trace_lines (mzpdf.solvers.qmc.pushforward.ACTIVATION_CODES).
_IDENTITY, _RELU, _LEAKY, _TANH, _SIGMOID, _ERF, _SOFTPLUS, _GELU, _SILU, _ELU = range(10)
_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


@jit_inline
def _activate(code, par, a):
    """(sigma(a), sigma'(a)) of activation ``code`` with parameter ``par``."""
    if code == _IDENTITY:
        return a, 1.0
    if code == _RELU:
        return (a, 1.0) if a > 0.0 else (0.0, 0.0)
    if code == _LEAKY:
        return (a, 1.0) if a > 0.0 else (par * a, par)
    if code == _TANH:
        t = np.tanh(a)
        return t, 1.0 - t * t
    if code == _SIGMOID:
        e = 1.0 / (1.0 + np.exp(-a)) if a >= 0.0 else np.exp(a) / (1.0 + np.exp(a))
        return e, e * (1.0 - e)
    if code == _ERF:
        return math.erf(a), 2.0 / np.sqrt(np.pi) * np.exp(-a * a)
    if code == _SOFTPLUS:
        e = 1.0 / (1.0 + np.exp(-a)) if a >= 0.0 else np.exp(a) / (1.0 + np.exp(a))
        return max(a, 0.0) + np.log1p(np.exp(-abs(a))), e
    if code == _GELU:
        c = 0.5 * math.erfc(-a * _SQRT_HALF)
        return a * c, c + a * _INV_SQRT_2PI * np.exp(-0.5 * a * a)
    if code == _SILU:
        e = 1.0 / (1.0 + np.exp(-a)) if a >= 0.0 else np.exp(a) / (1.0 + np.exp(a))
        return a * e, e * (1.0 + a * (1.0 - e))
    # elu
    if a > 0.0:
        return a, 1.0
    return par * np.expm1(a), par * np.exp(a)


@jit_inline
def _lower(s):
    """Phi(s), the standard normal CDF."""
    return 0.5 * math.erfc(-s * _SQRT_HALF)


@jit_inline
def _gauss_mass(a, b, la, ua, lb, ub):
    """Phi(b) - Phi(a) for a <= b from Phi and 1 - Phi at both ends, without cancellation in either tail."""
    if a >= 0.0:
        return max(ua - ub, 0.0)
    if b <= 0.0:
        return max(lb - la, 0.0)
    return max(1.0 - la - ub, 0.0)


@jit_inline
def _hermite(c0, c1, c2, c3, tau):
    return c0 + tau * (c1 + tau * (c2 + tau * c3)), c1 + tau * (2.0 * c2 + tau * 3.0 * c3)


@jit_inline
def _root(c0, c1, c2, c3, t0, t1, f0, f1, target):
    """tau in [t0, t1] with H(tau) = target for a monotone cubic piece (f0 = H(t0), f1 = H(t1)):
    Newton from the secant guess, kept inside the bracket (bisection when a step leaves it)."""
    lo, hi = t0, t1
    up = f1 > f0
    tau = t0 + (target - f0) / (f1 - f0) * (t1 - t0)
    for _ in range(40):
        v, d = _hermite(c0, c1, c2, c3, tau)
        r = v - target
        if (r < 0.0) == up:
            lo = tau
        else:
            hi = tau
        step = r / d if d != 0.0 else 0.0
        new = tau - step
        if not (lo <= new <= hi) or d == 0.0:
            new = 0.5 * (lo + hi)
        if abs(new - tau) <= 1e-15 * (1.0 + abs(tau)):
            return new
        tau = new
    return tau


@jit_inline
def _accumulate(s, f, d, K, phi_lo, phi_up, phi, wt, y0, h, m, pdf, cdf, cdfd, surv, survd, atom, mom1, mom2, r,
                full, thresholds, exceed, exact, cuts):
    """Add one line's level sets of one row (values f, derivatives d at the K knots s) to its sums
    (``exact``: d[k] is the slope of cell k, the row linear on it)."""
    for k in range(K - 1):
        sa, sb = s[k], s[k + 1]
        hh = sb - sa
        if hh <= 0.0:
            continue
        m0 = _gauss_mass(sa, sb, phi_lo[k], phi_up[k], phi_lo[k + 1], phi_up[k + 1])
        mass = wt * m0
        fa, fb = f[k], f[k + 1]
        da = d[k] * hh
        db = da if exact else d[k + 1] * hh
        if exact:  # moments: integrals of f phi and f^2 phi over the cell, in closed form for linear f
            c = (fb - fa) / hh
            i1 = (phi[k] - phi[k + 1]) - sa * m0  # integral of (s - sa) phi
            i2 = m0 + sa * phi[k] - sb * phi[k + 1] - 2.0 * sa * (phi[k] - phi[k + 1]) + sa * sa * m0
            mom1[r] += wt * (fa * m0 + c * i1)
            mom2[r] += wt * (fa * fa * m0 + 2.0 * fa * c * i1 + c * c * i2)
        else:  # 3-point Gauss-Legendre on the Hermite interpolant
            dl = fb - fa
            for q in range(3):
                tq = 0.5 + (-0.3872983346207417 if q == 0 else (0.0 if q == 1 else 0.3872983346207417))
                wq = 0.4444444444444444 if q == 1 else 0.2777777777777778
                vq = fa + tq * (da + tq * ((3.0 * dl - 2.0 * da - db) + tq * (-2.0 * dl + da + db)))
                sq_ = sa + tq * hh
                pq = wt * wq * hh * _INV_SQRT_2PI * np.exp(-0.5 * sq_ * sq_)
                mom1[r] += pq * vq
                mom2[r] += pq * vq * vq
        if fa == fb and (exact or (da == 0.0 and db == 0.0)):  # constant on the cell: an atom (a hidden ReLU unit at 0)
            atom[r] += mass
            kf = min(max(np.ceil((fa - y0) / h), 0.0), np.float64(m))
            if full:  # the read-out's CDF holds its atoms; a neuron's is that of its continuous part
                cdfd[r, np.int64(kf)] += mass
                survd[r, 0] += mass
                survd[r, np.int64(kf)] -= mass
                for i in range(thresholds.size):
                    if fa > thresholds[i]:
                        exceed[i] += mass
            continue
        delta = fb - fa
        if exact:  # linear: no rounding residue in the cubic terms
            c0, c1, c2, c3 = fa, delta, 0.0, 0.0
        else:
            c0, c1, c2, c3 = fa, da, 3.0 * delta - 2.0 * da - db, -2.0 * delta + da + db
        # cut the cell where H' = 3 c3 tau^2 + 2 c2 tau + c1 vanishes: monotone pieces
        nc = 0
        cuts[nc] = 0.0
        nc += 1
        qa, qb, qc = 3.0 * c3, 2.0 * c2, c1
        if qa != 0.0:
            disc = qb * qb - 4.0 * qa * qc
            if disc > 0.0:
                sq = np.sqrt(disc)
                r1, r2 = (-qb - sq) / (2.0 * qa), (-qb + sq) / (2.0 * qa)
                if r1 > r2:
                    r1, r2 = r2, r1
                if 0.0 < r1 < 1.0:
                    cuts[nc] = r1
                    nc += 1
                if 0.0 < r2 < 1.0 and r2 > r1:
                    cuts[nc] = r2
                    nc += 1
        elif qb != 0.0:
            r1 = -qc / qb
            if 0.0 < r1 < 1.0:
                cuts[nc] = r1
                nc += 1
        cuts[nc] = 1.0
        nc += 1
        for p in range(nc - 1):
            t0, t1 = cuts[p], cuts[p + 1]
            f0 = _hermite(c0, c1, c2, c3, t0)[0]
            f1 = _hermite(c0, c1, c2, c3, t1)[0]
            u0, u1 = sa + t0 * hh, sa + t1 * hh
            l0 = phi_lo[k] if p == 0 else _lower(u0)
            g0 = phi_up[k] if p == 0 else _lower(-u0)
            l1 = phi_lo[k + 1] if p == nc - 2 else _lower(u1)
            g1 = phi_up[k + 1] if p == nc - 2 else _lower(-u1)
            pm = wt * _gauss_mass(u0, u1, l0, g0, l1, g1)
            if f0 == f1:
                atom[r] += pm
                continue
            lo, hi = min(f0, f1), max(f0, f1)
            klo = np.int64(min(max(np.ceil((lo - y0) / h), 0.0), np.float64(m)))
            khi = np.int64(min(max(np.ceil((hi - y0) / h), 0.0), np.float64(m)))
            up = f1 > f0
            cdfd[r, khi] += pm  # abscissae at or above the piece's top: all of its mass is below them
            if full:
                survd[r, 0] += pm  # abscissae below its bottom: all of its mass is above them
                survd[r, klo] -= pm
                for i in range(thresholds.size):
                    t = thresholds[i]
                    if t < lo:
                        exceed[i] += pm
                    elif t < hi:
                        tau = (t - f0) / (f1 - f0) if exact else _root(c0, c1, c2, c3, t0, t1, f0, f1, t)
                        x = sa + tau * hh
                        lx, ux = _lower(x), _lower(-x)
                        exceed[i] += wt * (_gauss_mass(x, u1, lx, ux, l1, g1) if up else _gauss_mass(u0, x, l0, g0, lx, ux))
            for kk in range(klo, khi):
                t = y0 + kk * h
                if exact:
                    tau = (t - f0) / (f1 - f0)
                    slope = delta / hh
                else:
                    tau = _root(c0, c1, c2, c3, t0, t1, f0, f1, t)
                    slope = _hermite(c0, c1, c2, c3, tau)[1] / hh
                x = sa + tau * hh
                if full:  # the read-out: density, CDF and survival function at its abscissae
                    if slope != 0.0:
                        pdf[r, kk] += wt * _INV_SQRT_2PI * np.exp(-0.5 * x * x) / abs(slope)
                    lx, ux = _lower(x), _lower(-x)
                    below = _gauss_mass(u0, x, l0, g0, lx, ux)
                    above = _gauss_mass(x, u1, lx, ux, l1, g1)
                    cdf[r, kk] += wt * (below if up else above)
                    surv[r, kk] += wt * (above if up else below)
                else:  # a neuron: the CDF of its continuous part at the bin edges (one tail function)
                    if up:
                        cdf[r, kk] += wt * (_lower(x) - l0 if u0 < 0.0 else g0 - _lower(-x))
                    else:
                        cdf[r, kk] += wt * (_lower(-x) - g1 if u1 > 0.0 else l1 - _lower(x))


@jit
def trace_lines(start, direction, weight, noise, W, w_off, b, b_off, widths, act, par, residual, step, n_off, noisy,
                rows, readout, readout_row, s_grid, exact, y0, h, mrow, pdf, cdf, cdfd, surv, survd, atom, mom1, mom2,
                thresholds, exceed, capacity):
    """Preintegration along lines: for each point p, the network is followed
    along the line ``x(s) = start[p] + s direction`` of its input (s a
    standard normal coordinate) and, for every row (a neuron, or the
    read-out), the level sets of that 1-D function are integrated against
    the normal density of ``s`` exactly, with weight ``weight[p]``:
    ``pdf[r, k] += w sum_{roots s*} phi(s*) / |f'(s*)|`` at the abscissae
    ``y0[r] + k h[r]`` (k < mrow[r]); for the read-out row also the CDF and the survival
    function there (partial sums in ``cdf``, ``surv``, whole pieces in the
    difference arrays ``cdfd``, ``survd``, (R, m + 1)) and ``exceed[i] +=
    w P(f > thresholds[i])``. Cells on which a row is constant add their
    mass to ``atom[r]``. ``mom1[r]``, ``mom2[r]`` add the line's integrals of
    f phi and f^2 phi (exact on linear cells, 3-point Gauss-Legendre on the
    Hermite cells). A neuron's row gets the CDF of its continuous part at its
    abscissae (in ``cdf``, ``cdfd``); the read-out's its density, CDF (atoms
    included) and survival function.

    ``exact``: every activation is piecewise linear (relu, leaky_relu,
    identity). The knots start at the ends of ``s_grid`` and each layer's
    pre-activations, linear between knots, get a knot at every zero crossing
    (inserted exactly): the function is linear on every cell, its level sets
    exact. Otherwise the knots are ``s_grid`` and each row is the cubic
    Hermite interpolant of its values and derivatives (carried forward by
    the chain rule): error O(h^4) in the roots, a level set that touches a
    fold between two knots can be missed.

    Shapes: start (n, N_0), direction (N_0,), weight (n,), noise (n, sum of
    noisy widths) added after the layers with ``noisy``, at ``n_off``; W, b
    flat with offsets ``w_off``, ``b_off``; widths (L + 1,); act, par,
    residual, step (L,); rows (sum of widths[1:],) the row of each neuron
    or -1; readout (N_L + 1,) its coefficients and offset, ``readout_row``
    its row or -1; y0, h (R,); atom (R,). Returns 0, or -1 if a line needed
    more than ``capacity`` knots.
    """
    n = start.shape[0]
    L = act.size
    wmax = 0
    for i in range(L + 1):
        wmax = max(wmax, widths[i])
    G = s_grid.size
    S = np.empty(capacity)
    S2 = np.empty(capacity)
    X = np.empty((capacity, wmax))
    T = np.empty((capacity, wmax))
    A = np.empty((capacity, wmax))
    TA = np.empty((capacity, wmax))
    A2 = np.empty((capacity, wmax))
    X2 = np.empty((capacity, wmax))
    cross = np.empty(capacity)
    cross_j = np.empty(capacity, dtype=np.int64)
    lo_ = np.empty(capacity)
    up_ = np.empty(capacity)
    phi_ = np.empty(capacity)
    f = np.empty(capacity)
    df = np.empty(capacity)
    cuts = np.empty(4)
    for p in range(n):
        wt = weight[p]
        if exact:
            K = 2
            S[0], S[1] = s_grid[0], s_grid[G - 1]
        else:
            K = G
            for k in range(G):
                S[k] = s_grid[k]
        n0 = widths[0]
        for k in range(K):
            for i in range(n0):
                X[k, i] = start[p, i] + S[k] * direction[i]
                T[k, i] = direction[i]
        row0 = 0
        for layer in range(L):
            nin, nout = widths[layer], widths[layer + 1]
            wo, bo = w_off[layer], b_off[layer]
            code = act[layer]
            for k in range(K):
                for j in range(nout):
                    acc = b[bo + j]
                    tacc = 0.0
                    for i in range(nin):
                        wji = W[wo + j * nin + i]
                        acc += wji * X[k, i]
                        tacc += wji * T[k, i]
                    A[k, j] = acc
                    TA[k, j] = tacc
            if exact and (code == _RELU or code == _LEAKY):
                nc = 0
                for j in range(nout):
                    for k in range(K - 1):
                        a0, a1 = A[k, j], A[k + 1, j]
                        if (a0 < 0.0 < a1) or (a1 < 0.0 < a0):
                            if nc + K >= capacity:
                                return -1
                            cross[nc] = S[k] + (S[k + 1] - S[k]) * (-a0 / (a1 - a0))
                            cross_j[nc] = j
                            nc += 1
                if nc:
                    order = np.argsort(cross[:nc])
                    # merge the old knots and the crossings; values linear in between (exact)
                    k, c, out = 0, 0, 0
                    while k < K or c < nc:
                        if c >= nc or (k < K and S[k] <= cross[order[c]]):
                            S2[out] = S[k]
                            for j in range(nout):
                                A2[out, j] = A[k, j]
                            if residual[layer]:
                                for i in range(nin):
                                    X2[out, i] = X[k, i]
                            k += 1
                        else:
                            sc = cross[order[c]]
                            lam = (sc - S[k - 1]) / (S[k] - S[k - 1])
                            S2[out] = sc
                            for j in range(nout):
                                A2[out, j] = A[k - 1, j] + lam * (A[k, j] - A[k - 1, j])
                            A2[out, cross_j[order[c]]] = 0.0  # the crossing neuron is exactly at its kink
                            if residual[layer]:
                                for i in range(nin):
                                    X2[out, i] = X[k - 1, i] + lam * (X[k, i] - X[k - 1, i])
                            c += 1
                        out += 1
                    K = out
                    for k in range(K):
                        S[k] = S2[k]
                        for j in range(nout):
                            A[k, j] = A2[k, j]
                        if residual[layer]:
                            for i in range(nin):
                                X[k, i] = X2[k, i]
            for k in range(K):
                for j in range(nout):
                    v, dv = _activate(code, par[layer], A[k, j])
                    if residual[layer]:
                        v = X[k, j] + step[layer] * v
                        dv = T[k, j] + step[layer] * dv * TA[k, j]
                    else:
                        dv = dv * TA[k, j]
                    if noisy[layer]:
                        v += noise[p, n_off[layer] + j]
                    X[k, j] = v
                    T[k, j] = dv
            if exact:  # the slope of each cell, the same at both of its ends
                for k in range(K - 1):
                    for j in range(nout):
                        T[k, j] = (X[k + 1, j] - X[k, j]) / (S[k + 1] - S[k]) if S[k + 1] > S[k] else 0.0
            for k in range(K):
                lo_[k] = _lower(S[k])
                up_[k] = _lower(-S[k])
                phi_[k] = _INV_SQRT_2PI * np.exp(-0.5 * S[k] * S[k])
            for j in range(nout):
                r = rows[row0 + j]
                if r < 0:
                    continue
                for k in range(K):
                    f[k] = X[k, j]
                    df[k] = T[k, j]
                _accumulate(S, f, df, K, lo_, up_, phi_, wt, y0[r], h[r], mrow[r], pdf, cdf, cdfd, surv, survd, atom, mom1,
                            mom2, r,
                            False, thresholds, exceed, exact, cuts)
            row0 += nout
        if readout_row >= 0:
            nl = widths[L]
            for k in range(K):
                v = readout[nl]
                dv = 0.0
                for j in range(nl):
                    v += readout[j] * X[k, j]
                    dv += readout[j] * T[k, j]
                f[k] = v
                df[k] = dv
            r = readout_row
            _accumulate(S, f, df, K, lo_, up_, phi_, wt, y0[r], h[r], mrow[r], pdf, cdf, cdfd, surv, survd, atom, mom1,
                            mom2, r, True,
                        thresholds, exceed, exact, cuts)
    return 0



def trace_line_numpy(prefix, depth: int, start, direction, s_max: float, kinked):
    """Twin of the exact mode of :func:`trace_lines` for one line: the knots
    of every layer along ``x(s) = start + s direction``, ``|s| <= s_max``,
    found by evaluating the layers themselves (no interpolation):
    ``prefix(x, n)`` gives layer n's pre-activations (n_points, N_n) of
    inputs x, ``kinked[n]`` whether its activation has a kink at 0. Returns
    the knots (K,)."""
    knots = np.array([-s_max, s_max])
    for n in range(depth):
        if not kinked[n]:
            continue
        a = prefix(start + knots[:, None] * direction, n)
        new = [knots]
        for j in range(a.shape[1]):
            sign = np.sign(a[:, j])
            for k in np.flatnonzero(sign[:-1] * sign[1:] < 0):
                new.append([knots[k] + (knots[k + 1] - knots[k]) * a[k, j] / (a[k, j] - a[k + 1, j])])
        knots = np.unique(np.concatenate(new))
    return knots
