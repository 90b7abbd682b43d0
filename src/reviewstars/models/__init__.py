"""Model kinds as predictors, and `load_predictor`, which opens any model folder."""

from __future__ import annotations

from importlib import import_module
import os
from pathlib import Path

from ..errors import ModelError
from .base import StarPredictor
from .folder import CONFIG_FILE, check_folder_files, check_max_length, check_weights, folder_kind
from .linear import LinearPredictor
from .pretrained import ALIASES, check_hub_id

__all__ = ["StarPredictor", "LinearPredictor", "load_predictor", "folder_kind"]

#: The predictor class of each folder kind, imported only when a folder needs it (torch is heavy).
PREDICTORS = {
    "linear": "reviewstars.models.linear:LinearPredictor",
    "transformer": "reviewstars.models.transformer:TransformerPredictor",
    "onnx": "reviewstars.models.onnx:OnnxPredictor",
    "ensemble": "reviewstars.models.ensemble:EnsemblePredictor",
}


#: The format of a folder that declares none (a checkpoint from elsewhere), and the only one fine-tuned further.
TRANSFORMER = "transformer"


def can_fine_tune(folder_format: str | None) -> bool:
    """Whether a folder of this format holds weights a Trainer can go on training."""
    return folder_format in (None, TRANSFORMER)


def predictor_class(kind: str | None) -> type[StarPredictor]:
    """A folder that declares no kind is a checkpoint from elsewhere: a transformer."""
    target = PREDICTORS.get(kind or TRANSFORMER)
    if target is None:
        raise ModelError(f"unknown model kind {kind!r} (known: {', '.join(PREDICTORS)})")
    module, name = target.split(":")
    return getattr(import_module(module), name)


def looks_like_a_path(name: str) -> bool:
    """A name meant as a folder, not a Hub id (`org/name`, dots allowed): `./x`, `/x`, `a/b/c`, or `runs/x`
    where `runs` is a folder here (a Hub id's owner is not a local folder)."""
    path = Path(name).expanduser()
    return (name.startswith((".", "/", "~")) or name.count("/") > 1
            or (path.parent != Path(".") and path.parent.is_dir()))


def load_predictor(name_or_path: str | Path, device: str | None = None) -> StarPredictor:
    """Open any model as a predictor on `device` (default: auto): a reviewstars folder of
    any kind, a fine-tuned checkpoint folder, or a Hub id (`gilf/english-yelp-sentiment`)."""
    name = str(name_or_path)
    if device not in (None, "auto"):  # every kind, the CPU-only ones too: a device that is not here is an error
        from ..devices import resolve_device

        resolve_device(device)
    check_model_name(name)
    path = Path(name_or_path).expanduser()
    if path.exists():
        cls = predictor_class(folder_kind(path))
        check_weights(path)
        predictor = cls.load(path, device=device)
        if getattr(predictor, "tokenizer", None) is not None:
            check_max_length(predictor.tokenizer, predictor.max_length, f"{path / CONFIG_FILE}: max_length",
                             getattr(predictor, "model", None))
        return predictor
    return predictor_class(TRANSFORMER).load(name, device=device)


def check_model_name(name_or_path: str | Path) -> None:
    """What `load_predictor` refuses by the name alone, said before a command imports torch or
    reads anything: a base model's alias, a folder that is not there or not a model's, and a
    name that is no Hub id either (or, offline, one the local cache does not hold)."""
    name = str(name_or_path)
    if not name.strip():
        raise ModelError("--model is empty: give a model folder (runs/NAME) or a Hub id (ORG/NAME)")
    if name in ALIASES:
        raise ModelError(f"'{name}' is a base model to fine-tune, not a star-rating model: "
                         f"train one first (reviewstars train --model {name} --output DIR) and give its folder")
    path = Path(name).expanduser()
    try:
        if path.is_symlink() and not path.exists():
            raise ModelError(f"{path}: a link that leads nowhere")
        if path.exists():
            if not path.is_dir():
                raise ModelError(f"{path}: a file, not a model folder: give the folder that holds {CONFIG_FILE}")
            if not os.path.lexists(path / CONFIG_FILE):  # before its other files: nothing else there is the user's fault
                raise ModelError(f"{path}: not a model folder (no {CONFIG_FILE}); train one with `reviewstars train`")
            check_folder_files(path)  # next: a config.json that is a device is not "no config.json"
            if not (path / CONFIG_FILE).is_file():
                raise ModelError(f"{path}: not a model folder ({CONFIG_FILE} is not a file); train one with `reviewstars train`")
            return
        if looks_like_a_path(name):
            raise ModelError(f"{name}: no such model folder")
    except OSError as error:  # a name longer than a file name may be
        raise ModelError(f"{name[:60]}{'...' if len(name) > 60 else ''}: no such model folder ({error.strerror})") from None
    check_hub_id(name, to_fine_tune=False)
