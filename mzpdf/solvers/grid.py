"""``method = "grid"``: tensor grids (SPEC 3.1), :class:`mzpdf.operators.solve.GridSolver`."""
from __future__ import annotations

import numpy as np

from ..memory import grid_bytes, numba_threads
from ..results import BackwardSummary, LayerSummary
from ..options import GridOptions
from .base import SOLVERS, AtomLaw, Capabilities, FunctionLaw, Solver

JOINT_POINTS = 81  # per axis, of the stored 2-D marginal of neurons 0 and 1


@SOLVERS.register("grid")
class Grid(Solver):
    """Densities on tensor grids of ``solver.nodes`` per neuron: exact
    mass bookkeeping, spectral accuracy, any noise law; up to 3-4 neurons."""

    name = "grid"
    options_class = GridOptions
    capabilities = Capabilities(max_width=4, projections=("chorin", "mori"), backends=("cpu", "cuda"))

    @classmethod
    def estimate_bytes(cls, case) -> int:
        projection, columns = case.projection, 0
        if projection is not None:
            keep = len(projection.keep)
            reduced = case.solver.nodes ** keep if projection.kind == "chorin" else 1 + keep * (keep + 3) // 2
            columns = (len(case.network.widths) - 1) * reduced + 1
        return grid_bytes(case.network.widths, case.solver.nodes, numba_threads(), columns)

    @classmethod
    def memory_key(cls, case):
        return ("solver.nodes", f"{case.solver.nodes} nodes per neuron on layers of up to "
                f"{max(case.network.widths)} neurons; lower solver.nodes, or use solver.method = 'tt' for wide "
                "layers", case.solver.nodes)

    def _propagate(self, report, states, on_layer):
        from ..operators.solve import GridSolver

        self._solver = GridSolver(self.options, backend=self.case.backend)
        return self._solver.propagate(self.case.network, self.case.input, progress=report, resume=states,
                                      on_layer=on_layer)

    def _summarize(self, native) -> list:
        return summarize_forward(native, self.options.marginal_points)

    def _law(self, solution, n):
        density = solution.native.densities[n]
        if density is None:
            return AtomLaw(solution.native.input_law.mean())
        mass, mean, cov = density.moments()
        grid = density.grid

        def joint(i, j, x, y):
            nodal = grid.marginal(density.values, (min(i, j), max(i, j)))
            if i > j:
                nodal = nodal.T
            return grid.rules[i].interpolation_matrix(x) @ nodal @ grid.rules[j].interpolation_matrix(y).T

        return FunctionLaw(mass, mean, cov, density.marginal, joint, "grid")

    def _pullback(self, native, report):
        points = self._points()
        back = self._solver.pullback(native, self.case.observable, points if len(points) else None)
        summary = BackwardSummary(points, back.q0 if back.q0 is not None else np.zeros(0), back.mean)
        gap = abs(back.mean - back.mean_forward) / max(abs(back.mean_forward), 1e-300)
        return summary, back, {"backward_duality_gap": np.float64(gap)}

    def _reduce(self, solution, report):
        from ..mz import reduce_network

        return reduce_network(solution.native, self.case.projection, solution.native_backward, progress=report)


def summarize_forward(solution, marginal_points: int = 201) -> list[LayerSummary]:
    """Moments and marginals of every layer of a grid solution; marginals are
    interpolated onto ``marginal_points`` equispaced abscissae per neuron spanning
    the layer's box."""
    out = []
    for density in solution.densities:
        if density is None:  # an atom: the point input
            out.append(atom_summary(solution.input_law.mean(), marginal_points))
            continue
        grid = density.grid
        mass, mean, cov = density.moments()
        xs = np.stack([np.linspace(lo, hi, marginal_points) for lo, hi in grid.box])
        pdf = np.stack([density.marginal(k, xs[k]) for k in range(grid.ndim)])
        joint = None
        if grid.ndim >= 2:
            x, y = (np.linspace(lo, hi, JOINT_POINTS) for lo, hi in grid.box[:2])
            nodal = grid.marginal(density.values, (0, 1))
            joint = (x, y, grid.rules[0].interpolation_matrix(x) @ nodal @ grid.rules[1].interpolation_matrix(y).T)
        out.append(LayerSummary(mean, cov, mass, xs, pdf, grid.box, joint))
    return out


def atom_summary(x0: np.ndarray, marginal_points: int) -> LayerSummary:
    """The summary of a layer that is the point ``x0``."""
    xs = np.repeat(x0[:, None], marginal_points, axis=1)
    return LayerSummary(x0, np.zeros((x0.size, x0.size)), 1.0, xs, np.full(xs.shape, np.inf),
                        np.column_stack([x0, x0]))
