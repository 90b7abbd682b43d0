"""The protocols clients already speak (issue 25): Hugging Face's inference shape, read by the
real `huggingface_hub.InferenceClient`, and the Open Inference Protocol v2, each giving the
probabilities POST /predict gives."""

from __future__ import annotations

import httpx
import pytest

from reviewstars import LABEL_NAMES
from reviewstars.models import load_predictor
from reviewstars.serving import create_app

from support import running

TEXTS = ["Amazing food, excellent and perfect!", "Awful, rude, the worst.", "It was okay, decent."]


@pytest.fixture(scope="module")
def server(linear_model):
    with running(create_app(load_predictor(linear_model), name="linear")) as url:
        yield url


def _ours(url: str) -> list[dict[str, float]]:
    return [row["probabilities"] for row in httpx.post(f"{url}/predict", json={"texts": TEXTS}).json()["predictions"]]


def test_the_hugging_face_client_reads_our_labels_and_scores(server, monkeypatch):
    import huggingface_hub.constants
    from huggingface_hub import InferenceClient

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the suite runs offline; this server is on loopback

    client = InferenceClient(base_url=server)
    for text, ours in zip(TEXTS, _ours(server)):
        answer = client.text_classification(text)
        assert [a.label for a in answer] == sorted(LABEL_NAMES, key=lambda label: -ours[label[0]])  # most likely first
        for element in answer:
            assert element.score == pytest.approx(ours[element.label[0]], abs=1e-6)
        assert [a.label for a in client.text_classification(text, top_k=2)] == [a.label for a in answer][:2]


def test_the_hugging_face_shape_takes_a_list_and_refuses_what_it_cannot_do(server):
    answer = httpx.post(server, json={"inputs": TEXTS, "parameters": {"top_k": 1}})
    assert answer.status_code == 200 and [len(row) for row in answer.json()] == [1, 1, 1]
    for body, status in (({"inputs": TEXTS, "parameters": {"top_k": 0}}, 422),
                         ({"inputs": "x", "parameters": {"function_to_apply": "sigmoid"}}, 422),
                         ({"texts": ["x"]}, 422), ({"inputs": ["x"] * 300}, 413)):
        refused = httpx.post(server, json=body)
        assert refused.status_code == status and "\n" not in refused.json()["detail"]
    assert httpx.post(server, content=b'{"inputs": "x"}', headers={"content-type": "text/plain"}).status_code == 415


def test_open_inference_protocol_v2_gives_the_same_probabilities(server):
    assert httpx.get(f"{server}/v2/health/ready").status_code == 200
    metadata = httpx.get(f"{server}/v2/models/linear").json()
    assert metadata["inputs"][0]["datatype"] == "BYTES" and [o["name"] for o in metadata["outputs"]] == ["probabilities", "stars"]
    body = {"id": "r1", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}]}
    answer = httpx.post(f"{server}/v2/models/linear/infer", json=body).json()
    probabilities, stars = answer["outputs"]
    assert answer["id"] == "r1" and probabilities["shape"] == [3, 5] and stars["shape"] == [3]
    flat = [p for row in _ours(server) for p in (row[str(k)] for k in range(1, 6))]
    assert probabilities["data"] == pytest.approx(flat, abs=1e-6)
    assert stars["data"] == [max(range(1, 6), key=lambda k: row[str(k)]) for row in _ours(server)]
    missing = httpx.post(f"{server}/v2/models/other/infer", json=body)
    assert missing.status_code == 404 and "error" in missing.json()
    bad = httpx.post(f"{server}/v2/models/linear/infer", json={"inputs": [{"name": "text", "datatype": "FP32", "data": [1]}]})
    assert bad.status_code == 400 and "BYTES" in bad.json()["error"]


def test_v2_answers_the_version_it_advertises_and_the_outputs_a_request_names(server):
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}]}
    assert httpx.get(f"{server}/v2/models/linear").json()["versions"] == ["1"]
    assert httpx.get(f"{server}/v2/models/linear/versions/1").json()["name"] == "linear"
    assert httpx.get(f"{server}/v2/models/linear/versions/1/ready").json()["ready"] is True
    whole = httpx.post(f"{server}/v2/models/linear/versions/1/infer", json=body).json()
    assert whole == httpx.post(f"{server}/v2/models/linear/infer", json=body).json() and whole["model_version"] == "1"
    for path in ("versions/2", "versions/2/ready"):
        gone = httpx.get(f"{server}/v2/models/linear/{path}")
        assert gone.status_code == 404 and gone.json()["error"] == "no version '2' of 'linear'; it has version 1"
    assert httpx.post(f"{server}/v2/models/linear/versions/2/infer", json=body).status_code == 404

    stars_only = httpx.post(f"{server}/v2/models/linear/infer", json={**body, "outputs": [{"name": "stars"}]}).json()
    assert stars_only["outputs"] == [whole["outputs"][1]]
    both = httpx.post(f"{server}/v2/models/linear/infer", json={**body, "outputs": [{"name": "stars"}, {"name": "probabilities"}]})
    assert [o["name"] for o in both.json()["outputs"]] == ["stars", "probabilities"]
    unknown = httpx.post(f"{server}/v2/models/linear/infer", json={**body, "outputs": [{"name": "logits"}]})
    assert unknown.status_code == 400 and unknown.json()["error"] == "no output 'logits': this model's outputs are probabilities, stars"
    malformed = httpx.post(f"{server}/v2/models/linear/infer", json={**body, "outputs": ["stars"]})
    assert malformed.status_code == 400 and '"outputs": [{"name": "stars"}' in malformed.json()["error"]
