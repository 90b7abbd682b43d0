"""`GET /metrics`: what the server has done, in Prometheus' exposition format (or
OpenMetrics, as the scraper asks), written by `prometheus_client`.

The hot path stays ours: every update happens on the event loop's thread (the middleware
and the batcher's worker coroutine), so plain integers need no lock. A scrape turns them
into `prometheus_client` metric families (`StarMetricsCollector`); the library writes the
text, with the process' own CPU, memory and file descriptors beside them.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

#: Paths with their own label; anything else (scanners, typos) counts as "other",
#: so a client cannot grow the label set without bound.
KNOWN_PATHS = frozenset({"/", "/predict", "/explain", "/health", "/model", "/metrics", "/docs", "/openapi.json", "/v2", "/v2/health/live",
                         "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/infer"})
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

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """As `prometheus_client` exposes a histogram: cumulative counts up to each bound, then +Inf."""
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, map(float, self.bounds)), "+Inf"), self.counts):
            cumulative += count
            buckets.append((bound, cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


@dataclass
class ConnectionCounts:
    """What the connection guard (`connections.py`) has seen and done."""

    open: int = 0
    opened: int = 0
    timed_out: int = 0      # closed: no whole request within request_timeout_s
    shed: int = 0           # waiting on their client (idle or still sending), closed to make room at max_connections
    refused: int = 0        # new ones closed because every open one was busy
    stopping: bool = False  # the server has begun to stop (said once)


class ServerMetrics:
    """What the server has done since it started."""

    def __init__(self, connections: ConnectionCounts | None = None):
        self.connections = connections or ConnectionCounts()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.predict_seconds = Histogram(LATENCY_BUCKETS)
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.texts_predicted = 0

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        if path.startswith("/v2/models/"):  # one label per route of the protocol, whatever model name (and version) the path holds
            tail = path[len("/v2/models/"):].partition("/")[2]
            if tail.startswith("versions/"):
                tail = tail[len("versions/"):].partition("/")[2]
            path = "/v2/models/{name}" + (f"/{tail}" if tail else "")
        self.requests[(path if path in KNOWN_PATHS else "other", status)] += 1
        if path == "/predict":
            self.predict_seconds.observe(seconds)

    def observe_batch(self, texts: int) -> None:
        self.batch_sizes.observe(texts)
        self.texts_predicted += texts

    def families(self, queue_texts: int) -> Iterator[Metric]:
        requests = CounterMetricFamily("reviewstars_http_requests", "HTTP requests answered, by path and status code.",
                                       labels=["path", "code"])
        for (path, code), n in sorted(self.requests.items()):
            requests.add_metric([path, str(code)], n)
        yield requests
        yield CounterMetricFamily("reviewstars_texts_predicted", "Texts the model has rated.", value=self.texts_predicted)
        yield self.batch_sizes.family("reviewstars_batch_size", "Texts per model call.")
        yield self.predict_seconds.family("reviewstars_predict_duration_seconds",
                                          "POST /predict, from the first byte in to the last byte out.")
        yield GaugeMetricFamily("reviewstars_queue_texts", "Texts waiting for the model now.", value=queue_texts)
        yield GaugeMetricFamily("reviewstars_open_connections", "Connections open now.", value=self.connections.open)
        closed = CounterMetricFamily("reviewstars_connections_closed", "Connections the server closed, by why: no whole "
                                     "request in time (timeout), waiting on its client at the cap to make room (shed), new while every one "
                                     "was busy (refused).", labels=["reason"])
        for reason, attribute in (("timeout", "timed_out"), ("shed", "shed"), ("refused", "refused")):
            closed.add_metric([reason], getattr(self.connections, attribute))
        yield closed


class StarMetricsCollector:
    """A `prometheus_client` collector over a server's own counts, read at each scrape."""

    def __init__(self, metrics: ServerMetrics, queue_texts):
        self.metrics, self.queue_texts = metrics, queue_texts

    def collect(self) -> Iterator[Metric]:
        return self.metrics.families(self.queue_texts())


def metrics_registry(metrics: ServerMetrics, queue_texts) -> CollectorRegistry:
    """One registry per server (not the library's global one: a process may run several apps,
    the tests do): our families and the process' CPU, memory and open files."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StarMetricsCollector(metrics, queue_texts))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) in the format the scraper's Accept header asks for."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


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
