"""Inputs known exactly, folded into the first layer.

A gaussian input with a singular covariance (some ``std`` 0, or a singular
``cov``) is ``x = m + A z`` with ``z ~ N(0, I_r)``, ``r`` its rank and ``A``
its :attr:`~mzpdf.network.inputs.GaussianInput.factor`. A dense first layer
``sigma(W x + b)`` is then ``sigma((W A) z + (W m + b))``: the network the
methods see starts from ``z`` and its laws are those of the user's network
from layer 1 on (the same widths), while the input law is reported in the
user's coordinates (:class:`Fold`). A rank-0 input (every std 0) is the
point ``m``: the network is kept as it is and the input becomes a
:class:`~mzpdf.network.inputs.PointInput`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import SingularDensityError
from ..laws import FunctionLaw
from .inputs import PSD_RTOL, GaussianInput, InputLaw, PointInput
from .network import Network

__all__ = ["Fold", "POINT_RTOL", "fold_input"]

# A point lies on the input's support when x - m - A A^+ (x - m) is within POINT_RTOL of the scale of the
# point, the mean and the largest std: round-off of the projection is ~1e-16 of that scale, and a point off
# by 1e-9 of it is taken as given (its known coordinates equal to the mean's to 9 digits).
POINT_RTOL = 1e-9


@dataclass(frozen=True)
class Fold:
    """A gaussian input with inputs known exactly, folded into the first layer.

    Attributes
    ----------
    network : Network
        The user's network (input width ``N_0``).
    input : GaussianInput
        The user's (singular) input law.
    folded_network : Network
        What the methods see: the first layer's weights ``W A`` and bias
        ``W m + b`` (the network itself for rank 0).
    folded_input : InputLaw
        ``N(0, I_r)`` (a :class:`PointInput` at ``m`` for rank 0).
    points, reduced_points : (P, N_0) and (P, r) arrays, or None
        ``[observable].points`` in the user's coordinates and as ``z``
        (:meth:`with_points`).
    """

    network: Network
    input: GaussianInput
    folded_network: Network
    folded_input: InputLaw
    points: np.ndarray | None = None
    reduced_points: np.ndarray | None = None

    @property
    def rank(self) -> int:
        return self.input.rank

    @property
    def mean(self) -> np.ndarray:
        return self.input.mean()

    @property
    def factor(self) -> np.ndarray:
        """``A`` (N_0, r): ``x = mean + A z``."""
        return self.input.factor

    def describe(self) -> str:
        """One sentence saying what was folded (for ``method_reason``)."""
        n, known = self.input.dim, self.input.known.tolist()
        if self.rank == 0:
            return f"every input is known exactly (std 0): the input is the point {self.mean.tolist()}"
        what = f"inputs {known} are known exactly" if known else f"the input covariance has rank {self.rank} < {n}"
        return (f"{what}, folded into the first layer: the methods see {self.rank} uncertain "
                f"input{'s' if self.rank > 1 else ''}")

    def to_input(self, z: np.ndarray) -> np.ndarray:
        """The user's inputs ``m + A z`` of points ``z`` (P, r)."""
        return self.mean + np.atleast_2d(z) @ self.factor.T

    def to_reduced(self, x: np.ndarray) -> np.ndarray:
        """The ``z`` (P, r) of inputs ``x`` (P, N_0) on the input's support
        (``x - m`` in the range of ``A``).

        Raises
        ------
        ValueError
            For a point off the support, naming its row and the inputs that
            differ (the network conditioned on it is not the folded one).
        """
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if self.rank == 0:  # a point input: the network is not folded, the points are kept
            return x
        A, m = self.factor, self.mean
        z = np.linalg.lstsq(A, (x - m).T, rcond=None)[0].T
        off = x - m - z @ A.T
        scale = np.maximum(np.abs(x).max(axis=1), np.abs(m).max()) + np.sqrt(np.diag(self.input.cov_).max())
        for p in range(x.shape[0]):
            if np.abs(off[p]).max() > POINT_RTOL * scale[p]:
                worst = np.flatnonzero(np.abs(off[p]) > POINT_RTOL * scale[p])
                raise ValueError(f"point {p} {x[p].tolist()} is off the input law's support (x - mean must lie in "
                                 f"the range of the covariance; inputs known exactly must equal the mean): it "
                                 f"misses it by {off[p][worst].tolist()} at inputs {worst.tolist()}")
        return z

    def with_points(self, points: np.ndarray | None) -> "Fold":
        """This fold with ``[observable].points`` (user coordinates) and
        their ``z`` (ValueError for a point off the support)."""
        if points is None:
            return replace(self, points=None, reduced_points=None)
        points = np.asarray(points, dtype=np.float64)
        return replace(self, points=points, reduced_points=self.to_reduced(points))

    def input_abscissae(self, m: int, half_width: float) -> np.ndarray:
        """``(N_0, m)`` abscissae of the input's marginals: ``m_i + s_i t`` for
        ``t`` on ``m`` equispaced points of ``[-half_width, half_width]``,
        ``s_i`` input ``i``'s std (``m_i`` repeated for an input known exactly)."""
        t = np.linspace(-half_width, half_width, m)
        return self.mean[:, None] + np.sqrt(np.diag(self.input.cov_))[:, None] * t[None, :]

    def input_marginals(self, abscissae: np.ndarray) -> np.ndarray:
        """``(N_0, m)``: each input's marginal density on its row of
        ``abscissae``, ``inf`` for an input known exactly (a point)."""
        out = np.full(abscissae.shape, np.inf)
        for i in np.flatnonzero(np.diag(self.input.cov_) > 0):
            out[i] = self.input.marginal_pdf(i, abscissae[i])
        return out

    def law(self) -> FunctionLaw:
        """The user's input law as a :class:`~mzpdf.laws.Law`: marginals of
        the uncertain inputs, and 2-D marginals where that pair's covariance
        is regular; a known input, or a pair on a line, raises
        :class:`~mzpdf.errors.SingularDensityError`."""
        law, m, c = self.input, self.mean, self.input.cov()

        def joint(i, j, x, y):
            sub = c[np.ix_([i, j], [i, j])]
            det = sub[0, 0] * sub[1, 1] - sub[0, 1] ** 2
            if not det > PSD_RTOL * max(sub[0, 0], sub[1, 1]) ** 2:
                raise SingularDensityError(f"inputs {i} and {j} have a singular joint law (covariance "
                                           f"{sub.tolist()}): no 2-D density")
            d = np.stack(np.meshgrid(x - m[i], y - m[j], indexing="ij"), axis=-1)
            q = np.einsum("...a,ab,...b->...", d, np.linalg.inv(sub), d)
            return np.exp(-0.5 * q) / (2.0 * np.pi * np.sqrt(det))

        return FunctionLaw(1.0, m, c, law.marginal_pdf, joint, what="the input law")


