"""The server cannot be starved: idle or half-sent connections are closed in time or to make
room, a body built to hold the interpreter is parsed apart, nonsense limits are refused
when the server starts, and it can ask for a key and refuses bodies a web page may send
unasked (issue 22, class 2 and 6)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest

from reviewstars.errors import ReviewstarsError
from reviewstars.models import load_predictor
from reviewstars.serving import ServeLimits, create_app
from reviewstars.serving.connections import guarded_protocol

from support import running, scrape


def guarded(app, limits: ServeLimits):
    """`app` as `reviewstars serve` runs it: httptools with the connection guard."""
    return running(app, http=guarded_protocol(limits, app.state.connections))


def _closed(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (socket.timeout, ConnectionResetError):
        return False


@pytest.fixture(scope="module")
def limits():
    return ServeLimits(max_connections=8, request_timeout_s=1.0)


def test_idle_and_half_sent_connections_neither_starve_the_server_nor_stay(linear_model, limits):
    app = create_app(load_predictor(linear_model), limits=limits)
    with guarded(app, limits) as url:
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]  # more than the cap, sending nothing
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")  # headers never end
        with httpx.Client(timeout=10) as client:
            answered = client.post(f"{url}/predict", json={"texts": ["great food"]})
        assert answered.status_code == 200  # an idle connection made room for it
        assert _closed(half, within=3) and all(_closed(sock, within=3) for sock in idle)
        samples = scrape(url)
        assert samples['reviewstars_connections_closed_total{reason="shed"}'] >= 12
        assert samples['reviewstars_connections_closed_total{reason="timeout"}'] >= 1
        assert samples["reviewstars_open_connections"] <= 2
        for sock in [*idle, half]:
            sock.close()


def test_half_sent_bodies_cannot_hold_every_slot(linear_model):
    """More half-sent bodies than the cap, re-sent as they are closed (slowloris): every real
    request is still answered, well before the attackers' deadline."""
    limits = ServeLimits(max_connections=8, request_timeout_s=30.0)
    app = create_app(load_predictor(linear_model), limits=limits)
    half_body = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"texts\": [")
    with guarded(app, limits) as url:
        port = int(url.rsplit(":", 1)[1])
        attackers = []
        for _ in range(12):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(half_body)
            attackers.append(sock)
        time.sleep(0.2)
        answered = []
        with httpx.Client(timeout=5) as client:
            for _ in range(5):
                answered.append(client.post(f"{url}/predict", json={"texts": ["great food"]}, headers={"Connection": "close"}).status_code)
                for _ in range(3):  # the attacker opens more as its connections are closed
                    sock = socket.create_connection(("127.0.0.1", port))
                    sock.sendall(half_body)
                    attackers.append(sock)
        assert answered == [200] * 5
        samples = scrape(url)
        assert samples['reviewstars_connections_closed_total{reason="shed"}'] >= 4
        assert samples['reviewstars_connections_closed_total{reason="refused"}'] == 0
        for sock in attackers:
            sock.close()


def _slow(linear_model, seconds: float):
    model = load_predictor(linear_model)
    return type("Slow", (), {"predict_proba": lambda self, texts, batch_size=None: (time.sleep(seconds), model.predict_proba(texts))[1],
                             "describe": lambda self: model.describe(), "warm_up": lambda self, n, cuda_graphs=True: 0})()


def test_at_the_cap_idle_connections_go_first_and_a_request_at_the_model_never(linear_model):
    """Pipelined: a whole request at the model, then part of the next (the connection's latest
    request is the half-sent one). At the cap an idle connection goes, not that one."""
    limits = ServeLimits(max_connections=2, request_timeout_s=30.0)
    whole = b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n{"texts": ["good"]}'
    half = b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"te'
    with guarded(create_app(_slow(linear_model, 1.0), limits=limits), limits) as url:
        port = int(url.rsplit(":", 1)[1])
        busy = socket.create_connection(("127.0.0.1", port))
        busy.sendall(whole + half)
        time.sleep(0.3)  # its first request is at the model
        idle = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.1)
        sending = socket.create_connection(("127.0.0.1", port))  # past the cap: the idle one makes room
        sending.sendall(half)
        assert _closed(idle, within=3)
        busy.settimeout(5)
        assert busy.recv(64).startswith(b"HTTP/1.1 200")
        for sock in (busy, idle, sending):
            sock.close()


def test_a_slow_request_at_the_model_is_not_cut_by_the_deadline(linear_model):
    """The deadline is for sending a request, not for the model's answer."""
    model = load_predictor(linear_model)
    slow = type("Slow", (), {"predict_proba": lambda self, texts, batch_size=None: (time.sleep(1.5), model.predict_proba(texts))[1],
                             "describe": lambda self: model.describe(), "warm_up": lambda self, n, cuda_graphs=True: 0})()
    limits = ServeLimits(request_timeout_s=0.5)
    app = create_app(slow, limits=limits)
    with guarded(app, limits) as url, httpx.Client(timeout=10) as client:
        assert client.post(f"{url}/predict", json={"texts": ["good"]}).status_code == 200


