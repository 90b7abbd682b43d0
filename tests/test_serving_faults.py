"""One bad request never fails others, and no body or burst of requests can exhaust the server."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from support import post_json, running, scrape

from reviewstars.models import load_predictor
from reviewstars.serving import ServeLimits, create_app


class Controlled:
    """A real model behind a gate: calls wait while the gate is closed, and a batch holding "boom" raises."""

    def __init__(self, model_folder):
        self.model = load_predictor(model_folder)
        self.gate, self.entered = threading.Event(), threading.Event()
        self.gate.set()
        self.batch_sizes: list[int] = []
        self.batches: list[list[str]] = []

    def predict_proba(self, texts, batch_size=None):
        self.batch_sizes.append(len(texts))
        self.batches.append(list(texts))
        self.entered.set()
        assert self.gate.wait(timeout=30)
        if any("boom" in text for text in texts):
            raise ValueError("boom")
        return self.model.predict_proba(texts)

    def describe(self):
        return self.model.describe()

    def hold_first_call(self, pool, client, url) -> Future:
        """Close the gate and send one request that the worker takes and holds."""
        self.gate.clear()
        self.entered.clear()
        held = pool.submit(client.post, url, json={"texts": ["held"]})
        assert self.entered.wait(timeout=10)
        return held


def wait_for_queue(url: str, texts: int) -> None:
    deadline = time.time() + 10
    while scrape(url)["reviewstars_queue_texts"] != texts:
        assert time.time() < deadline, "the queue never reached its expected depth"
        time.sleep(0.02)


def test_lone_surrogates_fail_no_request_of_a_transformer(scratch_model):
    bodies = [{"texts": [f"good food number {i}"]} if i % 3 else {"texts": ["bad \ud800 text", "\udfff"]} for i in range(30)]
    with running(create_app(load_predictor(scratch_model), limits=ServeLimits(max_wait_ms=20))) as url:
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(lambda body: post_json(client, f"{url}/predict", body), bodies))
        assert [r.status_code for r in responses] == [200] * len(bodies)
        assert all(len(r.json()["predictions"]) == len(b["texts"]) for r, b in zip(responses, bodies))
        assert scrape(url)["reviewstars_batch_size_count"] < len(bodies)  # they did share batches


def test_a_failing_request_in_a_batch_fails_alone(linear_model):
    model = Controlled(linear_model)
    texts = [f"boom {i}" if i % 4 == 0 else f"tasty dish {i}" for i in range(12)]
    with running(create_app(model, limits=ServeLimits(max_batch=64))) as url, httpx.Client(timeout=30) as client, ThreadPoolExecutor(13) as pool:
        held = model.hold_first_call(pool, client, f"{url}/predict")
        futures = [pool.submit(client.post, f"{url}/predict", json={"texts": [text]}) for text in texts]
        wait_for_queue(url, len(texts))
        model.gate.set()
        responses = [future.result() for future in futures]
        assert held.result().status_code == 200
    assert model.batch_sizes[:2] == [1, 12], "all twelve shared one model call, which raised"
    for text, response in zip(texts, responses):
        if text.startswith("boom"):
            assert response.status_code == 500 and response.json() == {"detail": "the model failed on this request: ValueError: boom"}
        else:
            assert response.status_code == 200 and response.json()["predictions"][0]["stars"] in range(1, 6)


def test_a_full_queue_answers_503_with_retry_after_at_once(linear_model):
    model = Controlled(linear_model)
    limits = ServeLimits(max_queue=4, max_queue_wait_s=30)
    with running(create_app(model, limits=limits)) as url, httpx.Client(timeout=30) as client, ThreadPoolExecutor(2) as pool:
        held = model.hold_first_call(pool, client, f"{url}/predict")
        queued = pool.submit(client.post, f"{url}/predict", json={"texts": ["a", "b", "c", "d"]})
        wait_for_queue(url, 4)
        started = time.perf_counter()
        refused = client.post(f"{url}/predict", json={"texts": ["one more"]})
        assert time.perf_counter() - started < 2
        model.gate.set()
        assert queued.result().status_code == 200 and held.result().status_code == 200
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json() == {"detail": "the queue holds 4 texts (limit 4); retry shortly"}
        assert scrape(url)['reviewstars_http_requests_total{code="503",path="/predict"}'] == 1


def test_a_request_that_waits_too_long_in_the_queue_gets_503_but_one_at_the_model_waits_on(linear_model):
    model = Controlled(linear_model)
    with running(create_app(model, limits=ServeLimits(max_queue_wait_s=0.3))) as url, httpx.Client(timeout=30) as client, ThreadPoolExecutor(1) as pool:
        held = model.hold_first_call(pool, client, f"{url}/predict")
        started = time.perf_counter()
        waited = client.post(f"{url}/predict", json={"texts": ["queued"]})
        assert 0.3 <= time.perf_counter() - started < 3
        assert waited.status_code == 503 and waited.json()["detail"].startswith("waited 0.3 s in the queue")
        assert scrape(url)["reviewstars_queue_texts"] == 0
        model.gate.set()
        assert held.result().status_code == 200  # held well past 0.3 s, but the model had it


@pytest.fixture(scope="module")
def plain(linear_model):
    """The linear model with the default limits."""
    with running(create_app(load_predictor(linear_model))) as url:
        yield url


def test_a_million_integers_get_a_short_413_at_once_while_health_answers(plain):
    body = b'{"texts": [' + b",".join([b"1"] * 1_000_000) + b"]}"
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(1) as pool:
        started = time.perf_counter()
        answer = pool.submit(client.post, f"{plain}/predict", content=body, headers={"content-type": "application/json"})
        health = []
        while not answer.done():
            began = time.perf_counter()
            assert httpx.get(f"{plain}/health", timeout=5).status_code == 200
            health.append(time.perf_counter() - began)
        response = answer.result()
        assert time.perf_counter() - started < 5 and max(health) < 1
        assert response.status_code == 413 and response.json() == {"detail": "1,000,000 texts in one request; the limit is 256"}
        response = client.post(f"{plain}/predict", json={"texts": [1] * 200 + ["ok"]})
        assert response.status_code == 422 and response.json() == {"detail": "texts[0] is a number, not a string"}


def test_a_chunked_body_is_refused_at_the_limit_not_read_whole(linear_model):
    limit = 1 << 20
    sent = []

    def chunks():
        for _ in range(64):  # 64 MiB if read to the end
            sent.append(1)
            yield b"x" * (1 << 20)

    with running(create_app(load_predictor(linear_model), limits=ServeLimits(max_body_bytes=limit))) as url, httpx.Client(timeout=30) as client:
        response = client.post(f"{url}/predict", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["detail"].endswith("+ bytes is over the 1,048,576-byte limit")
        assert client.post(f"{url}/predict", json={"texts": ["still fine"]}).status_code == 200


@pytest.mark.parametrize("garbage", [b"\x00" * 100, b"null", b"[]", b'"texts"', b'{"texts": {"a": 1}}', b'{"texts": [[]]}', b'{"\xff": 1}'])
def test_odd_bodies_are_422_not_500(plain, garbage):
    response = httpx.post(f"{plain}/predict", content=garbage, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "\n" not in response.json()["detail"]
    unlabelled = httpx.post(f"{plain}/predict", content=garbage)  # no Content-Type: not read at all
    assert unlabelled.status_code == 415 and "\n" not in unlabelled.json()["detail"]


@contextmanager
def guarded_server(model: Controlled, limits: ServeLimits):
    """`model` served as `reviewstars serve` serves it (httptools with the connection guard), in
    a thread: yields the uvicorn server and its URL; stops it (its gate opened) on the way out."""
    import uvicorn

    from reviewstars.serving.connections import guarded_protocol
    from support import free_port

    app = create_app(model, limits=limits)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           http=guarded_protocol(limits, app.state.connections)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield server, f"http://127.0.0.1:{server.config.port}"
    finally:
        model.gate.set()
        server.should_exit = True
        thread.join(timeout=15)
    assert not thread.is_alive(), "the server did not stop"


def send_predict(sock, texts: list[str]) -> None:
    """A whole POST /predict of `texts` on a raw socket (a client that can go away at will)."""
    body = json.dumps({"texts": texts}).encode()
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def test_a_request_whose_client_went_away_leaves_the_queue_and_costs_the_model_nothing(linear_model):
    """A probe's abandoned requests each cost the model a batch, and kept a live one waiting 9 s."""
    import socket

    model = Controlled(linear_model)
    with guarded_server(model, ServeLimits(max_queue_wait_s=30)) as (server, url), httpx.Client(timeout=30) as client, \
            ThreadPoolExecutor(1) as pool:
        held = model.hold_first_call(pool, client, f"{url}/predict")
        gone = socket.create_connection(("127.0.0.1", server.config.port))
        send_predict(gone, ["abandoned", "by its client"])
        wait_for_queue(url, 2)
        gone.close()
        wait_for_queue(url, 0)  # at once: not at its 30 s deadline, nor after the model rated it
        model.gate.set()
        assert held.result().status_code == 200
        assert client.post(f"{url}/predict", json={"texts": ["after"]}).status_code == 200
        assert model.batch_sizes == [1, 1]  # the held request and the last one: nothing for the client that went
        assert scrape(url)['reviewstars_http_requests_total{code="499",path="/predict"}'] == 1


