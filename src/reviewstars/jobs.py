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
from .artifacts import atomic_file, is_main_process, read_json, write_json, write_text
from .data import DEFAULT_DATASET, DEFAULT_SEED, count_rows, eval_split_name, iter_text_chunks, load_data, pick_split, subset
from .errors import DataError, ModelError, ReviewstarsError
from .evaluation import evaluate_predictor, predict_proba_batched
from .models import LinearPredictor, StarPredictor, load_predictor
from .models.base import prediction_rows
from .models.linear import LinearSettings
from .progress import progress_bar, status
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
    if not is_main_process():
        # Under torchrun every process trained the same model; only the first one writes it.
        return {"output": str(output), **run, "parameters": predictor.num_parameters}
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
        network, tokenizer = _new_encoder(train_part, scratch or ScratchSettings(), settings, output)
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
        final_dev_accuracy=outcome["final_dev_accuracy"], kept=outcome["kept"],
        settings=outcome["settings"], log_history=outcome["log_history"],
    )
    predictor = TransformerPredictor(network, tokenizer, settings.max_length, settings.truncation)
    return predictor, details


def _last_checkpoint(output: Path) -> str | None:
    from .training import CHECKPOINTS, last_complete_checkpoint

    return last_complete_checkpoint(output / CHECKPOINTS)


def _new_encoder(train_split, scratch: ScratchSettings, settings, output: Path):
    import torch

    from .models.encoder import EncoderConfig, EncoderForStarRating
    from .tokenization import load_tokenizer
    from .training import main_process_first

    max_length = settings.max_length
    if scratch.tokenizer:
        tokenizer = load_tokenizer(scratch.tokenizer)
    else:
        with main_process_first():
            tokenizer = _learned_vocabulary(train_split, scratch.vocab_size, output, settings.resume)
    torch.manual_seed(settings.seed)  # the same first weights on every process and every run
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


def _learned_vocabulary(train_split, vocab_size: int, output: Path, resume: bool):
    """A WordPiece vocabulary learned from the training texts, kept in the checkpoints folder.

    tokenizers' trainer breaks ties in hash-map order, so two runs on the same texts can
    learn slightly different vocabularies (huggingface/tokenizers#1794). So the vocabulary
    is learned once, by the first process, and saved before training starts: the other
    processes and a `--resume` after a crash (even one before the first checkpoint) use
    that very vocabulary.
    """
    from .artifacts import atomic_dir
    from .tokenization import load_tokenizer, train_wordpiece
    from .training import CHECKPOINTS

    saved = output / CHECKPOINTS / "vocabulary"
    if (saved / "tokenizer.json").is_file() and (resume or not is_main_process()):
        return load_tokenizer(str(saved))
    with status(f"learning a {vocab_size:,}-piece WordPiece vocabulary from {len(train_split):,} reviews"):
        tokenizer = train_wordpiece(train_split["text"], vocab_size)
    with atomic_dir(saved) as stage:
        tokenizer.save_pretrained(stage)
    return tokenizer


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


def predict_texts(model: str | Path | StarPredictor, texts: Sequence[str]) -> list[dict[str, Any]]:
    predictor = model if isinstance(model, StarPredictor) else load_predictor(model)
    return prediction_rows(predictor.predict_proba(list(texts)))


PREDICTION_FORMATS = (".csv", ".parquet", ".jsonl")


