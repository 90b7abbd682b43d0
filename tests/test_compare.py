"""`compare` end to end on a few hundred reviews with tiny models; the HTML renders in Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from reviewstars.jobs.compare import compare, worst_mistakes
from reviewstars.data import DataSettings
from reviewstars.jobs import train

from support import fast, tiny_scratch

TINY = tiny_scratch()
FAST = fast(epochs=4)


@pytest.fixture(scope="module")
def compared(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    elsewhere = root / "trained-elsewhere-by-a-colleague-whose-folder-names-run-long"  # the report must wrap it, not overflow
    train("linear", tiny_data, elsewhere)
    output = root / "out"
    started = time.perf_counter()
    board = compare(DataSettings(tiny_data, dev_size=50), output, ["linear", "scratch"], [str(elsewhere)], transformer=FAST, scratch=TINY)
    return output, board, time.perf_counter() - started, elsewhere


def test_the_leaderboard_scores_a_model_as_evaluate_does(compared, tiny_data):
    """The same predictions, the same scores: intervals and the calibration's noise floor
    come out of one fixed seed, not the run's data seed (42 here, as by default)."""
    from reviewstars.jobs import evaluate

    output, board, _, _ = compared
    row = next(r for r in board["models"] if r["model"] == "linear")
    scores = evaluate(output / "models" / "linear", tiny_data, split="validation").rounded(4)
    assert row["accuracy"] == scores.accuracy
    assert row["accuracy_interval"] == scores.intervals["accuracy"] and row["macro_f1_interval"] == scores.intervals["macro_f1"]
    assert (row["ece_noise_floor"], row["ece_noise_95"]) == (scores.ece_noise_floor, scores.ece_noise_95)
    assert row["temperature"] == scores.temperature is not None  # (it was null for every model)


def test_leaderboard_ranks_every_model_honestly(compared):
    output, board, _, elsewhere = compared
    saved = json.loads((output / "leaderboard.json").read_text())
    assert saved["models"] == board["models"] and saved["split"] == "validation" and saved["n"] == 150
    assert [r["model"] for r in board["models"]].count("scratch") == 1 and len(board["models"]) == 4  # + the ensemble
    accuracies = [r["accuracy"] for r in board["models"]]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in board["models"]:
        for key in ("accuracy", "macro_f1", "mae", "off_by_one_accuracy", "parameters", "train_seconds", "train_examples_seen", "predictions_per_second"):
            assert key in row
        assert row["accuracy"] > 0.4 and row["parameters"] > 0
    evaluated = next(r for r in board["models"] if r["model"] == str(elsewhere))
    assert evaluated["train_seconds"] is None
    scratch = next(r for r in board["models"] if r["model"] == "scratch")
    assert scratch["train_examples_seen"] > 350
    for row in board["models"]:  # every score carries its interval, every rank its test
        low, high = row["accuracy_interval"]
        assert low <= row["accuracy"] <= high and row["rank"] >= 1 and 0 <= row["ece"] <= 1
        assert 0 < row["ece_noise_floor"] <= row["ece_noise_95"] < 1  # 150 reviews: a floor well above 0
    ranks = [r["rank"] for r in board["models"]]
    assert ranks[0] == 1 and ranks == sorted(ranks)
    assert all(r["tied"] == (ranks.count(r["rank"]) > 1) for r in board["models"])
    for position, row in enumerate(board["models"][1:], start=1):  # tested against the first of its rank, or of the rank above
        assert row["tested_against"] in [r["model"] for r in board["models"][:position]]
        against = next(r for r in board["models"] if r["model"] == row["tested_against"])
        # joined the rank of the model it was tested against (the test could not tell them apart), or leads a rank of its
        # own: one that a model below may share, so `tied` does not say which (a run whose scratch did so failed here)
        joined = row["p_value_vs_leader"] >= 0.05
        assert against["rank"] == row["rank"] if joined else against["rank"] < row["rank"]
    assert board["models"][0]["tested_against"] is None and board["models"][0]["p_value_vs_leader"] is None
    if not any(r["tied"] for r in board["models"]):
        assert "after a rank" not in (output / "report.md").read_text()
    # what trained each one, and what its folder is: two things, two fields
    assert {r["model"]: (r["recipe"], r["format"]) for r in board["models"]} == {
        "linear": ("linear", "linear"), "scratch": ("scratch", "transformer"), "ensemble": ("ensemble", "ensemble"),
        str(elsewhere): ("linear", "linear")}


