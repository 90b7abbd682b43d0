"""`reviewstars explain`: each word's effect on a review's rating, found by leaving it out.

The effects are checked against the model itself (a word's effect is the expected stars of
the review minus those of the review without it, as `predict` gives them), against what the
synthetic reviews were made of (their mood words move the rating their way, filler hardly),
and the command's files against the rules every `--output` keeps.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from reviewstars import STARS
from reviewstars.artifacts import png_of_ours
from reviewstars.jobs.explain import explain_texts
from reviewstars.models.explanation import explain_one, without_span, word_spans
from reviewstars.models import load_predictor

from support import ODD_TEXTS, run_cli

MIXED = "Amazing food and excellent dinner but the staff was rude and the table awful."


def expected_stars(predictor, texts):
    return predictor.predict_proba(texts) @ np.asarray(STARS, dtype=float)


@pytest.mark.parametrize("text, spans", [
    ("Didn't love it!!! 10/10 chef's kiss :)", ["Didn't", "love", "it", "!!!", "10", "/", "10", "chef's", "kiss", ":)"]),
    ("  spaced   out  ", ["spaced", "out"]),
    ("", []),
    # what belongs to a letter stays with it: an accent typed apart, a zero-width space, an Indic vowel sign
    ("cafe\u0301 was gre\u0301at", ["cafe\u0301", "was", "gre\u0301at"]),
    ("gr\u200beat food", ["gr\u200beat", "food"]),
    ("\u0916\u093e\u0928\u093e \u0905\u091a\u094d\u091b\u093e", ["\u0916\u093e\u0928\u093e", "\u0905\u091a\u094d\u091b\u093e"]),
    ("'quoted' well-cooked", ["'", "quoted", "'", "well", "-", "cooked"]),
])
def test_a_review_is_cut_into_words_and_runs_of_marks_at_their_offsets(text, spans):
    assert [text[start:end] for start, end in word_spans(text)] == spans


@pytest.mark.parametrize("text, word, left", [
    ("the food was good", "the", "food was good"),
    ("the food was good", "was", "the food good"),
    ("the food was good", "good", "the food was"),
    ("good!!! really", "!!!", "good really"),
    ("good.", "good", "."),
    # signs on both sides of what goes are kept apart: "greatService" would be a word of its own
    ("great.Service was", ".", "great Service was"),
    ("well-cooked", "-", "well cooked"),
])
def test_a_word_taken_out_takes_one_space_with_it(text, word, left):
    start = text.index(word)
    assert without_span(text, start, start + len(word)) == left


def test_each_effect_is_the_models_own_expected_stars_with_and_without_the_word(linear_model):
    predictor = load_predictor(linear_model)
    explained = explain_one(predictor, MIXED)
    whole = expected_stars(predictor, [MIXED])[0]
    without = expected_stars(predictor, [without_span(MIXED, w.start, w.end) for w in explained.words])
    assert [w.word for w in explained.words] == [MIXED[s:e] for s, e in word_spans(MIXED)]
    np.testing.assert_allclose([w.stars_effect for w in explained.words], whole - without, atol=1e-4)
    predicted = explained.stars - 1
    np.testing.assert_allclose([w.probability_effect for w in explained.words],
                               predictor.predict_proba([MIXED])[0, predicted]
                               - predictor.predict_proba([without_span(MIXED, w.start, w.end) for w in explained.words])[:, predicted],
                               atol=1e-4)
    assert explained.expected_stars == pytest.approx(whole, abs=1e-4)


def test_mood_words_move_the_rating_their_way_and_filler_hardly(linear_model):
    """The synthetic reviews' 5-star words raise a rating, their 1-star words lower it."""
    explained = explain_one(load_predictor(linear_model), MIXED)
    effect = {w.word.lower(): w.stars_effect for w in explained.words}
    assert effect["amazing"] > 0.05 and effect["excellent"] > 0.05
    assert effect["rude"] < -0.05 and effect["awful"] < -0.05
    strongest = max(abs(v) for v in effect.values())
    assert all(abs(effect[word]) < strongest for word in ("the", "and"))  # filler is never the strongest
    assert {w.word.lower() for w in explained.strongest(2, raising=True)} == {"amazing", "excellent"}
    assert {w.word.lower() for w in explained.strongest(2, raising=False)} <= {"rude", "awful", "but"}


def test_words_that_hardly_move_a_rating_are_named_and_drawn_nowhere():
    """A probe's 20,000-word review: the terminal said "no word" while the plot drew ten bars
    of 0.0004 stars. Both read one threshold now."""
    from reviewstars.models.explanation import MOVED_AT_LEAST, Explanation, WordEffect

    tiny = Explanation("good bad", 3, 3.0, {}, words=[WordEffect("good", 0, 4, MOVED_AT_LEAST / 10, 0.0),
                                                      WordEffect("bad", 5, 8, -MOVED_AT_LEAST, 0.0)])
    assert tiny.strongest(5, raising=True) == []
    assert [w.word for w in tiny.strongest(5, raising=False)] == ["bad"]  # from the threshold on, an effect


def test_max_words_rates_the_first_words_and_counts_the_rest(linear_model):
    explained = explain_one(load_predictor(linear_model), MIXED, max_words=3)
    assert [w.word for w in explained.words] == ["Amazing", "food", "and"]
    assert explained.words_not_rated == len(word_spans(MIXED)) - 3


