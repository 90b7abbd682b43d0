"""Scoring a model: running it over labelled reviews (timed, with a progress bar) into its
`Scores`, and keeping those scores beside the model so nothing scores it twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import STARS
from ..artifacts import read_json, write_bytes, write_json
from ..models.folder import TRAINED_TEXTS_FILE
from ..progress import progress_bar
from ..text import text_hashes
from .scores import Scores, score_predictions

#: Texts handed to a predictor at a time: large enough for it to sort by length and keep a GPU
#: fed (it cuts its own batches), small enough for the progress bar to move.
PROGRESS_CHUNK = 4096


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


#: Rated, untimed, before a model's speed is measured: its first call's set-up is not its speed.
WARM_UP_TEXTS = 16


def evaluate_predictor(predictor, texts: Sequence[str], labels: Sequence[int], batch_size: int | None = None,
                       decision: str = "argmax") -> tuple[Scores, np.ndarray]:
    """Score a predictor on labelled texts (labels 0..4); also times it, and says what
    its calibration did (the error of its uncalibrated probabilities beside)."""
    from ..models.probabilities import apply_temperature
    from .calibration import expected_calibration_error

    if len(texts):  # timed warm, as a server runs: a first call's set-up made `evaluate` read 2.5x slower than `train`
        predictor.uncalibrated_proba(list(texts[:WARM_UP_TEXTS]), batch_size=batch_size)
    started = time.perf_counter()
    raw = predict_proba_batched(predictor, texts, batch_size, description="evaluating", calibrated=False)
    seconds = time.perf_counter() - started
    proba = apply_temperature(raw, predictor.temperature)
    scores = score_predictions(proba, labels, decision)
    scores.temperature = predictor.temperature
    scores.ece_uncalibrated = expected_calibration_error(raw, np.asarray(labels, dtype=int))
    scores.seconds = round(seconds, 3)
    scores.predictions_per_second = round(len(texts) / seconds, 1) if seconds > 0 else None
    return scores, proba


# --------------------------------------------------------------------------- what a model was trained on

#: The record's arrays: hashes of each review's folded form; of its very text in records
#: written before folding (still read, each compared as it was written).
FOLDED_KEY, RAW_KEY = "folded_blake2b_8", "blake2b_8"


def save_trained_texts(folder, texts: Sequence[str]) -> None:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{FOLDED_KEY: np.unique(text_hashes(list(texts)))})
    write_bytes(Path(folder) / TRAINED_TEXTS_FILE, buffer.getvalue())


def seen_in_training(folder, texts: Sequence[str]) -> int | None:
    """How many of `texts` the model in `folder` was trained on, as a review reads (its case
    and spacing aside; None: it does not say). An ensemble was trained on what its members
    were: the union of theirs."""
    trained = _trained_hashes(Path(folder))
    if trained is None:
        return None
    seen = np.zeros(len(texts), dtype=bool)
    for fold, hashes in trained.items():
        seen |= np.isin(text_hashes(list(texts), fold=fold), hashes)
    return int(seen.sum())


def trained_not_among(folder, texts: Sequence[str]) -> int | None:
    """How many of the reviews the model in `folder` learned are not among `texts` (None: it
    does not say): 0 when `texts` are the reviews it was trained on, or more of them."""
    trained = _trained_hashes(Path(folder))
    if trained is None:
        return None
    return sum(int((~np.isin(hashes, text_hashes(list(texts), fold=fold))).sum()) for fold, hashes in trained.items())


def _trained_hashes(folder: Path, depth: int = 0) -> dict[bool, np.ndarray] | None:
    """The hashes of what the model in `folder` learned, by whether they are of folded texts."""
    from ..errors import ModelError
    from ..models.folder import read_section

    path = folder / TRAINED_TEXTS_FILE
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as saved:
                return {True: saved[FOLDED_KEY]} if FOLDED_KEY in saved else {False: saved[RAW_KEY]}
        except (OSError, ValueError, KeyError):
            return None
    try:
        members = read_section(folder).get("members") if depth < 8 else None  # (an ensemble's load refuses deeper)
    except (ModelError, OSError, ValueError):
        return None
    if not isinstance(members, list) or not all(isinstance(member, str) for member in members):
        return None
    found = [_trained_hashes(folder / member, depth + 1) for member in members]
    if not found or any(hashes is None for hashes in found):  # a member that does not say: nor does the ensemble
        return None
    return {fold: np.unique(np.concatenate([hashes[fold] for hashes in found if fold in hashes]))
            for fold in {fold for hashes in found for fold in hashes}}


def note_seen(scores: Scores, folder, texts: Sequence[str]) -> None:
    """Keep in `scores` how many of the reviews scored the model in `folder` learned, and warn
    when it learned any: such a score says how well it remembers, not how it reads."""
    seen = seen_in_training(folder, texts)
    if seen is not None:
        scores.context["reviews_trained_on"] = seen
        warning = seen_warning(seen, len(texts))
        if warning:
            scores.warnings.insert(0, warning)


def seen_warning(seen: int | None, scored: int) -> str | None:
    if not seen:
        return None
    return (f"{seen:,} of the {scored:,} reviews scored ({seen / scored:.0%}) are ones the model was trained on: "
            "the score says how well it remembers them, not how it reads new reviews")


# --------------------------------------------------------------------------- scores kept beside a model

#: Scores kept beside a model, by what was scored: its probabilities (ranks, intervals,
#: worst mistakes, ensembles) and metrics, keyed by the very reviews.
SCORES = {"held_out": "compare_scores", "dev": "dev_scores"}


def scores_key(split: str, texts: Sequence[str], labels: Sequence[int]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps({"split": split, "texts": list(texts), "labels": [int(x) for x in labels]}).encode()).hexdigest()[:16]


def save_scores(folder, key: str, scores: Scores, proba: np.ndarray, kind: str, parameters: int, what: str = "held_out") -> None:
    """A model's scores on some reviews, so that nothing scores it on them twice; with the
    digests of the weights they came from (`folder` holds them already)."""
    import io

    from ..models.folder import model_digests

    buffer = io.BytesIO()
    np.savez(buffer, proba=np.asarray(proba, dtype=np.float32))
    write_bytes(Path(folder) / f"{SCORES[what]}.npz", buffer.getvalue())
    write_json(Path(folder) / f"{SCORES[what]}.json", {"held_out_key": key, "model": model_digests(Path(folder)), "metrics": scores.to_json(),
                                                         "kind": kind, "parameters": parameters})


def load_scores(folder, key: str, what: str = "held_out") -> tuple[Scores, np.ndarray, str, int] | None:
    """(scores, probabilities, kind, parameters) when `folder`, as its weights are now, was
    scored on exactly these reviews. Weights changed or gone since (a file truncated, another
    model copied in): None, and the caller scores the folder, or finds it broken."""
    from pathlib import Path

    from ..models.folder import model_digests

    record, arrays = Path(folder) / f"{SCORES[what]}.json", Path(folder) / f"{SCORES[what]}.npz"
    if not (record.is_file() and arrays.is_file()):
        return None
    recorded = read_json(record)
    if recorded.get("held_out_key") != key:
        return None
    try:
        if recorded.get("model") != model_digests(Path(folder)):
            return None
    except OSError:  # its config gone or unreadable
        return None
    with np.load(arrays, allow_pickle=False) as stored:
        proba = stored["proba"]
    return Scores.from_json(recorded["metrics"]), proba, recorded["kind"], recorded["parameters"]

