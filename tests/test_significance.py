"""Bootstrap intervals, the exact McNemar test and tie-aware ranks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from reviewstars.scoring.significance import bootstrap_interval, mcnemar_exact, rank_with_ties


def noisy_predictions(n: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0..4 and predictions right on exactly `accuracy` of them, wrong ones spread over the other classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    wrong = rng.permutation(n) >= round(accuracy * n)
    predictions = np.where(wrong, (labels + rng.integers(1, 5, n)) % 5, labels)
    return labels, predictions


def correctness(n: int, accuracy: float, seed: int) -> np.ndarray:
    labels, predictions = noisy_predictions(n, accuracy, seed)
    return labels == predictions


def test_point_estimates_match_scikit_learn_and_lie_inside_their_intervals():
    labels, predictions = noisy_predictions(2000, 0.6, seed=1)
    result = bootstrap_interval(labels, predictions, seed=3)
    assert result.accuracy.point == pytest.approx(accuracy_score(labels, predictions))
    assert result.macro_f1.point == pytest.approx(f1_score(labels, predictions, labels=range(5), average="macro", zero_division=0))
    for interval in (result.accuracy, result.macro_f1):
        assert interval.low < interval.point < interval.high
        assert interval.high - interval.low < 0.06  # about +-2 points at n = 2000


def test_macro_f1_averages_the_classes_true_or_predicted_as_scikit_learn_and_the_scores_do():
    """Reviews rated negative/neutral/positive (1, 3, 5 stars): two stars nobody has or got
    must not pull the average down (0.308 over five, against 0.513 over the three)."""
    from reviewstars.scoring.scores import score_predictions

    labels, predictions = [0, 0, 2, 2, 4, 4], [0, 2, 2, 2, 4, 0]
    expected = f1_score(labels, predictions, average="macro")  # scikit-learn's own: the labels present
    assert bootstrap_interval(labels, predictions).macro_f1.point == pytest.approx(expected)
    scores = score_predictions(np.eye(5)[predictions], labels)
    assert scores.macro_f1 == pytest.approx(expected) and expected > f1_score(labels, predictions, labels=range(5), average="macro")
    assert "macro-F1 averages the 3 star ratings these reviews have or were given (1, 3, 5), not all 5" in scores.warnings
    given_two = score_predictions(np.eye(5)[[0, 1, 2, 2, 4, 3]], labels)  # 2 and 4 stars given, to reviews that have none
    assert given_two.macro_f1 == pytest.approx(f1_score(labels, [0, 1, 2, 2, 4, 3], average="macro"))
    assert ("these reviews are rated 1, 3, 5 stars only: macro-F1 averages those and the 2, 4 the model also gave them, each "
            "with an F1 of 0 (as scikit-learn does), so it is lower than over the stars the reviews have") in given_two.warnings


def test_intervals_shrink_with_more_reviews():
    small = bootstrap_interval(*noisy_predictions(200, 0.6, seed=2), seed=0)
    large = bootstrap_interval(*noisy_predictions(2000, 0.6, seed=2), seed=0)
    for metric in ("accuracy", "macro_f1"):
        width_small = getattr(small, metric).high - getattr(small, metric).low
        width_large = getattr(large, metric).high - getattr(large, metric).low
        assert width_large < width_small / 2.5  # sqrt(10) ~ 3.2 in theory


def test_seeded_and_deterministic():
    labels, predictions = noisy_predictions(500, 0.7, seed=4)
    assert bootstrap_interval(labels, predictions, seed=7) == bootstrap_interval(labels, predictions, seed=7)
    assert bootstrap_interval(labels, predictions, seed=7) != bootstrap_interval(labels, predictions, seed=8)


def test_five_models_of_2000_reviews_take_well_under_a_second_each():
    runs = [noisy_predictions(2000, accuracy, seed) for seed, accuracy in enumerate((0.5, 0.55, 0.6, 0.65, 0.7))]
    started = time.perf_counter()
    for labels, predictions in runs:
        bootstrap_interval(labels, predictions, resamples=2000)
    assert (time.perf_counter() - started) / len(runs) < 1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="0..4"):
        bootstrap_interval([1, 5], [1, 2])
    with pytest.raises(ValueError, match="equal length"):
        bootstrap_interval([1, 2], [1])
    with pytest.raises(ValueError, match="no reviews"):
        bootstrap_interval([], [])
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval([1], [1], level=95)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300), st.integers(0, 2**32 - 1))
def test_any_correctness_vector_gives_ordered_intervals_in_0_1(correct, seed):
    labels = np.arange(len(correct)) % 5
    predictions = np.where(correct, labels, (labels + 1) % 5)
    result = bootstrap_interval(labels, predictions, seed=seed, resamples=200)
    assert 0 <= result.accuracy.low <= result.accuracy.point <= result.accuracy.high <= 1
    assert result.accuracy.point == pytest.approx(np.mean(correct))
    # The percentile interval of a skewed statistic need not hold its point on tiny samples.
    assert 0 <= result.macro_f1.low <= result.macro_f1.high <= 1


def test_mcnemar_two_copies_of_one_model_are_a_tie():
    model = correctness(1000, 0.6, seed=5)
    assert mcnemar_exact(model, model.copy()) == 1.0


def test_mcnemar_separates_a_perfect_model_from_a_random_one():
    perfect = np.ones(200, dtype=bool)
    random_guess = correctness(200, 0.2, seed=6)
    assert mcnemar_exact(perfect, random_guess) < 0.05


def test_mcnemar_is_symmetric_and_exact():
    # 3 reviews only A gets right, 7 only B: two-sided binomial P(X <= 3 | 10, 1/2) * 2 = 0.34375
    a = np.array([True] * 3 + [False] * 7 + [True] * 5)
    b = np.array([False] * 3 + [True] * 7 + [True] * 5)
    assert mcnemar_exact(a, b) == pytest.approx(0.34375)
    assert mcnemar_exact(b, a) == pytest.approx(0.34375)


def test_rank_with_ties_shares_the_rank_of_an_inseparable_neighbour():
    best = correctness(2000, 0.70, seed=7)
    near_twin = best.copy()
    near_twin[np.flatnonzero(best)[:5]] = False  # 5 reviews worse: no test can tell
    clearly_worse = correctness(2000, 0.50, seed=8)
    rows = rank_with_ties([best, near_twin, clearly_worse])
    assert [row.rank for row in rows] == [1, 1, 3]
    assert [row.tied_with_previous for row in rows] == [False, True, False]
    assert rows[0].p_value_vs_leader is None
    assert rows[1].p_value_vs_leader > 0.05 and rows[2].p_value_vs_leader < 0.05
    assert [row.leader for row in rows] == [None, 0, 0]


def test_rank_with_ties_compares_with_the_group_leader_so_ties_do_not_chain():
    # A ~ B and B ~ C (12 vs 4 discordant reviews: p = 0.077), but A beats C (24 vs 8: p = 0.007).
    a = np.arange(200) < 120
    b = a.copy()
    b[0:12], b[150:154] = False, True
    c = b.copy()
    c[20:32], c[160:164] = False, True
    assert mcnemar_exact(a, b) > 0.05 and mcnemar_exact(b, c) > 0.05 and mcnemar_exact(a, c) < 0.05
    rows = rank_with_ties([a, b, c])
    assert [row.rank for row in rows] == [1, 1, 3]
    assert [row.leader for row in rows] == [None, 0, 0]
    assert rows[2].p_value_vs_leader == pytest.approx(mcnemar_exact(a, c))


def test_rank_with_ties_of_nothing_and_of_one():
    assert rank_with_ties([]) == []
    assert [row.rank for row in rank_with_ties([np.ones(3, dtype=bool)])] == [1]


def test_the_same_predictions_in_another_order_get_the_same_intervals_and_noise_floor():
    """`--eval-size` larger than the split scores the same reviews shuffled: the intervals moved."""
    from reviewstars.scoring.calibration import ece_noise_floor
    from reviewstars.scoring.significance import bootstrap_interval

    rng = np.random.default_rng(3)
    labels, predicted = rng.integers(0, 5, 400), rng.integers(0, 5, 400)
    proba = rng.dirichlet(np.ones(5), 400)
    order = rng.permutation(400)
    first, second = bootstrap_interval(labels, predicted), bootstrap_interval(labels[order], predicted[order])
    assert (first.accuracy, first.macro_f1) == (second.accuracy, second.macro_f1)
    assert ece_noise_floor(proba) == ece_noise_floor(proba[order])