def test_report_files(compared):
    output, board, _, _ = compared
    markdown = (output / "report.md").read_text()
    assert "| rank | model | accuracy" in markdown and "![Learning curves](learning_curves.png)" in markdown
    assert "most wrong" in markdown
    assert "noise floor: mean (95th percentile)" in markdown
    assert "within noise" in markdown or "above its noise floor" in markdown
    page = (output / "report.html").read_text()
    from reviewstars.presentation.report import IMAGES

    assert page.count('src="data:image/png;base64,') == len(IMAGES) == 4  # self-contained
    for name in ("learning_curves.png", "accuracy_vs_time.png", "confusion_matrices.png"):
        assert (output / name).read_bytes()[:4] == b"\x89PNG"


def test_rerun_with_the_same_settings_reuses_the_models(compared, tiny_data):
    output, board, first_seconds, elsewhere = compared
    started = time.perf_counter()
    again = compare(DataSettings(tiny_data, dev_size=50), output, ["linear", "scratch"], [str(elsewhere)], transformer=FAST, scratch=TINY)
    assert all(r["reused"] for r in again["models"] if r["train_seconds"] is not None)
    assert [r["accuracy"] for r in again["models"]] == [r["accuracy"] for r in board["models"]]
    # trained models are not even re-scored: their scores on the same texts are kept beside them
    trained = lambda b: {r["model"]: {k: v for k, v in r.items() if k != "reused"} for r in b["models"] if r["train_seconds"] is not None}  # noqa: E731
    assert trained(again) == trained(board) and (output / "models" / "scratch" / "compare_scores.npz").is_file()
    assert time.perf_counter() - started < first_seconds
    changed = compare(DataSettings(tiny_data, dev_size=50, seed=7), output, ["linear"], transformer=FAST, scratch=TINY)
    assert not changed["models"][0]["reused"]  # another seed is another experiment


def test_a_data_file_edited_in_place_is_another_experiment(tiny_data, tmp_path):
    import pandas as pd

    data = tmp_path / "reviews.csv"
    frame = pd.read_parquet(tiny_data / "train.parquet")
    frame.to_csv(data, index=False)
    first = compare(DataSettings(str(data), dev_size=50), tmp_path / "out", ["linear"], ensemble=False)
    frame.assign(label=4 - frame["label"]).to_csv(data, index=False)  # the same path, every rating turned over
    second = compare(DataSettings(str(data), dev_size=50), tmp_path / "out", ["linear"], ensemble=False)
    assert not second["models"][0]["reused"]
    assert first["models"][0]["accuracy"] > 0.4 and second["models"][0]["accuracy"] > 0.4  # trained on what it is scored on


