"""Metrics on an example small enough to check by hand."""

from __future__ import annotations

import pytest

import numpy as np

from reviewstars.scoring.scores import Scores, score_predictions


def star_metrics(true_stars, predicted_stars) -> Scores:
    """The scores of predictions that put all their probability on the predicted star."""
    proba = np.eye(5)[np.asarray(predicted_stars) - 1]
    return score_predictions(proba, np.asarray(true_stars) - 1)


def test_metrics_match_a_hand_computed_example():
    true = [1, 1, 2, 3, 5, 5]
    pred = [1, 2, 2, 5, 5, 4]
    m = star_metrics(true, pred)
    assert m.n == 6
    assert m.accuracy == pytest.approx(3 / 6)
    # distances 0,1,0,2,0,1 -> mean 4/6; within one star: 5 of 6
    assert m.mae == pytest.approx(4 / 6)
    assert m.off_by_one_accuracy == pytest.approx(5 / 6)
    assert m.confusion_matrix == [
        [1, 1, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 1, 1],
    ]
    # 1★: P=1/1, R=1/2; 2★: P=1/2, R=1/1; 3★: never predicted (no precision), R=0/1; 4★: P=0/1, no
    # review (no recall); 5★: P=1/2, R=1/2. F1 = 2tp / (2tp + fp + fn): 0 for 3★ and 4★.
    assert m.per_class["1"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m.per_class["2"]["precision"] == 0.5 and m.per_class["2"]["recall"] == 1.0
    assert m.per_class["3"] == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m.per_class["4"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    assert m.per_class["5"]["f1"] == pytest.approx(0.5)
    # macro-F1 averages all five classes: (2/3 + 2/3 + 0 + 0 + 1/2) / 5
    assert m.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 0 + 0 + 0.5) / 5)


def test_a_model_that_gives_most_reviews_one_rating_is_warned_of_in_words_that_read():
    from reviewstars.scoring.scores import result_warnings

    labels = np.array([0, 1, 2, 3, 4] * 4)
    for stars, said in ((np.ones(20, dtype=int), "predicts 1 star for 100% of the reviews"),
                        (np.full(20, 3), "predicts 3 stars for 100% of the reviews")):
        scores = score_predictions(np.eye(5)[stars - 1], labels)
        assert any(line.startswith(said) for line in result_warnings(scores, labels, stars))
    # not of one review (100% of anything), nor of reviews that are mostly that star themselves (a probe's n=1 was warned of)
    quiet = [(np.array([2]), np.array([3])), (np.array([4] * 18 + [3, 2]), np.full(20, 5)), (labels[:19], np.full(19, 3))]
    for true, stars in quiet:
        warned = result_warnings(score_predictions(np.eye(5)[stars - 1], true), true, stars)
        assert not [line for line in warned if "learned little" in line], (true, warned)


def test_accuracy_below_a_constant_guess_and_a_handful_of_reviews_are_said_as_what_they_are():
    """A probe's 0.033 (interval 0-0.1) was called "within noise of a constant guess" (0.3), and
    one review scored gave an interval of 1.0-1.0 without a word."""
    from reviewstars.scoring.scores import result_warnings

    labels = np.array([0, 1, 2, 3, 4] * 40)
    stars = (labels + 2) % 5 + 1  # every review two stars off: accuracy 0
    said = result_warnings(score_predictions(np.eye(5)[stars - 1], labels), labels, stars)
    assert any(line.startswith("accuracy 0.000 is worse than a constant guess (0.200") for line in said)
    assert not any("within noise" in line or "intervals" in line for line in said)
    one = np.array([2])
    said = result_warnings(score_predictions(np.eye(5)[one], one), one, one + 1)
    assert "only 1 review scored: the 95% intervals (a bootstrap of them) are not to be trusted below 30" in said


