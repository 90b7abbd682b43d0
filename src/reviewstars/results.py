"""Typed results that flow from the jobs to the report and the benchmarks.

Each field is declared once, with how a table shows it: the terminal table, report.md,
report.html and leaderboard.json are all made from these declarations, so a new metric
is one new field here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


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
    metrics: dict[str, Any] | None = None
    log_history: list[dict] = field(default_factory=list, repr=False)

    def record(self) -> dict[str, Any]:
        """What the model folder keeps about its training (the log has its own files)."""
        return {k: v for k, v in asdict(self).items() if k not in ("log_history", "metrics", "output")}


def column(header: str, fmt: str = "{}", *, default: Any = None) -> Any:
    """A leaderboard field, with its table header and format ("-" when None)."""
    return field(default=default, metadata={"header": header, "format": fmt})


@dataclass
class LeaderboardRow:
    model: str = column("model")
    kind: str = field(default="")
    accuracy: float = column("accuracy", "{:.4f}")
    macro_f1: float = column("macro-F1", "{:.4f}")
    mae: float = column("MAE (stars)", "{:.3f}")
    off_by_one_accuracy: float = column("off-by-one", "{:.4f}")
    parameters: int | None = column("parameters", "{:,}")
    train_seconds: float | None = column("train s", "{:,.0f}")
    train_examples_seen: int | None = column("reviews seen", "{:,}")
    budget_share_in_steps: float | None = column("budget in steps", "{:.0%}")
    predictions_per_second: float | None = column("predictions/s", "{:,.0f}")
    reused: bool = field(default=False)
    folder: str = field(default="")
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def columns() -> list:
        return [f for f in fields(LeaderboardRow) if "header" in f.metadata]

    def cells(self) -> list[str]:
        out = []
        for f in self.columns():
            value = getattr(self, f.name)
            out.append("-" if value is None else f.metadata["format"].format(value))
        return out


def leaderboard_table(rows: list[LeaderboardRow]) -> tuple[list[str], list[list[str]]]:
    """(header, cells) with a rank column first: what every view of the leaderboard shows."""
    header = ["rank"] + [f.metadata["header"] for f in LeaderboardRow.columns()]
    return header, [[str(rank), *row.cells()] for rank, row in enumerate(rows, start=1)]
