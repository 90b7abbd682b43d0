"""`reviewstars serve`: any model folder behind an HTTP API, with requests micro-batched.

`app` builds the API, `batcher` gathers concurrent requests into model calls behind a
bounded queue, `bodies` reads request bodies in bounded time and memory, `metrics`
counts what happened for `GET /metrics`, and `static` holds the two pages (`/` to try
a review, `/docs` for the API), which need nothing from outside the server.
"""

from .app import ServeLimits, create_app, serve

__all__ = ["ServeLimits", "create_app", "serve"]