def test_a_star_neither_in_the_reviews_nor_predicted_has_no_figures_not_zeros():
    """Reviews rated 1, 3 or 5 only: 2★ and 4★ are undefined ("-"), as macro-F1 leaves them out."""
    import io

    from rich.console import Console

    from reviewstars.presentation.tables import metrics_table

    m = star_metrics([1, 1, 3, 3, 5], [1, 3, 3, 3, 5])
    assert m.per_class["2"] == m.per_class["4"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.8 + 1.0) / 3)
    assert Scores.from_json(m.to_json()).per_class == m.per_class
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(metrics_table(m, "three stars"))
    shown = console.file.getvalue()
    assert "│     2 │         - │      - │     - │       0 │" in shown
    assert "-: 2★, 4★ never predicted: no precision; no review of 2★, 4★: no recall" in " ".join(shown.split())
    # a star with reviews that is never predicted has a recall (0) and no precision: the caption says only that
    never = star_metrics([1, 2, 3, 4, 5], [1, 1, 3, 4, 5])
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(metrics_table(never, "2★ never predicted"))
    caption = " ".join(console.file.getvalue().split())
    assert "-: 2★ never predicted: no precision" in caption and "no recall" not in caption
    assert "decided by" not in caption
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(metrics_table(score_predictions(np.eye(5)[[0, 1, 2, 3, 4]], [0, 1, 2, 3, 4], decision="median"), "median"))
    assert "stars decided by the median of each distribution (--decision median)" in " ".join(console.file.getvalue().split())


