"""Training torch models: settings, the Trainer and its callbacks, the time budget,
checkpoints and several processes. `train_transformer` is the one entry point."""

from .budget import ClockScheduleTrainer, TrainingClock, measure_seconds_per_step, plan_budget, too_small_budget
from .checkpoints import CHECKPOINTS, PLAN_FILE, checkpoints_of, kept_tokenizer, last_complete_checkpoint
from .distributed import main_process_first
from .loop import train_transformer
from .settings import TrainSettings, parse_duration
from .trainer import class_weights

__all__ = [
    "CHECKPOINTS", "PLAN_FILE", "ClockScheduleTrainer", "TrainSettings", "TrainingClock", "checkpoints_of", "class_weights",
    "kept_tokenizer", "last_complete_checkpoint", "main_process_first", "measure_seconds_per_step", "parse_duration",
    "plan_budget", "too_small_budget", "train_transformer",
]
