"""How good is a model: the numbers, computed with scikit-learn, written as JSON."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from . import STARS
from .artifacts import read_json, write_bytes, write_json
from .progress import progress_bar

DEFAULT_BATCH_SIZE = 256


def star_metrics(true_stars: Sequence[int], predicted_stars: Sequence[int]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall, confusion matrix and star distances.

    Star ratings are ordered, so besides exact accuracy we report the mean absolute
    error in stars and the share of predictions at most one star off.
    """
    y_true, y_pred = np.asarray(true_stars, dtype=int), np.asarray(predicted_stars, dtype=int)
    if len(y_true) == 0:
        raise ValueError("no examples to score")
    labels = list(STARS)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    distance = np.abs(y_true - y_pred)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "mae": float(distance.mean()),
        "off_by_one_accuracy": float((distance <= 1).mean()),
        "per_class": {
            str(star): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, star in enumerate(labels)
        },
        # rows: true stars 1..5, columns: predicted stars 1..5
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def predict_proba_batched(predictor, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE, description: str = "predicting") -> np.ndarray:
    """Run any predictor over many texts in batches, with a progress bar."""
    texts = list(texts)
    chunks = []
    with progress_bar(description, total=len(texts)) as advance:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            chunks.append(np.asarray(predictor.predict_proba(batch, batch_size=batch_size)))
            advance(len(batch))
    return np.concatenate(chunks) if chunks else np.zeros((0, len(STARS)))


def evaluate_predictor(predictor, texts: Sequence[str], labels: Sequence[int], batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[dict[str, Any], np.ndarray]:
    """Score a predictor on labelled texts (labels 0..4); also times it."""
    started = time.perf_counter()
    proba = predict_proba_batched(predictor, texts, batch_size, description="evaluating")
    seconds = time.perf_counter() - started
    metrics = star_metrics(np.asarray(labels) + 1, proba.argmax(axis=1) + 1)
    metrics["seconds"] = round(seconds, 3)
    metrics["predictions_per_second"] = round(len(texts) / seconds, 1) if seconds > 0 else None
    return metrics, proba


# --------------------------------------------------------------------------- scores kept beside a model

SCORES_FILE = "compare_scores.json"      # metrics on held-out texts, keyed by those texts
SCORES_ARRAYS = "compare_scores.npz"     # their probabilities (ranks, intervals, worst mistakes)


def scores_key(split: str, texts: Sequence[str], labels: Sequence[int]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps({"split": split, "texts": list(texts), "labels": [int(x) for x in labels]}).encode()).hexdigest()[:16]


def save_scores(folder, key: str, metrics: dict[str, Any], proba: np.ndarray, kind: str, parameters: int) -> None:
    """A model's scores on some held-out reviews, so that nothing scores it on them twice."""
    import io
    from pathlib import Path

    buffer = io.BytesIO()
    np.savez(buffer, proba=np.asarray(proba, dtype=np.float32))
    write_bytes(Path(folder) / SCORES_ARRAYS, buffer.getvalue())
    write_json(Path(folder) / SCORES_FILE, {"held_out_key": key, "metrics": metrics, "kind": kind, "parameters": parameters})


def load_scores(folder, key: str) -> tuple[dict[str, Any], np.ndarray, str, int] | None:
    """(metrics, probabilities, kind, parameters) when `folder` was scored on exactly these reviews."""
    from pathlib import Path

    record, arrays = Path(folder) / SCORES_FILE, Path(folder) / SCORES_ARRAYS
    if not (record.is_file() and arrays.is_file()):
        return None
    recorded = read_json(record)
    if recorded.get("held_out_key") != key:
        return None
    with np.load(arrays, allow_pickle=False) as stored:
        proba = stored["proba"]
    return recorded["metrics"], proba, recorded["kind"], recorded["parameters"]

