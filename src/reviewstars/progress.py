"""What a long job shows a person: progress bars, notes and warnings on stderr.

Quiet when REVIEWSTARS_QUIET is set (bars and notes; warnings still show). Every
message goes out with rich markup escaped, so `pip install 'reviewstars[minilm]'` prints
as written instead of losing its `[minilm]`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
_libraries_silenced = False


def one_line(stream: Console) -> bool:
    """Whether a message goes out as one line: always into a file or a pipe (one message, one
    line, to grep), folded at word boundaries in a terminal (never mid-word at its edge)."""
    return not stream.is_terminal


def quiet() -> bool:
    return bool(os.environ.get("REVIEWSTARS_QUIET"))


def note(message: str) -> None:
    """A line about what is happening (the plan of a run, a model reused)."""
    if not quiet():
        console.print(escape(message), style="dim", highlight=False, soft_wrap=one_line(console))


def warn(message: str) -> None:
    """A line the user must see: the run will not give what they expect."""
    console.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=one_line(console))


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator:
    """Yield `advance(n)`; draws a bar with rate and time left on the console's stderr."""
    if quiet():
        yield lambda n=1: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(escape(description), total=total)
        try:
            yield lambda n=1: progress.advance(task, n)
        except BaseException:
            if not progress.tasks[0].completed:  # a bar at 0 says nothing the error after it does not: it goes
                progress.live.transient = True
            raise


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner for work with no countable steps (a solver converging)."""
    if quiet():
        yield
        return
    with console.status(escape(message)):
        yield


def library_bars() -> bool:
    """Whether a library may draw its own progress bars: not after `silence_libraries`.
    For the few no setting reaches (the tokenizers trainers, which draw even off a terminal)."""
    return not _libraries_silenced


def silence_libraries() -> None:
    """The terminal shows our output, not the libraries': their log lines, load reports,
    warnings and progress bars stay off unless `--verbose` asks for them. Set before the
    libraries are imported (they read these at import), so nothing heavy is imported here.
    TORCH_LOGS: torch resets its own loggers' levels when imported (the ONNX exporter's
    "torchvision is not installed" lines); "-all" sets them to errors only."""
    import logging
    import warnings

    global _libraries_silenced
    _libraries_silenced = True
    # Not TOKENIZERS_PARALLELISM=false: it would make tokenizing (and learning a WordPiece
    # vocabulary) single-threaded, 1.6x slower on two cores and far more on a GPU machine's sixteen.
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("DATASETS_VERBOSITY", "error"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("HF_HUB_VERBOSITY", "error"), ("HF_DATASETS_DISABLE_PROGRESS_BARS", "1"),
                        ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "3"),
                        ("TORCH_LOGS", "-all")):
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("transformers", "datasets", "huggingface_hub", "torch", "onnxruntime", "onnxscript", "accelerate", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
