"""A training file larger than what a run learns from: only the reviews sampled are read,
checked and tokenized; a fault in them names its row as numbered in the file; the held-out
reviews and the dev slice stay balanced and the same whatever is sampled."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reviewstars.data import DataSettings, carve_dev, read_file, subset, training_splits
from reviewstars.data.files import _RowChecker
from reviewstars.errors import DataError

from conftest import synthetic_reviews
from support import tiny_scratch

ROWS = 5000


def _numbered(n: int, seed: int = 5) -> pd.DataFrame:
    """Synthetic reviews, each saying its row number (1-based): a test reads back where a row came from."""
    rows = synthetic_reviews(n, seed=seed)
    rows["text"] = [f"Review {i + 1}. {text}" for i, text in enumerate(rows["text"])]
    return rows


def _row_of(text: str) -> int:
    return int(text.split(".")[0].removeprefix("Review "))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """5,000 reviews in row groups of 500, as a large file has them."""
    path = tmp_path_factory.mktemp("big") / "big.parquet"
    pq.write_table(pa.Table.from_pandas(_numbered(ROWS), preserve_index=False), path, row_group_size=500)
    return path


@pytest.fixture
def rows_checked(monkeypatch):
    """How many rows were checked (each one read into Python and validated)."""
    count = Counter()
    check = _RowChecker.check

    def counted(self, *args, **kwargs):
        count["rows"] += 1
        return check(self, *args, **kwargs)

    monkeypatch.setattr(_RowChecker, "check", counted)
    return count


def test_only_the_sample_is_read_and_the_plan_line_says_of_what(big_file, rows_checked):
    splits = training_splits(DataSettings(big_file, train_size=300, dev_size=50, eval_size=100))
    assert (len(splits.train), len(splits.dev), len(splits.held_out)) == (300, 50, 100)
    assert rows_checked["rows"] == 300 + 50 + 100  # not 5,000
    assert splits.describe().startswith("sampled 450 of 5,000 reviews in big.parquet (--train-size 300): 300 reviews to train on")
    rows = [_row_of(text) for part in (splits.train, splits.dev, splits.held_out) for text in part["text"]]
    assert len(set(rows)) == 450  # three disjoint parts


def test_train_size_is_what_is_trained_on_even_beside_a_larger_dev_slice(big_file, tiny_data):
    """--train-size 200 with the default dev slice of 500 trained on 560 reviews and followed 140."""
    splits = training_splits(DataSettings(big_file, train_size=200, dev_size=500))
    assert (len(splits.train), len(splits.dev)) == (200, 500) and not splits.notes
    small = training_splits(DataSettings(tiny_data, train_size=300, dev_size=200))  # 400 reviews: not enough for both
    assert (len(small.train), len(small.dev)) == (300, 100)
    assert small.notes == ["the dev slice holds 100 reviews, not --dev-size 200: the training data has 400 "
                           "(--train-size takes 300)"]


def test_the_sample_is_the_one_a_whole_read_would_give(big_file):
    """Small files behave as before: the same rows, in the same order, for the same seed."""
    data = DataSettings(big_file, train_size=300, dev_size=50, seed=9)
    splits = training_splits(data)
    whole = read_file(big_file)  # as the whole file read, then cut, did it
    rest, held_out = carve_dev(whole, min(2000, ROWS // 5), data.seed + 1, at_most=ROWS // 2)
    train, dev = carve_dev(subset(rest, 300 + 50, data.seed), 50, data.seed)
    for part, expected in ((splits.train, train), (splits.dev, dev), (splits.held_out, held_out)):
        assert part["text"] == expected["text"] and part["label"] == expected["label"]


def test_a_bad_row_in_the_sample_names_its_row_in_the_file_and_one_outside_it_costs_nothing(big_file, tmp_path):
    data = dict(train_size=300, dev_size=50, eval_size=100)
    splits = training_splits(DataSettings(big_file, **data))
    read = {_row_of(text) for part in (splits.train, splits.dev, splits.held_out) for text in part["text"]}
    inside = min(_row_of(text) for text in splits.train["text"])
    outside = next(row for row in range(ROWS, 0, -1) if row not in read)
    rows = _numbered(ROWS)
    rows.loc[outside - 1, "text"] = ""  # never read: no error
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path, row_group_size=500)
    assert training_splits(DataSettings(path, **data)).train["text"] == splits.train["text"]
    with pytest.raises(DataError, match=f"big.parquet: row {outside}: text is empty"):
        read_file(path)  # a whole read still checks every row
    rows.loc[inside - 1, "text"] = "   "
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path, row_group_size=500)
    with pytest.raises(DataError) as error:
        training_splits(DataSettings(path, **data))
    assert str(error.value).endswith(f"big.parquet: row {inside}: text is empty")


def test_same_seed_same_sample_and_the_classes_stay_balanced(big_file):
    first = training_splits(DataSettings(big_file, train_size=1000, dev_size=100, seed=3))
    again = training_splits(DataSettings(big_file, train_size=1000, dev_size=100, seed=3))
    other = training_splits(DataSettings(big_file, train_size=1000, dev_size=100, seed=4))
    assert first.train["text"] == again.train["text"] and first.train["text"] != other.train["text"]
    assert sorted(Counter(first.dev["label"]).values()) == [20] * 5
    assert sorted(Counter(first.held_out["label"]).values()) == [200] * 5  # a fifth of the file, balanced
    assert all(150 <= count <= 250 for count in Counter(first.train["label"]).values())


def test_a_budget_cap_samples_the_training_reviews_and_leaves_held_out_and_dev_as_they_were(big_file, rows_checked):
    data = DataSettings(big_file, dev_size=50)
    capped = training_splits(data, at_most=400, why="a 2m budget learns from at most 400")
    assert len(capped.train) == 400 and rows_checked["rows"] == 400 + 50 + 1000
    assert "sampled 1,450 of 5,000 reviews in big.parquet (a 2m budget learns from at most 400): 400 reviews" in capped.describe()
    whole = training_splits(data)
    assert capped.dev["text"] == whole.dev["text"] and capped.held_out["text"] == whole.held_out["text"]
    assert set(capped.train["text"]) < set(whole.train["text"]) and whole.sampled is None


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_line_formats_keep_only_the_sample_and_give_the_same_rows(big_file, tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    rows = _numbered(ROWS)
    rows.to_csv(path, index=False) if suffix == ".csv" else rows.to_json(path, orient="records", lines=True)
    data = dict(train_size=300, dev_size=50, eval_size=100, seed=2)
    lines, parquet = training_splits(DataSettings(path, **data)), training_splits(DataSettings(big_file, **data))
    assert lines.train["text"] == parquet.train["text"] and lines.held_out["label"] == parquet.held_out["label"]
    assert lines.sampled.startswith(f"sampled 450 of 5,000 reviews in big{suffix}")


def test_a_budget_needs_the_reviews_it_can_see_in_one_pass_and_no_fewer_than_a_plan_takes():
    from reviewstars.training.budget import MIN_EXAMPLES, reviews_a_budget_can_use

    assert reviews_a_budget_can_use(120, "cpu", cores=2) == MIN_EXAMPLES  # 2 cores see some 6,000 in 2 minutes
    assert reviews_a_budget_can_use(1800, "cpu", cores=2) == 180_000
    assert reviews_a_budget_can_use(120, "cuda:0") == reviews_a_budget_can_use(60, "cuda", processes=2) == 600_000


@pytest.mark.parametrize("strategy", ["head", "tail", "head+tail"])
def test_cutting_inside_the_tokenizer_gives_the_ids_of_cutting_after_it(strategy):
    from reviewstars.tokenization import encode, pieces_tokenizer, train_wordpiece

    texts = list(_numbered(300)["text"]) + ["", "word " * 90, "x" * 3000, "great " * 7]
    tokenizer = train_wordpiece(texts, vocab_size=300)
    for max_length in (3, 5, 9, 16, 40):
        assert encode(tokenizer, texts, max_length, strategy, backend=pieces_tokenizer(tokenizer)) == \
            encode(tokenizer, texts, max_length, strategy)


@pytest.mark.trainer
def test_a_budget_run_reads_and_tokenizes_only_what_it_trains_on(big_file, tmp_path, monkeypatch, rows_checked):
    from reviewstars.jobs import train
    from reviewstars.tokenization import Encoder
    from reviewstars.training import TrainSettings, budget

    monkeypatch.setattr(budget, "reviews_a_budget_can_use", lambda *args, **kwargs: 400)
    tokenized = Counter()
    call = Encoder.__call__
    monkeypatch.setattr(Encoder, "__call__", lambda self, texts: tokenized.update(reviews=len(texts)) or call(self, texts))
    settings = TrainSettings(time_budget=6, max_length=32, learning_rate=3e-3)
    result = train("scratch", DataSettings(big_file, dev_size=50, eval_size=100), tmp_path / "model", transformer=settings,
                   scratch=tiny_scratch())
    assert result.train_examples == 400 and result.dev_examples == 50 and result.held_out_examples == 100
    assert rows_checked["rows"] == 400 + 50 + 100
    assert tokenized["reviews"] == 400 + 50  # the training set and the dev slice, no more
    first = result.plan["first_step"]
    assert first["peak_memory_mb"] > 0 and first["started"] > 0
    assert np.isfinite(result.metrics.accuracy)


def test_a_run_context_read_once_caps_to_the_very_reviews_a_capped_read_keeps(big_file):
    """`compare` reads the data once and hands it to every model: a budget's cap taken from
    that whole read must train on the reviews a model trained alone would, in their order."""
    from reviewstars.jobs.context import RunContext

    data = DataSettings(big_file, dev_size=50)
    alone = training_splits(data, at_most=400, why="a 2m budget learns from at most 400")
    context = RunContext.open(data, check_device=False)
    whole = context.splits()
    shared = context.splits(400, "a 2m budget learns from at most 400")
    assert shared.train["text"] == alone.train["text"] and shared.train["label"] == alone.train["label"]
    assert shared.dev["text"] == alone.dev["text"] and shared.held_out["text"] == alone.held_out["text"]
    assert shared.describe() == alone.describe()
    assert context.splits() is whole and len(whole.train) > 400  # the whole read stays for the next model
    capped_first = RunContext.open(data, check_device=False)
    assert len(capped_first.splits(400).train) == 400
    assert capped_first.splits().train["text"] == whole.train["text"]  # a capped read first: the whole one is read again