def fold_input(network: Network, input_law: InputLaw) -> Fold | None:
    """The :class:`Fold` of ``input_law`` into ``network``'s first layer, or
    None when there is nothing to fold (not a gaussian, or a regular one).

    Raises
    ------
    ValueError
        When the first layer is not dense (``x + h sigma(W x + b)`` and the
        other kinds cannot be folded by changing ``W`` and ``b``), or the
        widths disagree.
    """
    if not isinstance(input_law, GaussianInput) or not input_law.is_singular:
        return None
    if input_law.dim != network.widths[0]:
        raise ValueError(f"the input has dimension {input_law.dim}, the network {network.widths[0]} inputs")
    if input_law.rank == 0:
        return Fold(network, input_law, network, PointInput(input_law.mean()))
    first = network[0]
    if first.kind != "dense":
        raise ValueError(f"marks inputs {input_law.known.tolist() or '(a singular covariance)'} as known exactly, "
                         f"which folds into a dense first layer only (sigma(W x + b) -> sigma((W A) z + W m + b)); "
                         f"the first layer is of kind {first.kind!r}: give every input a std > 0, or put a "
                         "dense layer first")
    A, m = input_law.factor, input_law.mean()
    folded = replace(first, weights=first.weights @ A, bias=first.weights @ m + first.bias)
    r = input_law.rank
    return Fold(network, input_law, Network((folded,) + tuple(network.layers[1:])),
                GaussianInput(np.zeros(r), np.eye(r)))
