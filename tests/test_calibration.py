"""Temperature scaling, calibration error, reliability bins and star decisions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from reviewstars.scoring.calibration import ece_noise_floor, expected_calibration_error, reliability_bins
from reviewstars.models.probabilities import apply_temperature, fit_temperature, star_decision


def calibrated_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True-probability logits and labels drawn from them: softmax(logits) is perfectly calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, 5))
    proba = softmax(logits, axis=1)
    labels = (rng.random((n, 1)) > np.cumsum(proba, axis=1)).sum(axis=1)
    return logits, np.minimum(labels, 4)


def test_fit_temperature_recovers_a_known_temperature():
    logits, labels = calibrated_data(20_000, seed=0)
    over_confident = softmax(logits / 0.5, axis=1)  # sharpened twice: temperature 2 undoes it
    assert fit_temperature(over_confident, labels) == pytest.approx(2.0, rel=0.05)
    timid = softmax(logits / 1.5, axis=1)  # flattened: temperature 1/1.5 sharpens it back
    assert fit_temperature(timid, labels) == pytest.approx(1 / 1.5, rel=0.05)


def test_temperature_fitted_on_one_half_halves_the_calibration_error_on_the_other():
    logits, labels = calibrated_data(20_000, seed=1)
    over_confident = softmax(logits / 0.4, axis=1)
    fit, held_out = slice(0, 10_000), slice(10_000, None)
    temperature = fit_temperature(over_confident[fit], labels[fit])
    before = expected_calibration_error(over_confident[held_out], labels[held_out])
    after = expected_calibration_error(apply_temperature(over_confident[held_out], temperature), labels[held_out])
    assert after < before / 2


def test_a_perfectly_calibrated_model_has_a_small_calibration_error():
    logits, labels = calibrated_data(20_000, seed=2)
    assert expected_calibration_error(softmax(logits, axis=1), labels) < 0.02


def test_apply_temperature_never_changes_the_argmax():
    rng = np.random.default_rng(3)
    proba = np.concatenate([rng.dirichlet(np.full(5, alpha), size=2000) for alpha in (0.05, 0.3, 1.0, 10.0)])
    for temperature in (0.05, 0.2, 0.7, 1.3, 4.0, 20.0):
        scaled = apply_temperature(proba, temperature)
        np.testing.assert_array_equal(scaled.argmax(axis=1), proba.argmax(axis=1))
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0)


def test_temperature_one_returns_the_input_unchanged():
    proba = np.random.default_rng(4).dirichlet(np.ones(5), size=10)
    assert apply_temperature(proba, 1.0) is proba
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(proba, 0.0)


def test_nothing_to_fit_gives_temperature_one():
    assert fit_temperature(np.full((10, 5), 0.2), np.arange(10) % 5) == 1.0
    assert fit_temperature(np.zeros((0, 5)), []) == 1.0


def test_fit_temperature_refuses_mismatched_labels():
    with pytest.raises(ValueError, match="one label per row"):
        fit_temperature(np.full((3, 5), 0.2), [0, 1])
    with pytest.raises(ValueError, match="0..4"):
        fit_temperature(np.full((2, 5), 0.2), [0, 5])


def test_reliability_bins_place_each_prediction_by_its_top_probability():
    proba = np.array([
        [0.9, 0.025, 0.025, 0.025, 0.025],   # right, confidence 0.9
        [0.025, 0.9, 0.025, 0.025, 0.025],   # wrong, confidence 0.9
        [0.3, 0.25, 0.15, 0.15, 0.15],       # right, confidence 0.3
    ])
    labels = np.array([0, 0, 0])
    table = reliability_bins(proba, labels, bins=10)
    assert table.count.tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 2, 0]  # 0.3 in (0.2, 0.3], 0.9 in (0.8, 0.9]
    assert table.confidence[8] == pytest.approx(0.9) and table.accuracy[8] == 0.5
    assert table.accuracy[2] == 1.0 and np.isnan(table.accuracy[0])
    assert table.edges[0] == 0 and table.edges[-1] == 1
    # ECE: (2/3) * |0.5 - 0.9| + (1/3) * |1 - 0.3|
    assert expected_calibration_error(proba, labels, bins=10) == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.7)


def test_the_noise_floor_holds_a_calibrated_model_and_not_an_over_confident_one():
    # A perfectly calibrated model still shows an ECE well above 0 on a few hundred reviews...
    logits, labels = calibrated_data(500, seed=4)
    proba = softmax(logits, axis=1)
    floor, high = ece_noise_floor(proba)
    assert 0.01 < floor < high
    assert expected_calibration_error(proba, labels) <= high
    # ...which shrinks with more reviews, as the bins' accuracies steady.
    many_logits, many_labels = calibrated_data(8_000, seed=4)
    assert ece_noise_floor(softmax(many_logits, axis=1))[0] < floor / 2
    # A model twice as sharp as the truth lies beyond its floor, on the same reviews.
    over_confident = softmax(many_logits / 0.5, axis=1)
    assert expected_calibration_error(over_confident, many_labels) > ece_noise_floor(over_confident)[1]
    # Seeded: the same probabilities give the same floor.
    assert ece_noise_floor(proba) == (floor, high)
    # A model sure of every star is right every time when calibrated: no noise at all.
    assert ece_noise_floor(np.eye(5)[[0, 1, 2, 3, 4, 0]]) == (0.0, 0.0)


def test_calibration_verdict_reads_an_ece_against_its_floor():
    from reviewstars.scoring.scores import calibration_verdict

    assert calibration_verdict(0.024, 0.023, 0.034).startswith("within noise")
    assert calibration_verdict(0.049, 0.026, 0.036) == "0.023 above its noise floor of 0.026"


def test_star_decision_median_and_argmax():
    proba = np.array([
        [0.30, 0.10, 0.05, 0.05, 0.50],  # argmax 5; cumulative reaches 0.5 at 4 stars
        [0.40, 0.05, 0.10, 0.05, 0.40],  # two peaks: the median sits between them
        [0.05, 0.05, 0.80, 0.05, 0.05],
    ])
    assert star_decision(proba).tolist() == [5, 1, 3]
    assert star_decision(proba, "median").tolist() == [4, 3, 3]


def test_median_minimises_the_expected_distance_in_stars():
    proba = np.random.default_rng(5).dirichlet(np.full(5, 0.5), size=500)
    stars = np.arange(1, 6)
    expected_distance = proba @ np.abs(stars[:, None] - stars[None, :])  # (n, candidate star)
    chosen = star_decision(proba, "median")
    np.testing.assert_allclose(expected_distance[np.arange(500), chosen - 1], expected_distance.min(axis=1))


def test_unknown_decision_is_a_one_line_value_error():
    with pytest.raises(ValueError, match=r"^decision must be 'argmax' or 'median', not 'mean'$"):
        star_decision(np.full((1, 5), 0.2), "mean")


def test_a_temperature_at_its_bound_is_said_to_mean_the_model_knows_little():
    """A probe's useless model: confidently wrong, its temperature went to the bound (20), its
    probabilities flattened to uniform, and "ECE within noise" made it the best calibrated of
    its leaderboard without a word."""
    from types import SimpleNamespace

    import pandas as pd

    from reviewstars.jobs.train import calibrate
    from reviewstars.models.probabilities import TEMPERATURE_BOUNDS

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    confident = np.full((200, 5), 0.001)
    confident[np.arange(200), rng.integers(0, 5, 200)] = 0.996  # sure of a star that has nothing to do with the label
    record, _ = calibrate(SimpleNamespace(temperature=1.0), pd.DataFrame({"text": ["x"] * 200, "label": labels}), scored=confident)
    assert record["temperature"] >= 0.99 * TEMPERATURE_BOUNDS[1]
    assert record["at_bound"].startswith("the temperature reached its bound (20): the model's probabilities are flattened")
    sensible = np.eye(5)[labels] * 0.5 + 0.1  # right, and a little over-confident: no note
    record, _ = calibrate(SimpleNamespace(temperature=1.0), pd.DataFrame({"text": ["x"] * 200, "label": labels}), scored=sensible)
    assert "at_bound" not in record
