"""`merge` trusts no shard blindly: each says which input, which model and which i of N
it is, and a set that is not N shards of one input by one model is refused in one line."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from reviewstars.data.frames import read_frame
from reviewstars.errors import ReviewstarsError
from reviewstars.jobs import merge_predictions, predict_file

from conftest import synthetic_reviews


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "reviews.csv"
    synthetic_reviews(30, seed=4)[["text"]].to_csv(path, index=False)
    return path


def _shards(model, source, folder, count=3, suffix=".csv", only=None):
    parts = [folder / f"part{i}{suffix}" for i in range(count)]
    for i, part in enumerate(parts):
        if only is None or i in only:
            predict_file(model, source, part, shard=f"{i}/{count}")
    return parts


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_shard_that_received_no_rows_is_a_valid_empty_file_that_merge_accepts(linear_model, tmp_path, suffix):
    source = tmp_path / "two.csv"
    pd.DataFrame({"text": ["great food", "cold soup"]}).to_csv(source, index=False)
    parts = _shards(linear_model, source, tmp_path, count=4, suffix=suffix)
    record = json.loads(parts[3].with_name(parts[3].name + ".shard.json").read_text())
    assert record["shard"] == [3, 4] and record["rows"] == 0
    if suffix != ".jsonl":  # JSON Lines has no header: an empty file is its empty table
        empty = pd.read_csv(parts[3]) if suffix == ".csv" else pd.read_parquet(parts[3])
        assert len(empty) == 0 and list(empty.columns)[:3] == ["row", "text", "stars"]
    merged = tmp_path / f"merged{suffix}"
    assert merge_predictions(parts, merged)["rows"] == 2
    whole = tmp_path / f"whole{suffix}"
    predict_file(linear_model, source, whole)
    pd.testing.assert_frame_equal(read_frame(merged), read_frame(whole))


def test_merge_refuses_a_shard_of_another_input(linear_model, source, tmp_path):
    parts = _shards(linear_model, source, tmp_path, only=(0, 1))
    other = tmp_path / "other.csv"
    synthetic_reviews(30, seed=5)[["text"]].to_csv(other, index=False)
    predict_file(linear_model, other, parts[2], shard="2/3")
    with pytest.raises(ReviewstarsError, match=f"^{parts[2]}: made from another input \\(other.csv\\) than {parts[0]} \\(reviews.csv\\)$"):
        merge_predictions(parts, tmp_path / "merged.csv")


def test_merge_refuses_a_shard_of_another_model(linear_model, source, tmp_path):
    retrained = tmp_path / "retrained"
    shutil.copytree(linear_model, retrained)
    config = json.loads((retrained / "config.json").read_text())
    config["reviewstars"]["settings"]["C"] = 2.0  # another model, as far as its config can tell
    (retrained / "config.json").write_text(json.dumps(config))
    parts = _shards(linear_model, source, tmp_path, only=(0, 2))
    predict_file(retrained, source, parts[1], shard="1/3")
    with pytest.raises(ReviewstarsError, match=f"^{parts[1]}: made from another model \\(retrained\\) than {parts[0]} \\(linear\\)$"):
        merge_predictions(parts, tmp_path / "merged.csv")


def test_merge_names_a_missing_or_repeated_shard(linear_model, source, tmp_path):
    parts = _shards(linear_model, source, tmp_path, count=4)
    with pytest.raises(ReviewstarsError, match="^shard 1/4, 3/4 missing: give the outputs of all 4 shards$"):
        merge_predictions([parts[0], parts[2]], tmp_path / "merged.csv")
    copy = tmp_path / "copy.csv"
    shutil.copy(parts[2], copy)
    shutil.copy(parts[2].with_name(parts[2].name + ".shard.json"), copy.with_name(copy.name + ".shard.json"))
    with pytest.raises(ReviewstarsError, match=f"^shard 2/4 given twice: {parts[2]} and {copy}$"):
        merge_predictions([*parts, copy], tmp_path / "merged.csv")
    predict_file(linear_model, source, tmp_path / "of5.csv", shard="4/5")
    with pytest.raises(ReviewstarsError, match="shard 4/5, but .* is one of 4"):
        merge_predictions([*parts[:3], tmp_path / "of5.csv"], tmp_path / "merged.csv")
    assert not (tmp_path / "merged.csv").exists()


def test_merge_refuses_an_output_its_record_does_not_describe(linear_model, source, tmp_path):
    parts = _shards(linear_model, source, tmp_path)
    frame = pd.read_csv(parts[1])
    frame.loc[0, "stars"] = 5 if frame.loc[0, "stars"] != 5 else 1  # edited, or rewritten by another run
    frame.to_csv(parts[1], index=False)
    with pytest.raises(ReviewstarsError, match=f"^{parts[1]}: is not the file part1.csv.shard.json describes"):
        merge_predictions(parts, tmp_path / "merged.csv")
    unsharded = tmp_path / "whole.csv"
    predict_file(linear_model, source, unsharded)
    with pytest.raises(ReviewstarsError, match="no whole.csv.shard.json beside it: not an output of `predict --shard i/N`"):
        merge_predictions([unsharded], tmp_path / "merged.csv")
    with pytest.raises(ReviewstarsError, match="a folder, not a shard's output"):  # (it said "no such file")
        merge_predictions([tmp_path], tmp_path / "merged.csv")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_merge_refuses_shards_rated_with_and_without_keep_columns(linear_model, tmp_path, suffix):
    source = tmp_path / "mine.csv"
    rows = synthetic_reviews(30, seed=4)
    rows.assign(id=range(30), shop="A")[["id", "text", "shop"]].to_csv(source, index=False)
    parts = [tmp_path / f"part{i}{suffix}" for i in range(2)]
    predict_file(linear_model, source, parts[0], shard="0/2", keep_columns=True)
    predict_file(linear_model, source, parts[1], shard="1/2")
    with pytest.raises(ReviewstarsError, match=f"^{parts[1]}: has other columns than {parts[0]} \\(10 columns against 12 "
                                               "columns\\): rate every shard with the same options"):
        merge_predictions(parts, tmp_path / f"merged{suffix}")
    assert not (tmp_path / f"merged{suffix}").exists()
    predict_file(linear_model, source, parts[1], shard="1/2", keep_columns=True)  # the same options: they merge
    assert merge_predictions(parts, tmp_path / f"merged{suffix}")["rows"] == 30
    assert list(read_frame(tmp_path / f"merged{suffix}").columns)[:3] == ["id", "text", "shop"]


def test_a_whole_run_into_a_sharded_runs_output_removes_its_record(linear_model, source, tmp_path):
    """--shard 1/2, then --shard 0/1 (the whole file) into the same output left a record of a file that was gone."""
    output = tmp_path / "stars.csv"
    predict_file(linear_model, source, output, shard="1/2")
    assert (tmp_path / "stars.csv.shard.json").is_file()
    predict_file(linear_model, source, output, shard="0/1")
    assert not (tmp_path / "stars.csv.shard.json").exists() and output.is_file()


def test_merge_refuses_an_output_of_no_known_format(linear_model, source, tmp_path):
    parts = _shards(linear_model, source, tmp_path)
    for name in ("merged.txt", "merged"):  # JSON Lines went into either, where predict refuses the names
        with pytest.raises(ReviewstarsError, match=f"{name}: output must end in .parquet, .csv, .jsonl"):
            merge_predictions(parts, tmp_path / name)
        assert not (tmp_path / name).exists()
