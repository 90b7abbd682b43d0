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
    model: str = typer.Option("linear", "--model", "-m", help="linear | scratch | minilm | a Hub id (bert-base-cased) | a local model folder."),
    data: str = DataOption,
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write."),
    train_size: Optional[int] = typer.Option(None, help="Train on a seeded sample of N reviews."),
    eval_size: Optional[int] = typer.Option(None, help="Score on a seeded sample of N held-out reviews."),
    seed: int = SeedOption,
    time_budget: Optional[str] = typer.Option(None, help="Transformers: train as well as possible within this wall-clock time (30m, 1h, 90s)."),
    max_length: int = typer.Option(256, help="Transformers: tokens kept per review."),
    truncation: str = typer.Option("head+tail", help="Transformers: which tokens of a long review to keep: head, tail or head+tail."),
    batch_size: int = typer.Option(16, help="Transformers: reviews per step."),
    learning_rate: Optional[float] = typer.Option(None, help="Transformers: peak learning rate (default 5e-5 fine-tuning, 5e-4 from scratch)."),
    epochs: float = typer.Option(3.0, help="Transformers: passes over the data (ignored with --time-budget)."),
    eval_steps: int = typer.Option(50, help="Transformers: evaluate and checkpoint every N steps."),
    early_stopping: int = typer.Option(10, help="Transformers: stop after N evaluations without improvement (0: never; off under --time-budget, where the clock ends the run)."),
    dev_size: int = typer.Option(500, help="Transformers: reviews carved from train to follow progress and pick the best checkpoint (under --time-budget the final one is kept)."),
    resume: bool = typer.Option(False, "--resume", help="Transformers: continue from the last checkpoint in --output."),
    layers: int = typer.Option(4, help="scratch: encoder blocks."),
    width: int = typer.Option(256, help="scratch: embedding width."),
    heads: int = typer.Option(4, help="scratch: attention heads."),
    dropout: float = typer.Option(0.1, help="scratch: dropout after embeddings, attention, feed-forward and pooling."),
    vocab_size: int = typer.Option(8000, help="scratch: WordPiece vocabulary size."),
    tokenizer: Optional[str] = typer.Option(None, help="scratch: use this tokenizer (Hub id or folder) instead of training WordPiece."),
    c: float = typer.Option(1.0, "--C", help="linear: inverse regularisation strength."),
    balanced: bool = typer.Option(True, "--balanced/--no-balanced", help="linear: weight classes by inverse frequency."),
    min_df: int = typer.Option(2, help="linear: drop n-grams seen in fewer reviews."),
    ngram_max: int = typer.Option(2, help="linear: longest word n-gram."),
) -> None:
    """Train a model and save it as a folder (config, weights, tokenizer, metrics, plots, model card)."""
    from .jobs import ScratchSettings
    from .jobs import train as train_job
    from .models.linear import LinearSettings

    transformer_settings = None
    if model != "linear":
        from .tokenization import TRUNCATIONS
        from .training import TrainSettings, parse_duration

        if truncation not in TRUNCATIONS:
            raise ReviewstarsError(f"--truncation must be one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
        try:
            budget = parse_duration(time_budget)
        except ValueError as error:
            raise ReviewstarsError(f"--time-budget: {error}") from None
        transformer_settings = TrainSettings(
            batch_size=batch_size, learning_rate=learning_rate, epochs=epochs, eval_steps=eval_steps,
            logging_steps=eval_steps, max_length=max_length, truncation=truncation, time_budget=budget,
            early_stopping=early_stopping or None, seed=seed, resume=resume,
        )
    result = train_job(
        model, data, output, train_size=train_size, eval_size=eval_size, seed=seed,
        linear=LinearSettings(C=c, balanced=balanced, min_df=min_df, ngram_max=ngram_max),
        transformer=transformer_settings,
        scratch=ScratchSettings(layers=layers, width=width, heads=heads, feed_forward=4 * width, dropout=dropout, vocab_size=vocab_size, tokenizer=tokenizer),
        dev_size=dev_size,
    )
    out.print(
        f"trained [bold]{model}[/] on {result['train_examples']:,} reviews ({result['train_examples_seen']:,} seen) "
        f"in {result['train_seconds']} s -> {output}"
    )
    if "metrics" in result:
        _print_metrics(result["metrics"], f"{model} on {result['metrics']['split']}")


# --------------------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    model: str = typer.Option(..., "--model", "-m", help="Model folder, alias (minilm) or Hub id."),
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
    model: str = typer.Option(..., "--model", "-m", help="Model folder, alias or Hub id."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Rate every row of a .csv/.parquet/.jsonl file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="With --file: where to write the predictions."),
    column: str = typer.Option("text", help="With --file: the column holding the reviews."),
    shard: Optional[str] = typer.Option(
        None, help="With --file: i/N rates rows i, i+N, ... (one process of N); join outputs with `reviewstars merge`."
    ),
    batch_size: Optional[int] = typer.Option(None, help="Texts per model call (default: the model's own, 16 for transformers on a CPU)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Predict stars for reviews given as arguments, or for a whole file (streamed: any size)."""
    from .jobs import predict_file, predict_texts

    if file is not None:
        if output is None:
            raise ReviewstarsError("--file needs --output (a .csv, .parquet or .jsonl path)")
        summary = predict_file(model, file, output, column, shard=shard, batch_size=batch_size)
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


@app.command()
def merge(
    parts: List[Path] = typer.Argument(..., help="The outputs of `predict --file ... --shard i/N`, i = 0..N-1."),
    output: Path = typer.Option(..., "--output", "-o", help="The merged predictions, in input order."),
) -> None:
    """Join the outputs of sharded `predict` runs back into one file, in input order."""
    from .jobs import merge_predictions

    summary = merge_predictions(parts, output)
    out.print(f"merged {summary['parts']} parts, {summary['rows']:,} rows -> {summary['output']}")


@app.command()
def serve(
    model: str = typer.Option(..., "--model", "-m", help="Model folder (any kind, ONNX included), alias or Hub id."),
    host: str = typer.Option("127.0.0.1", help="Address to bind: loopback by default; 0.0.0.0 opens it to the network."),
    port: int = typer.Option(8000, help="TCP port."),
    max_batch: int = typer.Option(64, help="Most texts per model call (requests are gathered into batches)."),
    max_wait_ms: float = typer.Option(5.0, help="Longest wait for more requests before a batch runs."),
    max_texts: int = typer.Option(256, help="Most texts per request (more: 413)."),
    max_chars: int = typer.Option(20_000, help="Most characters per text (more: 413)."),
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /model, docs at /docs."""
    from .serving import ServeLimits, serve as run_server

    limits = ServeLimits(max_texts=max_texts, max_chars=max_chars, max_batch=max_batch, max_wait_ms=max_wait_ms)
    err.print(f"serving {model} on http://{host}:{port} (docs: http://{host}:{port}/docs); Ctrl-C stops")
    run_server(model, host=host, port=port, limits=limits)


@app.command()
def export(
    model: str = typer.Option(..., "--model", "-m", help="A transformer model folder, alias or Hub id."),
    output: Path = typer.Option(..., "--output", "-o", help="The ONNX model folder to write."),
    onnx: bool = typer.Option(False, "--onnx", help="Export to ONNX Runtime (the one format for now)."),
    quantize: Optional[str] = typer.Option(None, help="int8: dynamic quantisation (smaller, faster on CPU)."),
) -> None:
    """Export a transformer to an ONNX folder that `predict` and `serve` load like any model."""
    from .models.onnx import export_onnx

    if not onnx:
        raise ReviewstarsError("name the format to export to: --onnx")
    summary = export_onnx(model, output, quantize=quantize)
    out.print(f"wrote {summary['output']} ({summary['bytes'] / 1e6:.1f} MB{', int8' if quantize else ''})")


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


# --------------------------------------------------------------------------- compare


@app.command()
def compare(
    data: str = DataOption,
    output: Path = typer.Option(Path("runs/compare"), "--output", "-o", help="Folder for models, leaderboard.json and the report."),
    models: str = typer.Option("linear,scratch,minilm", help="Models to train, comma-separated (linear, scratch, minilm, Hub ids, folders)."),
    evaluate_only: Optional[str] = typer.Option(None, help="Already-trained folders or Hub ids to score too, comma-separated."),
    time_budget: Optional[str] = typer.Option(None, help="Wall-clock training time per transformer (10m, 1h)."),
    train_size: Optional[int] = typer.Option(None, help="Train every model on the same seeded sample of N reviews."),
    eval_size: Optional[int] = typer.Option(None, help="Score every model on the same seeded sample of N held-out reviews."),
    seed: int = SeedOption,
    max_length: int = typer.Option(256, help="Transformers: tokens kept per review."),
    eval_steps: int = typer.Option(50, help="Transformers: evaluate and checkpoint every N steps."),
    epochs: float = typer.Option(3.0, help="Transformers: passes over the data (ignored with --time-budget)."),
    layers: int = typer.Option(4, help="scratch: encoder blocks."),
    width: int = typer.Option(256, help="scratch: embedding width."),
    heads: int = typer.Option(4, help="scratch: attention heads."),
    dropout: float = typer.Option(0.1, help="scratch: dropout after embeddings, attention, feed-forward and pooling."),
    vocab_size: int = typer.Option(8000, help="scratch: WordPiece vocabulary size."),
) -> None:
    """The lesson in one command: train each model on the same data, score, and write a report."""
    from .compare import compare as compare_job
    from .jobs import ScratchSettings
    from .training import TrainSettings, parse_duration

    try:
        budget = parse_duration(time_budget)
    except ValueError as error:
        raise ReviewstarsError(f"--time-budget: {error}") from None
    split = lambda text: [part.strip() for part in (text or "").split(",") if part.strip()]  # noqa: E731
    leaderboard = compare_job(
        data, output, split(models), split(evaluate_only), time_budget=budget, train_size=train_size,
        eval_size=eval_size, seed=seed,
        transformer=TrainSettings(max_length=max_length, eval_steps=eval_steps, logging_steps=eval_steps, epochs=epochs),
        scratch=ScratchSettings(layers=layers, width=width, heads=heads, feed_forward=4 * width, dropout=dropout, vocab_size=vocab_size),
    )
    from .report import _leaderboard_rows

    header, rows = _leaderboard_rows(leaderboard)
    table = Table(title=f"leaderboard on {leaderboard['split']} ({leaderboard['n']:,} reviews)")
    for column in header:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    out.print(f"wrote {output / 'leaderboard.json'}, {output / 'report.md'} and {output / 'report.html'}")


# --------------------------------------------------------------------------- basics

basics_app = typer.Typer(help="Foundations: a first neural network, and counting parameters.", no_args_is_help=True)
app.add_typer(basics_app, name="basics")


@basics_app.command("circles")
def basics_circles(
    output: Path = typer.Option(Path("circles.png"), "--output", "-o", help="PNG with data, decision boundaries and loss curves (JSON beside it)."),
    points: int = typer.Option(1000, help="How many points (half inside, half outside)."),
    epochs: int = typer.Option(2000, help="Full-batch gradient steps per model."),
    restarts: int = typer.Option(3, help="Random starts per network; the lowest loss is kept."),
    seed: int = SeedOption,
) -> None:
    """Inside or outside a circle: the hand-made rule, a 4-ReLU network (SGD, then Adam), and a line."""
    from .artifacts import write_json
    from .basics import circles_lesson
    from .report import plot_circles

    def report(name: str, epoch: int, loss: float, accuracy: float) -> None:
        out.print(f"{name:>13}  epoch {epoch:5d}  loss {loss:.4f}  accuracy {accuracy:.3f}")

    lesson = circles_lesson(points, seed, epochs, restarts, report)
    summary = lesson.summary()
    table = Table(title="inside vs outside the circle")
    table.add_column("model")
    table.add_column("accuracy", justify="right")
    table.add_row("hand rule: sum of max(0, ±x±y-0.75) > 0", f"{lesson.rule_accuracy:.1%}")
    for fit in lesson.fits:
        restarts_note = f"  (restarts: {', '.join(f'{a:.0%}' for a in fit.restart_accuracies)})" if len(fit.restart_accuracies) > 1 else ""
        table.add_row(fit.name.replace("_", ", ") + restarts_note, f"{fit.accuracy:.1%}")
    out.print(table)
    plot_circles(lesson, output)
    write_json(output.with_suffix(".json"), summary)
    out.print(f"wrote {output} and {output.with_suffix('.json')}")


@basics_app.command("params")
def basics_params(
    sizes: Optional[List[int]] = typer.Argument(None, help="Layer sizes of a stack of Linear layers, e.g. 100 200 400 400 5."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Count a saved model instead, layer by layer."),
) -> None:
    """Trainable parameters, layer by layer: a Linear(m, n) has (m + 1) n."""
    from .basics import linear_stack_parameters

    if model is not None:
        from .models import load_predictor

        rows = load_predictor(model).layer_parameters()
    elif sizes:
        try:
            rows = [(f"layer {i}", layer, count) for i, (layer, count) in enumerate(linear_stack_parameters(sizes), start=1)]
        except ValueError as error:
            raise ReviewstarsError(str(error)) from None
    else:
        raise ReviewstarsError("give layer sizes (e.g. 100 200 400 400 5) or --model DIR")
    table = Table(title=f"trainable parameters of {model or ' -> '.join(map(str, sizes))}")
    table.add_column("name")
    table.add_column("layer")
    table.add_column("parameters", justify="right")
    for name, layer, count in rows:
        table.add_row(name, layer, f"{count:,}")
    table.add_row("[bold]total[/]", "", f"[bold]{sum(r[2] for r in rows):,}[/]")
    out.print(table)


# --------------------------------------------------------------------------- tokens

tokens_app = typer.Typer(help="How text becomes tokens: words vs WordPiece sub-words.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
TokenizerOption = typer.Option("bert-base-cased", "--tokenizer", "-t", help="Hub id, tokenizer folder, or reviewstars model folder.")


@tokens_app.command("show")
def tokens_show(text: str = typer.Argument(..., help="Text to tokenize."), tokenizer: str = TokenizerOption) -> None:
    """Word tokens beside sub-word tokens; ## marks a continuation piece, [..] a special token."""
    from .tokenization import load_tokenizer, subword_pieces, word_tokens

    pieces = subword_pieces(load_tokenizer(tokenizer), text)
    words = word_tokens(text)
    out.print(f"[bold]word tokens[/] ({len(words)}, regex (?u)\\b\\w\\w+\\b): " + " | ".join(words))
    shown = []
    for piece in pieces:
        style = "dim" if piece["special"] else "yellow" if piece["continuation"] else "cyan"
        shown.append(f"[{style}]{piece['token']}[/]")
    out.print(f"[bold]sub-word tokens[/] ({len(pieces)}, {tokenizer}): " + " | ".join(shown), highlight=False)
    table = Table()
    for column in ("#", "token", "id", "kind"):
        table.add_column(column)
    for i, piece in enumerate(pieces):
        kind = "special" if piece["special"] else "continues a word" if piece["continuation"] else "starts a word"
        table.add_row(str(i), piece["token"], str(piece["id"]), kind)
    out.print(table)


@tokens_app.command("explore")
def tokens_explore(
    data: str = DataOption,
    tokenizer: str = TokenizerOption,
    top: int = typer.Option(2000, help="How many of the most frequent words to look at."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the findings as JSON."),
) -> None:
    """Which frequent words stay whole, which are split, and which pieces they share."""
    from .artifacts import write_json
    from .data import load_data, pick_split
    from .tokenization import explore_words, load_tokenizer

    dataset = load_data(data)
    texts = dataset[pick_split(dataset, for_eval=False)]["text"]
    found = explore_words(load_tokenizer(tokenizer), texts, top)
    out.print(f"of the {found['words_considered']:,} most frequent words, {found['kept_whole']:,} stay whole and {found['split']:,} are split")
    out.print("[bold]kept whole:[/] " + ", ".join(found["whole_examples"]))
    table = Table(title="split into pieces")
    table.add_column("word")
    table.add_column("pieces")
    for row in found["split_examples"]:
        table.add_row(row["word"], " ".join(row["pieces"]))
    out.print(table)
    for key, title in (("shared_first_pieces", "pieces that begin several words"), ("shared_last_pieces", "pieces that end several words")):
        table = Table(title=title)
        table.add_column("piece")
        table.add_column("words", justify="right")
        table.add_column("examples")
        for group in found[key]:
            table.add_row(group["piece"], str(len(group["words"])), ", ".join(group["words"][:8]))
        out.print(table)
    if output is not None:
        write_json(output, found)


@tokens_app.command("growth")
def tokens_growth(
    data: str = DataOption,
    tokenizer: str = TokenizerOption,
    output: Path = typer.Option(Path("vocabulary_growth.png"), "--output", "-o", help="PNG plot (JSON beside it)."),
    seed: int = SeedOption,
) -> None:
    """Vocabulary size against number of reviews, for word tokens and for sub-word tokens."""
    from .artifacts import write_json
    from .data import load_data, pick_split
    from .progress import progress_bar
    from .report import plot_vocabulary_growth
    from .tokenization import load_tokenizer, vocabulary_growth

    dataset = load_data(data)
    split = dataset[pick_split(dataset, for_eval=False)].shuffle(seed=seed)
    texts = list(split["text"])
    with progress_bar("tokenizing", total=len(texts)) as advance:
        growth = vocabulary_growth(load_tokenizer(tokenizer), texts, progress=advance)
    table = Table(title="distinct tokens among the first n reviews")
    for column in ("reviews", "word tokens", "sub-word tokens"):
        table.add_column(column, justify="right")
    for n, words, pieces in zip(growth["reviews"], growth["word_vocabulary"], growth["subword_vocabulary"]):
        table.add_row(f"{n:,}", f"{words:,}", f"{pieces:,}")
    out.print(table)
    crossover = growth["subword_smaller_from_reviews"]
    out.print(f"sub-word vocabulary smaller than the word vocabulary from {crossover:,} reviews on" if crossover else "the sub-word vocabulary stays larger on this data")
    growth.update(tokenizer=tokenizer, data=str(data), seed=seed)
    plot_vocabulary_growth(growth, output, tokenizer)
    write_json(output.with_suffix(".json"), growth)
    out.print(f"wrote {output} and {output.with_suffix('.json')}")


# --------------------------------------------------------------------------- entry point


def main() -> None:
    try:
        app()
    except ReviewstarsError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
