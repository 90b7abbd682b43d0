"""`reviewstars explain`: which words moved a model's rating of a review, found by leaving each out.

Occlusion asks every kind the same question (TF-IDF, a transformer, an ONNX export, an
ensemble): the model rates the review, then the review with one word taken out, for each
word in turn. A word's effect is how far the expected stars (the mean of the five
probabilities' stars) fell when it went: +0.4 says "this word raised the rating by 0.4
star". No gradients and no code per kind: the same `predict_proba` that `predict` and
`serve` call, so what is explained is the model that answers, calibration included.

It costs one model call per word (two words whose removal leaves the same text are rated
once); `max_words` bounds it for long reviews, and the explanation counts the words left.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import STARS, __version__
from ..artifacts import check_output_file, json_with_keys, plot_beside, write_json
from ..errors import ReviewstarsError
from ..models import StarPredictor
from ..models.base import has_no_words, prediction_rows
from ..progress import progress_bar
from .predict import opened

#: A word (with its apostrophes: "didn't", "chef's") or a run of marks ("!!!", ":)"): the
#: units taken out one at a time. Marks count: a transformer reads "!!!" and "?!".
WORD_OR_MARKS = re.compile(r"\w+(?:['\u2019]\w+)*|[^\w\s]+")

METHOD = "occlusion: each word left out in turn; effect = expected stars with it - without it"

#: How a rerun knows an `--output` JSON is explanations `explain` wrote (and may be replaced).
EXPLANATIONS_JSON = json_with_keys("model", "method", "explanations")


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
        """The `top` words that raised (or lowered) the rating most, strongest first."""
        sign = 1.0 if raising else -1.0
        chosen = [w for w in self.words if sign * w.stars_effect > 0]
        return sorted(chosen, key=lambda w: -sign * w.stars_effect)[:top]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def word_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in WORD_OR_MARKS.finditer(text)]


def without_span(text: str, start: int, end: int) -> str:
    """The text with text[start:end] taken out, and one space beside it, so the rest reads as before."""
    if start > 0 and text[start - 1] == " " and (end == len(text) or text[end] == " "):
        start -= 1
    elif end < len(text) and text[end] == " " and start == 0:
        end += 1
    return text[:start] + text[end:]


def explain_one(predictor: StarPredictor, text: str, max_words: int | None = None,
                batch_size: int | None = None) -> Explanation:
    spans = [] if has_no_words(text) else word_spans(text)
    rated = spans[:max_words]
    variants = list(dict.fromkeys([text, *(without_span(text, s, e) for s, e in rated)]))  # each distinct text rated once
    proba = np.asarray(predictor.predict_proba(variants, batch_size=batch_size), dtype=np.float64)
    row_of = {variant: i for i, variant in enumerate(variants)}
    stars_value = proba @ np.asarray(STARS, dtype=np.float64)
    whole = prediction_rows([text], proba[:1])[0]
    predicted = whole["stars"] - 1
    words = []
    for start, end in rated:
        row = row_of[without_span(text, start, end)]
        words.append(WordEffect(text[start:end], start, end, round(float(stars_value[0] - stars_value[row]), 4),
                                round(float(proba[0, predicted] - proba[row, predicted]), 4)))
    return Explanation(text, whole["stars"], whole["expected_stars"], whole["probabilities"], words, len(spans) - len(rated))


def explain_texts(model: str | Path | StarPredictor, texts: Sequence[str], *, max_words: int | None = None,
                  batch_size: int | None = None, device: str | None = None) -> list[Explanation]:
    """Each text's rating and the effect on it of each of its first `max_words` words (all: None)."""
    if max_words is not None and max_words < 1:
        raise ReviewstarsError(f"--max-words must be at least 1, got {max_words}")
    predictor = opened(model, device)
    explanations = []
    with progress_bar("explaining", total=len(texts)) as advance:
        for text in texts:
            explanations.append(explain_one(predictor, text, max_words, batch_size))
            advance(1)
    return explanations


def check_explain_output(output: str | Path, model: str | Path) -> tuple[Path, Path]:
    """The JSON `--output` and the plot beside it: neither over an input nor a file of the user's (before any work)."""
    output = check_output_file(output, inputs=(model,), ours=EXPLANATIONS_JSON, what="explanations of ours", suffix=".json")
    plot = output.with_suffix(".words.png")
    check_output_file(plot, "--output's plot", inputs=(model,), ours=plot_beside(output, EXPLANATIONS_JSON), what="a plot of ours")
    return output, plot


def write_explanations(explanations: Sequence[Explanation], model: str, output: Path, plot: Path, top: int) -> None:
    write_json(output, {"model": model, "method": METHOD, "version": __version__,
                        "explanations": [e.to_json() for e in explanations]})
    from ..presentation.plots import plot_word_effects  # here: matplotlib is slow to import

    plot_word_effects(explanations, plot, top)
