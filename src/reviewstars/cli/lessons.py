"""The foundations: `basics` (a first neural network, counting parameters) and `tokens`
(words vs WordPiece sub-words)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..data import DEFAULT_SEED, DataSettings
from ..errors import ReviewstarsError
from .app import DataOption, app, out

SeedOption = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the random data or sample.")


def check_seed(seed: int) -> None:
    """By `DataSettings.seed`'s own bounds, as `train` checks it: numpy took -1 or 2**64 with a traceback."""
    from dataclasses import fields

    from ..settings.fields import check_value

    check_value(next(item for item in fields(DataSettings) if item.name == "seed"), seed, "--seed")


def check_plot_output(output: Path, numbers_ours, inputs: tuple = ()) -> None:
    """A lesson's `--output`: a PNG, with its numbers as JSON beside it; neither written over a
    file of the user's, nor over an input (checked before any work)."""
    from ..artifacts import check_output_file, plot_beside

    if output.suffix.lower() != ".png":
        raise ReviewstarsError(f"--output {output}: the plot is a PNG: give a path ending in .png (its JSON goes beside it)")
    numbers = output.with_suffix(".json")
    check_output_file(output, inputs=inputs, ours=plot_beside(numbers, numbers_ours), what="a plot of ours")
    check_output_file(numbers, "--output's JSON", inputs=inputs, ours=numbers_ours, what="numbers of ours")


# --------------------------------------------------------------------------- basics

basics_app = typer.Typer(help="Foundations: a first neural network, and counting parameters.", no_args_is_help=True)
app.add_typer(basics_app, name="basics")


@basics_app.command("circles")
def basics_circles(
    output: Path = typer.Option(..., "--output", "-o", help="PNG to write, e.g. circles.png: data, decision boundaries and loss curves (JSON beside it)."),
    points: int = typer.Option(1000, help="How many points (half inside, half outside)."),
    epochs: int = typer.Option(2000, help="Full-batch gradient steps per model."),
    restarts: int = typer.Option(3, help="Random starts per network; the lowest loss is kept."),
    seed: int = SeedOption,
) -> None:
    """Inside or outside a circle: the hand-made rule, a 4-ReLU network (SGD, then Adam), and a line."""
    from ..artifacts import json_with_keys, write_json
    from ..lessons.basics import circles_lesson
    from ..presentation.plots import plot_circles

    for flag, value, low, high in (("--points", points, 2, 10_000_000), ("--epochs", epochs, 1, 10_000_000),
                                   ("--restarts", restarts, 1, 1000)):
        if not low <= value <= high:  # before any training, not a traceback after it
            raise ReviewstarsError(f"{flag} must be between {low:,} and {high:,}, got {value:,}")
    check_seed(seed)
    check_plot_output(output, json_with_keys("points", "hand_rule_accuracy"))
    starts: dict[str, int] = {}

    def report(name: str, epoch: int, loss: float, accuracy: float) -> None:
        if epoch == epochs:  # one labelled line per random start, not a line every 250 epochs
            starts[name] = starts.get(name, 0) + 1
            out.print(f"{name.replace('_', ', '):>14}  start {starts[name]}: {epochs} epochs, loss {loss:.4f}, accuracy {accuracy:.3f}")

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
    from ..lessons.basics import linear_stack_parameters

    if model is not None and sizes:
        raise ReviewstarsError("give layer sizes or --model, not both: the sizes would be ignored")
    if model is not None:
        from ..models import load_predictor

        rows = load_predictor(model).layer_parameters()
    elif sizes:
        try:
            rows = [(f"layer {i}", layer, count) for i, (layer, count) in enumerate(linear_stack_parameters(sizes), start=1)]
        except ValueError as error:
            raise ReviewstarsError(str(error)) from None
    else:
        raise ReviewstarsError("give layer sizes (e.g. 100 200 400 400 5) or --model DIR")
    from ..presentation.tables import layer_parameters

    out.print(layer_parameters(rows, f"trainable parameters of {model or ' -> '.join(map(str, sizes))}"))


# --------------------------------------------------------------------------- tokens

