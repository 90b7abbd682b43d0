"""How good is a model: the numbers, computed with scikit-learn, written as JSON."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from .. import STARS
from ..artifacts import read_json, write_bytes, write_json
from ..progress import progress_bar

#: Texts handed to a predictor at a time: large enough for it to sort by length and keep a GPU
#: fed (it cuts its own batches), small enough for the progress bar to move.
PROGRESS_CHUNK = 4096


def star_metrics(true_stars: Sequence[int], predicted_stars: Sequence[int]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall, confusion matrix and star distances.

    Star ratings are ordered, so besides exact accuracy we report the mean absolute
    error in stars and the share of predictions at most one star off.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

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


def predict_proba_batched(predictor, texts: Sequence[str], batch_size: int | None = None, description: str = "predicting",
                          calibrated: bool = True) -> np.ndarray:
    """Run any predictor over many texts with a progress bar; the predictor sizes its own
    batches for its device (`batch_size` caps the reviews in one)."""
    texts = list(texts)
    chunks = []
    run = predictor.predict_proba if calibrated else predictor.uncalibrated_proba
    with progress_bar(description, total=len(texts)) as advance:
        for start in range(0, len(texts), PROGRESS_CHUNK):
            batch = texts[start : start + PROGRESS_CHUNK]
            chunks.append(np.asarray(run(batch, batch_size=batch_size)))
            advance(len(batch))
    return np.concatenate(chunks) if chunks else np.zeros((0, len(STARS)))


def score_proba(proba: np.ndarray, labels: Sequence[int], decision: str = "argmax", seed: int = 0) -> dict[str, Any]:
    """Every number of a model's predictions on labelled reviews: the metrics of its star
    decision, with 95% bootstrap intervals, and its calibration error (15 bins) beside the
    error a perfectly calibrated model would show on as many reviews (its noise floor)."""
    from .calibration import ece_noise_floor, expected_calibration_error
    from ..models.probabilities import star_decision
    from .significance import bootstrap_interval

    labels = np.asarray(labels, dtype=int)
    stars = star_decision(proba, decision)
    metrics = star_metrics(labels + 1, stars)
    intervals = bootstrap_interval(labels, stars - 1, seed=seed)
    metrics["decision"] = decision
    metrics["intervals"] = {"level": intervals.level, "resamples": intervals.resamples,
                            "accuracy": [intervals.accuracy.low, intervals.accuracy.high],
                            "macro_f1": [intervals.macro_f1.low, intervals.macro_f1.high]}
    metrics["ece"] = expected_calibration_error(proba, labels)
    metrics["ece_noise_floor"], metrics["ece_noise_95"] = ece_noise_floor(proba, seed=seed)
    metrics["warnings"] = result_warnings(metrics, labels, stars)
    return metrics


#: Past this share of the reviews on one star, a model says little more than that star.
ONE_STAR_SHARE = 0.8


def result_warnings(metrics: dict[str, Any], labels: np.ndarray, stars: np.ndarray) -> list[str]:
    """What a result does not say by itself: a model that gives one star to most reviews, or
    whose accuracy is within noise of a constant guess (the share of the commonest true
    star: 0.20 on balanced reviews)."""
    found = []
    counts = np.bincount(np.asarray(stars, dtype=int), minlength=len(STARS) + 1)[1:]
    if len(stars) and counts.max() >= ONE_STAR_SHARE * len(stars):
        found.append(f"predicts {int(counts.argmax()) + 1} stars for {counts.max() / len(stars):.0%} of the reviews: it has "
                     "learned little more than that")
    constant = float(np.bincount(labels, minlength=len(STARS)).max() / max(len(labels), 1))
    low = metrics["intervals"]["accuracy"][0]
    if low <= constant:
        found.append(f"accuracy {metrics['accuracy']:.3f} is within noise of a constant guess ({constant:.3f}: the commonest "
                     f"star's share; 95% interval from {low:.3f})")
    return found


def evaluate_predictor(predictor, texts: Sequence[str], labels: Sequence[int], batch_size: int | None = None,
                       decision: str = "argmax") -> tuple[dict[str, Any], np.ndarray]:
    """Score a predictor on labelled texts (labels 0..4); also times it, and says what
    its calibration did (the error of its uncalibrated probabilities beside)."""
    from .calibration import expected_calibration_error
    from ..models.probabilities import apply_temperature

    started = time.perf_counter()
    raw = predict_proba_batched(predictor, texts, batch_size, description="evaluating", calibrated=False)
    seconds = time.perf_counter() - started
    proba = apply_temperature(raw, predictor.temperature)
    metrics = score_proba(proba, labels, decision)
    metrics["temperature"] = predictor.temperature
    metrics["ece_uncalibrated"] = expected_calibration_error(raw, np.asarray(labels, dtype=int))
    metrics["seconds"] = round(seconds, 3)
    metrics["predictions_per_second"] = round(len(texts) / seconds, 1) if seconds > 0 else None
    return metrics, proba


# --------------------------------------------------------------------------- scores kept beside a model

#: Scores kept beside a model, by what was scored: its probabilities (ranks, intervals,
#: worst mistakes, ensembles) and metrics, keyed by the very reviews.
SCORES = {"held_out": "compare_scores", "dev": "dev_scores"}


def scores_key(split: str, texts: Sequence[str], labels: Sequence[int]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps({"split": split, "texts": list(texts), "labels": [int(x) for x in labels]}).encode()).hexdigest()[:16]


def save_scores(folder, key: str, metrics: dict[str, Any], proba: np.ndarray, kind: str, parameters: int, what: str = "held_out") -> None:
    """A model's scores on some reviews, so that nothing scores it on them twice."""
    import io
    from pathlib import Path

    buffer = io.BytesIO()
    np.savez(buffer, proba=np.asarray(proba, dtype=np.float32))
    write_bytes(Path(folder) / f"{SCORES[what]}.npz", buffer.getvalue())
    write_json(Path(folder) / f"{SCORES[what]}.json", {"held_out_key": key, "metrics": metrics, "kind": kind, "parameters": parameters})


def load_scores(folder, key: str, what: str = "held_out") -> tuple[dict[str, Any], np.ndarray, str, int] | None:
    """(metrics, probabilities, kind, parameters) when `folder` was scored on exactly these reviews."""
    from pathlib import Path

    record, arrays = Path(folder) / f"{SCORES[what]}.json", Path(folder) / f"{SCORES[what]}.npz"
    if not (record.is_file() and arrays.is_file()):
        return None
    recorded = read_json(record)
    if recorded.get("held_out_key") != key:
        return None
    with np.load(arrays, allow_pickle=False) as stored:
        proba = stored["proba"]
    return recorded["metrics"], proba, recorded["kind"], recorded["parameters"]

