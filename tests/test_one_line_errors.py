"""Faults a user can fix end in one line naming them, never in a traceback: broken model
folders, out-of-range options, duplicate columns, too few reviews, odd characters."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reviewstars.data import read_file
from reviewstars.errors import DataError
from reviewstars.jobs import ScratchSettings, train
from reviewstars.models import load_predictor

from conftest import synthetic_reviews
from support import run_cli


def _edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


def _broken_models(linear_model: Path, scratch_model: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """(folder, what its error says) for each way a model folder can be broken."""
    def copy(source: Path, name: str) -> Path:
        return Path(shutil.copytree(source, root / name))

    not_an_object = copy(linear_model, "not-an-object")
    (not_an_object / "config.json").write_text("[1, 2]")
    unknown_setting = copy(linear_model, "unknown-setting")
    _edit_config(unknown_setting, lambda c: c["reviewstars"]["settings"].update(colour="blue"))
    short_vocabulary = copy(linear_model, "short-vocabulary")
    words = json.loads((short_vocabulary / "vocabulary.json").read_text())
    (short_vocabulary / "vocabulary.json").write_text(json.dumps(words[:-1]))
    repeated_term = copy(linear_model, "repeated-term")
    (repeated_term / "vocabulary.json").write_text(json.dumps(words[:-1] + words[:1]))  # right length, one term twice
    empty_weights = copy(scratch_model, "empty-weights")
    (empty_weights / "model.safetensors").write_bytes(b"")
    cut_weights = copy(scratch_model, "cut-weights")
    whole = (cut_weights / "model.safetensors").read_bytes()
    (cut_weights / "model.safetensors").write_bytes(whole[: len(whole) // 2])
    negative_length = copy(scratch_model, "negative-length")
    _edit_config(negative_length, lambda c: c["reviewstars"].update(max_length=-5))
    other_shapes = copy(scratch_model, "other-shapes")  # a config.json edited to another width than its weights
    _edit_config(other_shapes, lambda c: c.update(intermediate_size=c["intermediate_size"] * 2))
    past_positions = copy(scratch_model, "past-positions")  # trained with 32 positions
    _edit_config(past_positions, lambda c: c["reviewstars"].update(max_length=1000))
    return {
        "not-an-object": (not_an_object, "must hold a JSON object, not list"),
        "unknown-setting": (unknown_setting, "unusable linear settings"),
        "short-vocabulary": (short_vocabulary, "the vocabulary and the weights do not match"),
        "repeated-term": (repeated_term, "vocabulary.json: must be a list of distinct terms"),
        "empty-weights": (empty_weights, "model.safetensors: truncated or not a safetensors file (0 bytes)"),
        "cut-weights": (cut_weights, "model.safetensors: truncated or not a safetensors file"),
        "negative-length": (negative_length, "max_length -5 leaves no room for text"),
        "other-shapes": (other_shapes, "its config.json does not describe its weights (blocks.0.feed_forward.contract.weight is "
                                       "[32, 64] in the weights, [32, 128] by config.json, and 2 more)"),  # named, not "the above report"
        "past-positions": (past_positions, "max_length 1000: the model reads at most 32 tokens (its position embeddings)"),
    }


def _cli(*args) -> subprocess.CompletedProcess:
    return run_cli(*args, columns=400)  # one line stays one line


def test_the_cli_says_what_is_broken_in_one_line(linear_model, scratch_model, tiny_data, tmp_path):
    """Each broken model folder and out-of-range option, as the script answers them (a bad --output: test_outputs.py)."""
    train_linear = ("train", "--model", "linear", "--data", tiny_data, "--output", tmp_path / "new")
    cases = {name: (("predict", "--model", folder, "great food"), expected)
             for name, (folder, expected) in _broken_models(linear_model, scratch_model, tmp_path).items()}
    cases.update({
        "min-df": ((*train_linear, "--min-df", "0"), "--min-df must be at least 1, got 0"),
        "C": ((*train_linear, "--C", "-1"), "--C must be greater than 0, got -1"),
        "ngram-max": ((*train_linear, "--ngram-max", "0"), "--ngram-max must be at least 1, got 0"),
        "tokenizer-missing": (("train", "--model", "scratch", "--data", tiny_data, "--output", tmp_path / "new", "--tokenizer",
                               tmp_path / "nowhere"), f"cannot load a tokenizer from '{tmp_path / 'nowhere'}': no such folder"),
        "tokenizer-none": (("train", "--model", "scratch", "--data", tiny_data, "--output", tmp_path / "new", "--tokenizer",
                            linear_model), "the folder holds no tokenizer (tokenizer.json, tokenizer_config.json or vocab.txt)"),
        "circles-points": (("basics", "circles", "-o", tmp_path / "c.png", "--points", "-5"), "--points must be between 2 and 10,000,000, got -5"),
        "circles-restarts": (("basics", "circles", "-o", tmp_path / "c.png", "--restarts", "0"), "--restarts must be between 1 and 1,000, got 0"),
        "circles-folder": (("basics", "circles", "-o", tmp_path), "the plot is a PNG: give a path ending in .png"),
        # the lessons' seeds, as train checks them: numpy's own traceback, or 2**32 taken here and refused by train
        "circles-seed": (("basics", "circles", "-o", tmp_path / "c.png", "--seed", "-1"), "--seed must be at least 0, got -1"),
        "growth-seed": (("tokens", "growth", "--data", tiny_data, "-o", tmp_path / "g.png", "--seed", str(2**32)),
                        "--seed must be at most 4294967295, got 4294967296"),
        # a folder or glob to the local engine: it named the output's suffix; a Ray run with no --output: a folder is fine
        "local-folder": (("predict", "--model", linear_model, "--file", tiny_data, "--output", tmp_path / "stars.csv"),
                         f"--file {tiny_data}: a folder; --engine local rates one file: give a file, or --engine ray"),
        "local-glob": (("predict", "--model", linear_model, "--file", tiny_data / "*.parquet", "--output", tmp_path / "stars.csv"),
                       "a glob; --engine local rates one file"),
        "ray-no-output": (("predict", "--model", linear_model, "--file", tiny_data, "--engine", "ray"),
                          "--file needs --output (a .csv, .parquet or .jsonl path, or a folder for the parts)"),
        # a list option given twice: the parser kept the last, and compare trained scratch alone, saying nothing
        "models-twice": (("compare", "--data", tiny_data, "--models", "linear", "--models=scratch", "-o", tmp_path / "cmp"),
                         "--models is given 2 times: give it once, as one comma-separated list (--models linear,scratch)"),
        "same-column": (("data", "stats", "--data", tiny_data / "train.parquet", "--label-column", "text"),
                        "the column 'text' cannot hold both the reviews and their ratings"),
        # fine-tuning a model past its position embeddings: refused before the first step, not at the first long review
        "max-length-past-positions": (("train", "--model", scratch_model, "--data", tiny_data, "--output", tmp_path / "new",
                                       "--max-length", "64", "--dev-size", "50"), "--max-length 64: the model reads at most 32 tokens"),
        # a budget past the clock's range: refused before the data is read, as a duration
        "time-budget": (("train", "--model", "scratch", "--data", tiny_data, "--output", tmp_path / "new", "--time-budget",
                         "99999999999999h"), "--time-budget must be at most 30d, got 1e+14h"),
    })
    results = {name: _cli(*command) for name, (command, _) in cases.items()}
    for name, (_, expected) in cases.items():
        result = results[name]
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.stderr[-1500:])
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (name, lines)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_duplicate_column_is_refused_not_guessed(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    if suffix == ".csv":
        path.write_text("text,label,Label\ngreat food,4,0\nrude staff,0,4\n")
    else:
        pq.write_table(pa.table([["great food", "rude staff"], [4, 0], [0, 4]], names=["text", "label", "label"]), path)
    with pytest.raises(DataError, match="column 'label' appears more than once: rename or drop the copies"):
        read_file(path)


def test_lone_surrogates_in_json_lines_read_as_replacement_characters(tmp_path):
    path = tmp_path / "train.jsonl"
    lines = [json.dumps({"text": f"{text} \ud800", "label": label}) for text, label in
             zip(*synthetic_reviews(60).to_dict("list").values())]
    path.write_text("\n".join(lines) + "\n")  # json.dumps writes the half pair as the escape "\ud800"
    assert read_file(path)["text"][0].endswith(" \ufffd")
    result = train("linear", path, tmp_path / "model")
    # 12 of the file held out to score on (it has no validation split), 9 of the rest carved as the balanced dev slice
    assert result.train_examples == 60 - 12 - 9 and result.held_out_examples == 12
    assert load_predictor(tmp_path / "model").predict(["great \ud800"]).shape == (1,)


def test_a_shells_undecodable_byte_reads_as_a_data_files_and_the_servers_do(linear_model):
    """Python reads the byte 0xff of an argument as a lone surrogate: predict, explain and
    tokens show read it as U+FFFD, as a data file's half UTF-16 pair and /predict's are."""
    from support import run_cli

    from conftest import BERT_TOKENIZER

    for command in (["predict", "--model", linear_model], ["explain", "--model", linear_model]):
        result = run_cli(*command, "--json", "great caf\udcff food")
        assert result.returncode == 0, result.stderr
        (row,) = json.loads(result.stdout)
        assert row["text"] == "great caf\ufffd food"
    if (BERT_TOKENIZER / "tokenizer.json").is_file():
        shown = run_cli("tokens", "show", "caf\udcff", "--tokenizer", BERT_TOKENIZER)
        assert shown.returncode == 0 and shown.stdout == run_cli("tokens", "show", "caf\ufffd", "--tokenizer", BERT_TOKENIZER).stdout


def test_a_file_name_that_is_not_utf8_is_kept_in_the_model_folder(tmp_path):
    path = tmp_path / "reviews-\udcff.csv"  # the byte 0xff, as Python reads a file name it cannot decode
    synthetic_reviews(60).to_csv(path, index=False)
    train("linear", path, tmp_path / "model")
    training = json.loads((tmp_path / "model" / "config.json").read_text())["reviewstars"]["training"]
    assert training["data"]["data"] == str(path)


def test_too_few_reviews_to_train_on_is_one_line(tmp_path):
    path = tmp_path / "two.csv"
    pd.DataFrame({"text": ["great food here", "rude staff here"], "label": [4, 0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"cannot fit TF-IDF \+ logistic regression on 2 training reviews .*lower --min-df"):
        train("linear", path, tmp_path / "linear")
    with pytest.raises(DataError, match=r"too few training reviews \(2\) to carve a dev slice from"):
        train("scratch", path, tmp_path / "scratch", scratch=ScratchSettings(layers=1, width=32, heads=2, vocab_size=60))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.csv"]


def test_the_tokens_a_model_reads_come_from_its_own_position_table():
    """MPNet numbers its positions from the padding id + 1, as RoBERTa does: 514 rows read 512
    tokens (513 failed mid-run); BERT's 512 rows read 512; relative positions have no limit."""
    from transformers import BertConfig, BertModel, DebertaV2Config, DebertaV2Model, MPNetConfig, MPNetModel, RobertaConfig, RobertaModel

    from reviewstars.models.folder import positions_of

    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=100)
    assert positions_of(RobertaModel(RobertaConfig(max_position_embeddings=514, **small))) == 512
    assert positions_of(MPNetModel(MPNetConfig(max_position_embeddings=514, **small))) == 512
    assert positions_of(BertModel(BertConfig(max_position_embeddings=512, **small))) == 512
    assert positions_of(DebertaV2Model(DebertaV2Config(position_biased_input=False, relative_attention=True, **small))) is None
