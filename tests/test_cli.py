"""The CLI forms the issues promise, run as a user would run them (in this process, through the
script's own `main()`; the import probe below in fresh ones)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import YELP, needs_yelp
from support import run_cli


def run(*args, check=True, env=None):
    result = run_cli(*args, env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("cli") / "linear"
    run("train", "--model", "linear", "--data", tiny_data, "--output", output, "--min-df", "1")
    return output


@pytest.mark.trainer
def test_train_writes_a_complete_model_folder(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"config.json", "linear.npz", "vocabulary.json", "metrics.json", "README.md", "confusion_matrix.png"} <= names
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["split"] == "validation" and metrics["n"] == 150 and metrics["accuracy"] > 0.6
    card = (trained / "README.md").read_text()
    assert "accuracy" in card and "tiny_data" in card


def test_evaluate_writes_metrics_and_a_confusion_png(trained, tiny_data, tmp_path):
    output = tmp_path / "metrics.json"
    run("evaluate", "--model", trained, "--data", tiny_data, "--split", "validation", "--n", 100, "--seed", 42, "--output", output)
    metrics = json.loads(output.read_text())
    for key in ("accuracy", "macro_f1", "mae", "off_by_one_accuracy", "confusion_matrix", "n", "per_class"):
        assert key in metrics
    assert metrics["n"] == 100 and metrics["accuracy"] > 0.6
    assert output.with_suffix(".confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.trainer
def test_predict_texts_and_file(trained, tmp_path):
    result = run("predict", "--model", trained, "--json", "amazing excellent perfect", "awful rude worst", "  ")
    rows = json.loads(result.stdout)
    assert [r["stars"] for r in rows[:2]] == [5, 1]
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4
    assert [r["empty"] for r in rows] == [False, False, True]
    # the server's fields, plus the text they rate
    assert all(set(r) == {"text", "stars", "probabilities", "expected_stars", "empty"} for r in rows)
    table = run("predict", "--model", trained, "amazing excellent perfect", env={"COLUMNS": "120"}).stdout
    assert "expected" in table and f"{rows[0]['expected_stars']:.2f}" in table  # the table shows the mean star too
    assert "pip install 'reviewstars[ray]'" in " ".join(run("predict", "--help", env={"COLUMNS": "300"}).stdout.split())

    source = tmp_path / "reviews.csv"
    pd.DataFrame({"id": [1, 2, 3, 4], "text": ["awful rude worst", "amazing perfect", "decent okay average", " "]}).to_csv(source, index=False)
    output = tmp_path / "predictions.csv"
    run("predict", "--model", trained, "--file", source, "--output", output)
    predictions = pd.read_csv(output, keep_default_na=False)
    assert list(predictions["stars"])[:3] == [1, 5, 3]
    # the same fields as the server, the probabilities as p_k: no column is named like a label
    assert list(predictions.columns) == ["text", "stars", "p_1", "p_2", "p_3", "p_4", "p_5", "expected_stars", "empty"]
    assert list(predictions["empty"]) == [False, False, False, True]


def test_data_stats(tiny_data, tmp_path):
    output = tmp_path / "stats.json"
    result = run("data", "stats", "--data", tiny_data, "--output", output)
    stats = json.loads(output.read_text())
    assert stats["train"]["rows"] == 400 and stats["train"]["stars"] == {str(s): 80 for s in range(1, 6)}
    assert stats["validation"]["word_tokens"]["p50"] > 5
    assert "class balance" in result.stdout and f"wrote {output}" in " ".join(result.stdout.split())
    for args in (("data", "stats", "--data", tiny_data), ("evaluate", "--model", "nowhere", "--data", tiny_data)):
        refused = run(*args, "--output", tmp_path / "stats.csv", check=False)  # JSON under a .csv name: refused first
        assert refused.returncode != 0 and refused.stderr.strip() == (f"error: --output {tmp_path / 'stats.csv'}: this writes "
                                                                     "JSON: give a file name ending in .json")


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngood,9\n")
    result = run("train", "--model", "linear", "--data", bad, "--output", tmp_path / "m", check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {bad}: row 1 (line 2): label 9 is out of range 0..4 (a wider scale (1-10, 0-100, ...): map its values to stars with --label-scale, e.g. 1=1,2=1,3=2,...,10=5)"
    assert not (tmp_path / "m").exists()

    result = run("evaluate", "--model", tmp_path / "missing", "--data", bad, check=False)
    assert result.returncode == 2 and "no such model folder" in result.stderr and "Traceback" not in result.stderr


@needs_yelp
def test_help_and_real_data_smoke(tmp_path):
    assert "train" in run("--help").stdout
    output = tmp_path / "linear"
    run("train", "--model", "linear", "--data", YELP, "--train-size", 2000, "--eval-size", 500, "--output", output)
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["n"] == 500 and metrics["accuracy"] > 0.35  # chance is 0.2 on the balanced validation set


def test_compare_hands_its_scratch_options_to_the_job(monkeypatch, tmp_path):
    """Every scratch option `compare --help` offers reaches the encoder's settings."""
    import reviewstars.jobs.compare
    import reviewstars.errors
    from reviewstars.cli import app
    from typer.testing import CliRunner

    seen = {}

    def compare_job(*args, **kwargs):
        seen.update(kwargs)
        raise reviewstars.errors.ReviewstarsError("stop here")

    monkeypatch.setattr(reviewstars.jobs.compare, "compare", compare_job)
    CliRunner().invoke(app, ["compare", "--output", str(tmp_path), "--layers", "2", "--width", "64", "--heads", "2",
                             "--dropout", "0.25", "--vocab-size", "500"])
    scratch = seen["scratch"]
    assert (scratch.layers, scratch.width, scratch.heads, scratch.feed_forward, scratch.dropout, scratch.vocab_size) == (2, 64, 2, 256, 0.25, 500)


