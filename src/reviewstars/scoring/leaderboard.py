"""A leaderboard row: one model's `Scores` on the held-out reviews beside what its training
cost. The terminal table, report.md, report.html and leaderboard.json are all made from
the declarations here and in `scores`: the scores' metric fields, then the training
columns declared below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .scores import Scores


def column(header: str, fmt: str = "{}", *, terminal: bool = True) -> Any:
    """A training column, with its table header and how a cell shows it ("-" when None).
    `terminal=False` keeps a column to the report and the JSON, so the terminal's table
    stays readable."""
    return field(default=None, metadata={"header": header, "format": fmt, "terminal": terminal})


@dataclass
class LeaderboardRow:
    model: str
    scores: Scores = field(default_factory=Scores)
    parameters: int | None = column("parameters", "{:,}", terminal=False)
    train_seconds: float | None = column("train s", "{:,.0f}")
    train_examples_seen: int | None = column("reviews seen", "{:,}")
    budget_share_in_steps: float | None = column("budget in steps", "{:.0%}")
    ended: str | None = column("ended by", terminal=False)  # the deadline, or the passes worth taking
    time_ledger: dict[str, float] | None = None  # where its training's wall time went (seconds by entry, `wall`)
    warnings: list[str] = field(default_factory=list)  # what its numbers do not say by themselves
    recipe: str = ""   # what trained it: linear, scratch, bag, minilm, a Hub id, ensemble ("" if not us)
    format: str = ""   # its folder's format: linear, transformer, onnx, ensemble
    rank: int = 0
    tied: bool = False                       # shares its rank: the paired test cannot separate them
    # McNemar's exact test against `tested_against`: the first of its rank when it shares one
    # (p >= 0.05), else the first of the rank above, which it was told apart from (p < 0.05)
    p_value_vs_leader: float | None = None
    tested_against: str | None = None
    reused: bool = False
    folder: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def training_columns(terminal: bool = False) -> list:
        return [f for f in fields(LeaderboardRow) if "header" in f.metadata and (f.metadata["terminal"] or not terminal)]

    @staticmethod
    def headers(terminal: bool = False) -> list[str]:
        scores = [f.metadata["header"] + (" (95% CI)" if f.metadata["interval"] else "") for f in Scores.metrics(terminal)]
        return ["model", *scores, *[f.metadata["header"] for f in LeaderboardRow.training_columns(terminal)]]

    def cells(self, terminal: bool = False) -> list[str]:
        trained = [getattr(self, f.name) for f in self.training_columns(terminal)]
        return [self.model, *[self.scores.shown(f.name) for f in Scores.metrics(terminal)],
                *["-" if value is None else f.metadata["format"].format(value)
                  for f, value in zip(self.training_columns(terminal), trained)]]

    def record(self) -> dict[str, Any]:
        """A row of leaderboard.json: its scores at the top level beside the row's own
        fields, each interval as `<metric>_interval`, to 4 digits (the tables round the
        scores themselves, not these: 0.118519 is 0.119, not 0.1185's 0.118)."""
        own = asdict(self)
        own.pop("scores")
        rounded = self.scores.rounded(4)
        scores = asdict(rounded)
        scores.pop("context", None)
        intervals = {f"{f.name}_interval": rounded.intervals.get(f.name) for f in Scores.metrics() if f.metadata["interval"]}
        return {"model": self.model, **scores, **intervals, **own}


def leaderboard_table(rows: list[LeaderboardRow], terminal: bool = False) -> tuple[list[str], list[list[str]]]:
    """(header, cells) with the rank first, "=" marking a shared rank: what every view shows."""
    header = ["rank", *LeaderboardRow.headers(terminal)]
    return header, [[f"{row.rank}{'=' if row.tied else ''}", *row.cells(terminal)] for row in rows]
