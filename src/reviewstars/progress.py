"""Progress bars for long work (rich), quiet when REVIEWSTARS_QUIET is set."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


def quiet() -> bool:
    return bool(os.environ.get("REVIEWSTARS_QUIET"))


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator:
    """Yield `advance(n)`; draws a bar with rate and time left on the console's stderr."""
    if quiet():
        yield lambda n=1: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner for work with no countable steps (a solver converging)."""
    if quiet():
        yield
        return
    with console.status(message):
        yield
