"""The yardsticks for the server's own cost: FastAPI endpoints that return a fixed answer of
the same shape as ours, served by the same uvicorn settings as `reviewstars serve`.
`serve_load.py --generator wrk` measures them beside our server in the same run.

    app        the idiomatic FastAPI endpoint: the body parsed into a model, a dict returned
    bytes_app  the least a FastAPI endpoint can do: the body read as bytes, bytes returned

    python -m uvicorn bare_endpoint:app --app-dir benchmarks
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

ANSWER = {"predictions": [{"stars": 4, "probabilities": {"1": 0.01, "2": 0.02, "3": 0.07, "4": 0.5, "5": 0.4},
                           "expected_stars": 4.26, "empty": False}]}
ANSWER_BYTES = json.dumps(ANSWER).encode()


class Texts(BaseModel):
    texts: list[str]


app = FastAPI()
bytes_app = FastAPI()


@app.post("/predict")
async def predict(body: Texts) -> dict:
    return ANSWER


@bytes_app.post("/predict")
async def predict_bytes(request: Request) -> Response:
    await request.body()
    return Response(ANSWER_BYTES, media_type="application/json")


@app.get("/health")
@bytes_app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
