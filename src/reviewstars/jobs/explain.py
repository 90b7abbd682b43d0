"""`reviewstars explain`: which words moved a model's rating of each review (`models.explanation`),
printed, and written as JSON with a bar chart beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import __version__
from ..artifacts import check_output_file, json_with_keys, plot_beside, write_json
from ..errors import ReviewstarsError
from ..models import StarPredictor
from ..models.explanation import METHOD, Explanation, explain_one
from ..progress import progress_bar
from .predict import opened

#: How a rerun knows an `--output` JSON is explanations `explain` wrote (and may be replaced).
EXPLANATIONS_JSON = json_with_keys("model", "method", "explanations")


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
