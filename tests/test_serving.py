"""`reviewstars serve`, started as a user starts it, on a free loopback port.

The other test_serving_* files run an app with chosen limits (or a wrapped model) in a
uvicorn thread of the test process (`support.running`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from reviewstars.models import load_predictor

from support import cli_command, free_port, scrape


@pytest.fixture(scope="module")
def server(linear_model):
    port = free_port()
    process = subprocess.Popen(
        cli_command("serve", "--model", linear_model, "--port", port, "--max-texts", 8, "--max-chars", 1000, "--max-wait-ms", 20),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {process.communicate()[1].decode()[-2000:]}")
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_predict_answers_stars_probabilities_and_expectation(server, linear_model):
    texts = ["Amazing food, excellent service, best ever!", "Awful, rude staff. Never again."]
    response = httpx.post(f"{server}/predict", json={"texts": texts})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    expected = load_predictor(linear_model).predict_proba(texts)
    for prediction, row in zip(predictions, expected):
        probabilities = [prediction["probabilities"][str(s)] for s in range(1, 6)]
        assert np.allclose(probabilities, row, atol=1e-5) and abs(sum(probabilities) - 1) < 1e-4
        assert prediction["stars"] == int(row.argmax()) + 1
        assert prediction["expected_stars"] == pytest.approx(float(row @ np.arange(1, 6)), abs=1e-3)
        assert prediction["empty"] is False
    assert predictions[0]["stars"] > predictions[1]["stars"]


def test_empty_text_gets_a_flagged_prediction(server):
    response = httpx.post(f"{server}/predict", json={"texts": ["", "   ", "good"]})
    assert response.status_code == 200
    assert [p["empty"] for p in response.json()["predictions"]] == [True, True, False]


@pytest.mark.parametrize(
    "body, status, detail",
    [
        ({"texts": ["ok"] * 9}, 413, "9 texts in one request; the limit is 8"),
        ({"texts": ["ok", "x" * 1001]}, 413, "texts[1] has 1,001 characters; the limit is 1,000"),
        # one character that a model reads as 18 (NFKC): a probe's 7.8 MB of them held a server 11 s
        ({"texts": ["\ufdfa" * 60]}, 413, "texts[0] has 1,080 characters as a model reads it (Unicode's NFKC form); the limit is 1,000"),
        ({"texts": ["é" * 1000]}, 200, None),
        ({"texts": "just a string"}, 422, None),
        ({"texts": [1, 2]}, 422, None),
        ({"texts": []}, 422, None),
        ({"reviews": ["ok"]}, 422, None),
    ],
)
def test_limits_and_bad_requests_get_clear_answers(server, body, status, detail):
    response = httpx.post(f"{server}/predict", json=body)
    assert response.status_code == status, response.text
    if detail:
        assert response.json()["detail"] == detail


@pytest.mark.parametrize("body", [b'{"texts": ["unclosed', b"", b"\xff\xfe\xfa", b"[" * 100_000, b'{"texts": [1' + b"0" * 5000 + b"]}"])
def test_malformed_json_gets_422_with_one_short_line(server, body):
    response = httpx.post(f"{server}/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"].startswith("the body is not valid JSON")
    assert len(response.content) < 700


def test_malformed_json_and_huge_bodies(server):
    response = httpx.post(f"{server}/predict", content=b"x" * (9 << 20), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the" in response.json()["detail"]


def test_hugging_face_inputs_form_answers_like_texts(server):
    texts = ["Amazing food, excellent service!", "Awful, rude staff."]
    as_texts = httpx.post(f"{server}/predict", json={"texts": texts}).json()
    assert httpx.post(f"{server}/predict", json={"inputs": texts}).json() == as_texts
    assert httpx.post(f"{server}/predict", json={"inputs": texts[0]}).json()["predictions"] == as_texts["predictions"][:1]
    for body in ({"texts": texts, "inputs": texts}, {"inputs": []}, {"inputs": 3}, {"inputs": ["ok", None]}):
        assert httpx.post(f"{server}/predict", json=body).status_code == 422, body
    assert httpx.post(f"{server}/predict", json={"inputs": ["ok"] * 9}).status_code == 413


def test_explain_answers_each_words_effect_as_the_command_does(server, linear_model):
    """The server caps the words rated at --max-texts - 1 (7 here): an explanation costs the model
    what one full /predict request does, and counts the words it left."""
    from reviewstars.models.explanation import explain_one, word_spans

    text = "Amazing food and excellent dinner but the staff was rude and the table awful."
    answer = httpx.post(f"{server}/explain", json={"text": text})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = explain_one(load_predictor(linear_model), text, max_words=7)
    assert [w["word"] for w in body["words"]] == [w.word for w in expected.words] == text.split()[:7]
    np.testing.assert_allclose([w["stars_effect"] for w in body["words"]], [w.stars_effect for w in expected.words], atol=1e-3)
    assert body["words_not_rated"] == len(word_spans(text)) - 7 == 8 and body["stars"] == expected.stars and body["empty"] is False
    assert "occlusion" in body["method"]
    fewer = httpx.post(f"{server}/explain", json={"text": text, "max_words": 2}).json()
    assert [w["word"] for w in fewer["words"]] == ["Amazing", "food"]
    assert httpx.post(f"{server}/explain", json={"text": "!!!"}).json()["empty"] is True
    brackets = httpx.post(f"{server}/explain", json={"text": "Great :-) " + "[" * 300 + " awful"})  # /predict rates it
    assert brackets.status_code == 200 and [w["word"] for w in brackets.json()["words"]][:2] == ["Great", ":-)"]
    assert 'path="/explain"' in httpx.get(f"{server}/metrics").text  # not counted as "other"
    surrogate = httpx.post(f"{server}/explain", content=b'{"text": "great \\ud800 food"}', headers={"content-type": "application/json"})
    assert surrogate.status_code == 200 and surrogate.json()["text"] == "great \ufffd food"  # half a UTF-16 pair, as /predict reads it
    for body, status in (({"text": "x" * 1001}, 413), ({"texts": ["ok"]}, 422), ({"text": 5}, 422), ({"text": "ok", "max_words": 0}, 422),
                         ({"text": "ok", "max_words": True}, 422), ({"text": "ok", "colour": 1}, 422)):
        refused = httpx.post(f"{server}/explain", json=body)
        assert refused.status_code == status and len(refused.json()["detail"]) < 200, (body, refused.text)
    assert httpx.post(f"{server}/explain", content=b"ok", headers={"content-type": "text/plain"}).status_code == 415


def test_health_and_model_without_server_paths(server, linear_model):
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    model = httpx.get(f"{server}/model").json()
    assert model["kind"] == "linear" and model["labels"] == [1, 2, 3, 4, 5] and model["parameters"] > 0
    assert model["name"] == linear_model.name and model["limits"]["max_texts"] == 8 and model["limits"]["max_queue"] > 0
    assert str(linear_model.parent) not in json.dumps(model)


def test_docs_need_nothing_from_outside(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert [set(option["properties"]) for option in body["oneOf"]] == [{"texts"}, {"inputs"}]
    assert {"413", "422", "503"} <= set(schema["paths"]["/predict"]["post"]["responses"])
    for page in ("/docs", "/"):
        response = httpx.get(f"{server}{page}")
        assert response.status_code == 200 and "default-src 'none'" in response.headers["content-security-policy"]
        assert not re.search(r"<(script|link|img)[^>]+(src|href)=", response.text), "every script and style is inline"
        assert "http://" not in response.text and "https://" not in response.text
        head = httpx.head(f"{server}{page}")  # link checkers and `curl -I` ask with HEAD: it was 405
        assert head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in httpx.get(f"{server}/docs").text
    assert httpx.get(f"{server}/redoc").status_code == 404


def test_metrics_count_requests_texts_batches_and_latency(server):
    before = scrape(server)
    for texts in (["good"], ["bad", "fine", "ok"]):
        assert httpx.post(f"{server}/predict", json={"texts": texts}).status_code == 200
    assert httpx.post(f"{server}/predict", json={"texts": ["ok"] * 9}).status_code == 413
    after = scrape(server)
    delta = lambda name: after.get(name, 0) - before.get(name, 0)  # noqa: E731
    assert delta('reviewstars_http_requests_total{code="200",path="/predict"}') == 2
    assert delta('reviewstars_http_requests_total{code="413",path="/predict"}') == 1
    assert delta("reviewstars_texts_predicted_total") == 4
    assert delta("reviewstars_batch_size_count") == 2 and delta("reviewstars_batch_size_sum") == 4
    assert delta('reviewstars_batch_size_bucket{le="2.0"}') == 1 and delta('reviewstars_batch_size_bucket{le="4.0"}') == 2
    assert delta("reviewstars_predict_duration_seconds_count") == 3
    assert after['reviewstars_predict_duration_seconds_bucket{le="+Inf"}'] == after["reviewstars_predict_duration_seconds_count"]
    assert 0 < delta("reviewstars_predict_duration_seconds_sum") < 30
    assert after["reviewstars_queue_texts"] == 0
    httpx.get(f"{server}/no/such/page")
    assert scrape(server)['reviewstars_http_requests_total{code="404",path="other"}'] >= 1
    assert after["process_resident_memory_bytes"] > 0 and after["process_cpu_seconds_total"] > 0  # the library's own


def test_metrics_speak_openmetrics_to_a_scraper_that_asks(server):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    response = httpx.get(f"{server}/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["reviewstars_batch_size"].type == "histogram" and families["reviewstars_http_requests"].type == "counter"


def test_concurrent_requests_are_batched_and_none_fail(server):
    before = httpx.get(f"{server}/model").json()["served"]
    texts = [f"review number {i}: the food was {'great' if i % 2 else 'bad'}" for i in range(64)]
    with httpx.Client() as client, ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda t: client.post(f"{server}/predict", json={"texts": [t]}), texts))
    assert all(r.status_code == 200 for r in responses)
    after = httpx.get(f"{server}/model").json()["served"]
    assert after["texts"] - before["texts"] == 64
    assert after["batches"] - before["batches"] < 64  # gathered: fewer model calls than requests


def test_metrics_name_each_route_of_the_v2_protocol_apart():
    from reviewstars.serving.metrics import ServerMetrics

    metrics = ServerMetrics()
    for path in ("/v2/health/ready", "/v2/health/live", "/v2", "/v2/models/stars", "/v2/models/stars/ready",
                 "/v2/models/other/infer", "/v2/models/stars/infer", "/v2/models/stars/versions/1/infer",
                 "/v2/models/stars/versions/1", "/v2/unknown"):
        metrics.observe_request(path, 200, 0.001)
    assert {path for path, _ in metrics.requests} == {"/v2/health/ready", "/v2/health/live", "/v2", "/v2/models/{name}",
                                                      "/v2/models/{name}/ready", "/v2/models/{name}/infer", "other"}
    assert metrics.requests[("/v2/models/{name}/infer", 200)] == 3
    assert metrics.requests[("/v2/models/{name}", 200)] == 2


def test_predict_is_traced_when_telemetry_is_on_and_asks_about_it_once_when_off(linear_model):
    """/predict goes past FastAPI's own call (which asked on every request whether telemetry is
    on: ~4% of the server's time) only while telemetry is off: an OpenTelemetry provider set up
    still sees every /predict."""
    from starlette.testclient import TestClient

    from reviewstars.serving import create_app

    class Telemetry:
        def __init__(self, on: bool):
            self.on, self.asked, self.traced = on, 0, []

        def enabled(self) -> bool:
            self.asked += 1
            return self.on

        async def __call__(self, app, scope, receive, send, **more):
            self.traced.append(scope["path"])
            await app(scope, receive, send)

    for on in (True, False):
        app = create_app(load_predictor(linear_model))
        if not hasattr(app, "_native_telemetry"):
            pytest.skip("this FastAPI has no native telemetry")
        app._native_telemetry = telemetry = Telemetry(on)
        with TestClient(app) as client:
            for _ in range(3):
                assert client.post("/predict", json={"texts": ["great food"]}).json()["predictions"][0]["stars"] in range(1, 6)
        if on:
            assert telemetry.traced == ["/predict"] * 3
        else:
            assert telemetry.traced == [] and telemetry.asked == 1  # once for /predict; FastAPI asks for its other routes
