"""`reviewstars`: train, evaluate, explain and serve star-rating models from the shell.

Each command parses its options and calls one library function; errors a user can fix
are printed as one line (`error: ...`) with exit code 2, never as a traceback.
"""

from .main import app, main

__all__ = ["app", "main"]
