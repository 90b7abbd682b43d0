"""`reviewstars`: train, evaluate, explain and serve star-rating models from the shell.

Each command parses its options and calls one library function; errors a user can fix
are printed as one line (`error: ...`) with exit code 2, never as a traceback.
"""

import sys

from ..progress import silence_libraries

if "--verbose" not in sys.argv[1:2]:
    silence_libraries()  # before the libraries are imported: they read their settings then

from .main import app, main  # noqa: E402

__all__ = ["app", "main"]
