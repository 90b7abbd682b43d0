"""Load test of `reviewstars serve` on loopback: micro-batched vs one request at a time,
or good requests among hostile ones.

    python benchmarks/serve_load.py --model runs/bench-minilm-30m [--clients 32] [--requests 640]
    python benchmarks/serve_load.py --model runs/linear --hostile [--requests 400]

Starts the server twice (--max-batch 64, then --max-batch 1), and each time sends a
fixed number of one-review requests (validation reviews) from concurrent clients; it
stops by itself. Reports throughput, p50/p99 latency and failed requests.
Targets (issue 6): zero failures; batching >= 3x the throughput of one-at-a-time.

--hostile starts it once and makes every tenth request hostile (lone surrogates, a
million integers, a body over the limit, malformed JSON, a chunked body over the
limit). Reports the answers to each kind, failed good requests (target: 0), the good
requests' p50/p99 latency and the server's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import httpx
import numpy as np
from _common import ROOT, SHARED_YELP, save

from reviewstars.data import load_data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, max_batch: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = tempfile.TemporaryFile()  # not a pipe: a server that logs much would block on a full one
    process = subprocess.Popen([sys.executable, "-m", "reviewstars.cli", "serve", "--model", model, "--port", str(port),
                                "--max-batch", str(max_batch)], stdout=subprocess.DEVNULL, stderr=log,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])})  # this checkout's server first, then what PYTHONPATH adds (the device kit's packages)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    process.wait()
    log.seek(0)
    raise RuntimeError(log.read().decode()[-2000:])


@dataclass(frozen=True)
class Shot:
    """One request: its kind ("good" or a hostile one), the status it should get, and how to send it."""

    kind: str
    expect: int
    request: Callable[[], dict]  # httpx keyword arguments, made at sending time (a chunked body is used up once sent)


def good(text: str) -> Shot:
    return Shot("good", 200, lambda: {"json": {"texts": [text]}})


def hostile_shots() -> list[Shot]:
    """One of each hostile kind; the big bodies are built once and shared."""
    ascii_json = {"content-type": "application/json"}
    million_integers = b'{"texts": [' + b",".join([b"1"] * 1_000_000) + b"]}"
    over_limit = b"x" * (9 << 20)  # the default limit is 8 MiB

    async def chunked_over_limit():
        for _ in range(32):
            yield b"y" * (1 << 20)

    return [
        Shot("lone_surrogates", 200, lambda: {"content": json.dumps({"texts": ["broken \ud800 text \udfff"]}).encode(), "headers": ascii_json}),
        Shot("million_integers", 413, lambda: {"content": million_integers, "headers": ascii_json}),
        Shot("body_over_limit", 413, lambda: {"content": over_limit, "headers": ascii_json}),
        Shot("malformed_json", 422, lambda: {"content": b'{"texts": ["unclosed', "headers": ascii_json}),
        Shot("chunked_over_limit", 413, lambda: {"content": chunked_over_limit(), "headers": ascii_json}),
    ]


def hostile_mix(texts: list[str], every: int = 10) -> list[Shot]:
    """The good requests with every `every`-th one hostile, the hostile kinds in turn."""
    hostile, shots = hostile_shots(), []
    for i, text in enumerate(texts):
        shots.append(hostile[(i // every) % len(hostile)] if i % every == every - 1 else good(text))
    return shots


async def load(url: str, shots: list[Shot], clients: int, max_seconds: float = 600) -> dict:
    pending = iter(shots)
    latencies, failures, answers = [], 0, Counter()
    stop_at = time.perf_counter() + max_seconds

    async def client(session: httpx.AsyncClient):
        nonlocal failures
        for shot in pending:  # the shared iterator bounds the total number of requests
            if time.perf_counter() > stop_at:
                break
            started = time.perf_counter()
            try:
                response = await session.post(f"{url}/predict", timeout=120, **shot.request())
                status = response.status_code
                ok = status == shot.expect and (shot.kind != "good" or len(response.json()["predictions"]) == 1)
            except httpx.HTTPError as error:
                status, ok = type(error).__name__, False
            answers[f"{shot.kind} {status}"] += 1
            if shot.kind == "good":
                latencies.append(time.perf_counter() - started)
                failures += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        seconds = time.perf_counter() - started
    sent = sum(answers.values())
    latencies = np.asarray(latencies) * 1000
    return {"requests": sent, "failed": failures, "seconds": round(seconds, 2),
            "requests_per_second": round(sent / seconds, 1),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p99_ms": round(float(np.percentile(latencies, 99)), 1),
            "answers": dict(sorted(answers.items()))}


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident memory (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return round(kib / 1024, 1)


def hostile_run(model: str, texts: list[str], clients: int, max_seconds: float) -> None:
    process, url = start_server(model, 64)
    try:
        asyncio.run(load(url, [good(text) for text in texts[:64]], clients))  # warm-up
        warm_rss = peak_rss_mb(process.pid)
        result = asyncio.run(load(url, hostile_mix(texts), clients, max_seconds))
        result.update(server_peak_rss_mb=peak_rss_mb(process.pid), server_peak_rss_after_warmup_mb=warm_rss)
        kind = httpx.get(f"{url}/model").json()["kind"]
        result["health_after"] = httpx.get(f"{url}/health").status_code
    finally:
        process.terminate()
        process.wait(timeout=30)
    print("hostile mix", result)
    save(f"serve_load_hostile_{kind}", {"model": model, "clients": clients, "hostile_share": 0.1, **result})


def batched_vs_one_at_a_time(model: str, texts: list[str], clients: int, max_seconds: float = 600) -> dict:
    """The server with --max-batch 64, then 1, each sent one-review requests for `texts`."""
    results = {}
    for name, max_batch in (("batched", 64), ("one_at_a_time", 1)):
        process, url = start_server(model, max_batch)
        try:
            asyncio.run(load(url, [good(text) for text in texts[:64]], clients))  # warm-up
            results[name] = {"max_batch": max_batch, **asyncio.run(load(url, [good(text) for text in texts], clients, max_seconds))}
            results[name]["served"] = httpx.get(f"{url}/model").json()["served"]
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(name, results[name])
    results["batching_speedup"] = round(results["batched"]["requests_per_second"] / results["one_at_a_time"]["requests_per_second"], 2)
    print("batching speedup:", results["batching_speedup"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--hostile", action="store_true", help="one run with every tenth request hostile")
    parser.add_argument("--max-seconds", type=float, default=90, help="--hostile: stop sending after this long")
    args = parser.parse_args()
    texts = list(load_data(args.data)["validation"]["text"])[: args.requests]
    if args.hostile:
        hostile_run(args.model, texts, args.clients, args.max_seconds)
        return
    save("serve_load", {"model": args.model, "clients": args.clients, **batched_vs_one_at_a_time(args.model, texts, args.clients)})


if __name__ == "__main__":
    main()
