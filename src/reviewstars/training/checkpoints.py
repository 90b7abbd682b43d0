"""Checkpoints a run can resume from (`interrupts.py` asks a stopped run to save one)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Callable

from ..artifacts import atomic_dir, is_main_process
from ..models.folder import CHECKPOINTS, is_whole_safetensors

PLAN_FILE = "plan.json"
VOCABULARY = "vocabulary"


def checkpoints_of(output: str | Path) -> Path:
    return Path(output) / CHECKPOINTS


def checkpoint_is_complete(folder: Path) -> bool:
    """The Trainer writes `trainer_state.json` last: without it (or half of it) the
    checkpoint was cut short by a crash and cannot be resumed from."""
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    weights = list(folder.glob("*.safetensors"))  # each whole too: a copy or a disk cut one short after the state was written
    return bool(weights) and all(is_whole_safetensors(file) for file in weights)


def is_checkpoint(folder: Path) -> bool:
    return re.fullmatch(r"checkpoint-\d+", folder.name) is not None


def last_complete_checkpoint(checkpoints: Path, remove_incomplete: bool = False) -> str | None:
    """The newest checkpoint that was written whole; newer, broken ones are skipped
    (and removed when asked, so that the resumed run can write them again)."""
    if not checkpoints.is_dir():
        return None
    found = []
    for folder in checkpoints.iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
        if match and folder.is_dir():
            found.append((int(match.group(1)), folder))
    for _step, folder in sorted(found, reverse=True):
        if checkpoint_is_complete(folder):
            return str(folder)
        if remove_incomplete:
            shutil.rmtree(folder, ignore_errors=True)
    return None


def kept_tokenizer(output: str | Path, resume: bool, learn: Callable[[], object], load: Callable[[str], object]):
    """A tokenizer learned from the training texts, saved before training starts.

    tokenizers' trainers break ties in hash-map order, so two runs on the same texts can
    learn slightly different vocabularies (huggingface/tokenizers#1794). So it is learned
    once, by the first process, and saved in the checkpoints folder: the other processes
    and a `--resume` after a crash (even one before the first checkpoint) use that very one.
    """
    from .distributed import main_process_first

    saved = checkpoints_of(output) / VOCABULARY
    with main_process_first():
        if (saved / "tokenizer.json").is_file() and (resume or not is_main_process()):
            return load(str(saved))
        tokenizer = learn()
        with atomic_dir(saved) as stage:
            tokenizer.save_pretrained(stage)
    return tokenizer
