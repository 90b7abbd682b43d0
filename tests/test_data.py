"""The data layer: every format it reads, and the exact one-line error for each bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reviewstars.data import load_data, pick_split, read_file, read_texts, subset
from reviewstars.errors import DataError

from conftest import YELP, needs_yelp

ROWS = [("Great tacos!", 4), ("Cold fries,\nslow \"service\".", 1), ("It was fine.", 2)]


def as_pairs(split):
    return list(zip(split["text"], split["label"]))


# --------------------------------------------------------------------------- formats


def test_parquet_with_label(tmp_path):
    path = tmp_path / "reviews.parquet"
    pd.DataFrame(ROWS, columns=["text", "label"]).to_parquet(path)
    assert as_pairs(read_file(path)) == ROWS


def test_csv_with_header_and_quoted_newlines(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame(ROWS, columns=["text", "label"]).to_csv(path, index=False)
    assert as_pairs(read_file(path)) == ROWS


def test_stars_column_maps_to_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame([(t, l + 1) for t, l in ROWS], columns=["text", "stars"]).to_csv(path, index=False)
    assert as_pairs(read_file(path)) == ROWS


def test_jsonl(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": l}) for t, l in ROWS) + "\n\n", encoding="utf-8")
    assert as_pairs(read_file(path)) == ROWS


def test_original_yelp_review_full_csv(tmp_path):
    path = tmp_path / "train.csv"
    # As in the real files: literal \n, and quotes written \"" (backslash + CSV-doubled quote).
    path.write_text('"5","Loved it.\\nWill be back: \\""best\\"" brunch."\n"1","Never again."\n', encoding="utf-8")
    assert as_pairs(read_file(path)) == [('Loved it.\nWill be back: "best" brunch.', 4), ("Never again.", 0)]


def test_folder_named_by_split_ignores_other_files(tmp_path):
    pd.DataFrame(ROWS, columns=["text", "label"]).to_parquet(tmp_path / "train.parquet")
    pd.DataFrame(ROWS[:2], columns=["text", "label"]).to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "notes.txt").write_text("not data")
    dataset = load_data(tmp_path)
    assert list(dataset) == ["train", "test"]
    assert len(dataset["train"]) == 3 and len(dataset["test"]) == 2
    assert pick_split(dataset) == "test"


def test_single_file_is_named_after_its_split(tmp_path):
    path = tmp_path / "validation.jsonl"
    path.write_text(json.dumps({"text": "ok", "label": 2}) + "\n")
    assert list(load_data(path)) == ["validation"]
    other = tmp_path / "mine.jsonl"
    other.write_text(json.dumps({"text": "ok", "label": 2}) + "\n")
    assert list(load_data(other)) == ["train"]


def test_subsets_are_the_lessons_seeded_shuffle_select(tiny_data):
    full = load_data(tiny_data)
    small = load_data(tiny_data, train_size=50, eval_size=20, seed=7)
    assert len(small["train"]) == 50 and len(small["validation"]) == 20
    expected = full["train"].shuffle(seed=7).select(range(50))
    assert small["train"]["text"] == expected["text"]
    assert load_data(tiny_data, train_size=50, seed=7)["train"]["text"] == small["train"]["text"]
    assert load_data(tiny_data, train_size=50, seed=8)["train"]["text"] != small["train"]["text"]
    assert len(subset(full["train"], 10_000)) == len(full["train"])


def test_read_texts_needs_no_labels_and_keeps_empty_texts(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1,Great!\n2,\n", encoding="utf-8")
    assert read_texts(path) == ["Great!", ""]


@needs_yelp
def test_shared_yelp_folder_and_original_csv_sample():
    dataset = load_data(YELP)
    assert set(dataset) == {"train", "validation"}
    assert len(dataset["validation"]) == 2000
    assert sorted(set(dataset["validation"]["label"])) == [0, 1, 2, 3, 4]
    sample = load_data(YELP / "yelp_review_full_csv_sample")
    assert len(sample["train"]) == 5 and len(sample["test"]) == 5
    assert sample["train"][0]["label"] == 4  # "5","dr. goldberg offers everything ..."
    assert sample["train"][0]["text"].startswith("dr. goldberg offers everything")
    assert any("\n" in t for t in sample["test"]["text"]) and not any("\\n" in t for t in sample["test"]["text"])


# --------------------------------------------------------------------------- bad input


def error_of(path) -> str:
    with pytest.raises(DataError) as caught:
        load_data(path)
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    return message


def write(tmp_path, name, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("a.csv", "opinion,label\nnice,3\n", "a.csv: no column of reviews among the usual names (text, review, review_text, reviews, "
                  "content, body, comment, sentence); its columns: 'opinion', 'label': name it with --text-column"),
        ("a.csv", "text,grade\nnice,3\n", "a.csv: no column of ratings among the usual names (label 0..4, stars or rating 1..5); "
                  "its columns: 'text', 'grade': name it with --label-column (and its scale with --label-scale)"),
        ("a.csv", "text,label\nnice,3\nbad,7\n", "a.csv: row 2 (line 3): label 7 is out of range 0..4"),
        ("a.csv", "text,stars\nnice,0\n", "a.csv: row 1 (line 2): stars 0 is out of range 1..5"),
        ("a.csv", "text,label\nnice,3\nbad,2.5\n", "a.csv: row 2 (line 3): label 2.5 is not a whole number of stars: map each value"),
        ("a.csv", "text,label\nnice,three\n", "a.csv: row 1 (line 2): label 'three' is not a number (expected 0..4; for words, map them"),
        ("a.csv", "text,label\nnice,\n", "a.csv: row 1 (line 2): label is missing (expected a rating, 0..4): fill it in, or drop the row"),
        ("a.csv", "text,label\nnice,1\n   ,2\n", "a.csv: row 2 (line 3): text is empty"),
        ("a.csv", "text,label\nnice,1,extra\n", "a.csv: row 1 (line 2): has 3 fields, the header has 2"),
        ("a.csv", 'text,label\n"unclosed,1\n', "a.csv: line 2: broken CSV quoting (unexpected end of data)"),
        ("a.csv", "text,label\rnice,1\r", "a.csv: line 1: a carriage return (\\r) outside quotes: old Mac line ends (save the "
                  "file with LF or CRLF line ends), or a field that holds one unquoted"),
        ("a.csv", "text,label\n", "a.csv: file has no rows"),
        ("a.csv", "", "a.csv: file is empty"),
        ("a.csv", "\n\n", "a.csv: file is empty"),
        ("a.csv", b"text,label\nnice,1\ncaf\xe9,2\n", "a.csv: line 3: undecodable bytes at byte 21 (the file must be UTF-8)"),
        ("a.csv", "hello,world,again\n", "a.csv: its first line ('hello', 'world', 'again') names no column of reviews (text, review, "
                  "review_text, reviews, ...) and it is not the yelp_review_full_csv format"),
        ("a.csv", '"great tacos","3"\n', "a.csv: its first line ('great tacos', '3') names no column of reviews (text, review, "
                  'review_text, reviews, ...) and it is not the yelp_review_full_csv format (no header, "class","text"): it reads '
                  "as a row of reviews, not a header: put a header line first"),  # --text-column had nothing to name
        ("a.csv", '"5","good"\n"6","too many stars"\n', "a.csv: row 2: stars 6 is out of range 1..5"),
        ("a.jsonl", '{"text": "ok", "label": 1}\n{"text": "x", "label": 1\n', "a.jsonl: row 2: not valid JSON (Expecting ',' delimiter at character 26)"),
        ("a.jsonl", '{"text": "ok", "label": 1}\n{"label": 1}\n', "a.jsonl: row 2: no 'text' field"),
        ("a.jsonl", '{"text": "ok", "label": 1}\n[1, 2]\n', "a.jsonl: row 2: expected a JSON object, got list"),
        ("a.jsonl", '{"text": 5, "label": 1}\n', "a.jsonl: row 1: text must be a string, got int 5"),
        ("a.jsonl", '{"text": "ok", "label": true}\n', "a.jsonl: row 1: label True is not a number (expected 0..4"),
        ("a.jsonl", '{"text": "ok", "stars": 3.0000001}\n', "a.jsonl: row 1: stars 3.0000001 is not a whole number"),  # was "3"
        ("a.jsonl", "\n", "a.jsonl: file is empty"),
        ("a.parquet", b"PAR1 this is not parquet", "a.parquet: not a readable Parquet file"),
        ("a.txt", "text,label\n", "a.txt: unknown format '.txt': use one of .parquet, .csv, .jsonl"),
    ],
)
def test_bad_input_names_file_row_and_fault(tmp_path, name, content, expected):
    message = error_of(write(tmp_path, name, content))
    assert message.startswith(str(tmp_path / name) + ":")
    assert message[len(str(tmp_path)) + 1 :].startswith(expected)


def test_bad_parquet_rows(tmp_path):
    path = tmp_path / "a.parquet"
    pd.DataFrame({"text": ["fine", None], "label": [1, 2]}).to_parquet(path)
    assert error_of(path).endswith("a.parquet: row 2: text is missing")
    pd.DataFrame({"text": ["fine", None, " ", "ok", ""], "label": [1, 2, 3, 4, 0]}).to_parquet(path)  # all counted, as a CSV's
    assert error_of(path).endswith("a.parquet: row 2: text is missing (and 2 more bad rows: 3, 5)")
    pd.DataFrame({"text": ["fine", None, " "], "label": [1, 2, 3]}).to_parquet(path)
    assert error_of(path).endswith("a.parquet: row 2: text is missing (and 1 more bad row: 3)")
    pd.DataFrame({"text": ["fine", "ok"], "label": [1, 9]}).to_parquet(path)
    assert error_of(path).endswith("a.parquet: row 2: label 9 is out of range 0..4 (a wider scale (1-10, 0-100, ...): map its values to stars with --label-scale, e.g. 1=1,2=1,3=2,...,10=5)")
    pd.DataFrame({"text": [], "label": []}).to_parquet(path)
    assert error_of(path).endswith("a.parquet: file has no rows")


def test_a_decimal_rating_column_reads_as_its_numbers(tmp_path):
    """A SQL export's decimal(5,2) ratings were "rating Decimal('3.00') is not a number"."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    ratings = [decimal.Decimal(value) for value in ("1.00", "5.00", "3.00")]
    pq.write_table(pa.table({"review": ["awful", "superb", "fine"], "rating": pa.array(ratings, pa.decimal128(5, 2))}), path)
    assert load_data(str(path))["train"]["label"] == [0, 4, 2]
    pq.write_table(pa.table({"review": ["awful", "fine"], "rating": pa.array([ratings[0], decimal.Decimal("2.50")],
                                                                               pa.decimal128(5, 2))}), path)
    assert error_of(path).endswith("a.parquet: row 2: rating 2.5 is not a whole number of stars: map each value to stars "
                                   "with --label-scale (e.g. 1=1,1.5=2,...,4.5=5,5=5)")


