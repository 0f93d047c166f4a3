"""The one table of diagnostics: every name a run stores under
``/diagnostics``, with its one meaning.

:data:`DIAGNOSTICS` holds the keys every method with a discretization stores
(``Solution.diagnostics``); :data:`METHOD_DIAGNOSTICS` the names a method or
the run adds, each saying who stores it. The result file describes each
dataset from here (:func:`describe`).
"""
from __future__ import annotations

__all__ = ["DIAGNOSTICS", "METHOD_DIAGNOSTICS", "describe"]

DIAGNOSTICS = {
    "mass": "(L+1,) probability mass of each layer's discretized law before any normalization (sampling methods: "
            "the share of samples inside the stored abscissae)",
    "lost_mass": "(L+1,) mass the discretization of each layer cut off (tails beyond the box, noise landing "
                 "outside it); 0 where nothing is cut (sampling methods: the share of samples outside the stored "
                 "abscissae, which biases no estimate)",
    "duality_gap": "(L,) how far layer n's transfer operator N_n and Koopman operator K_n are from adjoint on one "
                   "test function u: |<u, N_n p_n> - <K_n u, p_n>| relative to the pairing's size (grid: a random "
                   "positive u, relative to |<u, N_n p_n>|; tt and sparse: u = q_{n+1}, the pulled-back observable, "
                   "relative to |E g| + sd(g), NaN without an [observable]; not stored by montecarlo and qmc)",
    "time_per_layer_s": "(L,) wall time of each layer's forward step (a layer restored from a checkpoint keeps the "
                        "time of the run that computed it; inside a run of noiseless layers 0, the run's step "
                        "counted at its last layer)",
}

METHOD_DIAGNOSTICS = {
    # the run
    "warnings": "numerical-health warnings of the run, one per line (category: message)",
    "backward_duality_gap": "relative gap between E[g(X_L)] computed forward and backward",
    "montecarlo_mean_stderr": "standard error of the [montecarlo] reference's E[g(X_L)]",
    "no_density": "(L+1,) 1 for a layer without a density (a point input; inside a run of noiseless layers; "
                  "qmc: right after a noiseless layer), whose marginals are NaN",
    # grid
    "quadrature_mass_error": "(L,) mass[n+1] - (mass[n] - lost_mass[n+1]): quadrature error of the transfer "
                             "(method grid)",
    "kernel": "(L,) transfer-sum algorithm of each layer: dense, windowed, cuda or none (method grid)",
    "backend": "the backend the grid solve ran on (method grid)",
    # tt
    "tt_max_rank": "(L+1,) largest TT rank of each layer's pre-activation density (method tt)",
    "tt_ranks": "(L+1, max width + 1) TT ranks r_0..r_N of each layer, padded with 0 (method tt)",
    "cross_error": "(L+1,) a-posteriori relative L2 error of the cross approximation on 512 points drawn from the "
                   "moment-matched gaussian (method tt)",
    "rounding_error": "(L+1,) relative Frobenius error of each layer's final TT rounding (method tt)",
    "evaluations": "(L+1,) density evaluations of each layer's cross approximation (method tt)",
    "sweeps": "(L+1,) half-sweeps of each layer's cross approximation (method tt)",
    "backward_tt_max_rank": "(L+1,) largest TT rank of each pulled-back observable q_n (method tt)",
    "backward_cross_error": "(L+1,) a-posteriori relative error of the cross approximation of each q_n (method tt)",
    "backward_evaluations": "(L+1,) evaluations of each q_n's cross approximation (method tt)",
    "backward_time_s": "wall time of the backward solve in seconds (method tt)",
    # sparse
    "points": "(L+1,) points of each layer's Leja sparse grid (0 for a lattice or the input; method sparse)",
    "quadrature_points": "(L+1,) atoms of the rule into each layer (method sparse)",
    "interpolation_error": "(L+1,) L1 effect on the next layer's marginals of interpolating this layer's law "
                           "(method sparse)",
    "transfer_error": "(L+1,) L1 estimate of the error of each layer's transfer quadrature (method sparse)",
    "joint_error": "(L+1,) E_p |log p~ - log p| of each layer's interpolated law (method sparse)",
    "error_estimate": "(L+1,) a-posteriori bound of each layer's error in solver.tol's meaning: the largest L1 "
                      "distance of a neuron's marginal to the true one, and of each mean's and standard deviation's "
                      "error relative to that standard deviation (grid: companion solve plus cut mass; sparse: "
                      "interpolation effects carried forward plus the layer's transfer error, L1 of marginals only; "
                      "sampling methods: from their replicates, at the confidence of its attribute)",
    "nodes": "nodes per neuron of the solve kept (method grid; nodes = 'auto' refines them to solver.tol)",
    "refinements": "levels of nodes = 'auto' beyond the first (method grid)",
    "atom_mass": "(L+1, max width) mass of each neuron's atom (a ReLU's 0 on a noiseless layer; method qmc)",
    # sampling
    "samples": "number of sample paths (points per replicate for qmc)",
    "replicates": "independent scramblings behind qmc's standard errors (method qmc)",
    "q0_stderr": "Monte Carlo standard error of q0 (method montecarlo)",
    "mean_stderr": "standard error of E[g(X_L)] (sampling methods)",
}


def describe(name: str) -> str:
    """The meaning of diagnostic ``name`` (a generic line for a name not in the table)."""
    return DIAGNOSTICS.get(name) or METHOD_DIAGNOSTICS.get(name) or f"solver diagnostic {name!r}"
