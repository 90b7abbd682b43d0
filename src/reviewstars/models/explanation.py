"""Why a model gave its rating: each word's effect, found by leaving it out (occlusion).

Occlusion asks every kind the same question (TF-IDF, a transformer, an ONNX export, an
ensemble): the model rates the review, then the review with one word taken out, for each
word in turn. A word's effect is how far the expected stars (the mean of the five
probabilities' stars) fell when it went: +0.4 says "this word raised the rating by 0.4
star". No gradients and no code per kind: the same `predict_proba` that `predict` and
`serve` call, so what is explained is the model that answers, calibration included.

It costs one model call per word (two words whose removal leaves the same text are rated
once); `max_words` bounds it for a long review, and the explanation counts the words left.
The texts to rate (`occlusions`) and the effects of their probabilities (`explanation_from`)
are apart, so a server can send the texts through its own batches.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import STARS
from .base import has_no_words, prediction_rows

#: Inside a word between two of its letters: "didn't", "chef's".
APOSTROPHES = "'\u2019"
METHOD = "occlusion: each word left out in turn; effect = expected stars with it - without it"
#: An effect smaller than this (in stars) is no effect: neither named, coloured nor drawn.
MOVED_AT_LEAST = 0.005


@dataclass
class WordEffect:
    """One word of a review and what leaving it out did to the rating."""

    word: str
    start: int  # character offsets in the review: text[start:end] == word
    end: int
    stars_effect: float  # expected stars with the word minus without it: > 0 raised the rating
    probability_effect: float  # the predicted star's probability with it minus without it


@dataclass
class Explanation:
    text: str
    stars: int
    expected_stars: float
    probabilities: dict[str, float]
    words: list[WordEffect] = field(default_factory=list)
    words_not_rated: int = 0  # words after the first `max_words`: not rated

    def strongest(self, top: int, raising: bool) -> list[WordEffect]:
        """The `top` words that raised (or lowered) the rating most, strongest first: by at
        least MOVED_AT_LEAST stars (a long review's words move it by 0.0004: no effect)."""
        sign = 1.0 if raising else -1.0
        chosen = [w for w in self.words if sign * w.stars_effect >= MOVED_AT_LEAST]
        return sorted(chosen, key=lambda w: -sign * w.stars_effect)[:top]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Occlusions:
    """What to rate to explain `text`: the text itself first, then each distinct text left when a word goes."""

    text: str
    spans: list[tuple[int, int]]  # the words rated, as offsets
    not_rated: int  # the words after them
    texts: list[str]
    rows: list[int]  # each rated word's text without it: its index in `texts`


def in_word(character: str) -> bool:
    """A letter, a digit or `_`, or what belongs to the letter before it: a combining mark (an
    accent typed apart, an Indic vowel sign or virama) or an invisible format character (a
    zero-width space or joiner, which the models read without: `text.readable`)."""
    category = unicodedata.category(character)
    return character.isalnum() or character == "_" or category[0] == "M" or category == "Cf"


def word_spans(text: str) -> list[tuple[int, int]]:
    """The units taken out one at a time, as offsets: words (with their marks and apostrophes)
    and runs of other signs ("!!!", ":)"), which a transformer reads too."""
    spans, at, size = [], 0, len(text)
    while at < size:
        if text[at].isspace():
            at += 1
            continue
        start, word = at, in_word(text[at])
        at += 1
        while at < size and not text[at].isspace():
            joined = text[at] in APOSTROPHES and at + 1 < size and in_word(text[at + 1])
            if (in_word(text[at]) or (word and joined)) != word:
                break
            at += 1
        spans.append((start, at))
    return spans


def without_span(text: str, start: int, end: int) -> str:
    """The text with text[start:end] taken out, and one space beside it, so the rest reads as
    before; between two signs that touched it, a space, so that they do not touch each other
    ("great.Service" without "." is "great Service", not a word "greatService")."""
    if start > 0 and text[start - 1] == " " and (end == len(text) or text[end] == " "):
        start -= 1
    elif end < len(text) and text[end] == " " and start == 0:
        end += 1
    elif 0 < start and end < len(text) and not text[start - 1].isspace() and not text[end].isspace():
        return text[:start] + " " + text[end:]
    return text[:start] + text[end:]


def occlusions(text: str, max_words: int | None = None) -> Occlusions:
    spans = [] if has_no_words(text) else word_spans(text)
    rated = spans[:max_words]
    row_of = {text: 0}  # each distinct text once, in the order met
    rows = [row_of.setdefault(without_span(text, start, end), len(row_of)) for start, end in rated]
    return Occlusions(text, rated, len(spans) - len(rated), list(row_of), rows)


def explanation_from(occluded: Occlusions, proba: np.ndarray) -> Explanation:
    """The explanation, given the probabilities of `occluded.texts`, in their order."""
    proba = np.asarray(proba, dtype=np.float64)
    stars_value = proba @ np.asarray(STARS, dtype=np.float64)
    whole = prediction_rows([occluded.text], proba[:1])[0]
    predicted = whole["stars"] - 1
    words = []
    for (start, end), row in zip(occluded.spans, occluded.rows):
        words.append(WordEffect(occluded.text[start:end], start, end, round(float(stars_value[0] - stars_value[row]), 4),
                                round(float(proba[0, predicted] - proba[row, predicted]), 4)))
    return Explanation(occluded.text, whole["stars"], whole["expected_stars"], whole["probabilities"], words, occluded.not_rated)


def explain_one(predictor, text: str, max_words: int | None = None, batch_size: int | None = None) -> Explanation:
    """`text`'s rating by `predictor` and the effect on it of each of its first `max_words` words (all: None).

    The texts with a word left out are rated a run of `CHUNK_CHARS` characters at a time: each
    is nearly the whole review, and all at once a linear model held 6 GB for 1,500 words of a
    108 KB review (11.8 GB for 3,000), whatever --batch-size said."""
    from ..data.files import CHUNK_CHARS, in_chunks

    occluded = occlusions(text, max_words)
    proba = [predictor.predict_proba(chunk, batch_size=batch_size) for chunk in in_chunks(occluded.texts, len(occluded.texts), CHUNK_CHARS)]
    return explanation_from(occluded, np.concatenate(proba))
