"""What every command shares: the app, the consoles, the options several commands take, and
how scores are printed. The commands register themselves on `app` from their own modules."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..data import DataSettings
from ..devices import DEVICE_HELP
from ..errors import ReviewstarsError
from ..progress import one_line
from .options import option_of


out = Console()
err = Console(stderr=True)


class _CommandsWithHints(typer.core.TyperGroup):
    """Click's "No such option" with what a newcomer meant: a review that starts with a dash
    (`predict "-terrible service"`), or `--verbose` given after the command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as error:  # by name: typer may carry its own copy of click, whose classes are others
            if type(error).__name__ == "NoSuchOption" and isinstance(getattr(error, "message", None), str):
                error.message += _hint(error)
            raise


def _hint(error) -> str:
    option = str(getattr(error, "option_name", ""))
    if option == "--verbose":
        return ". --verbose goes before the command: reviewstars --verbose COMMAND ..."
    # "-terrible service" is tried as a long option first, then as -t: the first attempt names the whole word
    tried = error.__context__ if type(error.__context__).__name__ == "NoSuchOption" else error
    word = str(getattr(tried, "option_name", option))
    command = getattr(getattr(error, "ctx", None), "info_name", None)
    if command in ("predict", "explain") and not word.startswith("--") and (len(word) > 2 or _NEGATIVE_NUMBER.fullmatch(word)):
        return (f". A review that starts with '-' goes after --, which ends the options: "
                f"reviewstars {command} --model M -- {shlex.quote(word)}")
    if _NEGATIVE_NUMBER.fullmatch(word):
        return f". {word} is a negative number, which reads as an option, and {command} takes none (sizes and counts are at least 1)"
    return ""


_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d*)?")


app = typer.Typer(
    cls=_CommandsWithHints,
    help=(
        "Predict a review's star rating (1-5): from a TF-IDF baseline to fine-tuned transformers.\n\n"
        "Quick start (offline, with the shared Yelp data):\n\n"
        "  reviewstars train --model linear --data ../shared/data/yelp --output runs/linear\n\n"
        "  reviewstars evaluate --model runs/linear --data ../shared/data/yelp --output runs/metrics.json\n\n"
        '  reviewstars predict --model runs/linear "Great food, slow service."\n\n'
        "--data takes a Hub dataset name (default yelp_review_full) or a local .parquet/.csv/.jsonl "
        "file or a folder of train.*/validation.*/test.* files."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Look at a data set before training on it.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataOption = option_of(DataSettings, "data")
DeviceOption = typer.Option("auto", "--device", help=DEVICE_HELP)
TextColumnOption = option_of(DataSettings, "text_column")
LabelColumnOption = option_of(DataSettings, "label_column")
LabelScaleOption = option_of(DataSettings, "label_scale")


def _columns(text_column, label_column, label_scale):
    from ..data import Columns, parse_label_scale

    try:
        parse_label_scale(label_scale)
    except ValueError as error:
        raise ReviewstarsError(f"--label-scale: {error}") from None
    return Columns(text_column, label_column, label_scale)


DecisionOption = typer.Option("argmax", "--decision", help="How stars are chosen from the five probabilities: argmax (the most "
                              "likely) or median (minimises the expected error in stars).")


def _version(value: bool) -> None:
    if value:
        out.print(f"reviewstars {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the libraries' own logs, warnings and progress bars too "
                                 "(give it first: reviewstars --verbose train ...)."),
) -> None:
    pass  # read before any library is imported (see reviewstars.cli)


def _training_groups():
    """The settings every training command takes: data, the Trainer's, each kind's own,
    each kind in a panel of its own. A kind's option whose name an earlier group took is
    named after the kind (a second kind with a dropout gets `--KIND-dropout`), so the
    options of the kinds registered first never change."""
    from ..kinds import trainable_kinds
    from ..settings.fields import cli_fields
    from ..training.settings import TrainSettings

    groups = [(DataSettings, "Data", {}), (TrainSettings, "Training (torch kinds)", {})]
    taken = {item.name for cls, _, _ in groups for item in cli_fields(cls)}
    for kind in trainable_kinds():
        if kind.settings is None:
            continue
        renamed = {item.name: f"{kind.name}_{item.name}" for item in cli_fields(kind.settings) if item.name in taken}
        taken |= {renamed.get(item.name, item.name) for item in cli_fields(kind.settings)}
        groups.append((kind.settings, f"{kind.name} model", renamed))
    return groups


def _kind_settings(settings: dict) -> tuple[dict, object, object]:
    """(each kind's own settings by kind name, the data settings, the Trainer settings)."""
    from ..kinds import trainable_kinds
    from ..training.settings import TrainSettings

    own = {kind.name: settings[kind.settings] for kind in trainable_kinds() if kind.settings is not None}
    return own, settings[DataSettings], settings[TrainSettings]


def _check_decision(decision: str) -> None:
    if decision not in ("argmax", "median"):
        raise ReviewstarsError(f"--decision must be argmax or median, got {decision!r}")


def _print_metrics(scores, title: str) -> None:
    from ..presentation.tables import confusion_table, metrics_table

    out.print(metrics_table(scores, title))
    out.print(confusion_table(scores))
    for line in scores.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=one_line(err))


def _names(text: str | None) -> list[str]:
    """A comma-separated list of models. A run of items that together name an existing path is
    one item (a folder `runs/a,b` was split into `runs/a` and a Hub id `b`), and spaces are
    trimmed only from a name that is no path as written."""
    pieces, names, start = (text or "").split(","), [], 0
    while start < len(pieces):
        end = next((end for end in range(len(pieces), start + 1, -1) if Path(",".join(pieces[start:end])).expanduser().exists()),
                   start + 1)
        name = ",".join(pieces[start:end])
        name = name if Path(name).expanduser().exists() else name.strip()
        if name:
            names.append(name)
        start = end
    return names
