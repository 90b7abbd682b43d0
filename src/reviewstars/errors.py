"""Errors a user can act on. The CLI prints them as one line, never a traceback."""

from __future__ import annotations

import signal
from pathlib import Path


class ReviewstarsError(Exception):
    """Base class: the message is complete and meant for the user."""

    exit_code = 2


class TrainingInterrupted(ReviewstarsError):
    """Ctrl-C or SIGTERM during training: a checkpoint was saved; the message says how to resume."""

    def __init__(self, message: str, signal_number: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = 128 + signal_number  # the shell's convention: 130 after SIGINT, 143 after SIGTERM


class Terminated(ReviewstarsError):
    """SIGTERM during a job that writes a file: it stopped and removed what it had half written."""

    exit_code = 143  # the shell's convention for "ended by SIGTERM"


class Interrupted(ReviewstarsError):
    """Ctrl-C during a job that writes: it stopped, left nothing half-written, and says what is kept."""

    exit_code = 130  # the shell's convention for "ended by SIGINT"


class DataError(ReviewstarsError):
    """Bad input data: names the file, the row (when there is one) and the fault."""

    def __init__(self, source: str | Path, fault: str, row: int | None = None, line: int | None = None):
        self.source, self.fault, self.row, self.line = str(source), fault, row, line
        where = [self.source]
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None and line != row else ""))
        elif line is not None:
            where.append(f"line {line}")
        super().__init__(": ".join(where + [fault]))


class ModelError(ReviewstarsError):
    """A model folder or name that cannot be used, with what to do about it."""
