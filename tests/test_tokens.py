"""Words vs WordPiece: known splits of bert-base-cased, the lesson's exercises, vocabulary growth."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reviewstars.text import word_tokens
from reviewstars.tokenization import load_tokenizer
from reviewstars.lessons.vocabulary import explore_words, log_grid, subword_pieces, vocabulary_growth, word_splits

from conftest import BERT_TOKENIZER, YELP, needs_bert_tokenizer, needs_yelp
from support import run_cli

LESSON = "In this course we unravel the mysteries of nevral networks."


def test_word_tokens_use_the_lessons_regex():
    assert word_tokens(LESSON) == ["In", "this", "course", "we", "unravel", "the", "mysteries", "of", "nevral", "networks"]
    assert word_tokens("I ate a 5-star A+ meal!") == ["ate", "star", "meal"]  # one-character tokens are dropped


@pytest.fixture(scope="module")
def bert():
    if not (BERT_TOKENIZER / "tokenizer.json").is_file():
        pytest.skip(f"bert-base-cased tokenizer not found at {BERT_TOKENIZER}")
    return load_tokenizer(BERT_TOKENIZER)


def test_known_bert_base_cased_splits(bert):
    pieces = subword_pieces(bert, LESSON)
    assert [p["token"] for p in pieces] == [
        "[CLS]", "In", "this", "course", "we", "un", "##rave", "##l", "the", "mysteries", "of", "ne", "##v", "##ral", "networks", ".", "[SEP]",
    ]
    assert [p["token"] for p in pieces if p["continuation"]] == ["##rave", "##l", "##v", "##ral"]
    assert [p["token"] for p in pieces if p["special"]] == ["[CLS]", "[SEP]"]
    splits = word_splits(bert, ["restaurant", "delicious", "tacos", "Yelp"])
    assert splits["restaurant"] == ["restaurant"] and splits["delicious"] == ["delicious"]
    assert splits["tacos"] == ["ta", "##cos"]
    assert len(bert) == 28996


def test_explore_finds_whole_split_and_shared_pieces(bert):
    texts = ["The burgers and the burger were tasty, the fries tasty too."] * 3 + ["Burgers, tacos and burritos."] * 2
    found = explore_words(bert, texts, top=50)
    assert found["kept_whole"] + found["split"] == found["words_considered"]
    split = {row["word"]: row["pieces"] for row in found["split_examples"]}
    assert split["tacos"] == ["ta", "##cos"]
    firsts = {group["piece"]: group["words"] for group in found["shared_first_pieces"]}
    assert any(len(words) >= 2 for words in firsts.values())


def test_log_grid():
    assert log_grid(1000) == [10, 18, 32, 56, 100, 178, 316, 562, 1000]
    assert log_grid(38_748)[-1] == 38_748


def test_vocabulary_growth_is_monotone_and_subwords_end_smaller(bert):
    if not (YELP / "train.parquet").is_file():
        pytest.skip(f"shared Yelp data not found at {YELP}")
    from reviewstars.data import load_data

    texts = list(load_data(YELP / "train.parquet", train_size=3000, seed=42)["train"]["text"])
    growth = vocabulary_growth(bert, texts)
    assert growth["reviews"] == log_grid(3000)
    for series in ("word_vocabulary", "subword_vocabulary"):
        values = growth[series]
        assert all(a <= b for a, b in zip(values, values[1:])), series
    assert growth["subword_vocabulary"][-1] < growth["word_vocabulary"][-1]
    crossover = growth["subword_smaller_from_reviews"]
    assert crossover is not None and 10 < crossover <= 3000
    assert max(growth["subword_vocabulary"]) <= len(bert)


def test_a_review_longer_than_a_part_counts_the_tokens_it_would_whole(bert, monkeypatch):
    """A 30 MB review tokenized whole held 2.8 GB: a long one is counted a part at a time,
    cut at whitespace, so its words and sub-words are those of the whole."""
    from reviewstars.lessons import vocabulary

    review = " ".join([LESSON, "The crème brûlée\twas un-be-lievable!!", "Tacos\nand burritos, 10/10."] * 40)
    texts = ["Great tacos.", review, "Awful service, nevral waiters."]
    whole = vocabulary_growth(bert, texts, grid=[1, 2, 3])
    monkeypatch.setattr(vocabulary, "LONG_TEXT", 50)
    assert max(map(len, vocabulary.whitespace_parts(review, 50))) <= 50
    assert "".join(vocabulary.whitespace_parts(review, 50)) == review
    assert vocabulary_growth(bert, texts, grid=[1, 2, 3]) == whole


@needs_bert_tokenizer
@needs_yelp
def test_tokens_cli_commands(tmp_path):
    def cli(*args):
        result = run_cli(*args, columns=200)
        assert result.returncode == 0, result.stderr
        return result.stdout

    shown = cli("tokens", "show", LESSON, "--tokenizer", BERT_TOKENIZER)
    assert "##rave" in shown and "continues a word" in shown and "special" in shown
    long = cli("tokens", "show", "great food " * 300, "--tokenizer", BERT_TOKENIZER)  # a probe's long review: a 22,000-row table
    assert "│ 199 │" in long and "│ 200 │" not in long and "... and 402 more (--all shows them)" in long
    assert "│ 601 │" in cli("tokens", "show", "great food " * 300, "--tokenizer", BERT_TOKENIZER, "--all")
    explored = cli("tokens", "explore", "--data", YELP / "yelp_review_full_train_1k.parquet", "--tokenizer", BERT_TOKENIZER, "--top", 500, "--output", tmp_path / "explore.json")
    assert "pieces that begin several words" in explored
    assert json.loads((tmp_path / "explore.json").read_text())["words_considered"] == 500
    cli("tokens", "growth", "--data", YELP / "yelp_review_full_train_1k.parquet", "--tokenizer", BERT_TOKENIZER, "--output", tmp_path / "growth.png")
    growth = json.loads((tmp_path / "growth.json").read_text())
    assert growth["reviews"][-1] == 1000 and (tmp_path / "growth.png").stat().st_size > 1000


def test_the_tokenization_lessons_read_a_file_without_ratings_in_the_order_a_labelled_one_gives(tiny_data, tmp_path):
    """An unlabelled file was refused, naming a --label-column those commands do not have."""
    from reviewstars.data import lesson_texts, load_data

    labelled = tiny_data / "train.parquet"
    unlabelled = tmp_path / "texts.csv"
    pd.read_parquet(labelled)[["text"]].to_csv(unlabelled, index=False)
    assert lesson_texts(unlabelled, seed=3) == lesson_texts(labelled, seed=3) == list(load_data(labelled)["train"].shuffle(seed=3)["text"])
    result = run_cli("tokens", "explore", "--data", unlabelled, "--tokenizer", tmp_path / "vocab", "--top", 5)
    assert "label-column" not in result.stderr


def test_a_learned_vocabulary_is_kept_and_reused_for_the_same_texts(tmp_path, monkeypatch):
    import reviewstars.tokenization as tokenization

    monkeypatch.setenv("REVIEWSTARS_CACHE", str(tmp_path))
    texts = [f"the soup number {i} was great, the bread was stale" for i in range(200)]
    first = tokenization.learned_wordpiece(texts, vocab_size=120)

    def never(*args, **kwargs):
        raise AssertionError("learned again")

    monkeypatch.setattr(tokenization, "train_wordpiece", never)
    again = tokenization.learned_wordpiece(texts, vocab_size=120)
    assert again.get_vocab() == first.get_vocab()
    assert again("the soup was stale")["input_ids"] == first("the soup was stale")["input_ids"]
    with pytest.raises(AssertionError, match="learned again"):  # other texts, another vocabulary
        tokenization.learned_wordpiece(texts[:100], vocab_size=120)


@needs_bert_tokenizer
def test_explore_says_none_where_a_table_would_be_empty(tmp_path):
    data = tmp_path / "ok.csv"
    data.write_text("label,text\n0,bad food\n4,great food\n3,nice place\n")
    shown = run_cli("tokens", "explore", "--data", data, "--tokenizer", BERT_TOKENIZER, columns=200)
    assert shown.returncode == 0, shown.stderr
    assert "split into pieces: none" in shown.stdout and "pieces that begin several words: none" in shown.stdout
    assert "┏" not in shown.stdout  # no table without rows
