"""``method = "montecarlo"`` and the Monte Carlo reference: seeded, chunked
sampling with confidence intervals (``engine``, ``_kernels``).

This package imports nothing: :mod:`mzpdf.solvers` imports the ``plugin``,
which registers the method."""
