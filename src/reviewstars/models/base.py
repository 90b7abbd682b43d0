"""The one interface every model kind answers, so callers never branch on the kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import STARS


class StarPredictor(ABC):
    """scikit-learn's shape for star ratings: fit, predict, predict_proba, save, load.

    `predict_proba` returns an (n, 5) array whose column k is P(k + 1 stars); `predict`
    returns stars 1..5. A model folder written by `save` is opened by `load` (or by
    `reviewstars.models.load_predictor`, which finds the kind from the folder).
    """

    kind: str = "base"

    @abstractmethod
    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...

    def predict(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return stars_from_proba(self.predict_proba(texts, batch_size=batch_size))

    @abstractmethod
    def save(self, path: str | Path) -> Path: ...

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path) -> "StarPredictor": ...

    @property
    def num_parameters(self) -> int:
        return 0

    def describe(self) -> dict[str, Any]:
        """What a report or `GET /model` shows about this model."""
        return {"kind": self.kind, "parameters": self.num_parameters, "labels": list(STARS)}


def stars_from_proba(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1) + 1
