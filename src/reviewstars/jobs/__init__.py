"""The jobs behind the CLI, one concern a module: train, evaluate, predict (and the model card).
Each is one call a script can make too."""

from ..kinds import ScratchSettings
from .evaluate import evaluate
from .predict import merge_predictions, predict_file, predict_texts
from .train import train

__all__ = ["ScratchSettings", "evaluate", "merge_predictions", "predict_file", "predict_texts", "train"]
