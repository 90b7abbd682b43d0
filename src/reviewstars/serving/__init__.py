"""`reviewstars serve`: any model folder behind an HTTP API, with requests micro-batched.

Many clients each sending a few texts would make the model run on tiny batches; a
transformer is several times faster per text on a batch. So every request drops its
texts into one queue, and a single worker takes whatever has gathered (up to
`max_batch` texts, waiting at most `max_wait_ms` after the first one), runs the model
once, and hands each request its own rows back. One worker also means the model is
never called from two threads at once.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from .models.base import StarPredictor, prediction_rows



@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for; beyond it the answer is 413, not a slow server."""

    max_texts: int = 256            # texts per request
    max_chars: int = 20_000         # characters per text (a long review is ~5,000)
    max_body_bytes: int = 8 << 20   # the raw request body
    max_batch: int = 64             # texts per model call
    max_wait_ms: float = 5.0        # how long the first text waits for company


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(min_length=1, description="Reviews to rate, one star rating each.")


class Prediction(BaseModel):
    stars: int = Field(description="The most likely rating, 1..5.")
    probabilities: dict[str, float] = Field(description='P(k stars) for k = "1".."5".')
    expected_stars: float = Field(description="Sum of k * P(k stars): a rating on a continuous scale.")
    empty: bool = Field(default=False, description="The text was empty or blank: the model saw no words.")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class MicroBatcher:
    """Gathers texts from concurrent requests into batched calls of `predict_proba`."""

    def __init__(self, predict_proba: Callable[[Sequence[str]], np.ndarray], max_batch: int = 64, max_wait_ms: float = 5.0):
        self.predict_proba = predict_proba
        self.max_batch, self.max_wait = max(1, max_batch), max_wait_ms / 1000
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reviewstars-model")
        self.batches = 0
        self.texts = 0

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, texts: list[str]) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            size = len(jobs[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                size += len(job[0])
            await self._answer(loop, jobs)

    async def _answer(self, loop, jobs) -> None:
        texts = [text for job_texts, _ in jobs for text in job_texts]
        try:
            proba = await loop.run_in_executor(self.executor, self.predict_proba, texts)
        except Exception as error:  # every waiting request hears about it; the worker lives on
            for _, future in jobs:
                if not future.done():
                    future.set_exception(error)
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for job_texts, future in jobs:
            if not future.done():  # a client that went away leaves a cancelled future
                future.set_result(proba[start : start + len(job_texts)])
            start += len(job_texts)


def predictions_of(texts: Sequence[str], proba: np.ndarray) -> list[dict[str, Any]]:
    """`prediction_rows`, each flagged `empty` when its text had no words."""
    return [{**row, "empty": not text.strip()} for text, row in zip(texts, prediction_rows(np.asarray(proba, dtype=np.float64)))]


def create_app(predictor: StarPredictor, name: str = "model", info: dict[str, Any] | None = None, limits: ServeLimits | None = None) -> FastAPI:
    """The HTTP API around one predictor (any kind)."""
    limits = limits or ServeLimits()
    batcher = MicroBatcher(predictor.predict_proba, limits.max_batch, limits.max_wait_ms)  # the model picks its own inner batch size
    started = time.time()

    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="reviewstars",
        description="Predict the star rating (1..5) of reviews. POST texts to /predict.",
        lifespan=lifespan,
    )
    app.state.batcher = batcher

    @app.middleware("http")
    async def refuse_huge_bodies(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            return JSONResponse({"detail": f"request body of {int(length):,} bytes is over the {limits.max_body_bytes:,}-byte limit"}, status_code=413)
        return await call_next(request)

    @app.post("/predict", response_model=PredictResponse, responses={413: {"description": "Too many texts or characters"}})
    async def predict(request: PredictRequest) -> dict[str, Any]:
        """Stars, the five probabilities and the expected rating for each text, in order."""
        texts = request.texts
        if len(texts) > limits.max_texts:
            raise HTTPException(413, f"{len(texts)} texts in one request; the limit is {limits.max_texts}")
        for i, text in enumerate(texts):
            if len(text) > limits.max_chars:
                raise HTTPException(413, f"texts[{i}] has {len(text):,} characters; the limit is {limits.max_chars:,}")
        proba = await batcher.predict(texts)
        return {"predictions": predictions_of(texts, proba)}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "uptime_seconds": round(time.time() - started, 1)}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        """What is being served: name, kind, labels, parameters, metrics from training."""
        return {
            "name": name,
            **predictor.describe(),
            "metrics": (info or {}).get("metrics"),
            "limits": limits.__dict__,
            "served": {"batches": batcher.batches, "texts": batcher.texts},
        }

    return app


def serve(model: str | Path, host: str = "127.0.0.1", port: int = 8000, limits: ServeLimits | None = None) -> None:
    """Load `model` and serve it until interrupted."""
    import uvicorn

    from .artifacts import read_json
    from .models import load_predictor

    predictor = load_predictor(model)
    metrics_file = Path(str(model)) / "metrics.json"
    info = {"metrics": read_json(metrics_file) if metrics_file.is_file() else None}
    app = create_app(predictor, name=Path(str(model)).name or str(model), info=info, limits=limits)
    uvicorn.run(app, host=host, port=port, log_level="warning")