def test_a_rerun_stopped_after_it_replaced_a_model_says_the_leaderboard_is_the_earlier_ones(tiny_data, tmp_path, monkeypatch):
    """A rerun with other settings, stopped mid-way, left a leaderboard of models no longer there, unsaid."""
    import reviewstars.jobs.compare as compare_module
    from reviewstars.errors import Interrupted

    output = tmp_path / "out"
    compare(DataSettings(tiny_data, dev_size=50), output, ["linear", "bag"], transformer=FAST, ensemble=False)
    board = (output / "leaderboard.json").read_bytes()
    trained = []

    def train_then_stop(model, *args, **kwargs):
        if trained:
            raise Interrupted("stopped (Ctrl-C) before the model was written: bag is as it was")
        trained.append(model)
        return train(model, *args, **kwargs)

    monkeypatch.setattr(compare_module, "train", train_then_stop)
    with pytest.raises(Interrupted) as stopped:
        compare(DataSettings(tiny_data, dev_size=50, seed=7), output, ["linear", "bag"], transformer=FAST, ensemble=False)
    assert str(stopped.value) == (f"stopped (Ctrl-C) before the model was written: bag is as it was; {output / 'leaderboard.json'} "
                                  "and its report still describe the earlier comparison, not the new linear: run the same "
                                  "command with --resume to finish this one")
    assert (output / "leaderboard.json").read_bytes() == board

    def train_and_stop_just_after(model, *args, **kwargs):  # the guard's "stopped after the new model was written"
        result = train(model, *args, **kwargs)
        if model == "bag":
            raise Interrupted("stopped (Ctrl-C) after the new model was written: bag holds it, complete")
        return result

    monkeypatch.setattr(compare_module, "train", train_and_stop_just_after)
    with pytest.raises(Interrupted, match="describe the earlier comparison, not the new linear, bag: run the same command"):
        compare(DataSettings(tiny_data, dev_size=50, seed=9), output, ["linear", "bag"], transformer=FAST, ensemble=False)


