"""The linear baseline learns, and its model folder round-trips without pickle."""

from __future__ import annotations

import numpy as np

from reviewstars.data import load_data
from reviewstars.models import LinearPredictor, load_predictor
from reviewstars.models.linear import LinearSettings


def test_learns_well_above_chance_and_round_trips_exactly(tiny_data, tmp_path):
    data = load_data(tiny_data)
    model = LinearPredictor(LinearSettings(min_df=1)).fit(data["train"]["text"], data["train"]["label"])
    texts = data["validation"]["text"]
    accuracy = (model.predict(texts) - 1 == np.asarray(data["validation"]["label"])).mean()
    assert accuracy > 0.6, accuracy  # chance is 0.2

    folder = model.save(tmp_path / "linear")
    assert sorted(p.name for p in folder.iterdir()) == [".reviewstars", "config.json", "linear.npz", "vocabulary.json"]
    loaded = load_predictor(folder)
    assert isinstance(loaded, LinearPredictor)
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert loaded.settings == model.settings
    # No pickle anywhere: the weights open with allow_pickle=False.
    with np.load(folder / "linear.npz", allow_pickle=False) as weights:
        assert set(weights.files) == {"idf", "coef", "intercept"}


def test_probabilities_are_a_distribution_over_five_stars(tiny_data):
    data = load_data(tiny_data)
    model = LinearPredictor(LinearSettings(min_df=1)).fit(data["train"]["text"], data["train"]["label"])
    proba = model.predict_proba(["amazing excellent", "awful rude", "unseen words only zzz"])
    assert proba.shape == (3, 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.predict(["amazing excellent perfect", "awful disgusting worst"])) == [5, 1]
    assert "excellent" in model.top_features(10)[5]


def test_classes_missing_from_training_get_no_probability():
    texts = ["great great", "awful awful", "great place", "awful place"] * 5
    model = LinearPredictor(LinearSettings(min_df=1)).fit(texts, [4, 0, 4, 0] * 5)
    proba = model.predict_proba(["great", "awful"])
    assert proba[:, 1:4].max() < 1e-6
    assert list(model.predict(["great", "awful"])) == [5, 1]


def test_a_min_df_above_the_reviews_to_train_on_is_one_line_of_our_own(tiny_data, tmp_path):
    """A settings file's min_df: 1000 passed on scikit-learn's "max_df corresponds to < documents than min_df"."""
    import pytest

    from reviewstars.data import DataSettings
    from reviewstars.errors import DataError
    from reviewstars.jobs import train

    with pytest.raises(DataError, match=r"--min-df: 100,000 keeps only n-grams seen in at least that many reviews, and there are "
                                        r"[\d,]+ to train on: none can be kept") as refused:
        train("linear", DataSettings(tiny_data), tmp_path / "m", linear=LinearSettings(min_df=100_000))
    assert "max_df" not in str(refused.value) and not (tmp_path / "m").exists()
