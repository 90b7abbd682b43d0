"""The HTTP API around one predictor, and `serve`, which runs it with uvicorn."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import ReviewstarsError
from ..models.base import StarPredictor, has_no_words
from ..models.explanation import METHOD, explanation_from, occlusions
from .batcher import MicroBatcher
from .bodies import BodyReader, Refusal, stop_isolated_parser
from . import protocols
from .endpoint import HotPath, PredictEndpoint
from .limits import ServeLimits

from .metrics import ConnectionCounts, RequestMetrics, ServerMetrics, exposition, metrics_registry


#: The pages carry their scripts and styles inline and may talk to this server only:
#: the browser itself refuses anything fetched from elsewhere.
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
               "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class TextsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Texts")
    texts: list[str] = Field(min_length=1, description="Reviews to rate, one star rating each.")


class InputsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Inputs (Hugging Face inference API form)")
    inputs: str | list[str] = Field(description="One review, or a list of them.")


class Prediction(BaseModel):
    stars: int = Field(description="The most likely rating, 1..5.")
    probabilities: dict[str, float] = Field(description='P(k stars) for k = "1".."5".')
    expected_stars: float = Field(description="Sum of k * P(k stars): a rating on a continuous scale.")
    empty: bool = Field(default=False, description="The text was empty or blank: the model saw no words.")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class ExplainBody(BaseModel):
    model_config = ConfigDict(extra="forbid", title="A review to explain")
    text: str = Field(description="The review.")
    max_words: int | None = Field(default=None, ge=1, description="Words rated, from the start (default and most: the "
                                  "server's max_texts - 1: one explanation costs the model what one full /predict request does).")


class WordEffectBody(BaseModel):
    word: str
    start: int = Field(description="Offset of the word's first character in the text.")
    end: int = Field(description="Offset just past its last character: text[start:end] is the word.")
    stars_effect: float = Field(description="Expected stars with the word minus without it: > 0, it raised the rating.")
    probability_effect: float = Field(description="The predicted star's probability with the word minus without it.")


class ExplanationBody(Prediction):
    text: str
    words: list[WordEffectBody] = Field(description="Each word (or run of marks) rated, in the text's order.")
    words_not_rated: int = Field(description="Words after those rated (max_words).")
    method: str


class ErrorBody(BaseModel):
    detail: str = Field(description="One line saying what was wrong.")


def create_app(predictor: StarPredictor, name: str = "model", info: dict[str, Any] | None = None, limits: ServeLimits | None = None,
               api_key: str | None = None) -> FastAPI:
    """The HTTP API around one predictor (any kind). With `api_key`, every route but /health,
    the page and the docs needs `Authorization: Bearer API_KEY`."""
    limits = limits or ServeLimits()
    connections = ConnectionCounts()
    metrics = ServerMetrics(connections)
    batcher = MicroBatcher(predictor.predict_proba, metrics, limits.max_batch, limits.max_wait_ms, limits.max_queue, limits.max_queue_wait_s,
                           inline=not getattr(predictor, "releases_gil", True))
    reader = BodyReader(limits.max_body_bytes, limits.max_texts, limits.max_chars)
    started = time.time()

    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()
        stop_isolated_parser()

    endpoint = PredictEndpoint(reader, batcher)
    app = ServingApp(
        endpoint, metrics, api_key,
        title="reviewstars",
        description="Predict the star rating (1..5) of reviews. POST texts to /predict, a review to /explain (which words "
                    "moved its rating); a page to try it at /.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN; /docs below needs nothing from outside
        redoc_url=None,
    )
    app.state.connections = connections  # `serve` guards its connections with these counts (`connections.py`)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_exception_handler(Refusal, _refusal_response)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [TextsBody.model_json_schema(), InputsBody.model_json_schema()]}}}}},
        responses={
            413: {"model": ErrorBody, "description": f"Over {limits.max_texts} texts, {limits.max_chars:,} characters in a text, or {limits.max_body_bytes:,} bytes"},
            422: {"model": ErrorBody, "description": 'Not JSON, or not {"texts": [strings]} / {"inputs": string or [strings]}'},
            503: {"model": ErrorBody, "description": "Busy: the queue is full or the wait too long; retry after `Retry-After` seconds"},
        },
    )
    async def predict(request: Request) -> dict[str, Any]:
        """Stars, the five probabilities and the expected rating for each text, in order.

        The body is `{"texts": [...]}`, or the Hugging Face inference API's `{"inputs": "..."}`
        / `{"inputs": [...]}`: exactly one of the two.
        """
        raise AssertionError("described here, answered by PredictEndpoint")  # see below

    # FastAPI describes the route (schema, /docs); `HotPath` answers it as plain ASGI (`endpoint.py`), as would the route.
    next(route for route in app.router.routes if getattr(route, "path", None) == "/predict").app = endpoint

    async def model_rows(request: Request, parse_body, one_text: bool = False) -> tuple[Any, np.ndarray]:
        """A request of another protocol through the same limits, queue and batches as /predict:
        `parse_body` gives the texts (first) from the JSON payload (of `one_text`: `protocols.parse`)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            raise Refusal(415, f"send the body as JSON with Content-Type: application/json (got {kind or 'none'!r})")
        parsed = parse_body(await protocols.parse(reader, await reader.read(request), one_text))
        proba = await endpoint.rows_of(parsed[0], request.scope)
        if not np.isfinite(proba).all():
            raise Refusal(500, "the model gave probabilities that are not numbers (NaN or infinite): its weights are broken")
        return parsed, proba

    words_at_most = max(limits.max_texts - 1, 0)

    @app.post(
        "/explain",
        response_model=ExplanationBody,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": ExplainBody.model_json_schema()}}}},
        responses={413: {"model": ErrorBody, "description": f"Over {limits.max_chars:,} characters, or {limits.max_body_bytes:,} bytes"},
                   422: {"model": ErrorBody, "description": 'Not JSON, or not {"text": string, "max_words": n}'},
                   503: {"model": ErrorBody, "description": "Busy: retry after `Retry-After` seconds"}},
    )
    async def explain(request: Request) -> JSONResponse:
        """Which words raised or lowered one review's rating: the review is rated again with each
        word left out in turn, and a word's effect is the expected stars with it minus without it.

        One request rates up to `max_texts` texts (the review and one per word), through the same
        queue and batches as /predict: it costs the model what a full /predict request does.
        """
        occluded = None

        def parse_body(payload):
            nonlocal occluded
            text, max_words = protocols.explain_request(reader, payload, words_at_most)
            occluded = occlusions(text, max_words)
            return (occluded.texts,)

        _, proba = await model_rows(request, parse_body, one_text=True)
        return JSONResponse({**explanation_from(occluded, proba).to_json(), "empty": has_no_words(occluded.text), "method": METHOD})

    @app.post("/", summary="The Hugging Face inference shape", tags=["other protocols"])
    async def hugging_face(request: Request) -> JSONResponse:
        """`{"inputs": "a review" or [reviews], "parameters": {"top_k": k}}`, answered as Hugging Face
        Inference Endpoints answer text classification: per review, `[{"label": "4 stars", "score": p}, ...]`,
        most likely first. `huggingface_hub.InferenceClient(URL).text_classification(...)` reads it."""
        (texts, single, top_k), proba = await model_rows(request, lambda payload: protocols.hf_request(reader, payload))
        return JSONResponse(protocols.hf_answer(proba, top_k))

    @app.get("/v2", tags=["other protocols"])
    async def v2_server() -> dict[str, Any]:
        """Open Inference Protocol v2: the server's metadata."""
        return {"name": "reviewstars", "version": __version__, "extensions": []}

    @app.get("/v2/health/live", tags=["other protocols"])
    @app.get("/v2/health/ready", tags=["other protocols"])
    async def v2_ready() -> dict[str, bool]:
        return {"live": True, "ready": True}

    def v2_unknown(model_name: str, version: str | None) -> JSONResponse | None:
        """The protocol's 404 for a model or a version this server does not have (each route
        answers with and without `/versions/{version}`)."""
        if model_name != name:
            return JSONResponse({"error": f"no model {model_name!r} here; this server serves {name!r}"}, status_code=404)
        if version is not None and version != protocols.V2_VERSION:
            return JSONResponse({"error": f"no version {version!r} of {name!r}; it has version {protocols.V2_VERSION}"},
                                status_code=404)
        return None

    @app.get("/v2/models/{model_name}", tags=["other protocols"])
    @app.get("/v2/models/{model_name}/versions/{version}", tags=["other protocols"])
    async def v2_model(model_name: str, version: str | None = None) -> JSONResponse:
        """The model's metadata: a BYTES input of reviews, FP32 probabilities and INT32 stars out."""
        return v2_unknown(model_name, version) or JSONResponse(protocols.v2_metadata(name))

    @app.get("/v2/models/{model_name}/ready", tags=["other protocols"])
    @app.get("/v2/models/{model_name}/versions/{version}/ready", tags=["other protocols"])
    async def v2_model_ready(model_name: str, version: str | None = None) -> JSONResponse:
        return v2_unknown(model_name, version) or JSONResponse({"name": name, "ready": True})

    @app.post("/v2/models/{model_name}/infer", tags=["other protocols"])
    @app.post("/v2/models/{model_name}/versions/{version}/infer", tags=["other protocols"])
    async def v2_infer(model_name: str, request: Request, version: str | None = None) -> JSONResponse:
        """Open Inference Protocol v2 (KServe, Triton): one BYTES input tensor of reviews; the outputs
        `probabilities` (FP32, n x 5, P(1..5 stars)) and `stars` (INT32), or those the request's
        `outputs` names."""
        unknown = v2_unknown(model_name, version)
        if unknown is not None:
            return unknown
        try:
            (texts, request_id, outputs), proba = await model_rows(request, lambda payload: protocols.v2_request(reader, payload))
        except Refusal as refusal:  # the protocol's own error shape
            return JSONResponse({"error": refusal.detail}, status_code=refusal.status, headers=refusal.headers)
        return JSONResponse(protocols.v2_answer(name, proba, request_id, outputs))

    @app.api_route("/health", methods=["GET", "HEAD"])  # (load balancers probe with HEAD too)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "uptime_seconds": round(time.time() - started, 1)}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        """What is being served: name, kind, labels, parameters, metrics from training."""
        return without_paths({
            "name": name,
            **predictor.describe(),
            "metrics": (info or {}).get("metrics"),
            "limits": asdict(limits),
            "served": {"batches": metrics.batch_sizes.count, "texts": metrics.texts_predicted},
        })

    registry = metrics_registry(metrics, lambda: batcher.queued_texts)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus(request: Request) -> Response:
        """Counters and histograms in Prometheus' text format (OpenMetrics if the scraper asks)."""
        body, content_type = exposition(registry, request.headers.get("accept"))
        return Response(body, media_type=content_type)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)  # (HEAD: link checkers, curl -I)
    async def page() -> HTMLResponse:
        return _page("index.html")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def docs() -> HTMLResponse:
        return _page("docs.html")

    return app