def test_a_request_still_queued_when_the_server_stops_is_answered_503_at_once(linear_model):
    model = Controlled(linear_model)
    with guarded_server(model, ServeLimits(max_queue_wait_s=30)) as (server, url), httpx.Client(timeout=30) as client, \
            ThreadPoolExecutor(2) as pool:
        held = model.hold_first_call(pool, client, f"{url}/predict")
        queued = pool.submit(client.post, f"{url}/predict", json={"texts": ["queued"]})
        wait_for_queue(url, 1)
        server.should_exit = True
        answered = queued.result(timeout=5)  # while the model still holds the first request
        assert answered.status_code == 503 and answered.json() == {"detail": "the server is stopping; retry shortly"}
        assert not held.done()
        model.gate.set()
        assert held.result().status_code == 200  # the one at the model is answered, then the server stops
    assert model.batch_sizes == [1]


def test_the_model_is_never_called_on_more_than_max_batch_texts(linear_model):
    """A probe's one request of 256 texts made a batch of 256 under --max-batch 64 ("Most texts per model call")."""
    model = Controlled(linear_model)
    texts = [f"tasty dish number {i}" if i % 2 else f"cold soup {i}" for i in range(10)]
    with running(create_app(model, limits=ServeLimits(max_batch=4))) as url, httpx.Client(timeout=30) as client:
        answer = client.post(f"{url}/predict", json={"texts": texts})
    assert answer.status_code == 200 and model.batch_sizes == [4, 4, 2]
    whole = model.model.predict_proba(texts)
    rows = [[row["probabilities"][str(star)] for star in range(1, 6)] for row in answer.json()["predictions"]]
    assert abs(whole - rows).max() < 1e-5


