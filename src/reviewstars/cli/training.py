"""`train` and `evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from ..data import DEFAULT_SEED, DataSettings
from ..errors import ReviewstarsError
from ..kinds import model_help
from ..ledger import BEFORE_RESUME
from ..text import with_article
from .app import (DataOption, DecisionOption, DeviceOption, LabelColumnOption, LabelScaleOption, TextColumnOption,
                  _check_decision, _columns, _kind_settings, _print_metrics, _training_groups, app, out)
from .options import GIVEN, with_settings


# --------------------------------------------------------------------------- train


@app.command()
@with_settings(_training_groups, repeats="A trained folder's train_settings.yaml repeats its run.")
def train(
    settings: dict,
    model: str = typer.Option("linear", "--model", "-m", help=model_help()),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write.", rich_help_panel="Output"),
    device: str = DeviceOption,
) -> None:
    """Train a model and save it as a folder (config, weights, tokenizer, metrics, plots, model card, train_settings.yaml)."""
    from ..jobs import train as train_job
    from ..kinds import check_model_name
    from ..settings.files import write_settings_file

    kind = check_model_name(model)
    _warn_of_options_for_other_kinds(model, kind, settings[GIVEN])
    own, data, transformer = _kind_settings(settings)
    renamed = {cls: names for cls, _, names in _training_groups()}

    def settings_file(folder: Path) -> None:  # in the new model folder, before it replaces the old one
        write_settings_file(folder, model, data, transformer, *[own[kind.name]] if kind.name in own else [], renamed=renamed)

    result = train_job(model, data, output, transformer=transformer, device=device, also_write=settings_file,
                       **{kind.name: own[kind.name]} if kind.name in own else {})
    seen = f" ({result.train_examples_seen:,} seen)" if result.train_examples_seen != result.train_examples else ""
    share = f", {result.budget_share_in_steps:.0%} of the budget in optimizer steps" if result.budget_share_in_steps is not None else ""
    earlier = (result.time_ledger or {}).get(BEFORE_RESUME)
    resumed = f" ({earlier:.1f} s of it before --resume)" if earlier else ""
    out.print(f"trained {escape(model)} on {result.train_examples:,} reviews{seen} in {result.train_seconds} s{resumed}{share} -> "
              f"{escape(str(output))}", highlight=False)
    if result.time_ledger:
        from ..ledger import ledger_line

        out.print(f"where the {result.time_ledger['wall']:.0f} s went: {ledger_line(result.time_ledger)}", highlight=False)
    if result.metrics:
        _print_metrics(result.metrics, f"{model} on {result.metrics.split}")
    if result.calibration and result.calibration.get("at_bound"):
        from ..progress import warn

        warn(f"calibration: {result.calibration['at_bound']}")
    if result.calibration and not result.calibration.get("applied", True):
        out.print(f"calibration: {result.calibration['why_not']}", highlight=False)


def _warn_of_options_for_other_kinds(model: str, kind, given: set[str]) -> None:
    """One line naming the options typed that this kind does not read (--epochs for the linear
    model, --layers for a pretrained one): silently ignored, they look like they did something."""
    from ..progress import warn
    from ..settings.fields import cli_fields
    from ..training.settings import TrainSettings
    from .options import option_name

    ignored = []
    for cls, _, renamed in _training_groups():
        if cls is DataSettings or cls is kind.settings or (cls is TrainSettings and kind.uses_torch):
            continue
        for item in cli_fields(cls):
            name, flag = option_name(item, renamed)
            if name in given and name != "resume":  # --resume is refused, not ignored: one line says so (`jobs.guard`)
                ignored.append(flag)
    if ignored:
        warn(f"{model}: {', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply to {with_article(kind.name)} model: ignored")


# --------------------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", "-m", help="Model folder or Hub id."),
    data: str = DataOption,
    split: Optional[str] = typer.Option(None, help="Split to score (default: test, else validation, else train), or held-out: "
                                        "the reviews the model's training held out to score it, cut again from its own data."),
    eval_size: Optional[int] = typer.Option(None, "--eval-size", "--n", help="Score a seeded random sample of N rows."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the --eval-size sample."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write metrics JSON here (and a confusion-matrix PNG beside it)."),
    decision: str = DecisionOption,
    device: str = DeviceOption,
    text_column: Optional[str] = TextColumnOption,
    label_column: Optional[str] = LabelColumnOption,
    label_scale: str = LabelScaleOption,
) -> None:
    """Score a model: accuracy and macro-F1 with 95% intervals, per-class precision/recall, MAE, calibration, confusion matrix."""
    from ..jobs import evaluate as evaluate_job

    _check_decision(decision)
    if eval_size is not None and eval_size < 1:
        raise ReviewstarsError(f"--eval-size must be at least 1, got {eval_size}")
    given = getattr(ctx.get_parameter_source("data"), "name", None) == "COMMANDLINE"  # (by name: typer may carry its own click)
    scores = evaluate_job(model, data if given else None, split=split, n=eval_size, seed=seed, output=output, device=device, decision=decision,
                           columns=_columns(text_column, label_column, label_scale)
                           if (text_column, label_column, label_scale) != (None, None, "auto") else None)  # None: the model's own
    _print_metrics(scores, f"{model} on {scores.split}")
    if output is not None:
        out.print(f"wrote {escape(str(output))} and {escape(str(output.with_suffix('.confusion.png')))}", highlight=False)
