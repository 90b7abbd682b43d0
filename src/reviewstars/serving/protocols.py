"""The protocols clients already speak, beside our own POST /predict: the same model, the
same micro-batches, limits and errors, another shape of request and answer.

- The Hugging Face inference shape (Inference Endpoints, `huggingface_hub.InferenceClient`):
  POST / with `{"inputs": "a review" or [reviews], "parameters": {"top_k": k}}`, answered
  with a list per review of `{"label": "4 stars", "score": p}`, most likely first.
- The Open Inference Protocol v2 (KServe, Triton, Seldon): `GET /v2/health/ready`,
  `GET /v2/models/{name}`, `POST /v2/models/{name}/infer` with a BYTES input tensor of
  reviews, answered with `probabilities` (FP32, n x 5, star order) and `stars` (INT32), or
  the outputs the request names; each model route also under `/versions/1`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import LABEL_NAMES, STARS
from ..text import without_lone_surrogates
from .bodies import BodyReader, Refusal, parse_json

#: JSON structure (brackets and braces) a body may hold per text it is allowed: past it the
#: body is refused unparsed (json.loads would hold the event loop building it).
STRUCTURE_PER_TEXT = 8
#: JSON values (each key, item and container) a body may hold per text: the shapes below hold
#: a few per text. A larger body is parsed apart from the server, and refused past this.
VALUES_PER_TEXT = 8


async def parse(reader: BodyReader, body: bytes, one_text: bool = False) -> Any:
    """A JSON body: one with more structure than its texts could explain is refused unread (the
    shapes below hold a few brackets per text), and one past a few KB is parsed in the parser
    process (`BodyReader.payload_of_body`). A body of `one_text` (/explain) is bounded by its
    size instead: a review may hold any number of brackets, and a body no larger than one
    text's worst JSON (6 bytes a character, `\\uXXXX`) parses quickly whatever it holds."""
    if one_text:
        if len(body) > 6 * reader.max_chars + 1024:
            raise Refusal(413, f"a body of {len(body):,} bytes is more than one text of at most {reader.max_chars:,} characters")
        return parse_json(body)
    if body.count(b"[") + body.count(b"{") > STRUCTURE_PER_TEXT * reader.max_texts + 16:
        raise Refusal(422, "the body holds more structure than a request of texts can")
    return await reader.payload_of_body(body, VALUES_PER_TEXT * reader.max_texts + 64)


# --------------------------------------------------------------------------- our own: /explain


def explain_request(reader: BodyReader, payload: Any, words_at_most: int) -> tuple[str, int]:
    """(the review, how many of its words to rate) of `{"text": "...", "max_words": n}`."""
    if not isinstance(payload, dict) or "text" not in payload or set(payload) - {"text", "max_words"}:
        raise Refusal(422, 'send {"text": "a review"} (and "max_words": n, if you like)')
    text = payload["text"]
    if not isinstance(text, str):
        raise Refusal(422, '"text" must be a string')
    reader.check_length(text, '"text"')
    text = without_lone_surrogates(text)  # JSON may carry half a UTF-16 pair, which the answer echoes as UTF-8
    max_words = payload.get("max_words")
    if max_words is None:
        return text, words_at_most
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1:
        raise Refusal(422, '"max_words" must be a positive whole number')
    return text, min(max_words, words_at_most)


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
V2_VERSION = "1"  # one model per server: its one version
V2_OUTPUTS = {"probabilities": ("FP32", [-1, len(STARS)]), "stars": ("INT32", [-1])}


def v2_metadata(name: str) -> dict[str, Any]:
    return {
        "name": name, "versions": [V2_VERSION], "platform": "reviewstars",
        "inputs": [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": output, "datatype": datatype, "shape": shape} for output, (datatype, shape) in V2_OUTPUTS.items()],
    }


def v2_request(reader: BodyReader, payload: Any) -> tuple[list[str], str | None, list[str]]:
    """(texts, the request's id, the outputs it asks for) of an infer body: one BYTES input
    tensor of reviews, and optionally `"outputs": [{"name": "stars"}, ...]` (all when absent)."""
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
    return texts, request_id if isinstance(request_id, str) else None, v2_outputs_asked(payload.get("outputs"))


def v2_outputs_asked(asked: Any) -> list[str]:
    """The outputs a request names, in its order; every output when it names none."""
    if asked is None:
        return list(V2_OUTPUTS)
    if not isinstance(asked, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in asked):
        raise Refusal(400, 'ask for outputs as "outputs": [{"name": "stars"}, {"name": "probabilities"}]')
    names = [o["name"] for o in asked]
    unknown = [n for n in names if n not in V2_OUTPUTS]
    if unknown:
        raise Refusal(400, f"no output {unknown[0]!r}: this model's outputs are {', '.join(V2_OUTPUTS)}")
    return list(dict.fromkeys(names)) or list(V2_OUTPUTS)


def v2_answer(name: str, proba: np.ndarray, request_id: str | None, outputs: Sequence[str] = tuple(V2_OUTPUTS)) -> dict[str, Any]:
    proba = np.asarray(proba, dtype=np.float32)
    answer = {"model_name": name, "model_version": V2_VERSION, "outputs": [v2_tensor(output, proba) for output in outputs]}
    if request_id is not None:
        answer["id"] = request_id
    return answer


def v2_tensor(output: str, proba: np.ndarray) -> dict[str, Any]:
    """One output tensor, made only when the request asks for it."""
    if output == "stars":
        shape, data = [len(proba)], (proba.argmax(axis=1) + 1).tolist()
    else:
        shape, data = list(proba.shape), proba.ravel().tolist()
    return {"name": output, "datatype": V2_OUTPUTS[output][0], "shape": shape, "data": data}
