"""scikit-learn multilayer perceptrons as mzpdf networks: :func:`from_sklearn`.

A fitted ``MLPRegressor`` or ``MLPClassifier`` computes
``h_{k+1} = act(h_k @ coefs_[k] + intercepts_[k])`` with the hidden
activation ``activation`` and, on the last layer, ``out_activation_``. Each
``(coefs_[k], intercepts_[k])`` becomes one dense layer with ``W =
coefs_[k].T`` (in float64) and ``b = intercepts_[k]``:

==============  ============
scikit-learn    mzpdf
==============  ============
``identity``    ``identity``
``logistic``    ``sigmoid``
``tanh``        ``tanh``
``relu``        ``relu``
==============  ============

The output map (the last layer's activation):

* ``MLPRegressor``: ``identity``, as scikit-learn predicts.
* ``MLPClassifier``, ``output="logits"`` (the default): ``identity``; the
  network's output is the vector of logits (pre-activations of the output
  layer): one logit for a binary classifier, whose class-1 probability is its
  logistic, one per class for a multiclass classifier, one per label for a
  multilabel one.
* ``MLPClassifier``, ``output="probabilities"``: ``sigmoid`` for a binary or
  multilabel classifier (``out_activation_ = "logistic"``), so the output is
  ``predict_proba``'s class-1 column (binary) or the label probabilities; a
  multiclass classifier's last layer becomes a ``softmax`` layer, whose
  output is ``predict_proba`` (the sampling methods qmc and montecarlo take
  it; grid, sparse and tt take the logits).
"""
from __future__ import annotations

import numpy as np

from ..errors import CaseError
from ._importing import LayerSpec, build_network
from .network import Network

__all__ = ["from_sklearn", "SKLEARN_ACTIVATIONS"]

SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUTPUTS = ("logits", "probabilities")


def from_sklearn(model, noise, output: str = "logits", key: str = "model", noise_key: str = "noise") -> Network:
    """The :class:`~mzpdf.Network` of a fitted scikit-learn ``MLPRegressor``
    or ``MLPClassifier``.

    Parameters
    ----------
    model : sklearn.neural_network.MLPRegressor or MLPClassifier
        Fitted (it has ``coefs_`` and ``intercepts_``).
    noise : dict, NoiseLaw, None, or a list of them
        The additive noise after every layer, as in case files, e.g.
        ``{"kind": "gaussian", "std": 0.1}``; or a list with one law per layer
        (``None`` or ``{"kind": "none"}``: a deterministic layer).
    output : {"logits", "probabilities"}
        A classifier's output map (see the module docstring): ``"logits"``
        ends with the identity; ``"probabilities"`` with the logistic
        (binary and multilabel classifiers) or a softmax layer (multiclass).
        A regressor always ends with the identity.
    key, noise_key : str
        How messages name the model and the noise.

    Returns
    -------
    Network
        One dense layer per ``coefs_`` entry, ``W = coefs_[k].T``,
        ``b = intercepts_[k]``, in float64.

    Raises
    ------
    CaseError
        For another kind of model, an unfitted one, an activation or output
        map mzpdf cannot represent, or a noise list of the wrong length.
    """
    kind = _kind(model, key)
    if not (hasattr(model, "coefs_") and hasattr(model, "intercepts_")):
        raise CaseError(key, f"must be a fitted {kind} (call fit first: it has no coefs_)", type(model).__name__)
    if output not in _OUTPUTS:
        raise CaseError("output", f"must be one of {list(_OUTPUTS)}", output)
    hidden = _activation(model.activation, f"{key}.activation", model.activation)
    out = "identity"
    if kind == "MLPClassifier":
        final = getattr(model, "out_activation_", None)
        if output == "probabilities":
            if final not in ("logistic", "softmax"):
                raise CaseError("output", f"'probabilities' needs a logistic or softmax output map, the "
                                          f"classifier has {final!r}: use output='logits'", output)
            out = "sigmoid" if final == "logistic" else "softmax"
    elif output != "logits":
        raise CaseError("output", "applies to classifiers only (a regressor's output map is the identity)", output)
    specs = []
    n_layers = len(model.coefs_)
    for k, (coef, intercept) in enumerate(zip(model.coefs_, model.intercepts_)):
        W = np.array(coef, dtype=np.float64).T
        b = np.array(intercept, dtype=np.float64).ravel()
        last = k == n_layers - 1
        if last and out == "softmax":
            specs.append(LayerSpec("softmax", W, b, closed=True))
        else:
            specs.append(LayerSpec("dense", W, b, hidden if not last else out, closed=True))
    return build_network(specs, noise, key, noise_key)


def _kind(model, key: str) -> str:
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:  # pragma: no cover - exercised only without scikit-learn
        raise CaseError(key, "must be a scikit-learn MLPRegressor or MLPClassifier (scikit-learn is not installed)",
                        type(model).__name__) from None
    for cls in (MLPClassifier, MLPRegressor):
        if isinstance(model, cls):
            return cls.__name__
    raise CaseError(key, "must be a scikit-learn MLPRegressor or MLPClassifier", type(model).__name__)


def _activation(name, key: str, value) -> str:
    if name not in SKLEARN_ACTIVATIONS:
        raise CaseError(key, f"must be one of {sorted(SKLEARN_ACTIVATIONS)} to be read by mzpdf", value)
    return SKLEARN_ACTIVATIONS[name]
