"""The lesson's ladder as one command: train each model on the same splits, score, report.

    linear -> scratch -> minilm (or any pretrained encoder)

Every model sees the same training reviews and is scored on the same held-out reviews,
under the same time budget when one is given. A model already trained with the same
settings is reused, with its scores on the same held-out texts, so a re-run only re-draws.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import STARS
from .artifacts import read_json, write_bytes, write_json, write_text
from .data import DEFAULT_DATASET, DEFAULT_SEED, eval_split_name, load_data
from .errors import DataError
from .evaluation import evaluate_predictor
from .jobs import METRICS_FILE, ScratchSettings, train
from .models import load_predictor
from .models.linear import LinearSettings
from .progress import console

DEFAULT_MODELS = ("linear", "scratch", "minilm")
SETTINGS_FILE = "compare_settings.json"
SCORES_FILE = "compare_scores.json"      # metrics on the held-out texts, keyed by those texts
SCORES_ARRAYS = "compare_scores.npz"     # their probabilities (worst mistakes, confusions)


def _folder_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_") or "model"


def _settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def compare(
    data: str | Path = DEFAULT_DATASET,
    output: str | Path = "runs/compare",
    models: Sequence[str] = DEFAULT_MODELS,
    evaluate_only: Sequence[str] = (),
    *,
    time_budget: float | None = None,
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int = DEFAULT_SEED,
    transformer=None,
    scratch: ScratchSettings | None = None,
    linear: LinearSettings | None = None,
    dev_size: int = 500,
) -> dict[str, Any]:
    """Train (or reuse) `models`, score them and `evaluate_only` models, write the report."""
    from .training import TrainSettings

    output = Path(output)
    dataset = load_data(data, train_size=train_size, eval_size=eval_size, seed=seed)
    held_out = eval_split_name(dataset)
    if held_out is None or "train" not in dataset:
        raise DataError(data, f"compare needs a train split and a validation or test split (have: {', '.join(dataset)})")
    transformer = replace(transformer or TrainSettings(), time_budget=time_budget, seed=seed)
    texts, labels = list(dataset[held_out]["text"]), list(dataset[held_out]["label"])

    entries = []
    for model in models:
        folder = output / "models" / _folder_name(model)
        settings = {
            "model": model, "data": str(data), "train_size": train_size, "eval_size": eval_size, "seed": seed,
            "transformer": asdict(transformer) if model != "linear" else None,
            "scratch": asdict(scratch or ScratchSettings()) if model == "scratch" else None,
            "linear": asdict(linear or LinearSettings()) if model == "linear" else None,
            "dev_size": dev_size,
        }
        key = _settings_key(settings)
        reused = _reusable(folder, key)
        if reused is None:
            console.print(f"[bold]training {model}[/] -> {folder}")
            result = train(model, data, folder, train_size=train_size, eval_size=eval_size, seed=seed,
                           linear=linear, transformer=transformer, scratch=scratch, dev_size=dev_size)
            summary = {k: result.get(k) for k in ("train_seconds", "train_examples", "train_examples_seen", "parameters")}
            write_json(folder / SETTINGS_FILE, {"key": key, "settings": settings, "summary": summary})
        else:
            console.print(f"[bold]reusing {model}[/]: already trained with the same settings in {folder}")
            summary = reused["summary"]
        entries.append({"model": model, "folder": str(folder), "trained": True, "reused": reused is not None, **summary})
    for model in evaluate_only:
        entries.append({"model": str(model), "folder": str(model), "trained": False, "reused": False,
                        "train_seconds": None, "train_examples": None, "train_examples_seen": None, "parameters": None})

    rows, scored = [], {}
    held_out_key = _settings_key({"split": held_out, "texts": texts, "labels": labels})
    for entry in entries:
        cached = _cached_scores(entry, held_out_key) if entry["reused"] else None
        if cached is None:
            predictor = load_predictor(entry["folder"])
            metrics, proba = evaluate_predictor(predictor, texts, labels)
            kind, parameters = predictor.kind, predictor.num_parameters
            if entry["trained"]:
                _store_scores(entry, held_out_key, metrics, proba, kind, parameters)
        else:
            metrics, proba, kind, parameters = cached
        scored[entry["model"]] = (metrics, proba)
        entry["parameters"] = entry["parameters"] or parameters
        rows.append({
            "model": entry["model"],
            "kind": kind,
            "accuracy": round(metrics["accuracy"], 4),
            "macro_f1": round(metrics["macro_f1"], 4),
            "mae": round(metrics["mae"], 4),
            "off_by_one_accuracy": round(metrics["off_by_one_accuracy"], 4),
            "parameters": entry["parameters"],
            "train_seconds": entry["train_seconds"],
            "train_examples_seen": entry["train_examples_seen"],
            "predictions_per_second": metrics["predictions_per_second"],
            "reused": entry["reused"],
            "folder": entry["folder"],
        })
    rows.sort(key=lambda r: (-r["accuracy"], -r["macro_f1"]))
    leaderboard = {
        "data": str(data), "split": held_out, "n": len(texts), "seed": seed, "train_size": train_size,
        "eval_size": eval_size, "time_budget_seconds": time_budget, "models": rows,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(output / "leaderboard.json", leaderboard)

    from .report import write_compare_report

    curves = {e["model"]: _curve(e["folder"]) for e in entries if e["trained"]}
    confusions = {m: scored[m][0]["confusion_matrix"] for m in (r["model"] for r in rows)}
    best = rows[0]["model"]
    mistakes = worst_mistakes(texts, labels, scored[best][1])
    write_compare_report(output, leaderboard, curves, confusions, best, mistakes)
    return leaderboard


def _reusable(folder: Path, key: str) -> dict | None:
    marker = folder / SETTINGS_FILE
    if not (marker.is_file() and (folder / "config.json").is_file() and (folder / METRICS_FILE).is_file()):
        return None
    recorded = read_json(marker)
    return recorded if recorded.get("key") == key else None


def _cached_scores(entry: dict, held_out_key: str):
    """A reused model's scores on the same held-out texts: no need to predict them again."""
    folder = Path(entry["folder"])
    record, arrays = folder / SCORES_FILE, folder / SCORES_ARRAYS
    if not (record.is_file() and arrays.is_file()):
        return None
    recorded = read_json(record)
    if recorded.get("held_out_key") != held_out_key:
        return None
    with np.load(arrays, allow_pickle=False) as stored:
        proba = stored["proba"]
    return recorded["metrics"], proba, recorded["kind"], recorded["parameters"]