def test_missing_path_and_empty_folder(tmp_path):
    assert error_of(tmp_path / "nope.csv").endswith("nope.csv: no such file or folder")
    assert error_of(tmp_path).endswith(": no split files: expected train.*, validation.* or test.* with suffix .parquet, .csv, "
                                       ".jsonl (it holds nothing)")
    (tmp_path / "reviews.json").write_text("[]")
    (tmp_path / "old").mkdir()
    assert error_of(tmp_path).endswith("(it holds old/, reviews.json)")  # what it saw, not only what it wanted


def test_split_files_are_named_in_any_case(tmp_path):
    """Train.csv and VALIDATION.CSV were "no split files", while --data UP.CSV was read."""
    write(tmp_path, "Train.csv", "text,label\ngreat,4\nbad,0\n")
    write(tmp_path, "VALIDATION.CSV", "text,label\nfine,2\n")
    assert {name: len(split) for name, split in load_data(str(tmp_path)).items()} == {"train": 2, "validation": 1}
    write(tmp_path, "train.jsonl", '{"text": "ok", "label": 2}\n')
    assert error_of(tmp_path).endswith(": two files for split 'train': Train.csv and train.jsonl")


def test_hub_unreachable_names_the_data_flag(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = error_of("yelp_review_full")
    assert message.startswith("yelp_review_full: could not load from the Hugging Face Hub")
    assert "--data PATH" in message


def test_an_empty_column_name_is_refused_not_taken_for_the_default(tmp_path):
    """`--column ''` (an unset shell variable) rated the default column without a word."""
    from reviewstars.data import Columns
    from reviewstars.data.files import text_column_in

    path = write(tmp_path, "a.csv", "review,rating\ngreat,5\n")
    with pytest.raises(DataError, match=r"a\.csv: --column is empty: name a column \('review', 'rating'\), or leave the option out$"):
        text_column_in(path, "")
    for columns, option in ((Columns(text=" "), "--text-column"), (Columns(label=""), "--label-column")):
        with pytest.raises(DataError, match=f"{option} is empty"):
            load_data(str(path), columns=columns)
