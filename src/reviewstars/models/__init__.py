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
    """Open any model as a predictor: a reviewstars folder of any kind, a fine-tuned
    checkpoint folder, an alias (`minilm`) or a Hub id (`gilf/english-yelp-sentiment`)."""
    path = Path(name_or_path)
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json); train one with `reviewstars train`")
        kind = folder_kind(path)
        if kind == LinearPredictor.kind:
            return LinearPredictor.load(path)
        if kind == "onnx":
            from .onnx import OnnxPredictor

            return OnnxPredictor.load(path)
    elif str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1:
        raise ModelError(f"{path}: no such model folder")
    # Any other folder, alias or Hub id: a transformer checkpoint (torch imported only now).
    from .transformer import TransformerPredictor

    return TransformerPredictor.load(name_or_path)
