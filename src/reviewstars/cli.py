"""`reviewstars`: train, evaluate, explain and serve star-rating models from the shell.

Each command parses its options and calls one library function; errors a user can fix
are printed as one line (`error: ...`) with exit code 2, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import STARS, __version__
from .data import DEFAULT_DATASET, DEFAULT_SEED
from .errors import ReviewstarsError

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    help=(
        "Predict a review's star rating (1-5): from a TF-IDF baseline to fine-tuned transformers.\n\n"
        "Quick start (offline, with the shared Yelp data):\n\n"
        "  reviewstars train --model linear --data ../shared/data/yelp --output runs/linear\n\n"
        "  reviewstars evaluate --model runs/linear --data ../shared/data/yelp --output metrics.json\n\n"
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

DataOption = typer.Option(DEFAULT_DATASET, "--data", "-d", help="Hub dataset name, or a local file or folder.")
SeedOption = typer.Option(DEFAULT_SEED, "--seed", help="Seed for subsets and training.")


def _version(value: bool) -> None:
    if value:
        out.print(f"reviewstars {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


# --------------------------------------------------------------------------- train


@app.command()
def train(
    model: str = typer.Option("linear", "--model", "-m", help="Model kind: linear."),
    data: str = DataOption,
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write."),
    train_size: Optional[int] = typer.Option(None, help="Train on a seeded sample of N reviews."),
    eval_size: Optional[int] = typer.Option(None, help="Score on a seeded sample of N held-out reviews."),
    seed: int = SeedOption,
    c: float = typer.Option(1.0, "--C", help="linear: inverse regularisation strength."),
    balanced: bool = typer.Option(True, "--balanced/--no-balanced", help="linear: weight classes by inverse frequency."),
    min_df: int = typer.Option(2, help="linear: drop n-grams seen in fewer reviews."),
    ngram_max: int = typer.Option(2, help="linear: longest word n-gram."),
) -> None:
    """Train a model and save it as a folder (config, weights, metrics, model card)."""
    from .jobs import train as train_job
    from .models.linear import LinearSettings

    settings = LinearSettings(C=c, balanced=balanced, min_df=min_df, ngram_max=ngram_max)
    result = train_job(model, data, output, train_size=train_size, eval_size=eval_size, seed=seed, linear=settings)
    out.print(f"trained [bold]{model}[/] on {result['train_examples']:,} reviews in {result['train_seconds']} s -> {output}")
    if "metrics" in result:
        _print_metrics(result["metrics"], f"{model} on {result['metrics']['split']}")


# --------------------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    model: Path = typer.Option(..., "--model", "-m", help="Model folder."),
    data: str = DataOption,
    split: Optional[str] = typer.Option(None, help="Split to score (default: test, else validation, else train)."),
    n: Optional[int] = typer.Option(None, "--n", help="Score a seeded random sample of N rows."),
    seed: int = SeedOption,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write metrics JSON here (and a confusion-matrix PNG beside it)."),
) -> None:
    """Score a model: accuracy, macro-F1, per-class precision/recall, MAE, confusion matrix."""
    from .jobs import evaluate as evaluate_job

    metrics = evaluate_job(model, data, split=split, n=n, seed=seed, output=output)
    _print_metrics(metrics, f"{model} on {metrics['split']}")
    if output is not None:
        out.print(f"wrote {output} and {output.with_suffix('.confusion.png')}")


def _print_metrics(metrics: dict, title: str) -> None:
    from .evaluation import confusion_table, metrics_table

    out.print(metrics_table(metrics, title))
    out.print(confusion_table(metrics))


# --------------------------------------------------------------------------- predict


@app.command()
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Reviews to rate."),
    model: Path = typer.Option(..., "--model", "-m", help="Model folder."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Rate every row of a .csv/.parquet/.jsonl file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="With --file: where to write the predictions."),
    column: str = typer.Option("text", help="With --file: the column holding the reviews."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Predict stars for reviews given as arguments, or for a whole file."""
    from .jobs import predict_file, predict_texts

    if file is not None:
        if output is None:
            raise ReviewstarsError("--file needs --output (a .csv, .parquet or .jsonl path)")
        summary = predict_file(model, file, output, column)
        out.print(f"rated {summary['rows']:,} reviews ({summary['predictions_per_second']:,.0f}/s) -> {summary['output']}")
        return
    if not texts:
        raise ReviewstarsError('give reviews to rate, e.g. reviewstars predict --model DIR "Great food!", or --file')
    rows = predict_texts(model, texts)
    if as_json:
        out.print_json(json.dumps([{"text": t, **r} for t, r in zip(texts, rows)]))
        return
    table = Table(title=f"predictions of {model}")
    table.add_column("stars", justify="center")
    for star in STARS:
        table.add_column(f"P({star}★)", justify="right")
    table.add_column("review")
    for text, row in zip(texts, rows):
        table.add_row(
            "★" * row["stars"],
            *[f"{row['probabilities'][str(s)]:.3f}" for s in STARS],
            text if len(text) <= 60 else text[:57] + "...",
        )
    out.print(table)


# --------------------------------------------------------------------------- data


@data_app.command("stats")
def data_stats_command(
    data: str = DataOption,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the numbers as JSON."),
) -> None:
    """Rows per split, class balance, and length percentiles (characters and word tokens)."""
    from .artifacts import write_json
    from .data import load_data
    from .stats import data_stats, stats_tables

    stats = data_stats(load_data(data))
    for table in stats_tables(stats):
        out.print(table)
    if output is not None:
        write_json(output, stats)


# --------------------------------------------------------------------------- entry point


def main() -> None:
    try:
        app()
    except ReviewstarsError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
