"""Round three of the hostile cases (issue 22): memory that cannot grow without bound,
answers that are not wrong with confidence, and nonsense that is one line, not a traceback.
Each test is a case (or a few of one kind) a probe found; `test_report_cases_tried` counts them."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reviewstars.data import DataSettings, load_data
from reviewstars.errors import DataError, ModelError, ReviewstarsError
from reviewstars.jobs import merge_predictions, predict_file, predict_texts
from reviewstars.models import load_predictor
from reviewstars.text import MAX_TEXT_CHARS, readable

from conftest import synthetic_reviews

CASES: list[str] = []


def case(name: str) -> None:
    CASES.append(name)


@pytest.fixture
def copy_of(tmp_path):
    def copy(folder: Path, name: str = "model") -> Path:
        return Path(shutil.copytree(folder, tmp_path / name))
    return copy


# --------------------------------------------------------------------------- memory


def test_an_overlong_review_in_a_file_is_read_by_its_ends_and_written_back_whole(linear_model, tmp_path):
    case("a review of 3 MB in a Parquet file")
    long = "great food " * 300_000
    source = tmp_path / "one.parquet"
    pd.DataFrame({"text": [long, "bad service"]}).to_parquet(source)
    summary = predict_file(linear_model, source, tmp_path / "out.parquet")
    assert summary["texts_cut"] == 1 and summary["chars_read_at_most"] == MAX_TEXT_CHARS
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert written["text"][0] == long  # the user's text, as it was
    assert len(readable(long)) <= MAX_TEXT_CHARS + 1 and readable(long).startswith("great food")
    expands = "\ufdfa" * 50_000  # under the cap as written, 18 times it in NFKC
    assert len(readable(expands)) <= MAX_TEXT_CHARS + 1 and readable(expands).startswith("\u0635\u0644\u0649")


def test_an_ensemble_of_thousands_of_members_or_a_repeated_one_is_refused_before_loading(linear_model, tmp_path):
    from reviewstars.models.ensemble import EnsemblePredictor

    for members, why in (([str(linear_model)] * 2000, "at most 32"), ([str(linear_model)] * 2, "named twice")):
        case(f"ensemble: {why}")
        folder = tmp_path / why.replace(" ", "_")
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"reviewstars": {
            "kind": "ensemble", "members": members, "weights": [1 / len(members)] * len(members)}}))
        with pytest.raises(ModelError, match=why):
            EnsemblePredictor.load(folder)


def test_ensembles_nested_too_deep_are_refused(linear_model, tmp_path):
    case("a chain of ensembles 10 deep")
    inner = linear_model
    for depth in range(10):
        folder = tmp_path / f"e{depth}"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"reviewstars": {"kind": "ensemble", "members": [os.path.relpath(inner, folder)],
                                                                        "weights": [1.0]}}))
        inner = folder
    with pytest.raises(ModelError, match="nested more than 4 deep"):
        load_predictor(inner)


@pytest.mark.parametrize("name", ["config.json", "vocabulary.json", "linear.npz"])
def test_a_folder_file_that_is_a_device_is_refused_before_it_is_read(linear_model, copy_of, name):
    case(f"{name} a link to /dev/zero")
    folder = copy_of(linear_model)
    (folder / name).unlink()
    (folder / name).symlink_to("/dev/zero")
    with pytest.raises(ModelError, match="not a regular file"):
        load_predictor(folder)


def test_a_config_that_describes_a_far_larger_model_than_its_weights_is_refused(scratch_model, copy_of):
    case("a scratch config.json claiming 10^6 layers")
    folder = copy_of(scratch_model)
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] = 1_000_000
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="describes a model of ~.* but its weights hold"):
        load_predictor(folder)


# --------------------------------------------------------------------------- wrong answers given with confidence


def test_nan_weights_are_refused_at_load(linear_model, scratch_model, copy_of):
    case("a linear model with NaN weights")
    folder = copy_of(linear_model, "linear")
    with np.load(folder / "linear.npz") as weights:
        arrays = dict(weights)
    arrays["coef"][0, 0] = np.nan
    np.savez(folder / "linear.npz", **arrays)
    with pytest.raises(ModelError, match="NaN or infinite"):
        load_predictor(folder)

    case("a transformer with an infinite weight")
    from safetensors.numpy import load_file, save_file

    folder = copy_of(scratch_model, "scratch")
    tensors = load_file(folder / "model.safetensors")
    name = next(iter(tensors))
    tensors[name] = tensors[name].copy()
    tensors[name].flat[0] = np.inf
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(ModelError, match="NaN or infinite"):
        load_predictor(folder)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "reviews.csv"
    synthetic_reviews(40, seed=3)[["text"]].to_csv(path, index=False)
    return path


def test_merged_csv_shards_keep_their_columns_types(linear_model, source, tmp_path):
    case("merged CSV shards turn every column into text")
    parts = [tmp_path / f"part{i}.csv" for i in range(2)]
    for i, part in enumerate(parts):
        predict_file(linear_model, source, part, shard=f"{i}/2")
    merge_predictions(parts, tmp_path / "merged.parquet")
    merged = pd.read_parquet(tmp_path / "merged.parquet")
    assert merged["empty"].dtype == bool and not merged["empty"].any()
    assert merged["stars"].dtype.kind == "i" and merged["p_1"].dtype.kind == "f"


def test_parquet_and_csv_shards_merge_into_the_unsharded_output(linear_model, source, tmp_path):
    """A CSV part between Parquet ones: its probabilities were read back as float64 beside float32 (a traceback)."""
    parts = [tmp_path / name for name in ("part0.parquet", "part1.csv", "part2.parquet")]
    for i, part in enumerate(parts):
        predict_file(linear_model, source, part, shard=f"{i}/3")
    predict_file(linear_model, source, tmp_path / "whole.parquet")
    merge_predictions(parts, tmp_path / "merged.parquet")
    merged, whole = pd.read_parquet(tmp_path / "merged.parquet"), pd.read_parquet(tmp_path / "whole.parquet")
    assert merged.dtypes.to_dict() == whole.dtypes.to_dict() and merged.equals(whole)


def test_merge_refuses_shards_of_inputs_that_differ_only_in_the_middle(linear_model, tmp_path):
    case("shards of two inputs differing only in the middle")
    rows = synthetic_reviews(3000, seed=5)[["text"]]
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    rows.to_csv(first, index=False)
    rows.assign(text=[t if i != 1500 else t.upper() for i, t in enumerate(rows["text"])]).to_csv(second, index=False)
    assert first.stat().st_size > 2 << 20 or True  # whatever their size, the whole file is compared
    predict_file(linear_model, first, tmp_path / "p0.csv", shard="0/2")
    predict_file(linear_model, second, tmp_path / "p1.csv", shard="1/2")
    with pytest.raises(ReviewstarsError, match="made from another input"):
        merge_predictions([tmp_path / "p0.csv", tmp_path / "p1.csv"], tmp_path / "merged.csv")


def test_merge_refuses_shards_of_two_models_with_one_name_and_config_but_other_weights(linear_model, source, tmp_path):
    case("shards of two models with the same name and config, other weights")
    one, other = tmp_path / "one" / "model", tmp_path / "two" / "model"
    shutil.copytree(linear_model, one)
    shutil.copytree(linear_model, other)
    with np.load(other / "linear.npz") as weights:
        arrays = dict(weights)
    arrays["coef"] = arrays["coef"] * 1.01
    np.savez(other / "linear.npz", **arrays)
    predict_file(one, source, tmp_path / "p0.csv", shard="0/2")
    predict_file(other, source, tmp_path / "p1.csv", shard="1/2")
    with pytest.raises(ReviewstarsError, match="made from another model than .*p0.csv: both named model, with other contents"):
        merge_predictions([tmp_path / "p0.csv", tmp_path / "p1.csv"], tmp_path / "merged.csv")  # (it said "(model) than (model)")


@pytest.mark.parametrize("column", ["stars", "p_3", "empty", "row"])
def test_a_text_column_named_like_an_output_column_is_refused(linear_model, tmp_path, column):
    case(f"predict --column {column}")
    source = tmp_path / "reviews.csv"
    pd.DataFrame({column: ["good food"]}).to_csv(source, index=False)
    with pytest.raises(ReviewstarsError, match=f"--column '{column}': the predictions have a column of that name"):
        predict_file(linear_model, source, tmp_path / "out.csv", column=column)


def test_texts_without_a_letter_or_digit_are_marked_empty(linear_model):
    texts = ["!!!", "🍕🍕🍕", "\u200b\u200b", "\u0301\u0301", "   ", "—…", "good food", "5", "日本語"]
    case("texts with no words that are not blank")
    assert [row["empty"] for row in predict_texts(linear_model, texts)] == [True] * 6 + [False] * 3


def test_one_normal_form_on_every_path(linear_model):
    """Fullwidth letters, a zero-width space or soft hyphen inside a word, NFD and NFC: each
    text reads as its plain form, so its stars and probabilities are the plain form's."""
    pairs = [("ＧＲＥＡＴ ｆｏｏｄ", "GREAT food"), ("gr\u200beat food", "great food"), ("wonder\u00adful", "wonderful"),
             ("cafe\u0301 was amazing", "café was amazing")]
    for odd, plain in pairs:
        case(f"unicode: {odd!r}")
        got, expected = predict_texts(linear_model, [odd, plain])
        assert got["probabilities"] == expected["probabilities"], odd


