"""`reviewstars`: train, evaluate, explain and serve star-rating models from the shell.

Each command parses its options and calls one library function; errors a user can fix
are printed as one line (`error: ...`) with exit code 2, never as a traceback.
"""

import sys

from ..progress import silence_libraries

if "--verbose" not in sys.argv[1:2]:
    silence_libraries()  # before the libraries are imported: they read their settings then


# The commands and their libraries load here: a Ctrl-C in the second or two they take is one
# line too, not a traceback of the imports (this package is the console script's).
try:
    from .main import app, main  # noqa: E402
except KeyboardInterrupt:
    sys.stderr.write("error: stopped (Ctrl-C) while starting: nothing was written\n")
    sys.exit(130)

__all__ = ["app", "main"]
