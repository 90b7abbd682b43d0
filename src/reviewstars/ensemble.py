"""Ensemble weights: how much to trust each model's (already calibrated) probabilities.

Log-loss is convex, so a weighted average of probabilities scores at most the weighted
average of its members' log-losses, and better than the best member when they err on
different reviews. Weights are fitted on held-out data, on the simplex, parameterised
as softmax(z) so the optimiser runs unconstrained.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

from . import NUM_CLASSES

#: Floor on the mixture's probability of the true label: log 0 would be infinite.
PROBABILITY_FLOOR = 1e-12


def fit_ensemble_weights(probas: Sequence[np.ndarray], labels: Sequence[int]) -> np.ndarray:
    """Simplex weights minimising the log-loss of the weighted average of `probas`.

    Starts from uniform weights (z = 0), so the fit is deterministic. The loss is convex
    in the weights, so the search over z has no false minima; a member that adds
    nothing is driven towards (never exactly to) weight 0.
    """
    stacked = _stack(probas)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (stacked.shape[1],):
        raise ValueError(f"need one label per row ({stacked.shape[1]} rows), not labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1} (stars - 1)")
    if len(stacked) == 1 or len(labels) == 0:
        return np.full(len(stacked), 1 / len(stacked))
    true_label_proba = stacked[:, np.arange(len(labels)), labels].T  # (n, members)

    def log_loss_and_gradient(z: np.ndarray) -> tuple[float, np.ndarray]:
        weights = softmax(z)
        mixture = np.maximum(true_label_proba @ weights, PROBABILITY_FLOOR)
        gradient_weights = -(true_label_proba / mixture[:, np.newaxis]).mean(axis=0)
        gradient_z = weights * (gradient_weights - weights @ gradient_weights)  # chain rule through softmax
        return float(-np.log(mixture).mean()), gradient_z

    result = minimize(log_loss_and_gradient, np.zeros(len(stacked)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    return softmax(result.x)


def combine(probas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of the members' (n, 5) probabilities."""
    stacked = _stack(probas)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(stacked),):
        raise ValueError(f"need one weight per member ({len(stacked)}), not weights of shape {weights.shape}")
    return np.tensordot(weights, stacked, axes=1)


def _stack(probas: Sequence[np.ndarray]) -> np.ndarray:
    """(members, n, 5), refusing members that disagree on the rows they scored."""
    if len(probas) == 0:
        raise ValueError("an ensemble needs at least one member")
    shapes = {np.shape(proba) for proba in probas}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[1] != NUM_CLASSES:
        raise ValueError(f"every member's probabilities must share one shape (n, {NUM_CLASSES}), not {sorted(shapes)}")
    return np.stack([np.asarray(proba, dtype=np.float64) for proba in probas])
