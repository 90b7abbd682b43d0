"""Shared fixtures: small deterministic review sets, and the shared Yelp data when present."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("REVIEWSTARS_QUIET", "1")
if "REVIEWSTARS_CACHE" not in os.environ:  # never the user's cache; and gone when the suite ends
    os.environ["REVIEWSTARS_CACHE"] = tempfile.mkdtemp(prefix="reviewstars-test-cache-")
    atexit.register(shutil.rmtree, os.environ["REVIEWSTARS_CACHE"], ignore_errors=True)
# One torch (and BLAS) thread, here and in every command the tests start (they inherit it): the
# models here are width 32, where a second thread only adds synchronisation (a tiny training
# took 0.6 s on one thread, 1.7 s on two), and on a busy machine two spinning threads per process
# wait on each other (13-24 s for the same training). Set before torch is imported: it reads it then.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:  # imported by a plugin before this file: tell it as well
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
# Each command gets the width a test gives it (`support.run_cli` and `support.reviewstars` take `columns`):
# rich fixes a console's width from a COLUMNS it sees when the console is made, at import.
os.environ.pop("COLUMNS", None)
# This process is set up as the `reviewstars` script sets up its own, whichever test file comes first:
# the libraries' logs, warnings and bars silenced before any of them is imported (they read their
# settings then), so a command run here (`support.run_cli`) prints what it prints from a shell.
from reviewstars.progress import silence_libraries  # noqa: E402

silence_libraries()

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
YELP = SHARED / "data" / "yelp"
BERT_TOKENIZER = SHARED / "models" / "bert-base-cased-tokenizer"

needs_yelp = pytest.mark.skipif(not (YELP / "train.parquet").is_file(), reason=f"shared Yelp data not found at {YELP}")
needs_bert_tokenizer = pytest.mark.skipif(not (BERT_TOKENIZER / "tokenizer.json").is_file(), reason=f"bert-base-cased tokenizer not found at {BERT_TOKENIZER}")



@pytest.fixture(scope="session")
def browser() -> str:
    """Headless Chromium's path (.ci/run installs Debian's); the test is skipped, saying why, without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    return found


def pytest_collection_modifyitems(items) -> None:
    """A test that takes the `browser` fixture is marked `browser`: `-m "not browser"` leaves them out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


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
def scratch_training(tiny_data, tmp_path_factory):
    """(the folder, what `train` returned) of a tiny from-scratch encoder trained on `tiny_data`
    (a few seconds), once for the suite: read it, copy it to change it."""
    from reviewstars.data import DataSettings
    from reviewstars.jobs import train

    from support import fast, tiny_scratch

    folder = tmp_path_factory.mktemp("models") / "scratch"
    result = train("scratch", DataSettings(tiny_data, dev_size=50), folder, transformer=fast(), scratch=tiny_scratch())
    return folder, result


@pytest.fixture(scope="session")
def scratch_model(scratch_training) -> Path:
    """The folder of `scratch_training`."""
    return scratch_training[0]


@pytest.fixture(scope="session")
def scratch_onnx(scratch_model, tmp_path_factory) -> Path:
    """`scratch_model` exported to ONNX (fp32), once for the suite (skipped without onnxruntime)."""
    pytest.importorskip("onnxruntime")
    from reviewstars.models.onnx import export_onnx

    folder = tmp_path_factory.mktemp("models") / "scratch-onnx"
    export_onnx(scratch_model, folder)
    return folder


@pytest.fixture(scope="session")
def whole_tiny_run(tiny_data, tmp_path_factory):
    """`support.tiny_run` trained to its end, no crash, no Ctrl-C: what the interrupted and
    resumed runs of test_training and test_faults must equal. (model, outcome, its settings)."""
    from support import fast, tiny_run

    settings = fast(epochs=2, eval_steps=10, logging_steps=10)
    model, outcome = tiny_run(tiny_data, tmp_path_factory.mktemp("tiny_run") / "whole", settings)
    return model, outcome, settings


@pytest.fixture(scope="module")
def vocabulary(tiny_data, tmp_path_factory) -> Path:
    """One WordPiece vocabulary for every run: tokenizers may learn a slightly different
    one each time (huggingface/tokenizers#1794), which is not what these tests are about."""
    from reviewstars.tokenization import train_wordpiece

    folder = tmp_path_factory.mktemp("vocabulary")
    train_wordpiece(pd.read_parquet(tiny_data / "train.parquet")["text"].tolist(), vocab_size=200).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(scratch_model):
    """A small random BERT classifier on the scratch model's vocabulary: the shape of MiniLM."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from reviewstars.models import load_predictor

    tokenizer = load_predictor(scratch_model).tokenizer
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, num_labels=5)
    return BertForSequenceClassification(config).eval(), tokenizer