def test_a_large_request_takes_turns_with_those_that_come_while_it_is_rated(linear_model):
    """One /explain (256 texts) was rated whole: a CPU server's model was held 23 s, and every
    other client got 503 after waiting 10 s in the queue."""
    model = Controlled(linear_model)
    large = [f"tasty dish number {i}" for i in range(10)]
    with running(create_app(model, limits=ServeLimits(max_batch=4))) as url, httpx.Client(timeout=30) as client, \
            ThreadPoolExecutor(2) as pool:
        model.gate.clear()
        first = pool.submit(client.post, f"{url}/predict", json={"texts": large})
        assert model.entered.wait(timeout=10)
        small = pool.submit(client.post, f"{url}/predict", json={"texts": ["cold soup"]})
        wait_for_queue(url, 6 + 1)  # the rest of the large one, and the small one
        model.gate.set()
        answers = first.result(), small.result()
    assert [answer.status_code for answer in answers] == [200, 200]
    # the small one in the very next call; the large one's rest waits whole behind it (only a call's first request is cut)
    assert model.batches == [large[:4], ["cold soup"], large[4:8], large[8:]]
    rows = [[row["probabilities"][str(star)] for star in range(1, 6)] for row in answers[0].json()["predictions"]]
    assert abs(model.model.predict_proba(large) - rows).max() < 1e-5  # the parts, put back in order


