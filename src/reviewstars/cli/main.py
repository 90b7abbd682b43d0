"""The commands: train, evaluate, predict, merge, serve, export, compare, data; the
lessons (basics, tokens) live in `lessons.py`."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..data import DEFAULT_SEED, DataSettings
from ..devices import DEVICE_HELP
from ..errors import ReviewstarsError
from ..progress import one_line
from .options import option_of, with_settings

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


def _model_help(several: bool = False) -> str:
    """`--model`'s help, read from the kinds' registry (no list of kinds written here)."""
    from ..kinds import model_help

    return model_help(several)


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


# --------------------------------------------------------------------------- train


@app.command()
@with_settings(_training_groups)
def train(
    settings: dict,
    model: str = typer.Option("linear", "--model", "-m", help=_model_help()),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write.", rich_help_panel="Output"),
    device: str = DeviceOption,
) -> None:
    """Train a model and save it as a folder (config, weights, tokenizer, metrics, plots, model card, train_settings.yaml)."""
    from ..artifacts import is_main_process
    from ..jobs import train as train_job
    from ..kinds import check_model_name
    from ..settings.files import write_settings_file

    kind = check_model_name(model)
    own, data, transformer = _kind_settings(settings)
    result = train_job(model, data, output, transformer=transformer, device=device, **{kind.name: own[kind.name]} if kind.name in own else {})
    if is_main_process():
        renamed = {cls: names for cls, _, names in _training_groups()}
        write_settings_file(output, model, data, transformer, *[own[kind.name]] if kind.name in own else [], renamed=renamed)
    seen = f" ({result.train_examples_seen:,} seen)" if result.train_examples_seen != result.train_examples else ""
    share = f", {result.budget_share_in_steps:.0%} of the budget in optimizer steps" if result.budget_share_in_steps is not None else ""
    out.print(f"trained {escape(model)} on {result.train_examples:,} reviews{seen} in {result.train_seconds} s{share} -> {escape(str(output))}",
              highlight=False)
    if result.time_ledger:
        from ..ledger import ledger_line

        out.print(f"where the {result.time_ledger['wall']:.0f} s went: {ledger_line(result.time_ledger)}", highlight=False)
    if result.metrics:
        _print_metrics(result.metrics, f"{model} on {result.metrics.split}")
    if result.calibration and not result.calibration.get("applied", True):
        out.print(f"calibration: {result.calibration['why_not']}", highlight=False)


# --------------------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    model: str = typer.Option(..., "--model", "-m", help="Model folder or Hub id."),
    data: str = DataOption,
    split: Optional[str] = typer.Option(None, help="Split to score (default: test, else validation, else train)."),
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
    scores = evaluate_job(model, data, split=split, n=eval_size, seed=seed, output=output, device=device, decision=decision,
                           columns=_columns(text_column, label_column, label_scale))
    _print_metrics(scores, f"{model} on {scores.split}")
    if output is not None:
        out.print(f"wrote {escape(str(output))} and {escape(str(output.with_suffix('.confusion.png')))}", highlight=False)


def _check_decision(decision: str) -> None:
    if decision not in ("argmax", "median"):
        raise ReviewstarsError(f"--decision must be argmax or median, got {decision!r}")


def _print_metrics(scores, title: str) -> None:
    from ..presentation.tables import confusion_table, metrics_table

    out.print(metrics_table(scores, title))
    out.print(confusion_table(scores))
    for line in scores.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=one_line(err))


# --------------------------------------------------------------------------- predict


@app.command()
def predict(
    texts: Optional[List[str]] = typer.Argument(None, help="Reviews to rate; - (or none, with input piped in) reads them from "
                                                "standard input, one a line."),
    model: str = typer.Option(..., "--model", "-m", help="Model folder or Hub id."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Rate every row of a .csv/.parquet/.jsonl file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="With --file: where to write the predictions."),
    column: Optional[str] = typer.Option(None, help="With --file: the column holding the reviews (default: the first of "
                                         "text, review, content, ... found)."),
    shard: Optional[str] = typer.Option(
        None, help="With --file: i/N reads and rates only the i-th of N runs of consecutive rows (one process of N); "
                   "join the outputs with `reviewstars merge`."
    ),
    engine: str = typer.Option("local", help="With --file: local (this process) or ray (Ray Data workers on this machine "
                               "or a cluster; --file may be a folder or a glob; --output a folder of Parquet parts, or one file). "
                               "Needs pip install 'reviewstars[ray]'."),
    ray_address: Optional[str] = typer.Option(None, help="With --engine ray: the cluster to join (ray://host:10001 or auto; "
                                                         "default: start Ray on this machine)."),
    workers: Optional[int] = typer.Option(None, min=1, help="With --engine ray: model workers (default: one per GPU, else one "
                                                              "per CPU of the cluster)."),
    batch_size: Optional[int] = typer.Option(None, help="Texts per model call (default: the model's own, 16 for transformers on a CPU)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    device: str = DeviceOption,
) -> None:
    """Predict stars for reviews given as arguments, or for a whole file (streamed: any size)."""
    from ..jobs import predict_file, predict_texts

    if file is not None:
        if output is None:
            raise ReviewstarsError("--file needs --output (a .csv, .parquet or .jsonl path)")
        if engine not in ("local", "ray"):
            raise ReviewstarsError(f"--engine {engine!r}: expected local or ray")
        if engine == "ray":
            summary = _predict_with_ray(model, file, output, column, shard, ray_address, workers, batch_size, device)
        else:
            if ray_address or workers:
                raise ReviewstarsError("--ray-address and --workers go with --engine ray")
            summary = predict_file(model, file, output, column, shard=shard, batch_size=batch_size, device=device)
        resumed = f", {summary['rows'] - summary['rated']:,} kept from the stopped run" if summary["rated"] != summary["rows"] else ""
        out.print(f"rated {summary['rows']:,} reviews ({summary['predictions_per_second']:,.0f}/s{resumed}) -> "
                  f"{escape(summary['output'])}", highlight=False)
        if summary.get("texts_cut"):
            out.print(f"{summary['texts_cut']:,} reviews over {summary['chars_read_at_most']:,} characters were read by their first "
                      f"and last {summary['chars_read_at_most'] // 2:,}", highlight=False)
        return
    if output is not None:
        raise ReviewstarsError("--output needs --file: predictions of texts given as arguments are printed (--json for JSON)")
    if texts == ["-"] or (not texts and not sys.stdin.isatty()):
        texts = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
        if not texts:
            raise ReviewstarsError("no reviews on standard input: give one a line, or as arguments")
    if not texts:
        raise ReviewstarsError('give reviews to rate, e.g. reviewstars predict --model DIR "Great food!", or --file')
    texts = [text.encode("utf-8", "replace").decode("utf-8") for text in texts]  # a lone surrogate from the shell
    rows = predict_texts(model, texts, device=device)
    if as_json:
        out.print_json(json.dumps([{"text": t, **r} for t, r in zip(texts, rows)]))
        return
    from ..presentation.tables import predictions

    out.print(predictions(texts, rows, f"predictions of {model}"))


def _predict_with_ray(model, file, output, column, shard, address, workers, batch_size, device) -> dict:
    if shard:
        raise ReviewstarsError("--shard goes with --engine local: Ray shares the rows among its workers itself")
    try:
        from ..integrations.ray import predict_with_ray
    except ImportError as missing:
        raise ReviewstarsError(f"--engine ray needs Ray Data ({missing.name} is not installed): "
                               "pip install 'reviewstars[ray]'") from None
    from ..progress import library_bars

    return predict_with_ray(model, file, output, column, address=address, workers=workers, batch_size=batch_size,
                            device=device, verbose=library_bars())


@app.command()
def merge(
    parts: List[Path] = typer.Argument(..., help="The outputs of `predict --file ... --shard i/N`, i = 0..N-1."),
    output: Path = typer.Option(..., "--output", "-o", help="The merged predictions, in input order."),
) -> None:
    """Join the outputs of sharded `predict` runs back into one file, in input order."""
    from ..jobs import merge_predictions

    summary = merge_predictions(parts, output)
    out.print(f"merged {summary['parts']} parts, {summary['rows']:,} rows -> {escape(summary['output'])}", highlight=False)


def _serve_groups():
    from ..serving.limits import ServeLimits

    return [(ServeLimits, "Limits")]


@app.command()
@with_settings(_serve_groups)
def serve(
    settings: dict,
    model: str = typer.Option(..., "--model", "-m", help="Model folder (any kind, ONNX included) or Hub id."),
    host: str = typer.Option("127.0.0.1", help="Address to bind: loopback by default; 0.0.0.0 opens it to the network."),
    port: int = typer.Option(8000, help="TCP port (1-65535)."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="A file holding the key clients must send "
                                                "(Authorization: Bearer KEY); or set REVIEWSTARS_API_KEY. /health, / and /docs stay open."),
    device: str = DeviceOption,
) -> None:
    """Serve a model over HTTP: a page at /, POST /predict, GET /health, /model, /metrics, docs at /docs."""
    import os

    from ..serving import serve as run_server
    from ..serving.limits import ServeLimits

    if not 1 <= port <= 65_535:
        raise ReviewstarsError(f"--port must be between 1 and 65535, got {port}")
    api_key = _api_key(api_key_file) or os.environ.get("REVIEWSTARS_API_KEY") or None
    if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[bold yellow]warning:[/] serving on {escape(host)} without a key: anyone who reaches this address can use "
                  "the model (--api-key-file, or REVIEWSTARS_API_KEY)", highlight=False, soft_wrap=one_line(err))
    err.print(f"serving {escape(model)} on http://{host}:{port} (docs: http://{host}:{port}/docs); Ctrl-C stops", highlight=False)
    run_server(model, host=host, port=port, limits=settings[ServeLimits], device=device, api_key=api_key)


def _api_key(path: Optional[Path]) -> str | None:
    if path is None:
        return None
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ReviewstarsError(f"--api-key-file {path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    if len(key) < 16 or any(c.isspace() for c in key):
        raise ReviewstarsError(f"--api-key-file {path}: the key must be one word of at least 16 characters")
    return key


@app.command()
def export(
    model: str = typer.Option(..., "--model", "-m", help="A transformer model folder or Hub id."),
    output: Path = typer.Option(..., "--output", "-o", help="The ONNX model folder to write."),
    format: str = typer.Option("onnx", "--format", help="The format to export to: onnx (ONNX Runtime)."),
    quantize: Optional[str] = typer.Option(None, help="int8: dynamic quantisation (smaller, faster on CPU)."),
) -> None:
    """Export a transformer to an ONNX folder that `predict` and `serve` load like any model."""
    from ..models.onnx import KIND as ONNX, export_onnx

    if format != ONNX:
        raise ReviewstarsError(f"--format {format!r}: the one format for now is {ONNX}")
    summary = export_onnx(model, output, quantize=quantize)
    out.print(f"wrote {escape(summary['output'])} ({summary['bytes'] / 1e6:.1f} MB{', int8' if quantize else ''})", highlight=False)


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
    from ..artifacts import check_output_file, write_json
    from ..data import load_data
    from ..data.stats import data_stats
    from ..presentation.tables import stats_tables

    if output is not None:
        check_output_file(output, inputs=(data,))
    stats = data_stats(load_data(data, columns=_columns(text_column, label_column, label_scale)))
    for table in stats_tables(stats):
        out.print(table)
    if output is not None:
        write_json(output, stats)


# --------------------------------------------------------------------------- compare


@app.command()
@with_settings(_training_groups)
def compare(
    settings: dict,
    output: Path = typer.Option(..., "--output", "-o", help="Folder for models, leaderboard.json and the report, e.g. runs/compare.",
                                rich_help_panel="Output"),
    models: str = typer.Option("linear,scratch,minilm", help=_model_help(several=True)),
    evaluate_only: Optional[str] = typer.Option(None, help="Already-trained folders or Hub ids to score too, comma-separated."),
    ensemble: bool = typer.Option(True, "--ensemble/--no-ensemble", help="Add the trained models' ensemble (weights fitted on the dev slice)."),
    decision: str = DecisionOption,
    device: str = DeviceOption,
) -> None:
    """The lesson in one command: train each model on the same data, score with error bars, add their ensemble, report."""
    from ..jobs import compare as compare_module
    from ..presentation.tables import leaderboard

    _check_decision(decision)
    own, data, transformer = _kind_settings(settings)
    board = compare_module.compare(data, output, _names(models), _names(evaluate_only), transformer=transformer, device=device,
                                   decision=decision, ensemble=ensemble, **own)
    out.print(leaderboard(board["rows"], f"leaderboard on {board['split']} ({board['n']:,} reviews)", width=out.width))
    out.print("= after a rank: the paired test cannot tell those models apart at the 5% level", highlight=False)
    out.print(f"wrote {escape(str(output / 'leaderboard.json'))}, report.md and report.html", highlight=False)


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


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
    is then carved as theirs was, so it holds no review they learned from."""
    from ..jobs.ensemble import build_ensemble

    result = build_ensemble(_names(models), settings[DataSettings], output, device=device)
    weights = ", ".join(f"{Path(m).name} {w:.2f}" for m, w in zip(result["members"], result["weights"]))
    out.print(f"ensemble of {weights} -> {escape(str(output))}", highlight=False)
    if result.get("metrics"):
        _print_metrics(result["metrics"], f"ensemble on {result['metrics'].split}")


from . import lessons  # noqa: E402,F401  (registers basics and tokens)


# --------------------------------------------------------------------------- entry point


#: What the file system can refuse whatever the command: said in one line (atomic writes
#: leave nothing half-written behind), not a traceback.
DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "over the disk quota",
               errno.EROFS: "a read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted"}


def main() -> None:
    try:
        app()
    except ReviewstarsError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=one_line(err))
        sys.exit(error.exit_code)
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        where = f"{error.filename}: " if error.filename else ""
        err.print(f"[bold red]error:[/] {escape(where)}cannot write or read there: {DISK_ERRORS[error.errno]}; nothing "
                  "half-written was left", highlight=False, soft_wrap=one_line(err))
        sys.exit(1)