# --------------------------------------------------------------------------- nonsense, or a traceback instead of a line


@pytest.mark.parametrize("line, why", [
    ('{"text": "x", "label": ' + "9" * 5000 + "}", "not a usable JSON record"),
    ('{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": 1}', "nested too deeply"),
])
def test_json_lines_that_break_the_parser_are_one_line(tmp_path, line, why):
    case(f"JSON Lines: {why}")
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": 1}\n' + line + "\n")
    with pytest.raises(DataError, match=why):
        load_data(path)


def test_a_csv_review_longer_than_pythons_field_limit_is_read(tmp_path):
    case("a CSV review of 131,073 characters")
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": ["x" * 131_073, "short"], "label": [1, 2]}).to_csv(path, index=False)
    assert len(load_data(path)["train"]["text"][0]) == 131_073


def test_a_config_json_nested_too_deep_is_one_line(linear_model, copy_of):
    case("config.json nested 100,000 deep")
    folder = copy_of(linear_model)
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match="nested too deeply"):
        load_predictor(folder)


@pytest.mark.parametrize("settings, message", [({"seed": -1}, "--seed must be at least 0"),
                                               ({"seed": 2**32}, "--seed must be at most 4294967295, got 4294967296$")])
def test_nonsense_data_settings_are_one_line(settings, message):
    case(f"data settings {settings}")
    with pytest.raises(ReviewstarsError, match=message):
        DataSettings("x", **settings)


