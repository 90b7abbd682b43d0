"""The linear model's out-of-core path: hashed features learned chunk by chunk with SGD,
picked above a number of training reviews, saved without pickle and without a vocabulary."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from reviewstars.models import LinearPredictor, load_predictor
from reviewstars.models.hashed import HashedFeatures, take
from reviewstars.models.linear import LinearSettings, features_for
from reviewstars.text import WORD_PATTERN

from conftest import YELP, needs_yelp
from support import ODD_TEXTS, run_cli

# Small columns and chunks: several chunks a pass, and a fit in a fraction of a second.
HASHED = LinearSettings(features="hashing", n_features=1 << 16, chunk_size=200, sgd_passes=5)
NEW_SETTINGS = ("features", "out_of_core_above", "n_features", "sgd_passes", "chunk_size", "shuffle_seed")


@pytest.fixture(scope="module")
def yelp_sample():
    """600 training and 400 validation reviews of the shared Yelp data, seeded."""
    train = pd.read_parquet(YELP / "train.parquet").sample(600, random_state=0)
    validation = pd.read_parquet(YELP / "validation.parquet").sample(400, random_state=0)
    return train, validation


@pytest.fixture(scope="module")
def hashed_model(yelp_sample):
    train, _ = yelp_sample
    return LinearPredictor(HASHED).fit(train["text"].tolist(), train["label"].tolist())


@needs_yelp
def test_hashed_features_learn_real_reviews_well_above_chance(hashed_model, yelp_sample):
    _, validation = yelp_sample
    accuracy = (hashed_model.predict(validation["text"].tolist()) - 1 == validation["label"].to_numpy()).mean()
    assert accuracy > 0.35, accuracy  # chance is 0.2; TF-IDF + logistic regression scores ~0.41 on these
    assert hashed_model.hashed is not None and hashed_model.settings.features == "hashing"
    assert hashed_model.layer_parameters() == [("hashed tf-idf -> logistic regression (SGD)", "Linear(65536, 5)", 65537 * 5)]
    assert hashed_model.num_parameters == 65537 * 5
    named = hashed_model.top_features(8)
    assert sorted(named) == [1, 2, 3, 4, 5] and all(len(terms) == 8 for terms in named.values())


@needs_yelp
def test_the_fit_is_deterministic_and_reads_any_sequence(hashed_model, yelp_sample):
    train, _ = yelp_sample
    # a pandas Series with a shuffled index: read by position, like the list was
    again = LinearPredictor(HASHED).fit(train["text"], train["label"])
    np.testing.assert_array_equal(again.coef, hashed_model.coef)
    np.testing.assert_array_equal(again.intercept, hashed_model.intercept)


@needs_yelp
def test_a_hashed_folder_round_trips_without_pickle_or_vocabulary(hashed_model, yelp_sample, tmp_path):
    texts = yelp_sample[1]["text"].tolist()[:100] + ODD_TEXTS
    model = copy.deepcopy(hashed_model)
    model.temperature = 1.5  # calibrated: folded into the weights on save
    before = model.predict_proba(texts)
    folder = model.save(tmp_path / "hashed")
    assert sorted(p.name for p in folder.iterdir()) == [".reviewstars", "config.json", "linear.npz"]
    with np.load(folder / "linear.npz", allow_pickle=False) as weights:
        assert set(weights.files) == {"idf", "coef", "intercept", "terms"} and weights["coef"].shape == (5, 1 << 16)
    section = json.loads((folder / "config.json").read_text())["reviewstars"]
    assert section["kind"] == "linear" and section["settings"]["features"] == "hashing"
    assert section["settings"]["n_features"] == 1 << 16

    loaded = load_predictor(folder)
    assert isinstance(loaded, LinearPredictor) and loaded.settings == model.settings and loaded.folded
    after = loaded.predict_proba(texts)
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert np.isfinite(after).all() and np.allclose(after.sum(axis=1), 1.0, atol=1e-5)
    assert loaded.top_features(5) == hashed_model.top_features(5)


def test_auto_hashes_above_the_threshold_and_says_why():
    settings = LinearSettings(out_of_core_above=100)
    assert features_for(settings, 100) == ("tfidf", "in memory: 100 reviews <= 100")
    assert features_for(settings, 2_000_000) == ("hashing", "out of core: 2,000,000 reviews > 100")
    assert features_for(LinearSettings(features="tfidf", out_of_core_above=1), 10) == ("tfidf", "--features tfidf")
    assert features_for(LinearSettings(features="hashing"), 10) == ("hashing", "--features hashing")

    texts, labels = ["great food great", "awful rude awful", "great place", "awful place"] * 30, [4, 0, 4, 0] * 30
    model = LinearPredictor(LinearSettings(out_of_core_above=100, n_features=1 << 12, min_df=1)).fit(texts, labels)
    assert model.settings.features == "hashing" and model.vectorizer is None
    assert list(model.predict(["great", "awful"])) == [5, 1]
    assert model.predict_proba(["great"])[0, 1:4].max() < 1e-6  # stars never seen get no probability
    small = LinearPredictor(LinearSettings(out_of_core_above=1000, min_df=1)).fit(texts, labels)
    assert small.settings.features == "tfidf" and small.hashed is None


def test_hashed_counts_are_scikit_learns():
    from sklearn.feature_extraction.text import HashingVectorizer

    texts = [*ODD_TEXTS, "The food was great but the service was slow.", "Great, GREAT food; a b c d great food"]
    for ngram_max in (1, 2, 3):
        ours = HashedFeatures(None, n_features=1 << 12, ngram_max=ngram_max, sublinear_tf=False, token_pattern=WORD_PATTERN)
        theirs = HashingVectorizer(n_features=1 << 12, ngram_range=(1, ngram_max), token_pattern=WORD_PATTERN,
                                   alternate_sign=False, norm=None)
        assert abs(ours.counts(texts) - theirs.transform(texts)).max() == 0, ngram_max


def test_a_batch_weighed_before_its_one_csr_is_the_matrix_of_counts_then_weights(hashed_model, yelp_sample):
    """`transform` builds a server's batch in one CSR; training weighs counts of many reviews.
    Both must give the same features, bit for bit, or a model would serve other numbers."""
    features = hashed_model.hashed
    texts = [*ODD_TEXTS, *yelp_sample[1]["text"].tolist()[:200]]
    for size in (1, 7, len(texts)):
        for start in range(0, len(texts), size):
            part = texts[start:start + size]
            one, two = features.transform(part), features.weigh(features.counts(part))
            assert one.dtype == two.dtype == np.float32 and one.shape == two.shape
            assert (one.indptr == two.indptr).all() and (one.indices == two.indices).all() and one.data.tobytes() == two.data.tobytes()


def test_take_gathers_by_position_from_any_sequence():
    from datasets import Dataset

    rows = np.array([3, 0, 2])
    assert take(["a", "b", "c", "d"], rows) == ["d", "a", "c"]
    assert take(pd.Series(["a", "b", "c", "d"], index=[9, 8, 7, 6]), rows) == ["d", "a", "c"]
    assert take(np.array(["a", "b", "c", "d"], dtype=object), rows) == ["d", "a", "c"]
    assert take(Dataset.from_dict({"text": ["a", "b", "c", "d"]})["text"], rows) == ["d", "a", "c"]


def test_an_old_tfidf_folder_still_loads(tiny_data, tmp_path):
    """A folder written before hashed features: its settings name none of the new fields."""
    train = pd.read_parquet(tiny_data / "train.parquet")
    model = LinearPredictor(LinearSettings(min_df=1)).fit(train["text"].tolist(), train["label"].tolist())
    folder = model.save(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    config["reviewstars"]["settings"] = {k: v for k, v in config["reviewstars"]["settings"].items() if k not in NEW_SETTINGS}
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_predictor(folder)
    assert loaded.hashed is None and loaded.settings.features == "tfidf"
    texts = train["text"].tolist()[:50]
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert "excellent" in loaded.top_features(10)[5]


def test_the_cli_trains_hashed_features_and_says_so(tiny_data, tmp_path):
    output = tmp_path / "hashed"
    result = run_cli("train", "--model", "linear", "--features", "hashing", "--data", tiny_data, "--output", output,
                     env={"REVIEWSTARS_QUIET": None})  # the plan line is a note
    assert result.returncode == 0, result.stderr
    assert "fitting hashed features + SGD (--features hashing)" in " ".join(result.stderr.split())
    assert not (output / "vocabulary.json").exists()
    assert json.loads((output / "config.json").read_text())["reviewstars"]["settings"]["features"] == "hashing"
    assert json.loads((output / "metrics.json").read_text())["accuracy"] > 0.6  # the synthetic reviews: chance is 0.2
    card = (output / "README.md").read_text(encoding="utf-8")
    assert "Hashed features keep no vocabulary" in card and "`features`: hashing" in card
    assert list(load_predictor(output).predict(["amazing excellent perfect", "awful disgusting worst"])) == [5, 1]
