"""Shared fixtures: small deterministic review sets, and the shared Yelp data when present."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("REVIEWSTARS_QUIET", "1")
os.environ.setdefault("REVIEWSTARS_CACHE", tempfile.mkdtemp(prefix="reviewstars-test-cache-"))  # never the user's cache

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
YELP = SHARED / "data" / "yelp"
BERT_TOKENIZER = SHARED / "models" / "bert-base-cased-tokenizer"

needs_yelp = pytest.mark.skipif(not (YELP / "train.parquet").is_file(), reason=f"shared Yelp data not found at {YELP}")
needs_bert_tokenizer = pytest.mark.skipif(not (BERT_TOKENIZER / "tokenizer.json").is_file(), reason=f"bert-base-cased tokenizer not found at {BERT_TOKENIZER}")

# Words whose presence makes a rating likelier: enough signal for a tiny model to learn.
_SIGNAL = {
    0: ["awful", "disgusting", "worst", "rude", "never again", "horrible"],
    1: ["bad", "disappointing", "cold", "slow", "overpriced", "bland"],
    2: ["okay", "average", "decent", "fine", "mediocre", "alright"],
    3: ["good", "tasty", "friendly", "nice", "solid", "recommend"],
    4: ["amazing", "excellent", "perfect", "wonderful", "outstanding", "best ever"],
}
_FILLER = "the a food place service we our table staff dinner lunch and was were it with for this".split()


def synthetic_reviews(n: int, seed: int = 0) -> pd.DataFrame:
    """Balanced, learnable fake reviews: filler words plus a few words of the label's mood."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 5
        words = [rng.choice(_FILLER) for _ in range(rng.randint(6, 20))]
        for _ in range(rng.randint(2, 4)):
            mood = label if rng.random() < 0.85 else rng.randrange(5)
            words.insert(rng.randrange(len(words) + 1), rng.choice(_SIGNAL[mood]))
        rows.append({"text": " ".join(words).capitalize() + ".", "label": label})
    rng.shuffle(rows)
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A folder with train.parquet (400 rows) and validation.parquet (150 rows)."""
    folder = tmp_path_factory.mktemp("tiny_data")
    synthetic_reviews(400, seed=1).to_parquet(folder / "train.parquet")
    synthetic_reviews(150, seed=2).to_parquet(folder / "validation.parquet")
    return folder


@pytest.fixture(scope="session")
def linear_model(tiny_data, tmp_path_factory) -> Path:
    """A linear model folder trained on `tiny_data`."""
    from reviewstars.models.linear import LinearPredictor, LinearSettings

    train = pd.read_parquet(tiny_data / "train.parquet")
    folder = tmp_path_factory.mktemp("models") / "linear"
    LinearPredictor(LinearSettings(min_df=1)).fit(train["text"].tolist(), train["label"].tolist()).save(folder)
    return folder


@pytest.fixture(scope="session")
def scratch_model(tiny_data, tmp_path_factory) -> Path:
    """A tiny from-scratch encoder folder trained on `tiny_data` (a few seconds)."""
    from reviewstars.data import DataSettings
    from reviewstars.jobs import ScratchSettings, train
    from reviewstars.training import TrainSettings

    folder = tmp_path_factory.mktemp("models") / "scratch"
    settings = TrainSettings(learning_rate=3e-3, epochs=6, eval_steps=20, logging_steps=20, max_length=32, early_stopping=None)
    tiny = ScratchSettings(layers=1, width=32, heads=2, feed_forward=64, vocab_size=200)
    train("scratch", DataSettings(tiny_data, dev_size=50), folder, transformer=settings, scratch=tiny)
    return folder
