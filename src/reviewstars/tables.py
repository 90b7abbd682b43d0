"""Presentation for the terminal in one place: every rich table the commands print.

Cells are escaped: a review or a model name holding `[brackets]` prints as written.
"""

from __future__ import annotations

from typing import Any, Sequence

from rich.markup import escape
from rich.table import Table

from . import STARS
from .results import LeaderboardRow, calibration_verdict, leaderboard_table
from .stats import PERCENTILES


def metrics_table(metrics: dict[str, Any], title: str = "metrics") -> Table:
    """The numbers a person reads first, then per-class precision and recall."""
    table = Table(title=escape(title))
    table.add_column("stars", justify="right")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    table.add_column("f1", justify="right")
    table.add_column("support", justify="right")
    for star, row in metrics["per_class"].items():
        table.add_row(star, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    intervals = metrics.get("intervals") or {}
    ci = lambda name: f" (95% CI {intervals[name][0]:.4f}-{intervals[name][1]:.4f})" if name in intervals else ""  # noqa: E731
    calibration = f"  ECE={metrics['ece']:.3f}" if "ece" in metrics else ""
    if "ece_uncalibrated" in metrics and metrics.get("temperature", 1.0) != 1.0:
        calibration += f" (uncalibrated {metrics['ece_uncalibrated']:.3f}, temperature {metrics['temperature']:.2f})"
    if "ece_noise_95" in metrics:
        calibration += f"  {calibration_verdict(metrics['ece'], metrics['ece_noise_floor'], metrics['ece_noise_95'])}"
    table.caption = (
        f"n={metrics['n']}  accuracy={metrics['accuracy']:.4f}{ci('accuracy')}  macro-F1={metrics['macro_f1']:.4f}{ci('macro_f1')}  "
        f"MAE={metrics['mae']:.3f} stars  off-by-one={metrics['off_by_one_accuracy']:.4f}{calibration}"
    )
    return table


def confusion_table(metrics: dict[str, Any]) -> Table:
    table = Table(title="confusion matrix (rows: true stars, columns: predicted)")
    table.add_column("true \\ pred", justify="right")
    for star in STARS:
        table.add_column(str(star), justify="right")
    for star, row in zip(STARS, metrics["confusion_matrix"]):
        table.add_row(str(star), *[str(v) for v in row])
    return table


def leaderboard(rows: Sequence[LeaderboardRow], title: str) -> Table:
    header, cells = leaderboard_table(list(rows), terminal=True)
    table = Table(title=escape(title))
    for column in header:
        table.add_column(column, justify="left" if column == "model" else "right", overflow="fold")
    for row in cells:
        table.add_row(*map(escape, row))
    return table


def predictions(texts: Sequence[str], rows: Sequence[dict], title: str) -> Table:
    table = Table(title=escape(title))
    table.add_column("stars", justify="center")
    for star in STARS:
        table.add_column(f"P({star}★)", justify="right")
    table.add_column("review")
    for text, row in zip(texts, rows):
        shown = text if len(text) <= 60 else text[:57] + "..."
        table.add_row("★" * row["stars"], *[f"{row['probabilities'][str(s)]:.3f}" for s in STARS], escape(shown))
    return table


def layer_parameters(rows: Sequence[tuple[str, str, int]], title: str) -> Table:
    table = Table(title=escape(title))
    table.add_column("name")
    table.add_column("layer")
    table.add_column("parameters", justify="right")
    for name, layer, count in rows:
        table.add_row(escape(name), escape(layer), f"{count:,}")
    table.add_row("[bold]total[/]", "", f"[bold]{sum(r[2] for r in rows):,}[/]")
    return table


def stats_tables(stats: dict[str, Any]) -> list[Table]:
    balance = Table(title="rows and class balance")
    balance.add_column("split")
    balance.add_column("rows", justify="right")
    for star in STARS:
        balance.add_column(f"{star}★", justify="right")
    for name, split in stats.items():
        balance.add_row(name, f"{split['rows']:,}", *[
            f"{split['stars'][str(s)]:,} ({split['star_shares'][str(s)]:.0%})" for s in STARS
        ])
    lengths = Table(title="review length percentiles")
    lengths.add_column("split")
    lengths.add_column("unit")
    keys = ["min", *[f"p{p}" for p in PERCENTILES], "max", "mean"]
    for key in keys:
        lengths.add_column(key, justify="right")
    for name, split in stats.items():
        for unit in ("characters", "word_tokens"):
            lengths.add_row(name, unit.replace("_", " "), *[f"{split[unit][k]:g}" for k in keys])
    return [balance, lengths]
