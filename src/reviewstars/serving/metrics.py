"""`GET /metrics` in Prometheus' text format, written by hand: the format is a few lines
of `name{labels} value`, not worth a dependency.

Every update happens on the event loop's thread (the middleware and the batcher's
worker coroutine), so plain integers need no lock.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

#: Paths with their own label; anything else (scanners, typos) counts as "other",
#: so a client cannot grow the label set without bound.
KNOWN_PATHS = frozenset({"/", "/predict", "/health", "/model", "/metrics", "/docs", "/openapi.json", "/v2", "/v2/models/{name}/infer"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    """Counts per upper bound; rendered cumulative, as Prometheus expects."""

    def __init__(self, bounds: Iterable[float]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        cumulative, rows = 0, []
        for bound, count in zip((*map(_number, self.bounds), "+Inf"), self.counts):
            cumulative += count
            rows.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
        return [*rows, f"{name}_sum {_number(self.sum)}", f"{name}_count {self.count}"]


@dataclass
class ConnectionCounts:
    """What the connection guard (`connections.py`) has seen and done."""

    open: int = 0
    opened: int = 0
    timed_out: int = 0      # closed: no whole request within request_timeout_s
    shed: int = 0           # idle ones closed to make room at max_connections
    refused: int = 0        # new ones closed because every open one was busy


class ServerMetrics:
    """What the server has done since it started."""

    def __init__(self, connections: ConnectionCounts | None = None):
        self.connections = connections or ConnectionCounts()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.predict_seconds = Histogram(LATENCY_BUCKETS)
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.texts_predicted = 0

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        if path.startswith("/v2/"):  # one label per route of the protocol, whatever model name the path holds
            path = "/v2/models/{name}/infer" if path.endswith("/infer") else "/v2"
        self.requests[(path if path in KNOWN_PATHS else "other", status)] += 1
        if path == "/predict":
            self.predict_seconds.observe(seconds)

    def observe_batch(self, texts: int) -> None:
        self.batch_sizes.observe(texts)
        self.texts_predicted += texts

    def exposition(self, queue_texts: int) -> str:
        blocks = [
            _block("reviewstars_http_requests_total", "counter", "HTTP requests answered, by path and status code.",
                   [f'reviewstars_http_requests_total{{path="{path}",code="{code}"}} {n}' for (path, code), n in sorted(self.requests.items())]),
            _block("reviewstars_texts_predicted_total", "counter", "Texts the model has rated.", [f"reviewstars_texts_predicted_total {self.texts_predicted}"]),
            _block("reviewstars_batch_size", "histogram", "Texts per model call.", self.batch_sizes.lines("reviewstars_batch_size")),
            _block("reviewstars_predict_duration_seconds", "histogram", "POST /predict, from the first byte in to the last byte out.",
                   self.predict_seconds.lines("reviewstars_predict_duration_seconds")),
            _block("reviewstars_queue_texts", "gauge", "Texts waiting for the model now.", [f"reviewstars_queue_texts {queue_texts}"]),
            _block("reviewstars_open_connections", "gauge", "Connections open now.",
                   [f"reviewstars_open_connections {self.connections.open}"]),
            _block("reviewstars_connections_closed_total", "counter", "Connections the server closed, by why: no whole request "
                   "in time (timeout), idle at the cap to make room (shed), new while every one was busy (refused).",
                   [f'reviewstars_connections_closed_total{{reason="{reason}"}} {getattr(self.connections, attribute)}'
                    for reason, attribute in (("timeout", "timed_out"), ("shed", "shed"), ("refused", "refused"))]),
        ]
        return "\n".join(blocks) + "\n"


class RequestMetrics:
    """ASGI middleware: the status and end-to-end time of every HTTP request."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500  # an exception that escapes the app becomes a 500

        async def send_noting_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - started)


def _block(name: str, kind: str, help_text: str, samples: list[str]) -> str:
    return "\n".join([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples])


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