def test_a_client_that_asks_to_close_reads_the_413_of_a_body_too_big_not_a_reset(linear_model):
    """urllib sends `Connection: close` and reads nothing until its whole body is sent: a close
    at once with the body unread reset its connection ("connection reset by peer"), curl and
    httpx got the 413. The rest of the body is read and dropped, within the request's deadline."""
    import json
    import urllib.error
    import urllib.request

    limits = ServeLimits(max_body_bytes=64 * 1024, request_timeout_s=2.0)
    body = json.dumps({"texts": ["x" * 10_000] * 300}).encode()  # 3 MB: more than the socket buffers hold
    with guarded(create_app(load_predictor(linear_model), limits=limits), limits) as url:
        for _ in range(3):
            request = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 413
            assert "over the 65,536-byte limit" in json.loads(refused.value.read())["detail"]
        port = int(url.rsplit(":", 1)[1])
        stalled = socket.create_connection(("127.0.0.1", port))  # asks to close, sends a little of the body, then stalls
        stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 9000000\r\n\r\n" + b"[" * 1000)
        stalled.settimeout(5)
        answer = b""
        while not answer.endswith(b"}"):
            answer += stalled.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413")
        assert _closed(stalled, within=limits.request_timeout_s + 3)  # lingering ends at the deadline
        stalled.close()
        with httpx.Client(timeout=10) as client:
            assert client.post(f"{url}/predict", json={"texts": ["great food"]}).status_code == 200


@contextmanager
def health_watched(url: str):
    """GET /health every 20 ms while the block runs; yields [the slowest answer's seconds]."""
    worst, stop = [0.0], threading.Event()

    def watch():
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                client.get(f"{url}/health")
                worst[0] = max(worst[0], time.perf_counter() - started)
                time.sleep(0.02)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield worst
    finally:
        stop.set()
        watcher.join()


def test_a_body_of_nested_lists_is_refused_while_health_answers(linear_model):
    body = b'{"texts": [' + b"[]," * 2_000_000 + b"[]]}"
    with guarded(create_app(load_predictor(linear_model)), ServeLimits()) as url, health_watched(url) as worst:
        with httpx.Client(timeout=60) as client:
            for _ in range(2):
                answer = client.post(f"{url}/predict", content=body, headers={"content-type": "application/json"})
                assert answer.status_code == 413 and "texts in one request" in answer.json()["detail"]
    assert worst[0] < 0.5, worst[0]  # parsed in another process: the event loop stayed free


def test_the_other_protocols_parse_large_bodies_apart_and_refuse_bodies_of_too_many_values(linear_model):
    """POST / and the v2 route parsed up to 8 MB on the event loop: one brace of 600,000 keys or
    one bracket of 4 million numbers passed a count of brackets and held /health for seconds."""
    keys = b'{"inputs": "a", ' + b", ".join(b'"k%07d": 1' % i for i in range(500_000)) + b"}"
    numbers = b'{"inputs": [' + b"1," * 3_000_000 + b"1]}"
    reviews = [f"review {i}: " + "the soup was cold but the staff were kind. " * 12 for i in range(200)]  # ~110 KB
    v2 = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(reviews)], "data": reviews}]}
    with guarded(create_app(load_predictor(linear_model), name="stars"), ServeLimits()) as url, health_watched(url) as worst:
        with httpx.Client(timeout=60) as client:
            json_type = {"content-type": "application/json"}
            for path, body in (("/", keys), ("/", numbers), ("/v2/models/stars/infer", keys)):
                answer = client.post(f"{url}{path}", content=body, headers=json_type)
                detail = answer.json().get("detail") or answer.json().get("error")  # (v2 says "error")
                assert answer.status_code == 413 and "JSON values" in detail, (path, answer.text[:200])
            whole = client.post(f"{url}/", json={"inputs": reviews})
            assert whole.status_code == 200 and len(whole.json()) == len(reviews)
            tensor = client.post(f"{url}/v2/models/stars/infer", json=v2)
            assert tensor.status_code == 200, tensor.text[:300]
    assert worst[0] < 0.5, worst[0]  # parsed in another process: the event loop stayed free


