"""`reviewstars serve`: any model folder behind an HTTP API, with requests micro-batched.

`app` builds the API, `endpoint` answers POST /predict, `batcher` gathers concurrent
requests into model calls behind a bounded queue, `bodies` reads request bodies in
bounded time and memory, `connections` keeps idle or slow connections from holding the
server, `limits` declares what a request may take, `metrics` counts what happened for
`GET /metrics`, and `static` holds the two pages (`/` to try a review, `/docs` for the
API), which need nothing from outside the server.
"""

from .limits import ServeLimits

__all__ = ["ServeLimits", "create_app", "serve"]


def __getattr__(name: str):
    """The app (FastAPI, uvicorn) is imported when it is used: the command line starts without it."""
    if name in ("create_app", "serve"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
