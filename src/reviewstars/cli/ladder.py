"""`data stats`, `compare` and `ensemble`: the data, and the models side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..data import DataSettings
from ..kinds import model_help
from .app import (DataOption, DecisionOption, DeviceOption, LabelColumnOption, LabelScaleOption, TextColumnOption,
                  _check_decision, _columns, _kind_settings, _names, _print_metrics, _training_groups,
                  app, data_app, out)
from .options import with_settings


# --------------------------------------------------------------------------- data


@data_app.command("stats")
def data_stats_command(
    data: str = DataOption,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the numbers as JSON."),
    text_column: Optional[str] = TextColumnOption,
    label_column: Optional[str] = LabelColumnOption,
    label_scale: str = LabelScaleOption,
) -> None:
    """Rows per split, class balance, and length percentiles (characters and word tokens)."""
    from ..artifacts import check_output_file, json_where, write_json
    from ..data import load_data
    from ..data.stats import data_stats
    from ..presentation.tables import stats_tables

    if output is not None:
        check_output_file(output, inputs=(data,), ours=json_where(_looks_like_stats), what="data statistics of ours", suffix=".json")
    stats = data_stats(load_data(data, columns=_columns(text_column, label_column, label_scale)))
    for table in stats_tables(stats):
        out.print(table)
    if output is not None:
        write_json(output, stats)
        out.print(f"wrote {escape(str(output))}", highlight=False)


def _looks_like_stats(found) -> bool:
    """`data stats` JSON: per split, its rows and stars."""
    return isinstance(found, dict) and bool(found) and all(isinstance(split, dict) and {"rows", "stars", "star_shares", "characters"} <= set(split)
                                                            for split in found.values())


# --------------------------------------------------------------------------- compare


@app.command()
@with_settings(_training_groups)
def compare(
    settings: dict,
    output: Path = typer.Option(..., "--output", "-o", help="Folder for models, leaderboard.json and the report, e.g. runs/compare.",
                                rich_help_panel="Output"),
    models: Optional[str] = typer.Option(None, help=model_help(several=True) + " Default: linear,scratch,minilm; none when "
                                         "--evaluate-only is given alone (it scores those folders only).", show_default=False),
    evaluate_only: Optional[str] = typer.Option(None, help="Already-trained folders or Hub ids to score too, comma-separated."),
    ensemble: bool = typer.Option(True, "--ensemble/--no-ensemble", help="Add the trained models' ensemble (weights fitted on the dev slice)."),
    decision: str = DecisionOption,
    device: str = DeviceOption,
) -> None:
    """The lesson in one command: train each model on the same data, score with error bars, add their ensemble, report."""
    from ..jobs import compare as compare_module
    from ..presentation.tables import leaderboard
    from ..progress import warn

    _check_decision(decision)
    own, data, transformer = _kind_settings(settings)
    if models is None:  # --evaluate-only alone scores those folders; it does not also train the three default kinds for hours
        models = "" if evaluate_only else ",".join(compare_module.DEFAULT_MODELS)
    board = compare_module.compare(data, output, _names(models), _names(evaluate_only), transformer=transformer, device=device,
                                   decision=decision, ensemble=ensemble, **own)
    out.print(leaderboard(board["rows"], f"leaderboard on {board['split']} ({board['n']:,} reviews)", width=out.width))
    if any(row.tied for row in board["rows"]):
        out.print("= after a rank: the paired test cannot tell those models apart at the 5% level", highlight=False)
    for row in board["rows"]:  # what the report says beside the table, said here too
        for line in row.warnings:
            warn(f"{row.model} {line}")
    out.print(f"wrote {escape(str(output / 'leaderboard.json'))}, report.md and report.html", highlight=False)


@app.command("ensemble")
@with_settings(lambda: [(DataSettings, "Data")])
def ensemble_command(
    settings: dict,
    models: str = typer.Option(..., "--models", help="Trained model folders to combine, comma-separated."),
    output: Path = typer.Option(..., "--output", "-o", help="The ensemble folder to write (it names its members' folders).",
                                rich_help_panel="Output"),
    device: str = DeviceOption,
) -> None:
    """Combine trained models: weights fitted on a dev slice (log-loss), scored on the held-out split.

    Give the --data, --train-size, --dev-size and --seed the members were trained with: the dev slice
    is then carved as theirs was, so it holds no review they learned from.
    """
    from ..jobs.ensemble import build_ensemble

    result = build_ensemble(_names(models), settings[DataSettings], output, device=device)
    weights = ", ".join(f"{Path(m).name} {w:.2f}" for m, w in zip(result["members"], result["weights"]))
    out.print(f"ensemble of {weights} -> {escape(str(output))}", highlight=False)
    if result.get("metrics"):
        _print_metrics(result["metrics"], f"ensemble on {result['metrics'].split}")