def test_only_json_is_read_and_a_key_is_asked_when_set(linear_model):
    key = "k" * 24
    with guarded(create_app(load_predictor(linear_model), api_key=key), ServeLimits()) as url, httpx.Client() as client:
        plain = client.post(f"{url}/predict", content=b'{"texts": ["good"]}', headers={"content-type": "text/plain",
                                                                                     "authorization": f"Bearer {key}"})
        assert plain.status_code == 415 and "application/json" in plain.json()["detail"]
        assert client.post(f"{url}/predict", json={"texts": ["good"]}).status_code == 401
        assert client.get(f"{url}/model").status_code == 401 and client.get(f"{url}/metrics").status_code == 401
        assert client.post(f"{url}/predict", json={"texts": ["good"]}, headers={"authorization": f"Bearer {key}x"}).status_code == 401
        ok = client.post(f"{url}/predict", json={"texts": ["good"]}, headers={"authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 1
        for scheme in ("bearer", "BEARER"):  # the scheme in any case (RFC 7235); never the key
            assert client.post(f"{url}/predict", json={"texts": ["good"]}, headers={"authorization": f"{scheme} {key}"}).status_code == 200
        assert client.post(f"{url}/predict", json={"texts": ["good"]}, headers={"authorization": f"Bearer {key.upper()}"}).status_code == 401
        assert client.post(f"{url}/predict", json={"texts": ["good"]}, headers={"authorization": f"Basic {key}"}).status_code == 401
        assert client.get(f"{url}/health").status_code == 200 and client.get(f"{url}/").status_code == 200
        assert client.head(f"{url}/health").status_code == 200  # (a load balancer's HEAD was 401 with a key, 405 without)


@pytest.mark.parametrize("given, message", [
    ({"max_wait_ms": 1e308}, "--max-wait-ms must be at most 10000"),
    ({"max_wait_ms": float("nan")}, "--max-wait-ms must be a finite number"),
    ({"max_texts": 0}, "--max-texts must be at least 1"),
    ({"max_chars": -5}, "--max-chars must be at least 1"),
    ({"max_queue_wait_s": 0}, "--max-queue-wait-s must be greater than 0"),
    ({"max_queue_wait_s": float("inf")}, "--max-queue-wait-s must be a finite number"),
    ({"max_connections": 10**9}, "--max-connections must be at most 65535"),
    ({"request_timeout_s": -1}, "--request-timeout-s must be greater than 0"),
])
def test_nonsense_limits_are_refused_when_the_server_is_made(given, message):
    with pytest.raises(ReviewstarsError, match=message):
        ServeLimits(**given)


@pytest.mark.parametrize("args, message", [
    (["--port", "99999"], "--port must be between 1 and 65535"),
    (["--port", "0"], "--port must be between 1 and 65535"),
    (["--max-wait-ms", "1e308"], "--max-wait-ms must be at most 10000"),
    (["--max-batch", "0"], "--max-batch must be at least 1"),
    (["--host", ""], "--host is empty: give an address to bind"),  # (an unset $HOST bound every interface)
    (["--api-key-file", "/dev/zero"], "--api-key-file /dev/zero: not a file"),  # (read until memory ran out)
])
def test_the_serve_command_refuses_nonsense_in_one_line_before_loading_anything(linear_model, args, message):
    from typer.testing import CliRunner

    from reviewstars.cli import app

    result = CliRunner().invoke(app, ["serve", "--model", str(linear_model), *args])
    assert isinstance(result.exception, ReviewstarsError) and message in str(result.exception)


@pytest.mark.parametrize("key, message", [
    ("a", "REVIEWSTARS_API_KEY: the key must be one word of at least 16 characters"),
    (" my key with spaces inside ", "REVIEWSTARS_API_KEY: the key must be one word of at least 16 characters"),
    ("", "REVIEWSTARS_API_KEY is set but empty: give it a key, or unset it to serve without one"),
])
def test_a_key_from_the_environment_is_held_to_the_key_files_rules(linear_model, key, message):
    """A probe's REVIEWSTARS_API_KEY=a served with a one-letter key; one with spaces locked every
    client out (a sent key loses them); an empty one served with none, silently."""
    from support import run_cli

    result = run_cli("serve", "--model", linear_model, "--port", "1", env={"REVIEWSTARS_API_KEY": key}, columns=400)
    assert result.returncode == 2 and result.stderr.strip() == f"error: {message}", result.stderr


def test_a_port_in_use_is_one_line_before_the_model_loads_and_nothing_says_serving(linear_model):
    from support import free_port, run_cli

    taken = socket.socket()
    taken.bind(("127.0.0.1", free_port()))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = run_cli("serve", "--model", linear_model, "--port", str(port), columns=400)
    finally:
        taken.close()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --port {port}: cannot listen on 127.0.0.1:{port} (Address already in use): "
                                                  "is another server there? Give another --port"]


def test_a_model_served_as_dot_is_named_as_its_folder(linear_model, monkeypatch):
    """`serve --model .` answered /v2/models/lin/infer with "this server serves '.'"."""
    from reviewstars.serving.app import served_name

    monkeypatch.chdir(linear_model)
    assert served_name(".") == served_name(f"../{linear_model.name}/") == linear_model.name
    assert served_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
