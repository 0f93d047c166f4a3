"""``method = "sparse"``: densities as mixtures on Leja sparse grids.

``plugin`` (the Solver), ``options``, ``engine`` (:class:`SparseSolver`),
``rules`` (positive n-D atom rules), ``transfer`` (the mixture transfer),
``density`` (the layers' laws), ``_kernels`` (Numba) with its NumPy twin
``_reference`` and ``mz`` (Mori-Zwanzig kernels on sparse grids).

This package imports nothing: :mod:`mzpdf.solvers` imports the ``plugin``,
which registers the method."""
