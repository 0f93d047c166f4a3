"""``method = "tt"``: densities in tensor-train format (SPEC 3.3).

``plugin`` (the Solver), ``options``, ``engine`` (:class:`TTSolver`),
``laws`` (the layers' laws), ``quadrature`` (widening and residual layers),
``backward`` (the pull-back) and ``mz`` (Mori-Zwanzig kernels on trains).

This package imports nothing: :mod:`mzpdf.solvers` imports the ``plugin``,
which registers the method."""
