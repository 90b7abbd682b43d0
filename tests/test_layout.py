"""What a person reads fits their screen: tables at 80 columns with no number cut or split,
the report's intervals on a line of their own, messages folded at words in a terminal."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
from datasets import Dataset, DatasetDict
from rich.console import Console

from reviewstars.scoring.scores import Scores, score_predictions
from reviewstars.scoring.leaderboard import LeaderboardRow
from reviewstars.data.stats import data_stats
from reviewstars.presentation.tables import FULL_LEADERBOARD_WIDTH, leaderboard, metrics_table, stats_tables


def rendered(table, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue()


def rows() -> list[LeaderboardRow]:
    scores = dict(mae=0.755, off_by_one_accuracy=0.8365, ece=0.038, ece_uncalibrated=0.143, ece_noise_floor=0.027,
                  predictions_per_second=10451.0)
    common = dict(budget_share_in_steps=0.89, ended="deadline")
    return [
        LeaderboardRow(model="ensemble-of-three", scores=Scores(accuracy=0.4815, macro_f1=0.4583, **scores, intervals={
                           "accuracy": [0.4600, 0.5030], "macro_f1": [0.4362, 0.4790]}), parameters=28_096_339,
                       train_seconds=1234.5, train_examples_seen=1_234_567, rank=1, tied=True, **common),
        LeaderboardRow(model="minilm", scores=Scores(accuracy=0.6520, macro_f1=0.6488, **scores, intervals={
                           "accuracy": [0.6310, 0.6730], "macro_f1": [0.6270, 0.6700]}), parameters=22_715_141,
                       train_seconds=175.0, train_examples_seen=76_496, rank=2, **common),
    ]


def numbers_of(text: str) -> set[str]:
    return set(re.findall(r"\d[\d,]*\.?\d*", text))


def test_the_leaderboard_at_80_columns_keeps_every_score_whole_and_says_what_it_left_out():
    text = rendered(leaderboard(rows(), "leaderboard on validation (2,000 reviews)", width=80), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for expected in ("0.4815", "(0.460-0.503)", "0.6520", "(0.631-0.673)", "0.755", "0.038", "ensemble-of-three"):
        assert expected in text, expected
    assert "train s, reviews seen, budget in steps: in a wider terminal" in text  # dropped, and said so
    assert "1,234,567" not in text


def test_a_wide_terminal_gets_the_training_columns_too():
    text = rendered(leaderboard(rows(), "leaderboard", width=FULL_LEADERBOARD_WIDTH), FULL_LEADERBOARD_WIDTH)
    assert "1,234,567" in text and "89%" in text and "wider terminal" not in text
    assert max(len(line) for line in text.splitlines()) <= FULL_LEADERBOARD_WIDTH


def test_the_evaluate_summary_and_data_stats_fit_80_columns_without_cutting_a_number():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 400)
    proba = rng.dirichlet(np.ones(5), size=len(labels))
    metrics = score_predictions(proba, labels)
    metrics_text = rendered(metrics_table(metrics, "runs/a-rather-long-model-folder-name/linear on validation"), 80)
    long_review = "word " * 12_834  # a length with five digits, which used to be cut to `1283…`
    frame = pd.DataFrame({"text": ["short one", long_review] * 250, "label": list(range(5)) * 100})
    stats = data_stats(DatasetDict({"train": Dataset.from_pandas(frame), "validation": Dataset.from_pandas(frame)}))
    stats_text = "".join(rendered(table, 80) for table in stats_tables(stats))
    for text in (metrics_text, stats_text):
        assert "…" not in text
        assert max(len(line) for line in text.splitlines()) <= 80
    assert f"accuracy={metrics.accuracy:.4f}" in metrics_text
    assert f"{stats['train']['characters']['max']:,.0f}" in stats_text and "64,170" in stats_text


def test_the_report_puts_an_interval_on_its_own_line_and_never_splits_it():
    from reviewstars.presentation.report import _html_cell

    assert _html_cell("0.4815 (0.460-0.503)") == "0.4815<br><span class='interval'>(0.460-0.503)</span>"
    assert _html_cell("linear (reused)") == "linear (reused)"  # not a number with an interval: as it is
    assert _html_cell("<b>") == "&lt;b&gt;"


def test_messages_are_one_line_in_a_file_and_folded_at_words_in_a_terminal(monkeypatch):
    from reviewstars import progress

    message = "the budget of 60 s fits only ~18 steps (288 reviews): too few to learn anything; at least 100 steps"
    for is_terminal, expect_lines in ((False, 1), (True, 3)):
        console = Console(file=io.StringIO(), width=40, force_terminal=is_terminal, color_system=None)
        monkeypatch.setattr(progress, "console", console)
        progress.warn(message)
        lines = console.file.getvalue().splitlines()
        assert len(lines) >= expect_lines
        words = " ".join(lines).split()
        assert words == ["warning:", *message.split()]  # every word whole: folded between words, never inside one