def test_a_model_scored_on_reviews_it_was_trained_on_says_so_on_the_leaderboard_and_the_terminal(tiny_data, tmp_path):
    """What the report says beside the table, the terminal says too: a probe read a clean
    leaderboard while report.md warned of a model that predicts one star, and of a calibration
    that was not applied."""
    import shutil

    import pandas as pd

    from support import run_cli

    single = tmp_path / "reviews.parquet"  # one file: the held-out reviews are carved from it
    pd.read_parquet(tiny_data / "train.parquet").to_parquet(single)
    elsewhere = tmp_path / "elsewhere"
    train("linear", DataSettings(str(single), seed=7), elsewhere)  # another seed: another cut, so it saw held-out reviews
    uncalibrated = tmp_path / "uncalibrated"  # the same model, as a training that kept calibration out records it
    shutil.copytree(elsewhere, uncalibrated)
    config = json.loads((uncalibrated / "config.json").read_text())
    config["reviewstars"]["training"]["calibration"].update(applied=False, why_not="the temperature 1.3 did not lower it")
    (uncalibrated / "config.json").write_text(json.dumps(config))
    # (--evaluate-only alone scores those folders: a newcomer's also trained linear, scratch and minilm for hours)
    done = run_cli("compare", "--data", single, "--dev-size", "50", "--evaluate-only", f"{elsewhere},{uncalibrated}",
                   "--no-ensemble", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    rows = {row["model"]: row for row in board["models"]}
    assert set(rows) == {str(elsewhere), str(uncalibrated)} and not (tmp_path / "out" / "models").exists()
    assert rows[str(elsewhere)]["warnings"] and "are ones the model was trained on" in rows[str(elsewhere)]["warnings"][0]
    assert rows[str(uncalibrated)]["warnings"][-1] == "calibration not applied: the temperature 1.3 did not lower it"
    said = " ".join(done.stderr.split())  # folded at the terminal's width
    for model, row in rows.items():
        for line in row["warnings"]:
            assert f"warning: {model} {line}" in said
    # the same predictions: the paired test cannot tell them apart, and the legend says what = means
    assert [row["rank"] for row in board["models"]] == [1, 1] and board["models"][1]["tested_against"] == board["models"][0]["model"]
    assert "= after a rank" in done.stdout and "`=` after a rank" in (tmp_path / "out" / "report.md").read_text()
    lines = (tmp_path / "out" / "report.md").read_text().splitlines()  # each warning its own paragraph, not run together
    warned = [i for i, line in enumerate(lines) if line.startswith("> **warning:**")]
    assert len(warned) >= 2 and all(lines[i - 1] == "" for i in warned)


def test_worst_mistakes_are_the_furthest_then_most_confident():
    import numpy as np

    proba = np.array([[0.9, 0.1, 0, 0, 0], [0, 0, 0, 0.4, 0.6], [0, 0, 0, 0, 1.0], [0.2, 0.8, 0, 0, 0], [0, 0, 0, 0.3, 0.7]])
    rows = worst_mistakes(["a", "b", "c", "d", "e"], [0, 0, 1, 1, 1], proba)
    # a, d: right. b: 1★ read as 5★ (4 off, 0.6); c: 2★ as 5★ (3 off, 1.0); e: 2★ as 5★ (3 off, 0.7)
    assert [r["text"] for r in rows] == ["b", "c", "e"]
    assert rows[0]["true_stars"] == 1 and rows[0]["predicted_stars"] == 5


def test_worst_mistakes_follow_the_median_decision():
    import numpy as np

    # argmax says 1 star (0.4); the median of the distribution is 3 stars: right for a 3-star review
    proba = np.array([[0.4, 0.05, 0.2, 0.05, 0.3], [0.4, 0.05, 0.2, 0.05, 0.3]])
    assert [r["text"] for r in worst_mistakes(["a", "b"], [2, 0], proba)] == ["a"]
    rows = worst_mistakes(["a", "b"], [2, 0], proba, decision="median")
    assert [r["text"] for r in rows] == ["b"]
    assert rows[0]["predicted_stars"] == 3 and rows[0]["confidence"] == 0.2


def test_html_report_renders_its_table_and_images_in_headless_chromium(browser, compared, tmp_path):
    output, board, _, _ = compared
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--window-size=1280,2400", "--dump-dom", (output / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    from reviewstars.presentation.report import IMAGES

    assert f'data-images-loaded="{len(IMAGES)}"' in dom, "every image decoded and drawn"
    assert 'data-leaderboard-overflow="0"' in dom, "the whole leaderboard fits a 1280-pixel window"
    table = re.search(r"<table id=\"leaderboard\">.*?</table>", dom, re.S).group(0)
    on_disk = json.loads((output / "leaderboard.json").read_text())  # other tests may have re-run compare here
    assert table.count("<tr>") == 1 + len(on_disk["models"])
    for row in on_disk["models"]:
        low, high = row["accuracy_interval"]
        assert f"<td>{row['accuracy']:.4f}<br><span class=\"interval\">({low:.3f}-{high:.3f})</span></td>" in table
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shot}", (output / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
    printed = tmp_path / "report.pdf"  # and on paper: the print style sheet keeps every section
    subprocess.run([browser, *flags, f"--print-to-pdf={printed}", "--no-pdf-header-footer", (output / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    assert printed.read_bytes()[:5] == b"%PDF-" and printed.stat().st_size > 50_000


def test_the_datas_notes_are_said_once_for_a_compare_not_once_a_model(tiny_data, tmp_path):
    from support import run_cli

    done = run_cli("compare", "--data", tiny_data, "--models", "linear", "--no-ensemble", "-o", tmp_path / "compare")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("the dev slice holds") == 1 and "warning: the dev slice holds" in done.stderr


def test_the_reports_settings_leave_out_the_epochs_a_budget_never_read():
    from reviewstars.presentation.report import _settings_line
    from reviewstars.scoring.leaderboard import LeaderboardRow

    budgeted = LeaderboardRow(model="scratch", settings={"time_budget": 60.0, "epochs": 3.0, "batch_size": 16})
    assert _settings_line(budgeted) == "time_budget 60, batch_size 16"
    assert _settings_line(LeaderboardRow(model="scratch", settings={"epochs": 3.0})) == "epochs 3"


def test_the_report_shows_names_and_reviews_as_they_read_and_an_ensembles_weights():
    from reviewstars.presentation.report import _md_cell, _settings_line
    from reviewstars.scoring.leaderboard import LeaderboardRow
    from reviewstars.scoring.scores import Scores

    assert _md_cell("odd|name<b>/m") == "odd\\|name&lt;b&gt;/m"  # the table keeps its columns; no HTML reaches the renderer
    assert _md_cell("<script>alert(1)</script> & more") == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"
    ensemble = LeaderboardRow(model="ensemble", settings={"members": ["linear", "bag"], "weights": [0.8834, 0.1166]})
    assert _settings_line(ensemble) == "linear 0.88, bag 0.12"
    pruned = LeaderboardRow(model="ensemble", settings={"members": ["linear", "minilm"], "weights": [0.47, 0.53], "left_out": ["scratch"]})
    assert _settings_line(pruned) == "linear 0.47, minilm 0.53, scratch left out"
    row = LeaderboardRow(model="linear", scores=Scores(n=10, accuracy=0.5, ece=0.118519))
    assert row.record()["ece"] == 0.1185 and "0.119" in row.cells()  # rounded once, from the score itself


def test_a_folder_to_evaluate_is_loaded_once_on_the_cpu(tiny_data, tmp_path, monkeypatch):
    """It is loaded up front (broken weights: one line before any model trains); a probe saw it
    loaded again to be scored."""
    import importlib

    compare_module, evaluate_module = (importlib.import_module(f"reviewstars.jobs.{name}") for name in ("compare", "evaluate"))
    import pandas as pd

    single = tmp_path / "reviews.parquet"  # held-out reviews cut by seed: the folder kept no scores on the run's
    pd.read_parquet(tiny_data / "train.parquet").to_parquet(single)
    elsewhere = tmp_path / "elsewhere"
    train("linear", DataSettings(str(single), seed=7), elsewhere)
    loads = []
    for module in (compare_module, evaluate_module):
        real = module.load_predictor
        monkeypatch.setattr(module, "load_predictor", lambda path, *a, _real=real, **k: loads.append(str(path)) or _real(path, *a, **k))
    board = compare(DataSettings(str(single), dev_size=50), tmp_path / "out", [], [str(elsewhere)], device="cpu", ensemble=False)
    assert loads == [str(elsewhere)] and board["models"][0]["accuracy"] > 0.3
    # nothing trained here: no empty training-loss and time axes in the report (a probe found both)
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "Learning curves" not in page
    assert not (tmp_path / "out" / "learning_curves.png").exists() and "accuracy_vs_time" not in (tmp_path / "out" / "report.md").read_text()


def test_a_resume_with_other_settings_is_refused_before_any_model_retrains(tiny_data, tmp_path, monkeypatch):
    """A probe's `compare --resume` with another --train-size retrained linear first, then said scratch's run
    had other settings; its advice ("drop --resume") was then refused as an interrupted run's."""
    from reviewstars.artifacts import mark_ours
    from reviewstars.errors import ReviewstarsError
    from reviewstars.jobs import compare as compare_module
    from reviewstars.jobs.guard import run_record, start_run

    output = tmp_path / "out"
    stopped = output / "models" / "scratch"
    started = DataSettings(str(tiny_data), dev_size=50, train_size=300)
    start_run(stopped, run_record({"model": "scratch", "data": started, "transformer": fast(seed=started.seed),
                                   "kind_settings": {"scratch": tiny_scratch()}}))
    mark_ours(output, compare_module.COMPARISON)
    monkeypatch.setattr(compare_module, "train", lambda *args, **kwargs: pytest.fail("a model was trained"))
    with pytest.raises(ReviewstarsError, match=rf"--resume: the run in {stopped} was started with other settings "
                                               rf"\(--train-size 300, not 200\); give the same ones to continue it, or "
                                               rf"remove {stopped / 'checkpoints'} to start afresh"):
        compare(DataSettings(str(tiny_data), dev_size=50, train_size=200), output, ["linear", "scratch"],
                transformer=fast(resume=True), scratch=tiny_scratch())
