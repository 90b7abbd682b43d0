"""The registry of model kinds: one line a kind. Every caller looks a kind up here, and
reads what a kind is from its `Kind(summary=...)`: the CLI's `--model` help is made
from `KINDS` (`model_help()`), so no list of kinds is written anywhere else. Every name
that is not a kind is the pretrained kind's (an alias, a Hub id or a folder).

`check_model_name(name)` answers the kind of any name a user gives `--model`, or says in
one line what is wrong with it before any long work starts.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import ModelError
from ..models import can_fine_tune, folder_kind, looks_like_a_path
from ..models.pretrained import ALIASES, check_hub_model, resolve
from ..text import with_article
from .bag import BAG
from .base import Kind, TrainingJob
from .linear import LINEAR
from .pretrained import PRETRAINED
from .scratch import SCRATCH, ScratchSettings

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    LINEAR,
    SCRATCH,
    BAG,
)}

__all__ = ["KINDS", "Kind", "PRETRAINED", "ScratchSettings", "TrainingJob", "check_model_name", "model_help", "trainable_kinds"]


def trainable_kinds() -> list[Kind]:
    """Every kind, the pretrained one last: their settings classes make the CLI's options."""
    return [*KINDS.values(), PRETRAINED]


def model_names() -> list[str]:
    """The names `--model` takes besides Hub ids and folders: every kind, then every alias."""
    return [*KINDS, *ALIASES]


def model_help(several: bool = False) -> str:
    """The `--model` (or `--models`) help, made from the registry: a new kind appears in it by itself."""
    names = model_names()
    if several:
        return f"Models to train, comma-separated ({', '.join(names)}, Hub ids, folders)."
    return " | ".join([*names, "a Hub id (bert-base-cased)", "a model folder."])


def check_model_name(model: str, option: str = "--model") -> Kind:
    """The kind of `model`, or a one-line error naming the nearest valid name.

    A kind or an alias is checked here (an alias's package must be installed); a path
    must be a model folder; a name close to a kind or an alias is a typo, not a Hub id.
    Anything else is taken as a Hub id, which only the Hub can check.
    """
    if model in KINDS:
        return KINDS[model]
    if model in ALIASES:
        resolve(model)  # raises with the install hint when the alias's package is missing
        return PRETRAINED
    path = Path(model).expanduser()
    if path.exists() or looks_like_a_path(model):
        if not path.is_dir():
            raise ModelError(f"{model}: no such folder")
        if not (path / "config.json").is_file():
            raise ModelError(f"{model}: not a model folder (no config.json)")
        found = folder_kind(path)
        if not can_fine_tune(found):
            raise ModelError(f"{model}: {with_article(found)} model folder; only transformer folders can be fine-tuned further")
        return PRETRAINED
    near = difflib.get_close_matches(model, model_names(), n=1, cutoff=0.7)
    if near and "/" not in model:
        raise ModelError(f"unknown model {model!r}: did you mean {near[0]!r}? "
                         f"Kinds: {', '.join(KINDS)}; pretrained: {', '.join(ALIASES)}, a Hub id or a model folder")
    check_hub_model(model, option)  # now, not after the data is read
    return PRETRAINED
