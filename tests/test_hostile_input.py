"""Hostile and messy input: every case is a prediction or a one-line error, never a traceback."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reviewstars.data import read_file, read_texts
from reviewstars.errors import DataError
from reviewstars.models import load_predictor

ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
CELL = st.one_of(ANY_TEXT, st.integers(-10, 10), st.floats(allow_nan=True), st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
TRIED = {"predict": 0, "files": 0}

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def linear(linear_model):
    return load_predictor(linear_model)


@HYPOTHESIS
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=8))
def test_any_unicode_gets_a_valid_prediction(linear, texts):
    TRIED["predict"] += 1
    proba = linear.predict_proba(texts)
    assert proba.shape == (len(texts), 5) and np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1, atol=1e-5)


def test_a_megabyte_review_and_empty_strings(linear, scratch_model):
    huge = "The food was great and the staff friendly. " * 24_000  # ~1 MB
    for predictor in (linear, load_predictor(scratch_model)):
        stars = predictor.predict([huge, "", " \n\t", "\x00"])
        assert stars.shape == (4,) and set(stars) <= {1, 2, 3, 4, 5}


def _one_line_error_or_rows(path, reader):
    try:
        result = reader(path)
    except DataError as error:
        message = str(error)
        assert "\n" not in message and str(path.name) in message and len(message) < 500, message
        return None
    return result


@HYPOTHESIS
@given(rows=st.lists(st.fixed_dictionaries({"text": CELL, "label": CELL}), min_size=0, max_size=6))
def test_jsonl_with_any_values_reads_or_names_the_row(tmp_path_factory, rows):
    TRIED["files"] += 1
    path = tmp_path_factory.mktemp("h") / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    dataset = _one_line_error_or_rows(path, read_file)
    if dataset is not None:
        assert set(dataset["label"]) <= {0, 1, 2, 3, 4} and all(isinstance(t, str) for t in dataset["text"])


@HYPOTHESIS
@given(cells=st.lists(st.tuples(st.one_of(ANY_TEXT, st.sampled_from(["1", "5", "3 stars", "x", "", "2.0"])), ANY_TEXT), max_size=6),
       breakage=st.sampled_from(["", '"', '"unclosed', "a,b,c\n", "\r", "\x00"]))
def test_csv_broken_quoting_and_mixed_labels(tmp_path_factory, cells, breakage):
    TRIED["files"] += 1
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["label", "text"])
    writer.writerows(cells)
    path = tmp_path_factory.mktemp("h") / "data.csv"
    path.write_text(buffer.getvalue() + breakage, encoding="utf-8")
    _one_line_error_or_rows(path, read_file)
    _one_line_error_or_rows(path, read_texts)


@HYPOTHESIS
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_the_readers(tmp_path_factory, raw):
    TRIED["files"] += 1
    folder = tmp_path_factory.mktemp("h")
    for name in ("data.csv", "data.jsonl", "data.parquet"):
        path = folder / name
        path.write_bytes(raw)
        _one_line_error_or_rows(path, read_texts)


def test_report_how_many_inputs_were_tried(capsys):
    with capsys.disabled():
        print(f"\nhostile inputs tried: {TRIED['predict']} prediction batches, {TRIED['files']} files")
    assert TRIED["predict"] >= 100 and TRIED["files"] >= 300