def parse_shard(shard: str | None) -> tuple[int, int]:
    """`"i/N"` -> (i, N): this process rates rows i, i+N, i+2N... of the file."""
    if not shard:
        return 0, 1
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise ReviewstarsError(f"--shard '{shard}': expected i/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ReviewstarsError(f"--shard '{shard}': need 0 <= i < N")
    return index, count


def predict_file(
    model: str | Path | StarPredictor,
    source: str | Path,
    output: str | Path,
    column: str = "text",
    shard: str | None = None,
    chunk_rows: int = 8192,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Rate every text of a .csv/.parquet/.jsonl file of any size into `output`.

    Reads and writes `chunk_rows` rows at a time (memory stays bounded), predicts each
    chunk in length-sorted batches, and writes rows back in input order. With a shard
    "i/N" it rates rows i, i+N, ... and adds their input `row` so `merge_predictions`
    can put N outputs back together. The output appears only when it is complete.
    """
    output = Path(output)
    if output.suffix.lower() not in PREDICTION_FORMATS:
        raise DataError(output, "output must end in .csv, .parquet or .jsonl")
    index, count = parse_shard(shard)
    predictor = model if isinstance(model, StarPredictor) else load_predictor(model)
    total = count_rows(source)
    rows = seen = 0
    started = time.perf_counter()
    with _PredictionWriter(output) as writer, progress_bar("predicting", total=None if total is None else -(-(total - index) // count)) as advance:
        for chunk in iter_text_chunks(source, column, chunk_rows):
            mine = [(seen + k, text) for k, text in enumerate(chunk) if (seen + k) % count == index]
            seen += len(chunk)
            if not mine:
                continue
            texts = [text for _, text in mine]
            proba = predictor.predict_proba(texts, batch_size=batch_size)
            frame = prediction_frame(texts, proba, column)
            if count > 1:
                frame.insert(0, "row", [row for row, _ in mine])
            writer.write(frame)
            rows += len(texts)
            advance(len(texts))
    seconds = time.perf_counter() - started
    return {"rows": rows, "output": str(output), "seconds": round(seconds, 3), "shard": f"{index}/{count}",
            "predictions_per_second": round(rows / max(seconds, 1e-9), 1)}


def prediction_frame(texts: Sequence[str], proba: np.ndarray, column: str = "text"):
    import pandas as pd

    frame = pd.DataFrame({column: list(texts), "stars": proba.argmax(axis=1) + 1})
    for i, star in enumerate(STARS):
        frame[f"p_{star}"] = proba[:, i]
    frame["expected_stars"] = proba @ np.asarray(STARS, dtype=float)
    return frame


def merge_predictions(parts: Sequence[str | Path], output: str | Path) -> dict[str, Any]:
    """Put the outputs of `predict --shard i/N` (i = 0..N-1) back into input order."""
    import pandas as pd

    if not parts:
        raise ReviewstarsError("nothing to merge: give the shard outputs")
    frames = []
    for part in parts:
        frame = _read_frame(Path(part))
        if "row" not in frame.columns:
            raise DataError(part, "no 'row' column: not an output of `predict --shard`")
        frames.append(frame)
    merged = pd.concat(frames, ignore_index=True).sort_values("row", kind="stable")
    if merged["row"].duplicated().any() or (len(merged) and merged["row"].iloc[-1] != len(merged) - 1):
        raise ReviewstarsError("the shard outputs overlap or miss rows: give every shard 0/N..N-1/N once")
    output = Path(output)
    with _PredictionWriter(output) as writer:
        writer.write(merged.drop(columns="row"))
    return {"rows": len(merged), "output": str(output), "parts": len(parts)}


def _read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(path, "no such file")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    raise DataError(path, "expected a .csv, .parquet or .jsonl file")


class _PredictionWriter:
    """Appends frames to a temporary file that becomes `output` only when all is written."""

    def __init__(self, output: Path):
        self.output, self.suffix = output, output.suffix.lower()
        self.parquet = None
        self.handle = None

    def __enter__(self):
        self._atomic = atomic_file(self.output)
        self.path = self._atomic.__enter__()
        if self.suffix != ".parquet":
            self.handle = self.path.open("w", encoding="utf-8", newline="")
        return self

    def write(self, frame) -> None:
        if self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table)
        elif self.suffix == ".csv":
            frame.to_csv(self.handle, index=False, header=self.handle.tell() == 0)
        else:
            text = frame.to_json(orient="records", lines=True, force_ascii=False)
            self.handle.write(text if text.endswith("\n") else text + "\n")

    def __exit__(self, kind, error, trace):
        if self.parquet is not None:
            self.parquet.close()
        if self.handle is not None:
            self.handle.close()
        return self._atomic.__exit__(kind, error, trace)


def read_metrics(model: str | Path) -> dict[str, Any] | None:
    path = Path(model) / METRICS_FILE
    return read_json(path) if path.is_file() else None
