"""Presentation for the terminal in one place: every rich table the commands print.

Cells are escaped: a review or a model name holding `[brackets]` prints as written. Every
table reads at 80 columns: a number is never split or cut (an interval or a share goes on
the line below its value, long tables are turned on their side), and captions break
between sentences, not inside them.
"""

from __future__ import annotations

from typing import Any, Sequence

from rich.markup import escape
from rich.table import Table

from .. import STARS
from ..scoring.leaderboard import LeaderboardRow, leaderboard_table
from ..scoring.scores import Scores, calibration_verdict
from ..data.stats import PERCENTILES
from ..text import shown


def metrics_table(scores: Scores, title: str = "metrics") -> Table:
    """The numbers a person reads first, then per-class precision and recall."""
    table = Table(title=escape(title))
    table.add_column("stars", justify="right")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    table.add_column("f1", justify="right")
    table.add_column("support", justify="right")
    for star, row in scores.per_class.items():
        table.add_row(star, *[cell(row[name]) for name in ("precision", "recall", "f1")], str(row["support"]))
    # The metrics computed from the predictions: each with its interval on a line of its own, the others on one line.
    computed = [f for f in scores.computed() if f.name != "ece"]

    def shown(item) -> str:
        interval = scores.intervals.get(item.name) if item.metadata["interval"] else None
        ci = f" (95% CI {interval[0]:.4f}-{interval[1]:.4f})" if interval else ""
        return f"{item.metadata['header']}={item.metadata['format'].format(getattr(scores, item.name))}{ci}"

    with_interval = [shown(f) for f in computed if f.metadata["interval"]]
    lines = [f"n={scores.n:,}  " + (with_interval[0] if with_interval else ""), *with_interval[1:],
             "  ".join(shown(f) for f in computed if not f.metadata["interval"])]
    if scores.ece is not None:
        calibration = f"ECE={scores.ece:.3f}"
        if scores.ece_uncalibrated is not None and scores.temperature not in (None, 1.0):
            calibration += f" (uncalibrated {scores.ece_uncalibrated:.3f}, temperature {scores.temperature:.2f})"
        if scores.ece_noise_95 is not None:
            calibration += f"  {calibration_verdict(scores.ece, scores.ece_noise_floor, scores.ece_noise_95)}"
        lines.append(calibration)
    lines += undefined_lines(scores.per_class)
    if scores.decision != "argmax":  # the figures above depend on it: said where they are read
        lines.append(f"stars decided by the {scores.decision} of each distribution (--decision {scores.decision})")
    table.caption = "\n".join(lines)
    return table


def cell(value: float | None, digits: int = 3) -> str:
    """A per-class figure, or '-' where it is undefined (a star never predicted, or not in the reviews)."""
    return "-" if value is None else f"{value:.{digits}f}"


def confusion_table(scores: Scores) -> Table:
    table = Table(title="confusion matrix (rows: true stars, columns: predicted)")
    table.add_column("true \\ pred", justify="right")
    for star in STARS:
        table.add_column(str(star), justify="right")
    for star, row in zip(STARS, scores.confusion_matrix):
        table.add_row(str(star), *[str(v) for v in row])
    return table


#: Under this many columns the terminal's leaderboard keeps the scores and drops the
#: training columns (they stay in leaderboard.json and the report), saying so.
FULL_LEADERBOARD_WIDTH = 110
SCORE_HEADERS = ("rank", "model", "accuracy (95% CI)", "macro-F1 (95% CI)", "MAE (stars)", "ECE")


def undefined_lines(per_class: dict[str, dict]) -> list[str]:
    """Why a per-class cell reads "-", saying only what holds for each star."""
    def stars(which: str) -> str:
        return ", ".join(f"{star}★" for star, row in per_class.items() if row[which] is None)

    never_predicted, no_review = stars("precision"), stars("recall")
    said = ([f"{never_predicted} never predicted: no precision"] if never_predicted else []) \
        + ([f"no review of {no_review}: no recall"] if no_review else [])
    return [f"-: {'; '.join(said)}"] if said else []


def leaderboard(rows: Sequence[LeaderboardRow], title: str, width: int | None = None) -> Table:
    header, cells = leaderboard_table(list(rows), terminal=True)
    dropped = []
    if width is not None and width < FULL_LEADERBOARD_WIDTH:
        kept = [i for i, name in enumerate(header) if name in SCORE_HEADERS]
        dropped = [name for name in header if name not in SCORE_HEADERS]
        header, cells = [header[i] for i in kept], [[row[i] for i in kept] for row in cells]
    table = Table(title=escape(title))
    if dropped:
        table.caption = f"{', '.join(dropped)}: in a wider terminal, leaderboard.json and the report"
    for column in header:
        if column == "model":
            table.add_column(column, justify="left", overflow="fold")
        else:  # a header may wrap between its words; a number never splits
            table.add_column(column.replace(" (", "\n("), justify="right", no_wrap=True)
    for row in cells:
        table.add_row(*[escape(cell).replace(" (", "\n(", 1) for cell in row])  # an interval under its value
    return table


def predictions(texts: Sequence[str], rows: Sequence[dict], title: str) -> Table:
    table = Table(title=escape(title))
    table.add_column("stars", justify="center")
    for star in STARS:
        table.add_column(f"P({star}★)", justify="right")
    table.add_column("expected", justify="right")  # the mean star: 3.4 says "between 3 and 4, nearer 3"
    table.add_column("review")
    for text, row in zip(texts, rows):
        review = escape(shown(text if len(text) <= 60 else text[:57] + "..."))
        if row.get("empty"):  # rated, as every text is, but there was nothing to read
            review = f"{review}[dim italic](no words: these stars say nothing of a review)[/]"
        table.add_row("★" * row["stars"], *[f"{row['probabilities'][str(s)]:.3f}" for s in STARS],
                      f"{row['expected_stars']:.2f}", review)
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
            f"{split['stars'][str(s)]:,}\n{split['star_shares'][str(s)]:.0%}" for s in STARS
        ])
    first = next(iter(stats), "")
    repeats = Table(title="repeated reviews (the same words, whatever their case or spacing)")
    for column in ("split", "copies within it", f"also in {first}"):
        repeats.add_column(column, justify="left" if column == "split" else "right")
    for name, split in stats.items():
        repeats.add_row(name, f"{split.get('repeated', 0):,}", "-" if name == first else f"{split.get(f'also_in_{first}', 0):,}")
    # Turned on its side: a row per percentile, a column per split and unit, so it fits 80 columns.
    lengths = Table(title="review length percentiles")
    lengths.add_column("")
    columns = [(name, unit) for name in stats for unit in ("characters", "word_tokens")]
    for name, unit in columns:
        lengths.add_column(f"{name}\n{'chars' if unit == 'characters' else 'words'}", justify="right", no_wrap=True)
    for key in ["min", *[f"p{p}" for p in PERCENTILES], "max", "mean"]:
        lengths.add_row(key, *[f"{stats[name][unit][key]:,.{0 if key != 'mean' else 1}f}" for name, unit in columns])
    return [balance, repeats, lengths]