def _store_scores(entry: dict, held_out_key: str, metrics: dict, proba: np.ndarray, kind: str, parameters: int) -> None:
    import io

    folder = Path(entry["folder"])
    buffer = io.BytesIO()
    np.savez(buffer, proba=np.asarray(proba, dtype=np.float32))
    write_bytes(folder / SCORES_ARRAYS, buffer.getvalue())
    write_json(folder / SCORES_FILE, {"held_out_key": held_out_key, "metrics": metrics, "kind": kind, "parameters": parameters})


def _curve(folder: str) -> dict | None:
    path = Path(folder) / "learning_curve.json"
    return read_json(path) if path.is_file() else None


def worst_mistakes(texts: Sequence[str], labels: Sequence[int], proba: np.ndarray, k: int = 8) -> list[dict]:
    """The reviews the model gets most wrong: furthest in stars, then most confident."""
    predicted = proba.argmax(axis=1)
    distance = np.abs(predicted - np.asarray(labels))
    confidence = proba.max(axis=1)
    order = np.lexsort((-confidence, -distance))
    rows = []
    for i in order[:k]:
        if distance[i] == 0:
            break
        rows.append({"text": texts[i], "true_stars": int(labels[i]) + 1, "predicted_stars": int(predicted[i]) + 1,
                     "confidence": round(float(confidence[i]), 3),
                     "probabilities": {str(s): round(float(p), 3) for s, p in zip(STARS, proba[i])}})
    return rows
