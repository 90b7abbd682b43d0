"""The one interface every model kind answers, so callers never branch on the kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import STARS


class StarPredictor(ABC):
    """scikit-learn's shape for star ratings: fit, predict, predict_proba, save, load.

    `predict_proba` returns an (n, 5) array whose column k is P(k + 1 stars), calibrated
    by the model's temperature (fitted on the dev slice after training; 1 leaves the
    model's own probabilities, and no temperature changes which star is most likely);
    `predict` returns stars 1..5. Each kind computes `uncalibrated_proba`. A model folder
    written by `save` is opened by `load` (or by `reviewstars.models.load_predictor`,
    which finds the kind from the folder).
    """

    kind: str = "base"
    temperature: float = 1.0

    @abstractmethod
    def uncalibrated_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        from ..calibration import apply_temperature

        return apply_temperature(self.uncalibrated_proba(texts, batch_size=batch_size), self.temperature)

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return stars_from_proba(self.predict_proba(texts, batch_size=batch_size))

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
        return {"kind": self.kind, "parameters": self.num_parameters, "labels": list(STARS), "temperature": self.temperature}


def stars_from_proba(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1) + 1


def has_no_words(text: str) -> bool:
    """An empty or blank text: the model saw nothing, so its stars are only the prior."""
    return not text.strip()


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
