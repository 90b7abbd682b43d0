"""Load test of `reviewstars serve` on loopback: micro-batched vs one request at a time.

    python benchmarks/serve_load.py --model runs/bench-minilm-30m [--clients 32] [--requests 640]

Starts the server twice (--max-batch 64, then --max-batch 1), and each time sends a
fixed number of one-review requests (validation reviews) from concurrent clients; it
stops by itself. Reports throughput, p50/p99 latency and failed requests.
Targets (issue 6): zero failures; batching >= 3x the throughput of one-at-a-time.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
from _common import SHARED_YELP, save

from reviewstars.data import load_data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, max_batch: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "reviewstars.cli", "serve", "--model", model, "--port", str(port),
                                "--max-batch", str(max_batch)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(process.communicate()[1].decode()[-2000:])


async def load(url: str, texts: list[str], clients: int) -> dict:
    pending = iter(texts)
    latencies, failures = [], 0

    async def client(session: httpx.AsyncClient):
        nonlocal failures
        for text in pending:  # the shared iterator bounds the total number of requests
            started = time.perf_counter()
            try:
                response = await session.post(f"{url}/predict", json={"texts": [text]}, timeout=120)
                ok = response.status_code == 200 and len(response.json()["predictions"]) == 1
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        seconds = time.perf_counter() - started
    latencies = np.asarray(latencies) * 1000
    return {"requests": len(texts), "failed": failures, "seconds": round(seconds, 2),
            "requests_per_second": round(len(texts) / seconds, 1),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p99_ms": round(float(np.percentile(latencies, 99)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=640)
    args = parser.parse_args()
    texts = list(load_data(args.data)["validation"]["text"])[: args.requests]
    results = {}
    for name, max_batch in (("batched", 64), ("one_at_a_time", 1)):
        process, url = start_server(args.model, max_batch)
        try:
            asyncio.run(load(url, texts[:64], args.clients))  # warm-up
            results[name] = {"max_batch": max_batch, **asyncio.run(load(url, texts, args.clients))}
            results[name]["served"] = httpx.get(f"{url}/model").json()["served"]
        finally:
            process.terminate()
            process.wait(timeout=30)
        print(name, results[name])
    results["batching_speedup"] = round(results["batched"]["requests_per_second"] / results["one_at_a_time"]["requests_per_second"], 2)
    print("batching speedup:", results["batching_speedup"])
    save("serve_load", {"model": args.model, "clients": args.clients, **results})


if __name__ == "__main__":
    main()
