"""Hostile model folders: a config.json of any shape, a `reviewstars` section of any
values, or files cut short, opens as a model or fails with a ModelError (one line in the
CLI), never another exception."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reviewstars.errors import ReviewstarsError
from reviewstars.models import load_predictor

JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
SECTION_KEYS = ("kind", "labels", "temperature", "settings", "vocabulary_size", "max_length", "truncation", "members", "weights")
SECTION = st.dictionaries(st.sampled_from(SECTION_KEYS), JSON, max_size=6)
TRIED = {"configs": 0, "sections": 0, "cut": 0}
HYPOTHESIS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _opens_or_says_why(folder) -> None:
    try:
        predictor = load_predictor(folder)
    except ReviewstarsError as error:
        assert "\n" not in str(error).strip()
        return
    proba = predictor.predict_proba(["great food", "awful"])
    assert proba.shape == (2, 5)


@pytest.fixture()
def copy_of(linear_model, tmp_path_factory):
    def make():
        folder = tmp_path_factory.mktemp("hostile") / "model"
        shutil.copytree(linear_model, folder)
        return folder
    return make


@HYPOTHESIS
@given(config=JSON)
@example(config={"model_type": []})  # a TypeError inside transformers, found by a CI run
def test_any_config_json(copy_of, config):
    TRIED["configs"] += 1
    folder = copy_of()
    (folder / "config.json").write_text(json.dumps(config))
    _opens_or_says_why(folder)


@HYPOTHESIS
@given(section=SECTION)
@example(section={"settings": {"\n": None}})  # a setting named by a line break: a message of two lines, found by a CI run
def test_any_reviewstars_section(copy_of, section):
    TRIED["sections"] += 1
    folder = copy_of()
    config = json.loads((folder / "config.json").read_text())
    config["reviewstars"].update(section)
    (folder / "config.json").write_text(json.dumps(config))
    _opens_or_says_why(folder)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["linear.npz", "vocabulary.json", "config.json"]), keep=st.floats(0, 0.99))
def test_any_file_cut_short(copy_of, name, keep):
    TRIED["cut"] += 1
    folder = copy_of()
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: int(len(data) * keep)])
    _opens_or_says_why(folder)


def test_report_cases_tried():
    print(f"\nhostile model folders tried: {TRIED['configs']} configs, {TRIED['sections']} sections, {TRIED['cut']} cut files")
