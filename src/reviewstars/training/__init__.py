"""Training torch models: settings, the Trainer and its callbacks, the time budget,
checkpoints and several processes. `train_transformer` is the one entry point.

Names are imported lazily (PEP 562): the command line reads `TrainSettings` to build its
options without importing torch and transformers, which only training needs.
"""

from importlib import import_module

_HOME = {
    "CHECKPOINTS": "checkpoints",
    "ClockScheduleTrainer": "clock",
    "PLAN_FILE": "checkpoints",
    "TrainSettings": "settings",
    "TrainingClock": "clock",
    "checkpoints_of": "checkpoints",
    "class_weights": "trainer",
    "kept_tokenizer": "checkpoints",
    "last_complete_checkpoint": "checkpoints",
    "main_process_first": "distributed",
    "measure_seconds_per_step": "budget",
    "parse_duration": "settings",
    "plan_budget": "budget",
    "too_small_budget": "budget",
    "train_transformer": "loop",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOME[name]}", __name__), name)
