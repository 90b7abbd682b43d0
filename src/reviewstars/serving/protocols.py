"""The protocols clients already speak, beside our own POST /predict: the same model, the
same micro-batches, limits and errors, another shape of request and answer.

- The Hugging Face inference shape (Inference Endpoints, `huggingface_hub.InferenceClient`):
  POST / with `{"inputs": "a review" or [reviews], "parameters": {"top_k": k}}`, answered
  with a list per review of `{"label": "4 stars", "score": p}`, most likely first.
- The Open Inference Protocol v2 (KServe, Triton, Seldon): `GET /v2/health/ready`,
  `GET /v2/models/{name}`, `POST /v2/models/{name}/infer` with a BYTES input tensor of
  reviews, answered with `probabilities` (FP32, n x 5, star order) and `stars` (INT32).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .. import LABEL_NAMES, STARS
from .bodies import BodyReader, Refusal

#: JSON structure (brackets and braces) a body may hold per text it is allowed: past it the
#: body is refused unparsed (json.loads would hold the event loop building it).
STRUCTURE_PER_TEXT = 8


def parse(reader: BodyReader, body: bytes) -> Any:
    """A small JSON body, parsed on the event loop; one with more structure than its texts
    could explain is refused unread (the shapes below hold a few brackets per text)."""
    if body.count(b"[") + body.count(b"{") > STRUCTURE_PER_TEXT * reader.max_texts + 16:
        raise Refusal(422, "the body holds more structure than a request of texts can")
    try:
        return json.loads(body)
    except RecursionError:
        raise Refusal(422, "the body is not valid JSON: nested too deeply") from None
    except ValueError as error:
        raise Refusal(422, f"the body is not valid JSON: {error}") from None


# --------------------------------------------------------------------------- Hugging Face


def hf_request(reader: BodyReader, payload: Any) -> tuple[list[str], bool, int | None]:
    """(texts, whether one text was sent alone, top_k) of an inference-API body."""
    if not isinstance(payload, dict) or "inputs" not in payload or set(payload) - {"inputs", "parameters", "options"}:
        raise Refusal(422, 'send {"inputs": "a review" or ["reviews"], "parameters": {"top_k": k}}')
    single = isinstance(payload["inputs"], str)
    texts = reader.texts_of({"inputs": payload["inputs"]})
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise Refusal(422, '"parameters" must be an object')
    top_k = parameters.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise Refusal(422, f'"top_k" must be a positive whole number, not {top_k!r}')
    applied = parameters.get("function_to_apply")
    if applied not in (None, "softmax"):
        raise Refusal(422, f'"function_to_apply" {applied!r}: this model gives probabilities over five stars (softmax)')
    return texts, single, top_k


def hf_answer(proba: np.ndarray, top_k: int | None) -> list[list[dict[str, Any]]]:
    """Per text, its stars as labels with their probabilities, most likely first (`top_k` of them)."""
    answers = []
    for row in np.asarray(proba, dtype=np.float64):
        order = np.argsort(-row, kind="stable")[: top_k or len(STARS)]
        answers.append([{"label": LABEL_NAMES[i], "score": round(float(row[i]), 6)} for i in order])
    return answers


# --------------------------------------------------------------------------- Open Inference Protocol v2

V2_INPUT = "text"


def v2_metadata(name: str) -> dict[str, Any]:
    return {
        "name": name, "versions": ["1"], "platform": "reviewstars",
        "inputs": [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(STARS)]},
                    {"name": "stars", "datatype": "INT32", "shape": [-1]}],
    }


def v2_request(reader: BodyReader, payload: Any) -> tuple[list[str], str | None]:
    """(texts, the request's id) of an infer body: one BYTES input tensor of reviews."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) or len(payload["inputs"]) != 1:
        raise Refusal(400, 'send {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [n], "data": ["a review", ...]}]}')
    tensor = payload["inputs"][0]
    if not isinstance(tensor, dict) or tensor.get("datatype") != "BYTES" or not isinstance(tensor.get("data"), list):
        raise Refusal(400, 'the input must be a BYTES tensor: {"name": "text", "datatype": "BYTES", "shape": [n], "data": [...]}')
    texts = reader.texts_of({"texts": tensor["data"]})
    shape = tensor.get("shape")
    if shape is not None and shape not in ([len(texts)], [len(texts), 1]):
        raise Refusal(400, f"the input's shape {shape!r} does not hold its {len(texts)} texts")
    request_id = payload.get("id")
    return texts, request_id if isinstance(request_id, str) else None


def v2_answer(name: str, proba: np.ndarray, request_id: str | None) -> dict[str, Any]:
    proba = np.asarray(proba, dtype=np.float32)
    answer = {"model_name": name, "model_version": "1", "outputs": [
        {"name": "probabilities", "datatype": "FP32", "shape": list(proba.shape), "data": [float(p) for p in proba.ravel()]},
        {"name": "stars", "datatype": "INT32", "shape": [len(proba)], "data": [int(s) for s in proba.argmax(axis=1) + 1]},
    ]}
    if request_id is not None:
        answer["id"] = request_id
    return answer
