"""Checkpoints a run can resume from, and the signals that ask a run to stop and save one."""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

from ..artifacts import atomic_dir, is_main_process
from ..models.folder import CHECKPOINTS, is_whole_safetensors
from .distributed import main_process_first, shared_max

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
    saved = checkpoints_of(output) / VOCABULARY
    with main_process_first():
        if (saved / "tokenizer.json").is_file() and (resume or not is_main_process()):
            return load(str(saved))
        tokenizer = learn()
        with atomic_dir(saved) as stage:
            tokenizer.save_pretrained(stage)
    return tokenizer


class StopOnInterrupt(TrainerCallback):
    """Ctrl-C (or SIGTERM, what schedulers send) ends the run after the current step,
    with a checkpoint to resume from. A second signal interrupts at once (the last
    periodic checkpoint still stands)."""

    def __init__(self):
        self.requested = False
        self.stopped_at: int | None = None
        self.signal_number = signal.SIGINT

    def request(self, signum=signal.SIGINT, _frame=None) -> None:
        self.requested = True
        self.signal_number = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def on_step_end(self, args, state, control, **kwargs):
        if shared_max(float(self.requested), args.device) > 0:
            self.requested = True
            self.stopped_at = state.global_step
            control.should_training_stop = True
            control.should_save = True
        return control


@contextmanager
def signals_save(callback: StopOnInterrupt):
    """Route SIGINT and SIGTERM to `callback` while training (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, callback.request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
