"""POST /predict as a plain ASGI endpoint: the hot path of the server, with nothing between
the socket and the model that it does not need.

FastAPI still describes the route (its schema is in /openapi.json and /docs) and serves
every other one, but a request to /predict is answered here, in front of FastAPI's
middleware (`HotPath`): the body read within the limits, the texts queued for the
micro-batcher, the answer written as JSON bytes, the request counted for /metrics.
Measured with wrk on two cores, FastAPI's own request handling (its middleware, building
a Request, solving the endpoint's dependencies, validating the response against its
model) cost more per request than everything reviewstars does for it.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Sequence

import numpy as np

from .. import STARS
from ..models.base import has_no_words
from .batcher import WATCH, ClientGone, MicroBatcher, Overloaded
from .bodies import BodyReader, Refusal

log = logging.getLogger("reviewstars.serving")
JSON_HEADERS = [(b"content-type", b"application/json")]
#: The ASGI scope extension (a callable, where the server has it: `connections.py`) that makes
#: the answer's head and body go out in one write, as they are sent one after the other.
ONE_WRITE = "reviewstars.one_write"


class PredictEndpoint:
    """`POST /predict` as an ASGI application (see the module's docstring)."""

    def __init__(self, reader: BodyReader, batcher: MicroBatcher):
        self.reader, self.batcher = reader, batcher

    async def __call__(self, scope, receive, send) -> int:
        """Answer one request; returns the status sent (0 when the client went away first)."""
        try:
            headers = dict(scope["headers"])
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json" and not kind.endswith(b"+json"):
                # Not only a form of courtesy: text/plain is what any web page may post to a loopback
                # server without asking (a CORS "simple request"); JSON needs the browser's permission.
                raise Refusal(415, f"send the body as JSON with Content-Type: application/json (got {kind.decode('latin-1') or 'none'!r})")
            declared = headers.get(b"content-length", b"").decode("latin-1")
            texts = await self.reader.texts_of_body(await self.reader.read_asgi(declared, receive))
            body = predictions_json(texts, await self.rows_of(texts, scope))
            status, headers = 200, JSON_HEADERS
        except Refusal as refusal:
            if refusal.status == 499:  # the client is gone: nobody to answer
                return 0
            body = json.dumps({"detail": refusal.detail}).encode()
            status, headers = refusal.status, JSON_HEADERS + [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
        except Exception as error:  # never a traceback to the client, nor a dropped connection
            log.exception("POST /predict failed")
            body = json.dumps({"detail": f"internal error: {type(error).__name__}"}).encode()
            status, headers = 500, JSON_HEADERS
        one_write = scope.get("extensions", {}).get(ONE_WRITE)
        if one_write is not None:
            one_write()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return status


    async def rows_of(self, texts: list[str], scope=None) -> np.ndarray:
        """The model's rows for a request's `texts` (its ASGI `scope`: how the server tells it that its client went away)."""
        try:
            return await self.batcher.predict(texts, (scope or {}).get("extensions", {}).get(WATCH))
        except ClientGone:
            raise Refusal(499, "the client went away before its answer") from None
        except Overloaded as busy:
            raise Refusal(503, str(busy), {"Retry-After": "1"}) from None
        except Exception as error:  # these texts alone: the batcher re-ran them apart from their batch
            log.exception("the model failed on a request of %d texts", len(texts))
            raise Refusal(500, f"the model failed on this request: {type(error).__name__}: {error}") from None


class HotPath:
    """ASGI: POST /predict to `endpoint` (counted in `metrics`), everything else to `app`;
    with an `api_key`, every route but the open ones answers 401 without it."""

    #: Read without the key (GET or HEAD only): the page and the docs say how to send it; health is for load balancers.
    OPEN = frozenset({"/health", "/", "/docs", "/openapi.json", "/v2/health/live", "/v2/health/ready"})

    def __init__(self, app, endpoint: PredictEndpoint, metrics, api_key: str | None = None):
        self.app, self.endpoint, self.metrics = app, endpoint, metrics
        self.expected = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.expected is not None and not (scope["method"] in ("GET", "HEAD") and scope["path"] in self.OPEN) \
                and not self._authorized(scope):
            await send({"type": "http.response.start", "status": 401, "headers": [
                *JSON_HEADERS, (b"www-authenticate", b'Bearer realm="reviewstars"')]})
            await send({"type": "http.response.body", "body": b'{"detail": "this server needs its key: Authorization: Bearer KEY"}'})
            self.metrics.observe_request(scope["path"], 401, 0.0)
            return
        if scope["path"] != "/predict" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = await self.endpoint(scope, receive, send)
        self.metrics.observe_request("/predict", status or 499, time.perf_counter() - started)

    def _authorized(self, scope) -> bool:
        """`Authorization: Bearer KEY`, the scheme in any case (RFC 7235), the key exactly."""
        given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        scheme, _, key = given.strip().partition(b" ")
        return hmac.compare_digest(scheme.lower(), b"bearer") & hmac.compare_digest(key.strip(), self.expected)


_STAR_VALUES = np.asarray(STARS, dtype=np.float64)
_ROW = ('{"stars":%d,"probabilities":{' + ",".join(f'"{star}":%r' for star in STARS) + '},"expected_stars":%r,"empty":%s}')


def predictions_json(texts: Sequence[str], proba: np.ndarray) -> bytes:
    """`{"predictions": [...]}` with the fields of `models.base.prediction_rows`, as bytes: the
    same numbers, rounded the same way, written with one format a text (no dict, no json.dumps)."""
    proba = np.asarray(proba, dtype=np.float64)
    if not np.isfinite(proba).all():  # a broken model: JSON has no NaN, and a 200 would vouch for it
        raise Refusal(500, "the model gave probabilities that are not numbers (NaN or infinite): its weights are broken")
    expected = (proba @ _STAR_VALUES).tolist()
    stars = (proba.argmax(axis=1) + 1).tolist()
    rows = [_ROW % (star, *[round(p, 6) for p in row], round(mean, 4), "true" if has_no_words(text) else "false")
            for text, row, star, mean in zip(texts, proba.tolist(), stars, expected)]
    return ('{"predictions":[' + ",".join(rows) + "]}").encode()