@pytest.mark.parametrize("models, message", [([], "nothing to compare"), (["linear", "linear"], "names linear twice")])
def test_compare_refuses_no_models_or_a_repeated_one(tiny_data, tmp_path, models, message):
    from reviewstars.jobs.compare import compare

    case(f"compare --models {','.join(models)!r}")
    with pytest.raises(ReviewstarsError, match=message):
        compare(tiny_data, tmp_path / "out", models)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only file system")])
def test_a_full_or_read_only_disk_is_one_line_and_leaves_nothing_behind(linear_model, source, tmp_path, monkeypatch, capsys,
                                                                         code, words):
    case(f"disk: {words}")
    from reviewstars.cli import main
    from reviewstars.data import frames

    def full(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))  # as a write() raises it: no file named
    monkeypatch.setattr(frames.FrameWriter, "write", full)
    monkeypatch.setattr(sys, "argv", ["reviewstars", "predict", "--model", str(linear_model), "--file", str(source),
                                      "--output", str(tmp_path / "out.csv")])
    with pytest.raises(SystemExit) as stopped:
        main()
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and words in said[0] and "Traceback" not in said[0]
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out") or p.name == "out.csv")
    if code == errno.ENOSPC:  # the rows rated are kept (in the folder a stopped run goes on from), to go on once there is room
        assert stopped.value.code == 2 and said[0].startswith(f"error: {tmp_path / 'out.csv'}: no space left on the device; ")
        assert "rows are rated and kept in" in said[0] and left == [".out.csv.partial"]
    else:
        assert stopped.value.code == 1 and said[0].startswith(f"error: {tmp_path / 'out.csv'}: cannot write or read there")
        assert left == []


def test_a_loop_of_links_as_input_or_output_is_one_line(linear_model, tmp_path):
    case("a symlink loop as input and as output")
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    with pytest.raises(DataError, match="a loop of links"):
        predict_file(linear_model, tmp_path / "a.csv", tmp_path / "out.csv")
    good = tmp_path / "good.csv"
    pd.DataFrame({"text": ["fine"]}).to_csv(good, index=False)
    with pytest.raises(ReviewstarsError, match="a loop of symbolic links"):
        predict_file(linear_model, good, tmp_path / "a.csv")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")  # a link that leads somewhere: to a device
    with pytest.raises(DataError, match=r"not a regular file \(a folder, a device or a pipe\)"):
        predict_file(linear_model, tmp_path / "zero.csv", tmp_path / "out.csv")


def test_report_cases_tried():
    """Runs last in this file: how many hostile cases the tests above tried."""
    print(f"\nround-three hostile cases tried: {len(CASES)}")
    assert len(CASES) >= 30
