"""The jobs behind the CLI: train, evaluate, predict. Each is one call a script can make too.

This module sits at the end of the chain (data -> models -> training -> evaluation ->
report), so it is the place that strings them together: train a model, score it on the
held-out split, and leave a model folder with its metrics and a model card.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import STARS
from .artifacts import read_json, write_json, write_text
from .data import DEFAULT_DATASET, DEFAULT_SEED, eval_split_name, load_data, pick_split, read_texts, subset
from .errors import DataError, ModelError
from .evaluation import evaluate_predictor, predict_proba_batched
from .models import LinearPredictor, StarPredictor, load_predictor
from .models.linear import LinearSettings
from .progress import status
from .report import plot_confusion_matrix

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"


# --------------------------------------------------------------------------- train


def train(
    model: str,
    data: str | Path = DEFAULT_DATASET,
    output: str | Path = "runs/model",
    *,
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int = DEFAULT_SEED,
    linear: LinearSettings | None = None,
) -> dict[str, Any]:
    """Train `model` on `data`, save it to `output`, score it on the held-out split."""
    dataset = load_data(data, train_size=train_size, eval_size=eval_size, seed=seed)
    if "train" not in dataset:
        raise DataError(data, f"no train split to learn from (have: {', '.join(dataset)})")
    train_split = dataset["train"]
    run = {"data": str(data), "seed": seed, "train_size": train_size, "eval_size": eval_size}
    if model != LinearPredictor.kind:
        raise ModelError(f"unknown model {model!r}: choose 'linear'")
    predictor = LinearPredictor(linear)
    started = time.perf_counter()
    with status(f"fitting TF-IDF + logistic regression on {len(train_split):,} reviews"):
        predictor.fit(train_split["text"], train_split["label"])
    run.update(train_seconds=round(time.perf_counter() - started, 2), train_examples=len(train_split))
    predictor.info = {"training": run}
    output = Path(output)
    predictor.save(output)

    result: dict[str, Any] = {"model": model, "output": str(output), **run, "parameters": predictor.num_parameters}
    held_out = eval_split_name(dataset)
    if held_out is not None:
        metrics, _ = evaluate_predictor(predictor, dataset[held_out]["text"], dataset[held_out]["label"])
        metrics["split"] = held_out
        write_json(output / METRICS_FILE, metrics)
        plot_confusion_matrix(metrics["confusion_matrix"], output / CONFUSION_FILE, f"{model} on {held_out}")
        result["metrics"] = metrics
    write_text(output / "README.md", model_card(predictor, result))
    return result


def model_card(predictor: StarPredictor, result: dict[str, Any]) -> str:
    """The folder's README.md: what the model is, what it saw, how it scored."""
    lines = [
        "---",
        "library_name: reviewstars",
        "tags: [text-classification, sentiment, yelp, star-rating]",
        "---",
        "",
        f"# reviewstars `{predictor.kind}` model: review -> stars (1 to 5)",
        "",
        "## Training",
        "",
        f"- data: `{result['data']}` ({result['train_examples']:,} training reviews, seed {result['seed']})",
        f"- training time: {result['train_seconds']} s",
        f"- parameters: {predictor.num_parameters:,}",
    ]
    settings = getattr(predictor, "settings", None)
    if settings is not None:
        lines += ["", "## Settings", "", *[f"- `{k}`: {v}" for k, v in asdict(settings).items()]]
    metrics = result.get("metrics")
    if metrics:
        lines += [
            "",
            f"## Results on `{metrics['split']}` ({metrics['n']:,} reviews)",
            "",
            "| accuracy | macro-F1 | MAE (stars) | off-by-one accuracy |",
            "|---|---|---|---|",
            f"| {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} | {metrics['mae']:.3f} | {metrics['off_by_one_accuracy']:.4f} |",
            "",
            f"![confusion matrix]({CONFUSION_FILE})",
        ]
    if isinstance(predictor, LinearPredictor):
        lines += ["", "## Strongest n-grams per rating", ""]
        lines += [f"- {star}★: {', '.join(terms)}" for star, terms in predictor.top_features(8).items()]
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        'reviewstars predict --model THIS_FOLDER "The food was great but the service was slow."',
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- evaluate


def evaluate(
    model: str | Path,
    data: str | Path = DEFAULT_DATASET,
    *,
    split: str | None = None,
    n: int | None = None,
    seed: int = DEFAULT_SEED,
    output: str | Path | None = None,
) -> dict[str, Any]:
    """Score a model folder on a split (or a seeded sample of `n` of its rows)."""
    predictor = load_predictor(model)
    dataset = load_data(data)
    split = pick_split(dataset, split)
    rows = subset(dataset[split], n, seed)
    metrics, _ = evaluate_predictor(predictor, rows["text"], rows["label"])
    metrics.update(model=str(model), data=str(data), split=split, seed=seed, sample=n)
    if output is not None:
        output = Path(output)
        write_json(output, metrics)
        plot_confusion_matrix(metrics["confusion_matrix"], output.with_suffix(".confusion.png"), f"{Path(model).name} on {split}")
    return metrics


# --------------------------------------------------------------------------- predict


def prediction_rows(proba: np.ndarray) -> list[dict[str, Any]]:
    """Per text: stars, the five probabilities, and the expected star value."""
    stars = np.asarray(STARS, dtype=float)
    return [
        {
            "stars": int(row.argmax()) + 1,
            "probabilities": {str(s): round(float(p), 6) for s, p in zip(STARS, row)},
            "expected_stars": round(float(row @ stars), 4),
        }
        for row in proba
    ]


def predict_texts(model: str | Path | StarPredictor, texts: Sequence[str]) -> list[dict[str, Any]]:
    predictor = model if isinstance(model, StarPredictor) else load_predictor(model)
    return prediction_rows(predictor.predict_proba(list(texts)))


def predict_file(model: str | Path, source: str | Path, output: str | Path, column: str = "text") -> dict[str, Any]:
    """Predict every text of a .csv/.parquet/.jsonl file; rows stay in input order."""
    import pandas as pd

    output = Path(output)
    if output.suffix.lower() not in (".csv", ".parquet", ".jsonl"):
        raise DataError(output, "output must end in .csv, .parquet or .jsonl")
    predictor = load_predictor(model)
    texts = read_texts(source, column)
    started = time.perf_counter()
    proba = predict_proba_batched(predictor, texts)
    seconds = time.perf_counter() - started
    frame = pd.DataFrame({column: texts, "stars": proba.argmax(axis=1) + 1})
    for i, star in enumerate(STARS):
        frame[f"p_{star}"] = proba[:, i]
    frame["expected_stars"] = proba @ np.asarray(STARS, dtype=float)
    _write_frame(frame, output)
    return {"rows": len(texts), "output": str(output), "seconds": round(seconds, 3),
            "predictions_per_second": round(len(texts) / max(seconds, 1e-9), 1)}


def _write_frame(frame, output: Path) -> None:
    import io

    from .artifacts import write_bytes

    buffer = io.BytesIO()
    suffix = output.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(buffer, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_json(buffer, orient="records", lines=True, force_ascii=False)
    write_bytes(output, buffer.getvalue())


def read_metrics(model: str | Path) -> dict[str, Any] | None:
    path = Path(model) / METRICS_FILE
    return read_json(path) if path.is_file() else None
