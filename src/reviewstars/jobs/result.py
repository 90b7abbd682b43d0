"""What `reviewstars train` did, as one typed record: the jobs return it, the model folder
keeps it (`training` in config.json), the card and the benchmarks read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..scoring.scores import Scores


@dataclass
class TrainResult:
    """What `reviewstars train` did: the folder it wrote, what the model saw, how it scored."""

    model: str
    kind: str
    output: str
    data: dict[str, Any]
    train_examples: int
    train_examples_seen: int
    train_seconds: float
    parameters: int
    settings: dict[str, Any] = field(default_factory=dict)
    dev_examples: int | None = None
    steps: int | None = None
    plan: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None
    base_model: str | None = None
    best_dev_accuracy: float | None = None
    final_dev_accuracy: float | None = None
    kept: str | None = None
    budget_share_in_steps: float | None = None
    forward: str | None = None  # which forward trained it: "last layer at [CLS] only" (BERT classifiers) or "full"
    calibration: dict[str, Any] | None = None
    held_out: str | None = None         # the split scored: validation, test, or "held-out" (a slice of the training file)
    held_out_examples: int = 0
    data_notes: list[str] = field(default_factory=list)  # what the data did that a user would not expect
    ended: str | None = None  # why training stopped: "deadline", "passes" (more would overfit), "steps", "epochs", "early stopping"
    time_ledger: dict[str, float] | None = None  # seconds by what they were spent on, adding up to `wall`
    metrics: Scores | None = None  # on the held-out reviews (None when none were held out)
    log_history: list[dict] = field(default_factory=list, repr=False)

    def record(self) -> dict[str, Any]:
        """What the model folder keeps about its training (the log and the time ledger have
        their own files: the ledger is complete only once the folder is written)."""
        return {k: v for k, v in asdict(self).items() if k not in ("log_history", "metrics", "output", "time_ledger")}
