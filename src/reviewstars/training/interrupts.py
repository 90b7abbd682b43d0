"""Ctrl-C or SIGTERM while a model trains: the run ends after the current step, with a
checkpoint to resume from (`checkpoints.py` finds it). Apart from the checkpoint files so
that cleaning up after a stop imports nothing heavy: a SIGTERM that lands while torch is
being imported leaves it half-imported, and the cleanup that imported transformers again
failed with a traceback, exit code 1 instead of 143."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from transformers import TrainerCallback

from .distributed import shared_max


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
