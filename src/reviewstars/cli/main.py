"""The commands: train, evaluate (`training.py`); predict, merge, serve, export
(`inference.py`); compare, ensemble, data (`ladder.py`); the lessons basics and tokens
(`lessons.py`). Imported in that order, which is the order `--help` lists them in."""

from __future__ import annotations

import errno
import sys

from rich.markup import escape

from ..errors import ReviewstarsError
from ..progress import one_line
# Each registers its commands on `app`, in the order --help lists them.
from . import training  # noqa: F401,I001
from . import inference  # noqa: F401,I001
from . import ladder  # noqa: F401,I001
from . import lessons  # noqa: F401,I001
from .app import app, err

# --------------------------------------------------------------------------- entry point


#: What the file system can refuse whatever the command: said in one line (atomic writes
#: leave nothing half-written behind), not a traceback.
DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "over the disk quota",
               errno.EROFS: "a read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted"}


#: Options that take a comma-separated list: given twice, the parser kept the last alone, and
#: `compare --models linear --models scratch` trained scratch only, saying nothing.
LIST_OPTIONS = ("--models", "--evaluate-only", "--report-to")


def check_lists_given_once(argv: list[str]) -> None:
    arguments = argv[:argv.index("--")] if "--" in argv else argv
    flags = [argument.split("=", 1)[0] for argument in arguments]
    for flag in LIST_OPTIONS:
        if flags.count(flag) > 1:
            values = [arguments[i + 1] if "=" not in arguments[i] and i + 1 < len(arguments) else arguments[i].split("=", 1)[-1]
                      for i, given in enumerate(flags) if given == flag]
            raise ReviewstarsError(f"{flag} is given {flags.count(flag)} times: give it once, as one comma-separated list "
                                   f"({flag} {','.join(values)})")


def main() -> None:
    try:
        check_lists_given_once(sys.argv[1:])
        app()
    except ReviewstarsError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=one_line(err))
        sys.exit(error.exit_code)
    except SystemExit as exit:
        if exit.code == 130:  # Typer's silent answer to Ctrl-C in a job that says nothing more of it (export, merge)
            err.print("[bold red]error:[/] stopped (Ctrl-C): every write is atomic, so nothing half-written was left", highlight=False,
                      soft_wrap=one_line(err))
        raise
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        where = f"{error.filename}: " if error.filename else ""
        err.print(f"[bold red]error:[/] {escape(where)}cannot write or read there: {DISK_ERRORS[error.errno]}; nothing "
                  "half-written was left", highlight=False, soft_wrap=one_line(err))
        sys.exit(1)