class ServingApp(FastAPI):
    """FastAPI, with POST /predict answered in front of its middleware (`endpoint.HotPath`)."""

    def __init__(self, endpoint: PredictEndpoint, metrics: ServerMetrics, api_key: str | None = None, **kwargs):
        self.hot_endpoint, self.hot_metrics, self.api_key = endpoint, metrics, api_key
        self._traced: bool | None = None  # FastAPI's telemetry on (`_telemetry_on`); FastAPI has a `_telemetry` of its own
        super().__init__(**kwargs)

    def build_middleware_stack(self):
        return HotPath(super().build_middleware_stack(), self.hot_endpoint, self.hot_metrics, self.api_key)

    async def __call__(self, scope, receive, send) -> None:
        # POST /predict goes straight to `HotPath`, as Starlette's own call would, unless FastAPI's
        # telemetry is on (an OpenTelemetry provider set up: it traces and meters every request).
        # Off, FastAPI's call only asks whether it is on, every request: ~4% of the server's time under load.
        if self.middleware_stack is not None and scope["type"] == "http" and scope["path"] == "/predict" \
                and scope["method"] == "POST" and not self.root_path and not self._telemetry_on():
            scope["app"] = self
            return await self.middleware_stack(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def _telemetry_on(self) -> bool:
        """Whether FastAPI traces or meters requests (asked once: providers are set up before a server starts)."""
        if self._traced is None:
            telemetry = getattr(self, "_native_telemetry", None)  # (FastAPI before its native telemetry: none)
            self._traced = telemetry is not None and bool(telemetry.enabled())
        return self._traced


def without_paths(value: Any) -> Any:
    """`value` with every absolute path cut to its last part: a client need not learn the server's folders."""
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_paths(item) for item in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")):
        return Path(value).name
    return value


async def _refusal_response(request: Request, refusal: Refusal) -> JSONResponse:
    return JSONResponse({"detail": refusal.detail}, status_code=refusal.status, headers=refusal.headers)


def _page(file_name: str) -> HTMLResponse:
    return HTMLResponse(_static_text(file_name), headers={"Content-Security-Policy": PAGE_POLICY})


@lru_cache(maxsize=None)
def _static_text(file_name: str) -> str:
    return (files(__package__) / "static" / file_name).read_text(encoding="utf-8")


def uvicorn_options() -> dict[str, str]:
    """The event loop and HTTP parser in C where installed (uvloop, httptools: several times
    the pure-Python h11 and asyncio's own loop); the pure-Python ones elsewhere (Windows)."""
    import importlib.util

    return {"loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11"}


def check_port_free(host: str, port: int) -> None:
    """A port in use (or an address not here) is one line before the model loads, not
    uvicorn's log after a line saying it serves. Each address the host names is tried and let
    go again: uvicorn binds them itself (all of them, as before)."""
    import errno
    import os
    import socket

    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ReviewstarsError(f"--host {host}: not an address of this machine ({error.strerror})") from None
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            if os.name == "posix":  # as asyncio does: a restart need not wait for TIME_WAIT (on Windows it would share the port)
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise ReviewstarsError(f"--port {port}: cannot listen on {host}:{port} ({error.strerror}): "
                                           "is another server there? Give another --port") from None
                if error.errno != errno.EADDRNOTAVAIL or len(found) == 1:  # (one family of several may be off here)
                    raise ReviewstarsError(f"--host {host}: cannot listen there ({error.strerror})") from None


def served_name(model: str | Path) -> str:
    """The name the server gives its model (/model, the v2 routes /v2/models/NAME/...): a
    folder's own name, also for `--model .` or `./lin/`; a Hub id as it is."""
    path = Path(str(model)).expanduser()
    return path.resolve().name if path.is_dir() else path.name or str(model)


def serve(model: str | Path, host: str = "127.0.0.1", port: int = 8000, limits: ServeLimits | None = None,
          device: str | None = None, api_key: str | None = None, cuda_graphs: bool = True,
          on_ready: Callable[[], None] | None = None) -> None:
    """Load `model` on `device` (default: auto) and serve it until interrupted; on a GPU each batch
    shape runs as a CUDA graph unless `cuda_graphs` is off (`models.graphs`). `on_ready` is
    called once the port is known free and the model loaded and warmed: what a "serving" line waits for."""
    import uvicorn

    from ..models import load_predictor
    from ..models.folder import read_metrics

    limits = limits or ServeLimits()
    check_port_free(host, port)
    predictor = load_predictor(model, device=device)
    predictor.warm_up(limits.max_batch, cuda_graphs)  # before the port opens: no client waits for a GPU's first kernels
    info = {"metrics": read_metrics(model) if Path(str(model)).is_dir() else None}
    if limits.max_texts < 2:
        from ..progress import warn

        warn(f"--max-texts {limits.max_texts}: /explain rates a review once more for each word left out, so it can rate none")
    app = create_app(predictor, name=served_name(model), info=info, limits=limits, api_key=api_key)
    options = uvicorn_options()
    if options["http"] == "httptools":  # a deadline per request, connections waiting on their client closed at the cap
        from .connections import guarded_protocol

        options["http"] = guarded_protocol(limits, app.state.connections)
        concurrency = None
    else:  # h11 alone: uvicorn's own cap on open connections
        concurrency = limits.max_connections
    if on_ready is not None:
        on_ready()
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=concurrency, **options)