def test_requests_that_fit_are_rated_in_the_order_they_came_and_only_a_calls_first_is_cut():
    """Cutting any request to fill a call sent a small one behind every request queued after it."""
    import asyncio

    import numpy as np

    from reviewstars.serving.batcher import MicroBatcher
    from reviewstars.serving.metrics import ServerMetrics

    calls, finished = [], []

    def model(texts):
        calls.append([text[0] for text in texts])
        return np.full((len(texts), 5), 0.2, np.float32)

    async def queue_them():
        batcher = MicroBatcher(model, ServerMetrics(), max_batch=8)
        await batcher.start()

        async def request(name, size):
            await batcher.predict([f"{name}{i}" for i in range(size)])
            finished.append(name)
        await asyncio.gather(*(request(name, size) for name, size in zip("ABCDE", (6, 4, 4, 4, 4))))
        await batcher.stop()

    asyncio.run(queue_them())
    assert finished == list("ABCDE") and calls == [["A"] * 6, ["B"] * 4 + ["C"] * 4, ["D"] * 4 + ["E"] * 4]


def test_the_rest_of_a_large_request_whose_client_went_away_is_not_rated(linear_model):
    import socket

    model = Controlled(linear_model)
    with guarded_server(model, ServeLimits(max_batch=4, max_queue_wait_s=30)) as (server, url), httpx.Client(timeout=30) as client:
        model.gate.clear()
        gone = socket.create_connection(("127.0.0.1", server.config.port))
        send_predict(gone, [f"review {i}" for i in range(10)])
        assert model.entered.wait(timeout=10)
        gone.close()
        deadline = time.time() + 10
        while scrape(url).get('reviewstars_http_requests_total{code="499",path="/predict"}') != 1:
            assert time.time() < deadline, "the server never heard that the client went"
            time.sleep(0.02)
        model.gate.set()
        assert client.post(f"{url}/predict", json={"texts": ["after"]}).status_code == 200
        assert scrape(url)["reviewstars_queue_texts"] == 0
    assert model.batch_sizes == [4, 1]  # its first part, then the next request: nothing more for the client that went


class _HoldsTheGil:
    """The linear model as the server sees it (it holds the GIL), noting the thread of each call."""

    releases_gil = False

    def __init__(self, model_folder):
        self.model = load_predictor(model_folder)
        self.threads: list[str] = []

    def predict_proba(self, texts, batch_size=None):
        self.threads.append(threading.current_thread().name)
        return self.model.predict_proba(texts)

    def describe(self):
        return self.model.describe()


