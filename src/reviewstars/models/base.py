"""The one interface every model kind answers, so callers never branch on the kind."""

from __future__ import annotations

import queue
import re
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .. import STARS
from ..text import readable

_LETTER_OR_DIGIT = re.compile(r"[^\W_]")  # a word character that is not "_": any script's letters and digits


class StarPredictor(ABC):
    """scikit-learn's shape for star ratings: fit, predict, predict_proba, save, load.

    `predict_proba` returns an (n, 5) array whose column k is P(k + 1 stars), calibrated
    by the model's temperature (fitted on the dev slice after training; 1 leaves the
    model's own probabilities, and no temperature changes which star is most likely);
    `predict` returns stars 1..5. Each kind computes `weights_proba`, what its weights
    give. A model folder written by `save` is opened by `load` (or by
    `reviewstars.models.load_predictor`, which finds the kind from the folder).

    Saving folds the temperature into the weights where a kind can (the last layer's
    weights and bias divided by it give the same softmax): then `transformers.pipeline`,
    ONNX Runtime and anyone else who reads the folder gets the calibrated probabilities,
    and `folded` says not to apply the temperature again.
    """

    kind: str = "base"
    #: Whether predicting lets other threads run (torch and ONNX Runtime let go of the GIL in
    #: their kernels): a server runs such a model on a thread of its own, and any other inline.
    releases_gil: bool = True
    temperature: float = 1.0
    folded: bool = False  # the weights already divide the logits by `temperature`

    @abstractmethod
    def weights_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        from .probabilities import apply_temperature

        given = self.weights_proba(texts, batch_size=batch_size)
        return given if self.folded else apply_temperature(given, self.temperature)

    def uncalibrated_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """The model's probabilities before its calibration (what calibration is fitted on and compared with)."""
        from .probabilities import apply_temperature

        given = self.weights_proba(texts, batch_size=batch_size)
        return apply_temperature(given, 1 / self.temperature) if self.folded else given

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return stars_from_proba(self.predict_proba(texts, batch_size=batch_size))

    def warm_up(self, max_batch: int, cuda_graphs: bool = True) -> int:
        """Make the first requests as fast as the rest (a GPU's kernels loaded before any arrives,
        with `cuda_graphs` each batch shape captured as one); returns how many batch shapes were
        run. Nothing to do for most kinds."""
        return 0

    @abstractmethod
    def save(self, path: str | Path) -> Path: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, device: str | None = None) -> "StarPredictor": ...

    @property
    def num_parameters(self) -> int:
        return 0

    def layer_parameters(self) -> list[tuple[str, str, int]]:
        """(name, layer, trainable parameters) for each layer, in order."""
        return []

    def describe(self) -> dict[str, Any]:
        """What a report or `GET /model` shows about this model."""
        return {"kind": self.kind, "parameters": self.num_parameters, "labels": list(STARS), "temperature": self.temperature,
                "temperature_in_weights": self.folded}


def stars_from_proba(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1) + 1


def has_no_words(text: str) -> bool:
    """A text with no letter or digit once read (`text.readable`): blank, or only punctuation,
    emoji, invisible characters or combining marks. The model saw no word, so its stars are
    only its prior, and `empty` says so."""
    return _LETTER_OR_DIGIT.search(readable(text)) is None


def prediction_rows(texts: Sequence[str], proba: np.ndarray) -> list[dict[str, Any]]:
    """Per text: stars, the five probabilities, the expected star value and whether it was empty.

    The one definition of a prediction's fields: the server's JSON, `predict --json` and the
    columns of `predict --file` (see `jobs.predict.prediction_frame`) all carry these.
    """
    stars = np.asarray(STARS, dtype=float)
    proba = np.asarray(proba, dtype=np.float64)
    return [
        {
            "stars": int(row.argmax()) + 1,
            "probabilities": {str(s): round(float(p), 6) for s, p in zip(STARS, row)},
            "expected_stars": round(float(row @ stars), 4),
            "empty": has_no_words(text),
        }
        for text, row in zip(texts, proba)
    ]


def torch_layer_parameters(model) -> list[tuple[str, str, int]]:
    """Trainable parameters of each leaf layer of a torch model (Linear, Embedding, LayerNorm...)."""
    rows = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own:
            rows.append((name, module.__class__.__name__ + _shape(module), int(sum(p.numel() for p in own))))
    return rows


def _shape(module) -> str:
    if hasattr(module, "in_features"):
        return f"({module.in_features}, {module.out_features})"
    if hasattr(module, "num_embeddings"):
        return f"({module.num_embeddings}, {module.embedding_dim})"
    if hasattr(module, "normalized_shape"):
        return f"({', '.join(map(str, module.normalized_shape))})"
    return ""


class PredictStages:
    """Seconds a prediction spent in each stage (tokenize, batch, forward, device, ...).

    Stages on different threads overlap, so they may add up to more than `wall`; the time
    the model's thread sat waiting for the tokenizing thread is `waiting for batches`.
    """

    def __init__(self) -> None:
        self.opened = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def started(self, _stage: str) -> float:
        return time.perf_counter()

    def stop(self, stage: str, since: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - since

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        since = time.perf_counter()
        try:
            yield
        finally:
            self.stop(stage, since)

    def record(self, reviews: int) -> dict[str, float]:
        wall = time.perf_counter() - self.opened
        return {**{k: round(v, 4) for k, v in self.seconds.items()}, "wall": round(wall, 4), "reviews": reviews,
                "reviews_per_second": round(reviews / wall, 1) if wall > 0 else None}


_DONE = object()


def ahead(items: Iterable, depth: int, stages: PredictStages | None = None) -> Iterator:
    """Iterate `items` on a worker thread, up to `depth` items ahead of the caller: the
    caller's work (a GPU's batches) overlaps with the making of the next items (the
    tokenizer's). An error in the worker is raised in the caller; a caller that stops
    early stops the worker."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put((_DONE, None))
        except BaseException as error:  # handed to the caller
            ready.put((_DONE, error))

    worker = threading.Thread(target=produce, name="reviewstars-batches", daemon=True)
    worker.start()
    try:
        while True:
            since = time.perf_counter()
            item, error = ready.get()
            if stages is not None:
                stages.stop("waiting for batches", since)
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()
