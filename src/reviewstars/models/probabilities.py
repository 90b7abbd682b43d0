"""What a model's five probabilities become: rescaled by a temperature, mixed with other
models' in an ensemble, and turned into stars.

Fine-tuned classifiers are usually over-confident. Temperature scaling fixes that with
one number fitted on held-out data; it needs only each model's probabilities (log p is
a logit up to a per-row constant, which softmax ignores), so it works for every kind.

An ensemble averages its members' (calibrated) probabilities. Log-loss is convex, so the
average scores at most the weighted average of its members' log-losses, and better than
the best member when they err on different reviews. Its weights are fitted on held-out
data, on the simplex, parameterised as softmax(z) so the optimiser runs unconstrained.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from scipy.special import log_softmax, softmax

from .. import NUM_CLASSES

#: Floor on probabilities before the log: a hard 0 would make the log-likelihood infinite.
PROBABILITY_FLOOR = 1e-12
#: Temperatures searched: from 20x sharper to 20x flatter.
TEMPERATURE_BOUNDS = (1 / 20, 20.0)

Decision = Literal["argmax", "median"]


def fit_temperature(proba: np.ndarray, labels: Sequence[int]) -> float:
    """The temperature T > 0 minimising the log-loss of softmax(log(p) / T) on held-out data.

    T > 1 softens an over-confident model, T < 1 sharpens a timid one. Searched on
    log T (the loss is smooth there and T stays positive). Returns 1.0 when there is
    nothing to fit: no rows, or every row uniform (no temperature changes it).
    """
    from scipy.optimize import minimize_scalar  # here: predicting with a temperature needs no optimiser

    logits, labels = _logits(proba), checked_labels(labels, len(proba))
    if len(logits) == 0 or np.ptp(logits, axis=1).max() == 0:
        return 1.0
    rows = np.arange(len(labels))

    def log_loss(log_temperature: float) -> float:
        return float(-np.mean(log_softmax(logits / np.exp(log_temperature), axis=1)[rows, labels]))

    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(log_loss, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probabilities by a fitted temperature. The ranking of the stars, hence the
    argmax, stays (log, division by T > 0 and softmax are all increasing; only top
    probabilities a few ulps apart could round into a tie)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    if temperature == 1:
        return proba
    return softmax(_logits(proba) / temperature, axis=1)


def star_decision(proba: np.ndarray, decision: Decision = "argmax") -> np.ndarray:
    """Stars 1..5 from probabilities. "argmax" maximises exact accuracy; "median" (the
    smallest star whose cumulative probability reaches half) minimises the expected
    distance in stars, which is what MAE and off-by-one accuracy reward."""
    proba = np.asarray(proba, dtype=np.float64)
    if decision == "argmax":
        return proba.argmax(axis=1) + 1
    if decision == "median":
        cumulative = np.cumsum(proba, axis=1)
        return np.argmax(cumulative >= 0.5 * cumulative[:, -1:], axis=1) + 1
    raise ValueError(f"decision must be 'argmax' or 'median', not {decision!r}")


def fit_ensemble_weights(probas: Sequence[np.ndarray], labels: Sequence[int]) -> np.ndarray:
    """Simplex weights minimising the log-loss of the weighted average of `probas`.

    Starts from uniform weights (z = 0), so the fit is deterministic. The loss is convex
    in the weights, so the search over z has no false minima; a member that adds
    nothing is driven towards (never exactly to) weight 0.
    """
    from scipy.optimize import minimize  # here: predicting needs no optimiser

    stacked = _stack(probas)
    labels = checked_labels(labels, stacked.shape[1])
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
def _logits(proba: np.ndarray) -> np.ndarray:
    """log p with each row's maximum at 0 (a softmax-invariant shift that keeps exp finite)."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != NUM_CLASSES:
        raise ValueError(f"probabilities must have shape (n, {NUM_CLASSES}), not {proba.shape}")
    logits = np.log(np.clip(proba, PROBABILITY_FLOOR, 1.0))
    return logits - logits.max(axis=1, keepdims=True)


def checked_labels(labels: Sequence[int], rows: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (rows,):
        raise ValueError(f"need one label per row of probabilities ({rows} rows), not labels of shape {labels.shape}")
    if rows and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1} (stars - 1)")
    return labels
