"""``method = "sparse"``: log-densities on Smolyak sparse grids (SPEC 3.2),
:class:`mzpdf.sparse.solver.SparseSolver`."""
from __future__ import annotations

import numpy as np

from ..errors import CaseError
from ..results import BackwardSummary, LayerSummary
from ..options import SparseGridOptions
from .base import SOLVERS, AtomLaw, Capabilities, FunctionLaw, Solver
from .grid import JOINT_POINTS, atom_summary


MASS_TOLERANCE = 1e-2  # |mass - 1| of a layer before normalization that fails the run's accuracy checks


@SOLVERS.register("sparse")
class Sparse(Solver):
    """Each layer's log-density in whitened coordinates on a Clenshaw-Curtis
    Smolyak grid: gaussian noise, 4-10 neurons."""

    name = "sparse"
    options_class = SparseGridOptions
    capabilities = Capabilities(noise_kinds=("gaussian",))

    @classmethod
    def _problem(cls, case, keys):
        from ..sparse.solver import check_case

        try:
            check_case(case.network, case.input, [keys.noise(n)[: -len(".noise.kind")]
                                                  for n in range(case.network.depth)])
        except CaseError as err:
            return err.key, err.rule, err.value
        return None

    @classmethod
    def estimate_bytes(cls, case) -> int:
        return 0  # a few thousand nodes per layer: far below the interpreter's share

    def _accuracy_problems(self, solution):
        """A layer whose mass before normalization is off 1 by more than
        ``MASS_TOLERANCE``: the log-density's interpolant or the transfer rule
        is too coarse there (on 3-neuron tanh layers at level 5 and on the
        6-neuron example at level 3 the masses stay within 4e-3 of 1)."""
        mass = np.asarray(solution.diagnostics.get("mass", ()), dtype=np.float64)
        bad = [k for k in range(mass.size) if not abs(mass[k] - 1.0) <= MASS_TOLERANCE]
        return [f"layer {k}: mass {mass[k]:.4g} before normalization is off 1 by more than {MASS_TOLERANCE:g} "
                f"(raise solver.level or solver.quad_level)" for k in bad]

    def _propagate(self, report, states, on_layer):
        from ..sparse.solver import SparseSolver

        self._solver = SparseSolver(self.options)
        return self._solver.propagate(self.case.network, self.case.input, progress=report, resume=states,
                                      on_layer=on_layer)

    def _summarize(self, native) -> list:
        return summarize_sparse(native, self.options)

    def _law(self, solution, n):
        native = solution.native
        law0 = native.input_law
        if n == 0:
            if law0.is_atomic:
                return AtomLaw(law0.mean())

            def joint0(i, j, x, y):
                X, Y = np.meshgrid(x, y, indexing="ij")
                return native.laws[0].marginal([i, j], np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)

            return FunctionLaw(1.0, law0.mean(), law0.cov(), law0.marginal_pdf, joint0, "sparse")
        law = native.laws[n]
        mass, mean, cov = law.moments()

        def joint(i, j, x, y):
            X, Y = np.meshgrid(x, y, indexing="ij")
            return law.marginal([i, j], np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)

        return FunctionLaw(mass, mean, cov, lambda i, x: law.marginal([i], x[:, None]), joint, "sparse")

    def _pullback(self, native, report):
        points = self._points()
        back = self._solver.pullback(native, self.case.observable, points if len(points) else None)
        summary = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean)
        return summary, back, {"duality_gap": back.duality_gap,
                               "backward_duality_gap": np.float64(back.duality_gap.max())}


def summarize_sparse(solution, options) -> list[LayerSummary]:
    """Moments and marginals of every layer of a sparse-grid solution
    (``options``: the SparseGridOptions). The input layer comes from the input
    law itself; a layer's marginals are on ``marginal_points`` equispaced
    abscissae over its grid's box (``box`` standard deviations about the mean)."""
    law0 = solution.input_law
    m = options.marginal_points
    if law0.is_atomic:
        out = [atom_summary(law0.mean(), m)]
    else:
        box = law0.box(1e-12)
        xs = np.stack([np.linspace(lo, hi, m) for lo, hi in box])
        out = [LayerSummary(law0.mean(), law0.cov(), 1.0, xs, np.stack([law0.marginal_pdf(k, xs[k])
                                                                       for k in range(law0.dim)]), box,
                            _sparse_joint(solution.laws[0], box))]
    for law in solution.laws[1:]:
        mass, mean, cov = law.moments()
        sd = np.sqrt(np.diag(law.chol @ law.chol.T))
        box = np.column_stack([law.mean - options.box * sd, law.mean + options.box * sd])
        xs = np.stack([np.linspace(lo, hi, m) for lo, hi in box])
        pdf = np.stack([law.marginal([k], xs[k][:, None]) for k in range(law.dim)])
        out.append(LayerSummary(mean, cov, float(mass), xs, pdf, box, _sparse_joint(law, box)))
    return out


def _sparse_joint(law, box):
    """The 2-D marginal of neurons 0 and 1 of a sparse-grid log-density (None below width 2)."""
    if law.dim < 2:
        return None
    x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in box[:2])
    X, Y = np.meshgrid(x, y, indexing="ij")
    pdf = law.marginal([0, 1], np.column_stack([X.ravel(), Y.ravel()]))
    return x, y, pdf.reshape(X.shape)
