"""A leaderboard row: one model's scores on the held-out reviews beside what its training
cost, each field declared once with how a table shows it. The terminal table, report.md,
report.html and leaderboard.json are all made from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable


def column(header: str, fmt: str | Callable[[Any], str] = "{}", *, default: Any = None, terminal: bool = True) -> Any:
    """A leaderboard field, with its table header and how a cell shows it ("-" when None):
    a format string for the field's value, or a function of the whole row. `terminal=False`
    keeps a column to the report and the JSON, so the terminal's table stays readable."""
    return field(default=default, metadata={"header": header, "format": fmt, "terminal": terminal})


def _with_interval(name: str, digits: int) -> Callable[[Any], str]:
    def show(row) -> str:
        value, interval = getattr(row, name), getattr(row, f"{name}_interval")
        text = f"{value:.{digits}f}"
        return text if not interval else f"{text} ({interval[0]:.3f}-{interval[1]:.3f})"
    return show


def calibration_verdict(ece: float, floor: float, high: float) -> str:
    """What an ECE says once its noise floor is known, in a few words."""
    if ece <= high:
        return f"within noise (a perfectly calibrated model would show {floor:.3f}, up to {high:.3f})"
    return f"{ece - floor:.3f} above its noise floor of {floor:.3f}"


@dataclass
class LeaderboardRow:
    model: str = column("model")
    accuracy: float = column("accuracy (95% CI)", _with_interval("accuracy", 4))
    macro_f1: float = column("macro-F1 (95% CI)", _with_interval("macro_f1", 4))
    mae: float = column("MAE (stars)", "{:.3f}")
    off_by_one_accuracy: float = column("off-by-one", "{:.4f}", terminal=False)
    ece: float | None = column("ECE", "{:.3f}")
    ece_uncalibrated: float | None = column("ECE uncalibrated", "{:.3f}", terminal=False)
    ece_noise_floor: float | None = column("ECE noise floor", "{:.3f}", terminal=False)
    parameters: int | None = column("parameters", "{:,}", terminal=False)
    train_seconds: float | None = column("train s", "{:,.0f}")
    train_examples_seen: int | None = column("reviews seen", "{:,}")
    budget_share_in_steps: float | None = column("budget in steps", "{:.0%}")
    ended: str | None = column("ended by", "{}", terminal=False)  # the deadline, or the passes worth taking
    time_ledger: dict[str, float] | None = None  # where its training's wall time went (seconds by entry, `wall`)
    warnings: list[str] = field(default_factory=list)  # what its numbers do not say by themselves (`evaluation.result_warnings`)
    predictions_per_second: float | None = column("predictions/s", "{:,.0f}", terminal=False)
    recipe: str = ""   # what trained it: linear, scratch, bag, minilm, a Hub id, ensemble ("" if not us)
    format: str = ""   # its folder's format: linear, transformer, onnx, ensemble
    rank: int = 0
    tied: bool = False                       # shares its rank: the paired test cannot separate them
    p_value_vs_leader: float | None = None   # McNemar's exact test against the first of its rank
    accuracy_interval: list[float] | None = None
    macro_f1_interval: list[float] | None = None
    decision: str = "argmax"
    ece_noise_95: float | None = None        # 95th percentile of a perfectly calibrated model's ECE here
    reused: bool = False
    folder: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def columns(terminal: bool = False) -> list:
        return [f for f in fields(LeaderboardRow) if "header" in f.metadata and (f.metadata["terminal"] or not terminal)]

    def cells(self, terminal: bool = False) -> list[str]:
        out = []
        for f in self.columns(terminal):
            value, fmt = getattr(self, f.name), f.metadata["format"]
            out.append("-" if value is None else fmt(self) if callable(fmt) else fmt.format(value))
        return out


def leaderboard_table(rows: list[LeaderboardRow], terminal: bool = False) -> tuple[list[str], list[list[str]]]:
    """(header, cells) with the rank first, "=" marking a shared rank: what every view shows."""
    header = ["rank"] + [f.metadata["header"] for f in LeaderboardRow.columns(terminal)]
    return header, [[f"{row.rank}{'=' if row.tied else ''}", *row.cells(terminal)] for row in rows]
