"""``method = "sparse"``: log-densities on Leja sparse grids (SPEC 3.2),
:class:`mzpdf.solvers.sparse.engine.SparseSolver`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...laws import AtomLaw, FunctionLaw, MomentLaw
from ...options import is_auto
from ...results import BackwardSummary, LayerSummary, atom_summary
from ..base import JOINT_POINTS, Capabilities, Solution, Solver, noiseless_problem
from ..registry import SOLVERS
from .density import LATTICE_MAX_NODES
from .engine import TRAPEZOID_MAX_DIM, PushForward, SparseSolver, unsupported
from .mz import reduce_sparse
from .options import SparseGridOptions

MASS_TOLERANCE = 0.1  # |mass - 1| of a layer's interpolant before its tilt that fails the run's accuracy checks


@SOLVERS.register("sparse")
class Sparse(Solver):
    """Each layer's log-density, less the gaussian with its moments, on a
    Leja sparse grid in standardized coordinates (a layer of up to 3
    neurons with Laplace noise: its mixture on a lattice, summed exactly):
    gaussian or Laplace noise (noiseless layers composed), 2-10 neurons."""

    name = "sparse"
    options_class = SparseGridOptions
    capabilities = Capabilities(noise_kinds=("gaussian", "laplace"), noiseless=True,
                                projections=("chorin",))

    @classmethod
    def _problem(cls, case, keys):
        found = unsupported(case.network, case.input)
        if found is not None:
            n, rule, value = found
            return ("input.kind" if n is None else keys.noise(n)), f"{rule} with solver.method = 'sparse'", value
        problem = noiseless_problem(cls.name, case, keys)
        if problem is None and case.projection is not None:
            quadrature = case.solver.quadrature if isinstance(case.solver, SparseGridOptions) else "auto"
            for n, layer in enumerate(case.network):
                if layer.noise.kind == "laplace" and layer.n_out <= TRAPEZOID_MAX_DIM \
                        and (is_auto(quadrature) or quadrature == "trapezoid"):
                    return ("projection", "is not taken by solver.method = 'sparse' on a layer of up to "
                            f"{TRAPEZOID_MAX_DIM} neurons with Laplace noise ({keys.noise(n)}): the method keeps "
                            "such a layer as its mixture on a lattice, not on the Leja grid its Mori-Zwanzig "
                            "equations are written on (use solver.method = 'grid')", case.projection.kind)
        if problem is None and case.network.has_noiseless and case.observable is not None:
            return ("observable", "is not computed by solver.method = 'sparse' on a network with noiseless layers",
                    case.observable.kind)
        return problem

    @classmethod
    def estimate_bytes(cls, case) -> int:
        """The atoms of one transition (Gauss-Hermite: up to 48^4 pruned, Sobol:
        2^sobol_points) with a few arrays of that length per neuron; a
        Laplace lattice's largest size where the net has one."""
        opt = case.solver
        widest = max(case.network.state_widths)
        atoms = 2 ** opt.sobol_points if widest > 4 else min(48, opt.quad_points or 48) ** widest // 3
        if any(layer.noise.kind == "laplace" and layer.n_out <= TRAPEZOID_MAX_DIM for layer in case.network):
            # a Laplace lattice: up to LATTICE_MAX_NODES nodes, ~6 arrays of them, and its atoms' deposits
            return 64 * 2**20 + 8 * LATTICE_MAX_NODES * 6 + 8 * (LATTICE_MAX_NODES // 3) * 16
        return 64 * 2**20 + 8 * atoms * (widest + 8) * 4

    def _accuracy_problems(self, solution):
        """A layer whose ``error_estimate`` (module doc of
        :mod:`mzpdf.solvers.sparse.engine`) exceeds ``solver.tol``, or a layer before
        the last whose interpolant's mass before its tilt is off 1 by more
        than ``MASS_TOLERANCE`` (the grid is too coarse for the layer). The
        last layer's interpolant gives no stored number (its moments,
        marginals and joint are sums over its mixture), so its mass is only
        reported (``/diagnostics/mass``)."""
        d = solution.diagnostics
        problems = []
        mass = np.asarray(d.get("mass", ()), dtype=np.float64)
        for k in range(mass.size - 1):
            if not abs(mass[k] - 1.0) <= MASS_TOLERANCE:
                problems.append(f"layer {k}: the interpolated density's mass {mass[k]:.4g} before its tilt is off 1 "
                                f"by more than {MASS_TOLERANCE:g} (raise solver.level; a Laplace lattice's mass is its "
                                "trapezoid sum: lower solver.trapezoid_step)")
        est = np.asarray(d.get("error_estimate", ()), dtype=np.float64)
        tol = self.options.tol
        for k in range(est.size):
            if not est[k] <= tol:
                problems.append(f"layer {k}: error estimate {est[k]:.3g} (L1 of its marginals) is above solver.tol = "
                                f"{tol:g} (raise solver.level or lower solver.adaptive_tol)")
        return problems

    def _march(self, report):
        return SparseSolver(self.options).march(self.case.network, self.case.input)

    def _summarize(self, native) -> list:
        return summarize_sparse(native, self.options)

    def _solution(self, forward, backward, diagnostics, native, native_backward, resumed_from):
        return SparseSolution(self.name, forward, backward, diagnostics, native, native_backward, resumed_from)

    def _reduce(self, solution, report):
        return reduce_sparse(solution.native, self.case.projection, SparseSolver(self.options),
                             [layer.box for layer in solution.forward], progress=report)

    def _pullback(self, native, report):
        points = self._points()
        back = SparseSolver(self.options).pullback(native, self.case.observable, points if len(points) else None)
        summary = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean)
        return summary, back, {"duality_gap": back.duality_gap,
                               "backward_duality_gap": np.float64(back.duality_gap.max())}