def test_a_long_review_is_rated_a_bounded_run_of_characters_at_a_time(linear_model, monkeypatch):
    """1,500 words of a 108 KB review held 6 GB at once (11.8 GB for 3,000), whatever --batch-size said."""
    import reviewstars.data.files as files

    predictor = load_predictor(linear_model)
    text = " ".join(["great food but slow service and a cold soup"] * 40)
    whole = explain_one(predictor, text, max_words=60)
    seen = []
    rate = predictor.predict_proba
    monkeypatch.setattr(predictor, "predict_proba", lambda texts, batch_size=None: seen.append(len(texts)) or rate(texts, batch_size))
    monkeypatch.setattr(files, "CHUNK_CHARS", 5 * len(text))
    chunked = explain_one(predictor, text, max_words=60)
    assert max(seen) <= 5 and sum(seen) == 61 and chunked == whole


def test_odd_texts_are_explained_without_a_failure(linear_model):
    found = explain_texts(linear_model, ODD_TEXTS)
    assert len(found) == len(ODD_TEXTS)
    assert found[0].words == [] and found[1].words == []  # nothing to take out
    for item in found:
        assert 1 <= item.stars <= 5 and all(np.isfinite(w.stars_effect) for w in item.words)
        assert all(item.text[w.start:w.end] == w.word for w in item.words)


def test_the_command_prints_the_strongest_words_and_writes_json_and_a_plot(linear_model, tmp_path):
    output = tmp_path / "why.json"
    result = run_cli("explain", "-m", linear_model, MIXED, "Okay.", "-o", output, "--top", "2")
    assert result.returncode == 0, result.stderr
    assert "raised it: Amazing" in result.stdout or "raised it: excellent" in result.stdout
    assert "lowered it:" in result.stdout and "expected" in result.stdout
    written = json.loads(output.read_text())
    assert written["model"] == str(linear_model) and "occlusion" in written["method"]
    assert [e["text"] for e in written["explanations"]] == [MIXED, "Okay."]
    first = written["explanations"][0]
    assert {"word", "start", "end", "stars_effect", "probability_effect"} <= set(first["words"][0])
    assert png_of_ours(output.with_suffix(".words.png"))
    assert f"wrote {output}" in result.stderr

    again = run_cli("explain", "-m", linear_model, "Nice.", "-o", output, "--json")  # its own files: replaced
    assert again.returncode == 0, again.stderr
    assert [e["text"] for e in json.loads(again.stdout)] == ["Nice."]
    assert [e["text"] for e in json.loads(output.read_text())["explanations"]] == ["Nice."]


def test_the_command_never_writes_over_a_users_file_or_the_model(linear_model, tmp_path):
    mine = tmp_path / "mine.json"
    mine.write_text('{"my": "notes"}')
    refused = run_cli("explain", "-m", linear_model, "Good.", "-o", mine)
    assert refused.returncode != 0 and "nothing of yours is written over" in refused.stderr
    assert mine.read_text() == '{"my": "notes"}' and "Traceback" not in refused.stderr

    config = linear_model / "config.json"
    before = config.read_bytes()
    refused = run_cli("explain", "-m", linear_model, "Good.", "-o", config)
    assert refused.returncode != 0 and "which this command reads" in refused.stderr
    assert config.read_bytes() == before

    refused = run_cli("explain", "-m", linear_model, "Good.", "-o", tmp_path / "why.csv")
    assert refused.returncode != 0 and "ending in .json" in refused.stderr


def test_the_command_reads_standard_input_and_says_what_is_missing(linear_model, tmp_path):
    piped = run_cli("explain", "-m", linear_model, "--json", input="Amazing food.\n\nAwful staff.\n")
    assert piped.returncode == 0, piped.stderr
    assert [e["text"] for e in json.loads(piped.stdout)] == ["Amazing food.", "Awful staff."]
    missing = run_cli("explain", "-m", tmp_path / "nowhere", "Good.")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr and "nowhere" in missing.stderr


def test_what_a_review_holds_is_printed_safely_and_the_files_are_checked_first(linear_model, tmp_path):
    """A review's escape sequences went raw to the terminal (a title set, the screen cleared);
    an --output under a file failed with a traceback after the work; the plot's 12 panels of
    13 reviews said nothing of the 13th."""
    shown = run_cli("explain", "-m", linear_model, "great \x1b]0;PWNED\x07 food \x1b[2J", "--max-words", "1")
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\u241b]0;PWNED\u2407" in shown.stdout
    reordered = run_cli("explain", "-m", linear_model, "great \u202eterrible\u202c food")  # a direction override
    assert reordered.returncode == 0 and "\u202e" not in reordered.stdout and "\ufffdterrible\ufffd" in reordered.stdout
    assert "8 words after the first 1 not rated" in shown.stdout
    (tmp_path / "notes.json").write_text("{}")
    refused = run_cli("explain", "-m", linear_model, "Good.", "-o", tmp_path / "notes.json" / "x.json")
    assert refused.returncode == 2 and "is a file, not a folder" in refused.stderr and "Traceback" not in refused.stderr
    many = run_cli("explain", "-m", linear_model, *[f"Good food {i}." for i in range(13)], "-o", tmp_path / "many.json")
    assert many.returncode == 0 and "(the first 12 of 13 reviews)" in many.stderr