#: Libraries that take a second or more to import; commands that do not use them skip them.
HEAVY = ("datasets", "sklearn", "matplotlib", "torch", "transformers", "huggingface_hub", "scipy.optimize")


@pytest.mark.parametrize("args, code, says", [
    (["--help"], 0, "Usage"),
    (["train", "--help"], 0, "--time-budget"),
    (["predict", "--model", "{linear}", "great food"], 0, "★"),  # a linear model predicts with numpy and scipy alone
    (["predict", "--model", "/no/such/folder", "x"], 2, "error: /no/such/folder: no such model folder"),  # told before any library loads
])
def test_commands_import_none_of_the_slow_libraries_they_do_not_use(args, code, says, trained):
    args = [arg.format(linear=trained) for arg in args]
    probe = ("import json, sys\nsys.argv = ['reviewstars', *sys.argv[1:]]\nfrom reviewstars.cli.main import main\ncode = 0\n"
             "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code or 0\n"
             f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    exit_code, loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert exit_code == code and says in done.stdout + done.stderr and "Traceback" not in done.stderr, (args, done.stderr[-1500:])
    assert loaded == [], (args, loaded)


def test_options_that_would_do_nothing_are_said_not_swallowed(linear_model, tiny_data, tmp_path):
    trained = run_cli("train", "--model", "linear", "--data", tiny_data, "--output", tmp_path / "m", "--epochs", "7",
                      "--layers", "9", "--min-df", "1", columns=400)
    assert trained.returncode == 0, trained.stderr[-1500:]
    assert "warning: linear: --epochs, --layers do not apply to a linear model: ignored" in trained.stderr
    resumed = run_cli("train", "--model", "linear", "--data", tiny_data, "--output", tmp_path / "m", "--resume", columns=400)
    assert resumed.returncode != 0 and "warning" not in resumed.stderr  # refused in one line, not also 'ignored'
    assert resumed.stderr.strip().splitlines() == ["error: --resume: this kind trains in one call, with no checkpoints to "
                                                   "continue from; drop --resume"]
    for args, message in [
        (("--file", tiny_data / "validation.parquet", "--output", tmp_path / "p.csv", "hi"), "give reviews as arguments or --file, not both"),
        (("--shard", "0/2", "hi"), "--shard goes with --file"),
        (("--column", "x", "--engine", "ray", "hi"), "--column, --engine go with --file"),
        (("--batch-size", "0", "hi"), "--batch-size must be at least 1, got 0"),
    ]:
        result = run_cli("predict", "--model", linear_model, *args, columns=400)
        assert result.returncode == 2 and result.stderr.strip() == f"error: {message}", (args, result.stderr)
    assert not (tmp_path / "p.csv").exists()


def test_the_two_usage_errors_a_newcomer_meets_first_say_what_was_meant(linear_model):
    from support import run_cli

    dashed = run_cli("predict", "--model", linear_model, "-terrible service")
    said = " ".join(dashed.stderr.replace("│", " ").split())
    assert dashed.returncode == 2 and "A review that starts with '-' goes after --" in said
    assert "reviewstars predict --model M -- '-terrible service'" in said
    late = run_cli("predict", "--model", linear_model, "--verbose", "great")
    assert late.returncode == 2 and "--verbose goes before the command" in " ".join(late.stderr.replace("│", " ").split())
    assert run_cli("predict", "--model", linear_model, "--", "-terrible service").returncode == 0
    other = run_cli("predict", "--model", linear_model, "--nosuch", "x")
    assert other.returncode == 2 and "goes" not in other.stderr  # no hint where none fits
    negative = run_cli("basics", "params", "100", "-1", "5")
    said = " ".join(negative.stderr.replace("│", " ").split())
    assert negative.returncode == 2 and "-1 is a negative number, which reads as an option" in said
    review = run_cli("predict", "--model", linear_model, "-5")  # a review of "-5": the review's hint, not the sizes'
    said = " ".join(review.stderr.replace("│", " ").split())
    assert review.returncode == 2 and "A review that starts with '-' goes after --" in said and "negative number" not in said


def test_data_stats_counts_repeated_reviews_within_a_split_and_of_the_first(tmp_path):
    """A probe's file repeated 17% of its rows (case aside): `data stats` said nothing of it."""
    import pandas as pd

    from datasets import Dataset, DatasetDict

    from reviewstars.data.stats import data_stats

    train = pd.DataFrame({"text": ["Great tacos.", "great  TACOS.", "Cold soup.", "Rude staff."], "label": [4, 4, 0, 1]})
    validation = pd.DataFrame({"text": ["COLD SOUP.", "Lovely place."], "label": [0, 4]})
    stats = data_stats(DatasetDict({"train": Dataset.from_pandas(train), "validation": Dataset.from_pandas(validation)}))
    assert (stats["train"]["repeated"], stats["validation"]["repeated"], stats["validation"]["also_in_train"]) == (1, 0, 1)
    assert "also_in_train" not in stats["train"]