def test_perfect_predictions():
    m = star_metrics([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert m.accuracy == m.macro_f1 == m.off_by_one_accuracy == 1.0 and m.mae == 0.0


def test_the_brier_score_is_zero_when_sure_and_right_and_point_eight_for_a_uniform_guess():
    assert star_metrics([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).brier == 0.0
    assert star_metrics([1, 2], [2, 1]).brier == pytest.approx(2.0)  # all the probability on a wrong star: 1 + 1
    uniform = score_predictions(np.full((5, 5), 0.2), [0, 1, 2, 3, 4])
    assert uniform.brier == pytest.approx(0.8)


def test_a_metric_declared_once_reaches_every_view():
    """The metrics a table or card shows are read from the declarations: the Brier score,
    declared as one field, is in metrics.json, the evaluate caption and a leaderboard row."""
    import io

    from rich.console import Console

    from reviewstars.presentation.tables import metrics_table
    from reviewstars.scoring.leaderboard import LeaderboardRow, leaderboard_table

    scores = score_predictions(np.full((5, 5), 0.2), [0, 1, 2, 3, 4])
    assert scores.to_json()["brier"] == pytest.approx(0.8)
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(metrics_table(scores, "uniform"))
    assert "Brier=0.800" in console.file.getvalue()
    header, cells = leaderboard_table([LeaderboardRow(model="uniform", scores=scores)])
    assert cells[0][header.index("Brier")] == "0.800"
    assert Scores.from_json(scores.to_json()) == scores


def test_a_score_on_reviews_the_model_was_trained_on_says_how_many(tiny_data, tmp_path):
    import pandas as pd

    from reviewstars.jobs import evaluate, train

    result = train("linear", tiny_data, tmp_path / "model")
    on_train = evaluate(tmp_path / "model", tiny_data, split="train")
    trained = result.train_examples
    assert on_train.context["reviews_trained_on"] == trained and 0 < trained < 400
    assert on_train.warnings[0].startswith(f"{trained:,} of the 400 reviews scored ({trained / 400:.0%}) are ones the model was trained on")
    on_validation = evaluate(tmp_path / "model", tiny_data, split="validation")
    assert on_validation.context["reviews_trained_on"] == 0 and not any("trained on" in w for w in on_validation.warnings)
    # the same reviews in another file and format are still the same reviews
    pd.read_parquet(tiny_data / "train.parquet").to_csv(tmp_path / "copy.csv", index=False)
    assert evaluate(tmp_path / "model", tmp_path / "copy.csv").context["reviews_trained_on"] == trained


def test_an_ensemble_says_when_its_members_learned_the_reviews_it_is_weighed_or_scored_on(tiny_data, tmp_path, monkeypatch):
    import reviewstars.jobs.ensemble as ensemble_module
    from reviewstars.data import DataSettings
    from reviewstars.jobs import evaluate, train
    from reviewstars.models.linear import LinearSettings

    data = DataSettings(tiny_data, dev_size=80)
    train("linear", data, tmp_path / "a", linear=LinearSettings(min_df=1))
    train("linear", data, tmp_path / "b", linear=LinearSettings(min_df=1, ngram_max=1))
    warned: list[str] = []
    monkeypatch.setattr(ensemble_module, "warn", warned.append)
    members = [str(tmp_path / "a"), str(tmp_path / "b")]

    ensemble_module.build_ensemble(members, data, tmp_path / "same_cut")  # the members' own cut: nothing to say
    assert warned == []
    ensemble_module.build_ensemble(members, DataSettings(tiny_data, dev_size=80, seed=7), tmp_path / "other_cut")
    assert len(warned) == 2 and all("dev reviews the weights are fitted on" in line for line in warned)
    assert "--seed it was trained with" in warned[0]

    on_train = evaluate(tmp_path / "same_cut", tiny_data, split="train")  # an ensemble learned what its members did
    trained = train("linear", data, tmp_path / "c", linear=LinearSettings(min_df=1)).train_examples
    assert on_train.context["reviews_trained_on"] == trained and "ones the model was trained on" in on_train.warnings[0]
    assert evaluate(tmp_path / "same_cut", tiny_data, split="validation").context["reviews_trained_on"] == 0


def test_an_ensemble_with_a_member_that_does_not_say_what_it_learned_does_not_say_either(tiny_data, tmp_path):
    from reviewstars.data import DataSettings
    from reviewstars.jobs import train
    from reviewstars.jobs.ensemble import build_ensemble
    from reviewstars.models.linear import LinearSettings
    from reviewstars.scoring.evaluation import TRAINED_TEXTS_FILE, seen_in_training

    data = DataSettings(tiny_data, dev_size=80)
    for name in "ab":
        train("linear", data, tmp_path / name, linear=LinearSettings(min_df=1))
    (tmp_path / "b" / TRAINED_TEXTS_FILE).unlink()  # as a folder from before the record, or from elsewhere
    build_ensemble([str(tmp_path / "a"), str(tmp_path / "b")], data, tmp_path / "ensemble")
    assert seen_in_training(tmp_path / "a", ["x"]) == 0 and seen_in_training(tmp_path / "ensemble", ["x"]) is None


def test_a_models_speed_is_timed_warm_after_a_small_untimed_batch():
    """`evaluate` timed the first, cold call (2,350/s) where `train` timed a warm one (6,034/s): one model, two speeds."""
    import time

    from reviewstars.scoring.evaluation import WARM_UP_TEXTS, evaluate_predictor

    class ColdStart:
        temperature = 1.0

        def __init__(self):
            self.calls = []

        def predict_proba(self, texts, batch_size=None):
            if not self.calls:
                time.sleep(0.5)  # a first call's set-up: not the model's speed
            self.calls.append(len(texts))
            return np.full((len(texts), 5), 0.2)

        uncalibrated_proba = predict_proba

    model = ColdStart()
    scores, _ = evaluate_predictor(model, [f"review {i}" for i in range(100)], [i % 5 for i in range(100)])
    assert model.calls[0] == WARM_UP_TEXTS and sum(model.calls[1:]) == 100
    assert scores.seconds < 0.4 and scores.predictions_per_second > 250


def test_a_record_of_trained_texts_from_before_folding_is_read_as_it_was_written(tmp_path):
    from reviewstars.models.folder import TRAINED_TEXTS_FILE
    from reviewstars.scoring.evaluation import RAW_KEY, save_trained_texts, seen_in_training, trained_not_among
    from reviewstars.text import text_hashes

    texts = ["Great tacos!", "Cold soup, rude staff."]
    np.savez(tmp_path / TRAINED_TEXTS_FILE, **{RAW_KEY: np.unique(text_hashes(texts, fold=False))})  # as written before
    assert seen_in_training(tmp_path, [*texts, "GREAT TACOS!"]) == 2 and trained_not_among(tmp_path, texts[:1]) == 1
    save_trained_texts(tmp_path, texts)
    assert seen_in_training(tmp_path, [*texts, "GREAT   tacos!"]) == 3 and trained_not_among(tmp_path, ["great tacos!"]) == 1
