"""`reviewstars serve`, started as a user starts it, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from reviewstars.models import load_predictor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(linear_model):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reviewstars.cli", "serve", "--model", str(linear_model), "--port", str(port),
         "--max-texts", "8", "--max-chars", "1000", "--max-wait-ms", "20"],
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


def test_malformed_json_and_huge_bodies(server):
    response = httpx.post(f"{server}/predict", content=b'{"texts": ["unclosed', headers={"content-type": "application/json"})
    assert response.status_code == 422
    response = httpx.post(f"{server}/predict", content=b"x" * (9 << 20), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the" in response.json()["detail"]


def test_health_model_and_docs(server):
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    model = httpx.get(f"{server}/model").json()
    assert model["kind"] == "linear" and model["labels"] == [1, 2, 3, 4, 5] and model["parameters"] > 0
    assert model["limits"]["max_texts"] == 8
    assert "/predict" in httpx.get(f"{server}/openapi.json").json()["paths"]


def test_concurrent_requests_are_batched_and_none_fail(server):
    before = httpx.get(f"{server}/model").json()["served"]
    texts = [f"review number {i}: the food was {'great' if i % 2 else 'bad'}" for i in range(64)]
    with httpx.Client() as client, ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda t: client.post(f"{server}/predict", json={"texts": [t]}), texts))
    assert all(r.status_code == 200 for r in responses)
    after = httpx.get(f"{server}/model").json()["served"]
    assert after["texts"] - before["texts"] == 64
    assert after["batches"] - before["batches"] < 64  # gathered: fewer model calls than requests
