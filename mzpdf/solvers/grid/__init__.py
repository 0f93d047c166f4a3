"""``method = "grid"``: densities on tensor grids (SPEC 3.1).

``plugin`` (the :class:`~mzpdf.solvers.base.Solver`), ``options``,
``engine`` (:class:`GridSolver`: forward and backward solves), ``transfer``
(the layer operators: transfer and Koopman, an adjoint pair on one
GridTransition), ``_kernels`` (Numba) with its NumPy twin ``_reference``,
``cuda`` and ``mz`` (the Mori-Zwanzig kernels on tensor grids).

This package imports nothing: :mod:`mzpdf.solvers` imports the ``plugin``,
which registers the method."""