@dataclass(frozen=True)
class SparseSolution(Solution):
    """sparse's result: laws from the layers' interpolants (or lattices)."""

    def _law(self, n):
        native = self.native
        law = native.laws[n]
        if law is None:
            return AtomLaw(native.input_law.mean())
        if isinstance(law, PushForward):
            return MomentLaw(self.forward[n], f"layer {n} is the output of the noiseless layer {n - 1}: a map "
                             "of the last layer with a density, so it has no density of its own (its mean and "
                             f"covariance are quadratures of that map; give layer {n - 1} noise for a density)")
        mass, mean, cov = law.moments()
        return FunctionLaw(mass, mean, cov, lambda i, x: law.marginal([i], x[:, None]), law.joint, "sparse")


def summarize_sparse(solution, options) -> list[LayerSummary]:
    """Moments and marginals of every layer of a sparse-grid solution
    (``options``: the SparseGridOptions). The input layer comes from the input
    law itself; a layer's marginals are on ``marginal_points`` equispaced
    abscissae over its mean +- 6 standard deviations (the atoms' span for a
    layer without a density, with NaN marginals)."""
    m = options.marginal_points
    out = []
    for n, law in enumerate(solution.laws):
        if law is None:
            out.append(atom_summary(solution.input_law.mean(), m))
            continue
        if isinstance(law, PushForward):
            xs = np.stack([np.linspace(lo, hi, m) for lo, hi in law.support])
            out.append(LayerSummary(law.mean, law.cov, 1.0, xs, np.full(xs.shape, np.nan), law.support))
            continue
        if n == 0:
            box = solution.input_law.box(1e-12)
        else:
            sd = np.sqrt(np.diag(law.cov))
            box = np.column_stack([law.mean - 6.0 * sd, law.mean + 6.0 * sd])
        mass, mean, cov = law.moments()
        xs = np.stack([np.linspace(lo, hi, m) for lo, hi in box])
        pdf = np.stack([law.marginal([k], xs[k][:, None]) for k in range(law.dim)])
        joint = None
        if law.dim >= 2:
            x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in box[:2])
            joint = (x, y, law.joint(0, 1, x, y))
        out.append(LayerSummary(mean, cov, float(mass), xs, pdf, box, joint))
    return out
