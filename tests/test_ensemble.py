"""Ensemble weights on the simplex, and the ensemble model folder."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from reviewstars.ensemble import combine, fit_ensemble_weights


def calibrated_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from softmax(logits)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, 5))
    labels = (rng.random((n, 1)) > np.cumsum(softmax(logits, axis=1), axis=1)).sum(axis=1)
    return logits, np.minimum(labels, 4)


def log_loss(proba: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(len(labels)), labels])))


# ---------------------------------------------------------------------- weights
def test_weights_lie_on_the_simplex():
    logits, labels = calibrated_data(2000, seed=0)
    rng = np.random.default_rng(1)
    probas = [softmax(logits + rng.normal(0, noise, logits.shape), axis=1) for noise in (0.5, 1.0, 2.0)]
    weights = fit_ensemble_weights(probas, labels)
    assert weights.shape == (3,)
    assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[2]  # less noise, more trust


def test_a_useless_member_gets_almost_no_weight():
    logits, labels = calibrated_data(4000, seed=2)
    good, uniform = softmax(logits, axis=1), np.full((4000, 5), 0.2)
    assert fit_ensemble_weights([uniform, good], labels)[0] < 0.01


def test_two_complementary_noisy_models_combined_beat_each_on_held_out_data():
    logits, labels = calibrated_data(4000, seed=3)
    rng = np.random.default_rng(4)
    a, b = (softmax(logits + rng.normal(0, 1.5, logits.shape), axis=1) for _ in range(2))
    fit, held_out = slice(0, 2000), slice(2000, None)
    weights = fit_ensemble_weights([a[fit], b[fit]], labels[fit])
    combined = combine([a[held_out], b[held_out]], weights)
    assert log_loss(combined, labels[held_out]) < min(log_loss(a[held_out], labels[held_out]), log_loss(b[held_out], labels[held_out])) - 0.05


def test_fitting_is_deterministic_and_one_member_gets_everything():
    logits, labels = calibrated_data(500, seed=5)
    probas = [softmax(logits, axis=1), softmax(logits / 2, axis=1)]
    np.testing.assert_array_equal(fit_ensemble_weights(probas, labels), fit_ensemble_weights(probas, labels))
    assert fit_ensemble_weights(probas[:1], labels).tolist() == [1.0]


def test_combine_is_the_weighted_average_and_checks_shapes():
    a, b = np.full((2, 5), 0.2), np.eye(5)[:2]
    np.testing.assert_allclose(combine([a, b], [0.25, 0.75]), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError, match="one weight per member"):
        combine([a, b], [1.0])
    with pytest.raises(ValueError, match="share one shape"):
        combine([a, np.eye(5)], [0.5, 0.5])
