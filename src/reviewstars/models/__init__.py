"""Model kinds and `load_predictor`, which opens any model folder as a `StarPredictor`."""

from __future__ import annotations

from pathlib import Path

from ..artifacts import read_json
from ..errors import ModelError
from .base import StarPredictor
from .linear import LinearPredictor

__all__ = ["StarPredictor", "LinearPredictor", "load_predictor", "folder_kind"]


def folder_kind(path: str | Path) -> str | None:
    """The `reviewstars.kind` a model folder declares, or None when it declares none."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        return read_json(config).get("reviewstars", {}).get("kind")
    except ValueError:
        raise ModelError(f"{config}: not valid JSON") from None


def load_predictor(name_or_path: str | Path) -> StarPredictor:
    """Open a model folder written by reviewstars (any kind) as a predictor."""
    path = Path(name_or_path)
    if not path.exists():
        raise ModelError(f"{path}: no such model folder")
    if not (path / "config.json").is_file():
        raise ModelError(f"{path}: not a model folder (no config.json); train one with `reviewstars train`")
    kind = folder_kind(path)
    if kind == LinearPredictor.kind:
        return LinearPredictor.load(path)
    raise ModelError(f"{path}: unknown model kind {kind!r}")
