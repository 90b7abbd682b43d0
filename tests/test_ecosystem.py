"""Small promises to the rest of the world: the package imports where fcntl does not exist,
every --ngram-max the option accepts works end to end, and predict reads standard input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from reviewstars.models import load_predictor
from reviewstars.models.linear import LinearPredictor, LinearSettings

from conftest import synthetic_reviews


def test_the_commands_import_without_fcntl():
    """Windows has no fcntl: the output lock takes msvcrt there, and nothing imports fcntl at import time."""
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import reviewstars.jobs.guard, reviewstars.jobs.train, reviewstars.jobs.predict, reviewstars.cli\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_trigrams_train_save_load_and_predict(tmp_path):
    rows = synthetic_reviews(300, seed=21)
    model = LinearPredictor(LinearSettings(ngram_max=3, min_df=1)).fit(rows["text"].tolist(), rows["label"].tolist())
    assert any(len(term.split()) == 3 for term in model.vectorizer.vocabulary_)
    texts = synthetic_reviews(40, seed=22)["text"].tolist()
    before = model.predict_proba(texts)
    model.save(tmp_path / "tri")
    after = load_predictor(tmp_path / "tri").predict_proba(texts)
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert (after.argmax(1) == synthetic_reviews(40, seed=22)["label"].to_numpy()).mean() > 0.4


def test_predict_reads_reviews_from_standard_input(linear_model):
    done = subprocess.run([sys.executable, "-m", "reviewstars.cli", "predict", "--model", str(linear_model), "--json", "-"],
                          input="amazing food, excellent\n\nawful, rude staff\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    rows = json.loads(done.stdout)
    assert [row["text"] for row in rows] == ["amazing food, excellent", "awful, rude staff"]
    assert rows[0]["stars"] > rows[1]["stars"]
