"""``method = "qmc"``: randomized quasi-Monte Carlo with the conditional
density estimator (``plugin``, ``options``, ``engine``, ``_kernels``).

This package imports nothing: :mod:`mzpdf.solvers` imports the ``plugin``,
which registers the method."""
