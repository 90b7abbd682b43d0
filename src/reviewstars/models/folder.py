"""The model folder, the unit users keep and share: every file name and the `reviewstars`
section of `config.json` in one place.

    config.json            the model's config; its `reviewstars` section says the kind,
                           the labels, how it was trained and its calibration
    model.safetensors ...  the weights (or linear.npz + vocabulary.json)
    tokenizer files        for transformers
    metrics.json           scores on the held-out split, confusion_matrix.png beside them
    learning_curve.json/png
    README.md              the model card
    checkpoints/, runs/    a training's checkpoints (to --resume from) and TensorBoard logs
    .lock                  held while a training writes the folder
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from .. import STARS
from ..artifacts import encodable, read_json
from ..errors import ModelError

CONFIG_FILE = "config.json"
SECTION = "reviewstars"
METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
CARD_FILE = "README.md"
LEARNING_CURVE_JSON = "learning_curve.json"
LEARNING_CURVE_PNG = "learning_curve.png"
CHECKPOINTS = "checkpoints"
LOGS = "runs"
LOCK_FILE = ".lock"


def section(kind: str, **fields: Any) -> dict[str, Any]:
    """The `reviewstars` section a folder of `kind` writes into its config."""
    return {"kind": kind, "labels": list(STARS), **fields}


def config_text(kind: str, **fields: Any) -> str:
    """A whole `config.json` for kinds that have no config of their own (linear, ensemble)."""
    return encodable(json.dumps({SECTION: section(kind, **fields)}, indent=2, ensure_ascii=False)) + "\n"


def read_config(folder: str | Path) -> dict[str, Any]:
    """A folder's `config.json`, checked to be a JSON object."""
    path = Path(folder) / CONFIG_FILE
    try:
        config = read_json(path)
    except FileNotFoundError:
        raise ModelError(f"{folder}: not a model folder (no {CONFIG_FILE}); train one with `reviewstars train`") from None
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: not valid JSON ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: must hold a JSON object, not {type(config).__name__}")
    return config


def read_section(folder: str | Path) -> dict[str, Any]:
    """The folder's `reviewstars` section ({} for a folder written elsewhere)."""
    found = read_config(folder).get(SECTION) or {}
    if not isinstance(found, dict):
        raise ModelError(f"{Path(folder) / CONFIG_FILE}: its '{SECTION}' entry must be an object")
    return found


def folder_kind(folder: str | Path) -> str | None:
    """The kind a model folder declares, or None when it declares none (a checkpoint from elsewhere)."""
    if not (Path(folder) / CONFIG_FILE).is_file():
        return None
    kind = read_section(folder).get("kind")
    if kind is not None and not isinstance(kind, str):
        raise ModelError(f"{Path(folder) / CONFIG_FILE}: its kind must be a name, not {type(kind).__name__}")
    return kind


def info_of(found: dict[str, Any], *own: str) -> dict[str, Any]:
    """What a section says beyond the kind's own fields: how it was trained, for the card."""
    return {k: v for k, v in found.items() if k not in {"kind", "labels", "temperature", *own}}


def temperature_of(found: dict[str, Any], where: str | Path) -> float:
    """The folder's calibration temperature (1 when it has none), checked."""
    value = found.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ModelError(f"{where}: the temperature must be a positive number, got {value!r}")
    return float(value)


def read_metrics(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / METRICS_FILE
    return read_json(path) if path.is_file() else None


def check_weights(folder: str | Path) -> None:
    """A safetensors file cut short (an interrupted copy, a full disk) fails here in one
    line, not deep inside the loader."""
    for file in sorted(Path(folder).glob("*.safetensors")):
        if not _whole_safetensors(file):
            raise ModelError(f"{file}: truncated or not a safetensors file ({file.stat().st_size:,} bytes): "
                             "copy the model again, or train it again")


def _whole_safetensors(file: Path) -> bool:
    """The layout: an 8-byte header length, a JSON header, then the tensors it lists, to the last byte."""
    size = file.stat().st_size
    try:
        with file.open("rb") as handle:
            (header_bytes,) = struct.unpack("<Q", handle.read(8))
            if header_bytes > size - 8:
                return False
            header = json.loads(handle.read(header_bytes))
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    except (OSError, struct.error, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return False
    return 8 + header_bytes + max(ends, default=0) == size


def check_max_length(tokenizer, max_length, name: str) -> None:
    """`max_length` must leave room for text beside the tokenizer's own special tokens."""
    from ..tokenization import special_frame

    prefix, suffix = special_frame(tokenizer)
    frame = len(prefix) + len(suffix)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= frame:
        raise ModelError(f"{name} {max_length!r} leaves no room for text: it must be an integer above {frame} "
                         f"(the tokenizer's own {frame} special tokens)")
