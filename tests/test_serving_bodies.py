"""Any body a client can send gets 200, 413, 422 or 503 from a real server: never a 500, never a hang."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import running

from reviewstars.models import load_predictor
from reviewstars.serving import ServeLimits, create_app

CASES = 300
ANSWERS = {200, 413, 422, 503}
# Any code point, lone surrogates included: JSON can carry them as "\ud800".
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=24)
BODY = st.one_of(
    JSON,
    st.fixed_dictionaries({"texts": JSON}),
    st.fixed_dictionaries({"inputs": JSON}),
    st.fixed_dictionaries({"texts": st.lists(TEXT, max_size=10)}),
    st.fixed_dictionaries({"inputs": TEXT | st.lists(TEXT, max_size=10)}, optional={"texts": JSON, "parameters": JSON}),
)


@pytest.fixture(scope="module")
def limited(linear_model):
    """Small limits, so random bodies reach the 413s too."""
    with running(create_app(load_predictor(linear_model), limits=ServeLimits(max_texts=8, max_chars=30, max_body_bytes=4096))) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client


def answer_to(client: httpx.Client, content: bytes) -> httpx.Response:
    response = client.post("/predict", content=content, headers={"content-type": "application/json"})
    assert response.status_code in ANSWERS, response.text
    assert len(response.content) < 4096 and (response.status_code == 200 or "\n" not in response.json()["detail"])
    return response


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODY)
def test_any_json_body_gets_an_answer_not_an_error(limited, body):
    response = answer_to(limited, json.dumps(body, allow_nan=True).encode())
    if response.status_code == 200:
        texts = body.get("texts", body.get("inputs"))
        assert len(response.json()["predictions"]) == (1 if isinstance(texts, str) else len(texts))


@settings(max_examples=CASES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=300) | st.builds(lambda body, cut: json.dumps(body).encode()[:cut], BODY, st.integers(0, 200)))
def test_any_bytes_get_an_answer_not_an_error(limited, content):
    answer_to(limited, content)