tokens_app = typer.Typer(help="How text becomes tokens: words vs WordPiece sub-words.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
TokenizerOption = typer.Option("bert-base-cased", "--tokenizer", "-t", help="Hub id, tokenizer folder, or reviewstars model folder.")


#: Tokens `tokens show` prints of each kind unless asked for --all.
TOKENS_SHOWN = 200


@tokens_app.command("show")
def tokens_show(
    text: str = typer.Argument(..., help="Text to tokenize."),
    tokenizer: str = TokenizerOption,
    every: bool = typer.Option(False, "--all", help=f"Show every token (by default the first {TOKENS_SHOWN} of each kind)."),
) -> None:
    """Word tokens beside sub-word tokens; ## marks a continuation piece, [..] a special token."""
    from ..text import WORD_PATTERN, shown, without_lone_surrogates, word_tokens
    from ..tokenization import load_tokenizer
    from ..lessons.vocabulary import subword_pieces

    text = without_lone_surrogates(text)  # a shell's undecodable byte, as predict reads it
    pieces = subword_pieces(load_tokenizer(tokenizer), text)
    words = word_tokens(text)
    limit = None if every else TOKENS_SHOWN

    def more(count: int) -> str:  # a long review's 20,000 tokens were a 22,000-row table
        return f" [dim]... and {count - limit:,} more (--all shows them)[/]" if limit is not None and count > limit else ""

    out.print(f"[bold]word tokens[/] ({len(words)}, regex {escape(WORD_PATTERN)}): "
              + " | ".join(escape(shown(word)) for word in words[:limit]) + more(len(words)), highlight=False)
    coloured = []
    for piece in pieces[:limit]:
        style = "dim" if piece["special"] else "yellow" if piece["continuation"] else "cyan"
        coloured.append(f"[{style}]{escape(shown(piece['token']))}[/]")
    out.print(f"[bold]sub-word tokens[/] ({len(pieces)}, {escape(tokenizer)}): " + " | ".join(coloured) + more(len(pieces)),
              highlight=False)
    table = Table()
    for column in ("#", "token", "id", "kind"):
        table.add_column(column)
    for i, piece in enumerate(pieces[:limit]):
        kind = "special" if piece["special"] else "continues a word" if piece["continuation"] else "starts a word"
        table.add_row(str(i), escape(shown(piece["token"])), str(piece["id"]), kind)
    out.print(table)
    if more(len(pieces)):
        out.print(more(len(pieces)).strip(), highlight=False)


@tokens_app.command("explore")
def tokens_explore(
    data: str = DataOption,
    tokenizer: str = TokenizerOption,
    top: int = typer.Option(2000, help="How many of the most frequent words to look at."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the findings as JSON."),
) -> None:
    """Which frequent words stay whole, which are split, and which pieces they share."""
    from ..artifacts import check_output_file, json_with_keys, write_json
    from ..data import lesson_texts
    from ..tokenization import load_tokenizer
    from ..lessons.vocabulary import explore_words

    if top < 1:
        raise ReviewstarsError(f"--top must be at least 1, got {top}")
    if output is not None:
        check_output_file(output, inputs=(data, tokenizer), ours=json_with_keys("words_considered", "kept_whole"),
                          what="findings of ours", suffix=".json")
    found = explore_words(load_tokenizer(tokenizer), lesson_texts(data), top)
    out.print(f"of the {found['words_considered']:,} most frequent words, {found['kept_whole']:,} stay whole and {found['split']:,} are split")
    out.print("[bold]kept whole:[/] " + (escape(", ".join(found["whole_examples"])) or "none"), highlight=False)
    if not found["split_examples"]:  # an empty table says less than a line
        out.print("[bold]split into pieces:[/] none", highlight=False)
    else:
        table = Table(title="split into pieces")
        table.add_column("word")
        table.add_column("pieces")
        for row in found["split_examples"]:
            table.add_row(escape(row["word"]), escape(" ".join(row["pieces"])))
        out.print(table)
    for key, title in (("shared_first_pieces", "pieces that begin several words"), ("shared_last_pieces", "pieces that end several words")):
        if not found[key]:
            out.print(f"[bold]{title}:[/] none", highlight=False)
            continue
        table = Table(title=title)
        table.add_column("piece")
        table.add_column("words", justify="right")
        table.add_column("examples")
        for group in found[key]:
            table.add_row(escape(group["piece"]), str(len(group["words"])), escape(", ".join(group["words"][:8])))
        out.print(table)
    if output is not None:
        write_json(output, found)
        out.print(f"wrote {escape(str(output))}", highlight=False)


@tokens_app.command("growth")
def tokens_growth(
    data: str = DataOption,
    tokenizer: str = TokenizerOption,
    output: Path = typer.Option(..., "--output", "-o", help="PNG plot to write, e.g. growth.png (JSON beside it)."),
    seed: int = SeedOption,
) -> None:
    """Vocabulary size against number of reviews, for word tokens and for sub-word tokens."""
    from ..artifacts import json_with_keys, write_json
    from ..data import lesson_texts
    from ..progress import progress_bar
    from ..presentation.plots import plot_vocabulary_growth
    from ..tokenization import load_tokenizer
    from ..lessons.vocabulary import vocabulary_growth

    check_seed(seed)
    check_plot_output(output, json_with_keys("reviews", "word_vocabulary", "subword_vocabulary"), inputs=(data, tokenizer))
    texts = lesson_texts(data, seed)
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
