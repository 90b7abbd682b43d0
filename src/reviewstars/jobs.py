"""The jobs behind the CLI: train, evaluate, predict. Each is one call a script can make too.

This module sits at the end of the chain (data -> models -> training -> evaluation ->
report), so it is the place that strings them together: train a model, score it on the
held-out split, and leave a model folder with its metrics and a model card.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
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
from .report import learning_curve_points, plot_confusion_matrix, plot_learning_curve

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"


# --------------------------------------------------------------------------- train


SCRATCH = "scratch"
SCRATCH_LEARNING_RATE = 5e-4  # a small encoder from random weights wants a larger step than fine-tuning


@dataclass
class ScratchSettings:
    """Size of the from-scratch encoder and its tokenizer."""

    layers: int = 4
    width: int = 256
    heads: int = 4
    feed_forward: int = 1024
    dropout: float = 0.1
    vocab_size: int = 8000
    tokenizer: str | None = None  # None: train WordPiece on the training texts


def train(
    model: str,
    data: str | Path = DEFAULT_DATASET,
    output: str | Path = "runs/model",
    *,
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int = DEFAULT_SEED,
    linear: LinearSettings | None = None,
    transformer: "TrainSettings | None" = None,
    scratch: ScratchSettings | None = None,
    dev_size: int = 500,
) -> dict[str, Any]:
    """Train `model` (linear, scratch, or a pretrained name/folder) on `data` into `output`.

    The model folder gets weights, tokenizer, `metrics.json` on the held-out split
    (validation, else test), plots and a model card. Transformers pick their best
    checkpoint on a dev slice carved from train, so the reported split stays unseen.
    """
    dataset = load_data(data, train_size=train_size, eval_size=eval_size, seed=seed)
    if "train" not in dataset:
        raise DataError(data, f"no train split to learn from (have: {', '.join(dataset)})")
    output = Path(output)
    run: dict[str, Any] = {"model": model, "data": str(data), "seed": seed, "train_size": train_size, "eval_size": eval_size}
    if model == LinearPredictor.kind:
        predictor, details = _train_linear(dataset["train"], linear)
    else:
        predictor, details = _train_transformer(model, dataset["train"], output, seed, transformer, scratch, dev_size)
    run.update(details)
    predictor.info = {"training": {k: v for k, v in run.items() if k != "log_history"}}
    predictor.save(output)

    result: dict[str, Any] = {"output": str(output), **run, "parameters": predictor.num_parameters}
    if "log_history" in run:
        write_json(output / "learning_curve.json", learning_curve_points(run["log_history"]))
        plot_learning_curve(run["log_history"], output / "learning_curve.png", f"{model} on {data}")
    held_out = eval_split_name(dataset)
    if held_out is not None:
        metrics, _ = evaluate_predictor(predictor, dataset[held_out]["text"], dataset[held_out]["label"])
        metrics["split"] = held_out
        write_json(output / METRICS_FILE, metrics)
        plot_confusion_matrix(metrics["confusion_matrix"], output / CONFUSION_FILE, f"{model} on {held_out}")
        result["metrics"] = metrics
    write_text(output / "README.md", model_card(predictor, result))
    return result


def _train_linear(train_split, settings: LinearSettings | None):
    predictor = LinearPredictor(settings)
    started = time.perf_counter()
    with status(f"fitting TF-IDF + logistic regression on {len(train_split):,} reviews"):
        predictor.fit(train_split["text"], train_split["label"])
    details = {"train_seconds": round(time.perf_counter() - started, 2), "train_examples": len(train_split),
               "train_examples_seen": len(train_split), "settings": asdict(predictor.settings)}
    return predictor, details


def _train_transformer(model: str, train_split, output: Path, seed: int, settings, scratch, dev_size: int):
    from dataclasses import replace

    from .models.transformer import TransformerPredictor
    from .training import TrainSettings, train_transformer

    settings = replace(settings or TrainSettings(), seed=seed)
    if settings.learning_rate is None:
        settings = replace(settings, learning_rate=SCRATCH_LEARNING_RATE if model == SCRATCH else 5e-5)
    dev_rows = min(dev_size, max(len(train_split) // 5, 1))
    parts = train_split.train_test_split(test_size=dev_rows, seed=seed, stratify_by_column="label") if dev_rows < len(train_split) else None
    if parts is None or len(parts["train"]) < 2:
        raise DataError("--data", f"too few training reviews ({len(train_split)}) to train a transformer")
    train_part, dev_part = parts["train"], parts["test"]
    last_checkpoint = _last_checkpoint(output) if settings.resume else None
    if model == SCRATCH and last_checkpoint is not None:
        # Resume with the checkpoint's own vocabulary and architecture, never a new one.
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        network = AutoModelForSequenceClassification.from_pretrained(last_checkpoint)
        tokenizer = AutoTokenizer.from_pretrained(last_checkpoint)
        details = {"architecture": asdict(scratch or ScratchSettings())}
    elif model == SCRATCH:
        network, tokenizer = _new_encoder(train_part, scratch or ScratchSettings(), settings.max_length)
        details: dict[str, Any] = {"architecture": asdict(scratch or ScratchSettings())}
    else:
        from .models.pretrained import load_for_fine_tuning

        network, tokenizer = load_for_fine_tuning(model)
        details = {"base_model": model}
    outcome = train_transformer(network, tokenizer, train_part, dev_part, output, settings)
    details.update(
        train_examples=len(train_part), dev_examples=len(dev_part),
        train_examples_seen=outcome["train_examples_seen"], train_seconds=outcome["train_seconds"],
        steps=outcome["steps"], plan=outcome["plan"], best_dev_accuracy=outcome["best_dev_accuracy"],
        settings=outcome["settings"], log_history=outcome["log_history"],
    )
    predictor = TransformerPredictor(network, tokenizer, settings.max_length, settings.truncation)
    return predictor, details


def _last_checkpoint(output: Path) -> str | None:
    from .training import CHECKPOINTS, get_last_checkpoint_or_none

    return get_last_checkpoint_or_none(output / CHECKPOINTS)


def _new_encoder(train_split, scratch: ScratchSettings, max_length: int):
    from .models.encoder import EncoderConfig, EncoderForStarRating
    from .tokenization import load_tokenizer, train_wordpiece

    if scratch.tokenizer:
        tokenizer = load_tokenizer(scratch.tokenizer)
    else:
        with status(f"learning a {scratch.vocab_size:,}-piece WordPiece vocabulary from {len(train_split):,} reviews"):
            tokenizer = train_wordpiece(train_split["text"], scratch.vocab_size)
    config = EncoderConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_length,
        hidden_size=scratch.width,
        num_hidden_layers=scratch.layers,
        num_attention_heads=scratch.heads,
        intermediate_size=scratch.feed_forward,
        dropout=scratch.dropout,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    return EncoderForStarRating(config), tokenizer


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
        f"- data: `{result['data']}` ({result['train_examples']:,} training reviews, {result['train_examples_seen']:,} seen, seed {result['seed']})",
        f"- training time: {result['train_seconds']} s",
        f"- parameters: {predictor.num_parameters:,}",
    ]
    if result.get("base_model"):
        lines.insert(lines.index("## Training") + 2, f"- fine-tuned from: `{result['base_model']}`")
    for title, values in (("Architecture", result.get("architecture")), ("Settings", result.get("settings")), ("Training plan", result.get("plan"))):
        if values:
            lines += ["", f"## {title}", "", *[f"- `{k}`: {v}" for k, v in values.items()]]
    if result.get("log_history"):
        lines += ["", "![learning curve](learning_curve.png)"]
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
