"""SciPy special functions, imported on first call.

Reading and validating a case (and refusing a bad one) then does not pay for
SciPy's import, which is most of a cold ``mzpdf`` start."""
from __future__ import annotations

__all__ = ["erf", "expit", "ndtr", "ndtri"]


def erf(x):
    from scipy.special import erf as f

    return f(x)


def expit(x):
    """The logistic sigmoid 1 / (1 + exp(-x))."""
    from scipy.special import expit as f

    return f(x)


def ndtr(x):
    """Standard normal CDF."""
    from scipy.special import ndtr as f

    return f(x)


def ndtri(p):
    """Standard normal quantile."""
    from scipy.special import ndtri as f

    return f(p)