def test_a_model_that_holds_the_gil_rates_short_batches_on_the_loop_and_long_ones_on_its_thread(linear_model):
    """Rated on the event loop, one /explain of a 20 KB review froze /health for 1.6 s (a dozen: 23 s)."""
    from reviewstars.serving.batcher import INLINE_MAX_CHARS

    model = _HoldsTheGil(linear_model)
    with running(create_app(model)) as url, httpx.Client(timeout=60) as client:
        assert client.post(f"{url}/predict", json={"texts": ["good food"] * 8}).status_code == 200
        long_reviews = ["The soup was cold but the staff were kind. " * 400] * (INLINE_MAX_CHARS // 17_000 + 1)  # ~17 K each
        assert client.post(f"{url}/predict", json={"texts": long_reviews}).status_code == 200
    assert not model.threads[0].startswith("reviewstars-model") and model.threads[1].startswith("reviewstars-model")


def test_pipelined_requests_still_queued_when_the_server_stops_are_answered_503_at_once(linear_model):
    """The connection told only its newest request: a pipelined one before it was still rated at
    the stop. (A pipelining client that goes away is heard only when uvicorn reads its connection
    again: it stops reading one while a request waits behind another.)"""
    import socket

    model = Controlled(linear_model)
    with guarded_server(model, ServeLimits(max_queue_wait_s=30)) as (server, url), httpx.Client(timeout=30) as client, \
            ThreadPoolExecutor(1) as pool:
        held = model.hold_first_call(pool, client, f"{url}/predict")
        pipelining = socket.create_connection(("127.0.0.1", server.config.port))
        send_predict(pipelining, ["first"])
        send_predict(pipelining, ["second"])  # pipelined: it waits behind the first on its connection
        wait_for_queue(url, 1)
        server.should_exit = True
        pipelining.settimeout(5)
        answers = b""
        while answers.count(b"HTTP/1.1 503") < 2:  # both, while the model still holds the first request
            chunk = pipelining.recv(65536)
            assert chunk, answers
            answers += chunk
        assert not held.done() and b"the server is stopping" in answers
        model.gate.set()
        assert held.result().status_code == 200
        pipelining.close()
    assert model.batch_sizes == [1]


def test_news_that_comes_while_a_request_is_parsed_or_taken_still_drops_it():
    """A hook added after its client left was never called; a job dropped in the very turn the
    worker took it was rated."""
    import asyncio

    import numpy as np

    from reviewstars.serving.batcher import ClientGone, MicroBatcher, Watch
    from reviewstars.serving.metrics import ServerMetrics

    told = []
    late = Watch()
    late.tell(False)
    late.add(told.append)
    assert told == [False]

    calls = []

    async def race():
        loop = asyncio.get_running_loop()
        watch = Watch()

        def model(texts):
            calls.append(list(texts))
            if texts == ["A"]:
                time.sleep(0.2)  # B's client goes in the turn of the loop in which A's answer comes back
                loop.call_soon_threadsafe(lambda: loop.call_soon(lambda: watch.tell(False)))
            return np.full((len(texts), 5), 0.2, np.float32)

        batcher = MicroBatcher(model, ServerMetrics(), max_batch=1)
        await batcher.start()
        first = asyncio.create_task(batcher.predict(["A"]))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(batcher.predict(["B"], watch))
        await first
        with pytest.raises(ClientGone):
            await second
        await asyncio.sleep(0.1)
        await batcher.stop()

    asyncio.run(race())
    assert calls == [["A"]]


def test_a_large_request_the_model_has_begun_is_answered_whole_when_the_server_stops():
    """Told the server was stopping between two of its parts, a large request got a 503 for the rows already rated."""
    import asyncio

    import numpy as np

    from reviewstars.serving.batcher import MicroBatcher, Watch
    from reviewstars.serving.metrics import ServerMetrics

    gate = threading.Event()

    def model(texts):
        assert gate.wait(timeout=30)
        return np.full((len(texts), 5), 0.2, np.float32)

    async def stop_midway():
        batcher = MicroBatcher(model, ServerMetrics(), max_batch=4)
        await batcher.start()
        watch = Watch()
        answer = asyncio.create_task(batcher.predict([f"review {i}" for i in range(10)], watch))
        await asyncio.sleep(0.1)  # its first part is at the model
        watch.tell(True)  # the server is stopping
        gate.set()
        rows = await answer
        await batcher.stop()
        return rows, batcher.queued_texts

    rows, queued = asyncio.run(stop_midway())
    assert rows.shape == (10, 5) and queued == 0


def test_an_answer_goes_out_in_one_write_and_a_lone_head_still_goes_out(linear_model, monkeypatch):
    """uvicorn writes an answer's head and body apart: two packets, and two wake-ups of the
    client, for a few hundred bytes (10-15% of the server's time under wrk). /predict's go out
    together; a head held for a body that never comes goes out before the connection closes."""
    import socket

    from reviewstars.serving import connections

    writes: list[bytes] = []
    made = connections._LingeringClose.__init__

    class Recorder:
        def __init__(self, transport):
            self.transport = transport

        def write(self, data):
            writes.append(bytes(data))
            self.transport.write(data)

        def __getattr__(self, name):
            return getattr(self.transport, name)

    monkeypatch.setattr(connections._LingeringClose, "__init__", lambda self, transport, connection: made(self, Recorder(transport), connection))
    with guarded_server(Controlled(linear_model), ServeLimits()) as (server, url):
        with socket.create_connection(("127.0.0.1", server.config.port)) as sock:
            sock.settimeout(10)
            send_predict(sock, ["Great tacos, friendly staff."])
            answer = b""
            while b'"predictions"' not in answer or not answer.endswith(b"]}"):
                answer += sock.recv(65536)
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200") and writes[0] == answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["predictions"][0]["stars"] in range(1, 6)
        assert httpx.get(f"{url}/health").json()["status"] == "ok"  # FastAPI's routes write as they always did

    class Transport:
        def __init__(self):
            self.calls = []

        def write(self, data):
            self.calls.append(("write", bytes(data)))

        def close(self):
            self.calls.append(("close", None))

        def is_closing(self):
            return False

    class Connection:
        cycle = None

    transport = Transport()
    wrapper = connections._LingeringClose(transport, Connection())
    wrapper.hold_head()
    wrapper.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.calls == []
    wrapper.close()  # its body never came (the client went away): the head first, then the close
    assert transport.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n"), ("close", None)]
