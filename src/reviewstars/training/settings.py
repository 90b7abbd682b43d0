"""How a torch model is trained: one settings class, declared once for Python and the CLI."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

from ..errors import ReviewstarsError
from ..settings.fields import Settings, setting
from ..tokenization import TRUNCATIONS


AUTO = "auto"


def parse_batch_size(text: str | int) -> int | str:
    """`--batch-size`: a whole number, or auto."""
    if isinstance(text, int):
        return text
    text = str(text).strip().lower()
    if text == AUTO:
        return AUTO
    if not text.isdigit():
        raise ValueError(f"expected a whole number or auto, got {text!r}")
    return int(text)


def parse_duration(text: str | float | None) -> float | None:
    """'30m', '1h30m', '90s', '2d', '45' (minutes) -> seconds."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * 60
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"cannot read the duration {text!r}: use e.g. 30m, 1h, 90s, 2d")
    return sum(float(n) * SECONDS_IN[u] for n, u in parts)


SECONDS_IN = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def format_duration(seconds: float) -> str:
    """1800.0 -> '30m', 20.0 -> '20s', 90.5 -> '90.5s': the text `parse_duration` reads back as the same seconds
    (a duration too long to write in minutes: in hours, rounded)."""
    if seconds >= 1e9:
        return f"{seconds / 3600:.3g}h"
    if seconds and seconds % 86400 == 0:
        return f"{int(seconds) // 86400}d"
    if seconds % 60 == 0:
        return f"{int(seconds) // 60}m"
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds!r}s"


#: The Trainer's logging integrations (the names of transformers' `INTEGRATION_TO_CALLBACK`: a test keeps
#: them in step with the installed version), each with the module it needs, so a missing one is named before
#: any work. Kept here rather than imported: that module imports torch, 5 s that `--help` would wait.
REPORTERS = {
    "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml", "neptune": "neptune",
    "clearml": "clearml", "azure_ml": "azureml", "codecarbon": "codecarbon", "dagshub": "dagshub", "dvclive": "dvclive",
    "flyte": "flytekit", "swanlab": "swanlab", "trackio": "trackio", "kubeflow": None,
}
NO_REPORTING, EVERY_INSTALLED = "none", "all"


def parse_report_to(text: str) -> str:
    """`tensorboard`, `wandb,mlflow`, `all` (every installed one) or `none`, checked now."""
    names = [name.strip() for name in str(text).split(",") if name.strip()]
    if names in ([NO_REPORTING], [EVERY_INSTALLED]):
        return names[0]
    for name in names or [""]:
        if name not in REPORTERS:
            raise ReviewstarsError(f"--report-to {text}: {name!r} is not one of the Trainer's integrations: "
                                   f"{', '.join(REPORTERS)}; several with commas, or {EVERY_INSTALLED} or {NO_REPORTING}")
        package = REPORTERS[name]
        if package and importlib.util.find_spec(package) is None:
            # now, not after the data is tokenized: the Trainer would fail only when it starts
            raise ReviewstarsError(f"--report-to {name} needs the {package} package: pip install {package}")
    return ",".join(names)


@dataclass
class TrainSettings(Settings):
    """The Trainer's knobs for every torch kind; the lesson's values by default."""

    time_budget: float | None = setting(
        None, "Train as well as possible within this wall-clock time (30m, 1h, 90s, 2d; at most 30d).", parse=parse_duration,
        show=format_duration, above=0, at_most=30 * 24 * 3600)
    batch_size: int | str = setting(
        16, "Reviews per step (the lesson's 16), or auto: on a CUDA GPU the largest that still speeds up a step "
        "(up to 128, the learning rate scaled by the square root of the batch from batch 16's); 16 without one.", at_least=1, parse=parse_batch_size)
    learning_rate: float | None = setting(
        None, "Peak learning rate (default: the kind's own, 5e-5 fine-tuning, 5e-4 from scratch).", above=0)
    epochs: float = setting(3.0, "Passes over the data (ignored with --time-budget).", above=0)
    max_passes: float | None = setting(
        None, "Under --time-budget: the most passes over the training set worth taking (default: the kind's own, "
        "2 fine-tuning a pretrained model, 10 from scratch; at least 16,000 reviews' worth). When the budget holds "
        "more, the run ends there, its learning rate decayed to zero.", above=0)
    eval_steps: int = setting(50, "Evaluate and checkpoint every N steps (under --time-budget the clock sets the cadence).", at_least=1)
    early_stopping: int = setting(
        10, "Stop after N evaluations without improvement (0: never; off under --time-budget, where the clock ends the run).", at_least=0)
    max_length: int | None = setting(
        None, "Tokens kept per review (default: the kind's own, 256; 128 for pretrained models under --time-budget).", at_least=2)
    truncation: str = setting("head+tail", "Which tokens of a long review to keep.", choices=TRUNCATIONS)
    warmup: float = setting(0.1, "Share of the run with a rising learning rate.", at_least=0, at_most=0.9)
    weight_decay: float = setting(0.01, "AdamW weight decay.", at_least=0)
    layer_decay: float = setting(
        1.0, "Layer-wise learning-rate decay: each layer learns at this times the rate of the one above, the "
        "embeddings least (1: off; 0.8-0.95 is usual when fine-tuning).", above=0, at_most=1)
    freeze_embeddings: bool = setting(
        False, "Keep the word-embedding matrix as it is (MiniLM's is half its weights: "
        "not updated, so more steps fit a budget).")
    resume: bool = setting(False, "Continue from the last complete checkpoint in --output.")
    keep_checkpoints: bool = setting(
        False, "Keep the run's checkpoints (weights and optimizer state: 3x the model's size) in OUTPUT/checkpoints "
        "once its model is written; by default they go then, as nothing can resume a finished run (its run.json "
        "and plan.json stay: what it ran with).")
    report_to: str = setting(
        "tensorboard", f"Where the Trainer logs the run (under OUTPUT/runs for tensorboard): any of its integrations "
        f"({', '.join(REPORTERS)}), several with commas, {EVERY_INSTALLED} (every one installed) or {NO_REPORTING}.",
        parse=parse_report_to)
    run_name: str | None = setting(
        None, "The run's name in the tracker (wandb, mlflow, ...; default: the model folder's name).")
    logging_steps: int | None = setting(None, "Log the loss every N steps (default: --eval-steps).", cli=False)
    dynamic_padding: bool = setting(True, "False: the lesson's padding to max_length.", cli=False)
    group_by_length: bool = setting(True, "Batch reviews of similar length together.", cli=False)
    balanced: bool = setting(True, "Weight the loss by inverse class frequency, as the linear model does.", cli=False)
    seed: int = setting(42, "Seed for the weights and the batches (set from the data settings).", cli=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.report_to = parse_report_to(self.report_to)  # a settings file or a caller's value, checked as the CLI's
