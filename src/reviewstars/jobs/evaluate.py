"""`reviewstars evaluate`: score a model folder on a split, or a seeded sample of it."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import check_output_file, write_json
from ..data import DEFAULT_DATASET, DEFAULT_SEED, Columns, load_data, pick_split, subset
from ..scoring.evaluation import evaluate_predictor
from ..scoring.scores import Scores
from ..models import load_predictor


def evaluate(model: str | Path, data: str | Path = DEFAULT_DATASET, *, split: str | None = None, n: int | None = None,
             seed: int = DEFAULT_SEED, output: str | Path | None = None, device: str | None = None,
             decision: str = "argmax", columns: Columns | None = None) -> Scores:
    """The scores of `model` on `split` (default: test, else validation); JSON and a confusion PNG at `output`."""
    if output is not None:  # before any work: never over the model or the data read
        output = check_output_file(output, inputs=(model, data))
        check_output_file(output.with_suffix(".confusion.png"), "--output's confusion matrix", inputs=(model, data))
    predictor = load_predictor(model, device=device)
    dataset = load_data(data, columns=columns)
    split = pick_split(dataset, split)
    rows = subset(dataset[split], n, seed)
    scores, _ = evaluate_predictor(predictor, rows["text"], rows["label"], decision=decision)
    scores.context.update(model=str(model), data=str(data), split=split, seed=seed, sample=n)
    if output is not None:
        output = Path(output)
        write_json(output, scores.to_json())
        from ..presentation.plots import plot_confusion_matrix  # here: matplotlib is slow to import

        plot_confusion_matrix(scores.confusion_matrix, output.with_suffix(".confusion.png"), f"{Path(model).name} on {split}")
    return scores
