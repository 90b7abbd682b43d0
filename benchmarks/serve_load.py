"""Load test of `reviewstars serve` on loopback: micro-batched vs one request at a time,
or good requests among hostile ones.

    python benchmarks/serve_load.py --model runs/linear --generator wrk [--seconds 15]   (runs/linear: trained on all of train)
    python benchmarks/serve_load.py --model runs/bench-minilm-30m [--clients 32] [--requests 640]
    python benchmarks/serve_load.py --model runs/linear --hostile [--requests 400]

--generator wrk (a C load generator, Debian's `wrk`: 1 thread, --clients connections, one
short review a request) measures three servers in turn for --seconds each: the bare
endpoint (`bare_endpoint.py`: FastAPI returning a fixed answer under the same uvicorn
settings, the yardstick for the server's own cost), ours micro-batched, and ours one
request at a time. Target (issue 26): ours >= 80% of the bare endpoint's requests/s, p99
within 2x of its p99. Serve a model trained on the whole training set: one of 500 reviews
(6k n-grams) hid a cost that grows with the vocabulary (scipy copied the coefficients on every
batch: 36% of the bare endpoint with the 229k n-grams of 38k reviews, 76% with 6k). The httpx generator below tops out near 200 requests/s on two cores,
so it measures itself more than the server; it is kept for the hostile mix.

Starts the server twice (--max-batch 64, then --max-batch 1), and each time sends a
fixed number of one-review requests (validation reviews) from concurrent clients; it
stops by itself. Reports throughput, p50/p99 latency and failed requests.
Targets (issue 6): zero failures; batching >= 3x the throughput of one-at-a-time.

--hostile starts it once and makes every tenth request hostile (lone surrogates, a
million integers, a body over the limit, malformed JSON, a chunked body over the
limit, 7.8 MB of nested empty lists, text/plain), while 255 idle connections and one
with half-sent headers are held open and /health is polled every 50 ms. Reports the
answers to each kind, failed good requests (target: 0), the good requests' p50/p99
latency, /health's slowest answer (target: 200 ms), what the server closed and its peak
RSS (VmHWM).
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
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
from _common import ROOT, SHARED_YELP, save

from reviewstars.data import load_data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BARE = "bare:"  # a model name that starts a yardstick of bare_endpoint.py instead: bare:app, bare:bytes_app


def start_server(model: str, max_batch: int = 64, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """`reviewstars serve --model MODEL`, or for "bare:APP" that app of `bare_endpoint.py` under the same uvicorn settings."""
    port = free_port()
    log = tempfile.TemporaryFile()  # not a pipe: a server that logs much would block on a full one
    if model.startswith(BARE):
        from reviewstars.serving.app import uvicorn_options

        options = [f"--{key}={value}" for key, value in uvicorn_options().items()]
        command = [sys.executable, "-m", "uvicorn", f"bare_endpoint:{model.removeprefix(BARE)}", "--app-dir", str(ROOT / "benchmarks"),
                   "--port", str(port), "--log-level", "warning", *options]
    else:
        command = [sys.executable, "-m", "reviewstars.cli", "serve", "--model", model, "--port", str(port), "--max-batch", str(max_batch), *extra]
    return start_command(command, port, log)


def start_command(command: list[str], port: int, log=None) -> tuple[subprocess.Popen, str]:
    """Start a server `command` listening on `port` and wait until its /health answers."""
    log = log or tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log,
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
    nested_lists = b'{"texts": [' + b"[]," * 2_600_000 + b"[]]}"  # 7.8 MB
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
        Shot("nested_lists", 413, lambda: {"content": nested_lists, "headers": ascii_json}),
        Shot("text_plain", 415, lambda: {"content": b'{"texts": ["a page posting unasked"]}', "headers": {"content-type": "text/plain"}}),
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


def hostile_run(model: str, texts: list[str], clients: int, max_seconds: float, idle_connections: int = 255) -> None:
    import threading
    from urllib.parse import urlsplit

    process, url = start_server(model, 64)
    idle: list[socket.socket] = []
    stop, slowest_health = threading.Event(), [0.0]

    def watch_health() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                began = time.perf_counter()
                client.get(f"{url}/health")
                slowest_health[0] = max(slowest_health[0], time.perf_counter() - began)
                stop.wait(0.05)

    try:
        asyncio.run(load(url, [good(text) for text in texts[:64]], clients))  # warm-up
        warm_rss = peak_rss_mb(process.pid)
        where = urlsplit(url)
        idle = [socket.create_connection((where.hostname, where.port)) for _ in range(idle_connections)]
        half = socket.create_connection((where.hostname, where.port))
        half.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")  # never ends
        idle.append(half)
        watcher = threading.Thread(target=watch_health, daemon=True)
        watcher.start()
        result = asyncio.run(load(url, hostile_mix(texts), clients, max_seconds))
        stop.set()
        watcher.join()
        result.update(server_peak_rss_mb=peak_rss_mb(process.pid), server_peak_rss_after_warmup_mb=warm_rss,
                      idle_connections_held=idle_connections, slowest_health_ms=round(slowest_health[0] * 1000, 1))
        kind = httpx.get(f"{url}/model").json()["kind"]
        result["health_after"] = httpx.get(f"{url}/health").status_code
        scraped = httpx.get(f"{url}/metrics").text
        result["server_closed"] = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in scraped.splitlines()
                                   if line.startswith("reviewstars_connections_closed_total{")}
    finally:
        stop.set()
        for sock in idle:
            sock.close()
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


def wrk_binary() -> str | None:
    """Debian's wrk, or the one the GPU kit carries (.device/bin, with its LuaJIT beside it), if it runs here."""
    import shutil
    import stat

    found = shutil.which("wrk")
    if found:
        return found
    carried = ROOT / ".device" / "bin" / "wrk"
    if not carried.is_file():
        return None
    if not os.access(carried, os.X_OK):  # a copy that lost its mode on the way
        carried.chmod(carried.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "LD_LIBRARY_PATH": str(carried.parent)}
    try:
        runs = subprocess.run([str(carried), "--version"], capture_output=True, env=env, timeout=10)
    except OSError:
        return None
    return str(carried) if b"wrk" in runs.stdout + runs.stderr and b"error while loading" not in runs.stderr else None


def _lua_long_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def _client_process(url: str, bodies: list[bytes], connections: int, seconds: float, results) -> None:
    """One process of the fallback generator: `connections` threads, each a keep-alive HTTP/1.1 loop."""
    import http.client
    import threading
    from urllib.parse import urlsplit

    where = urlsplit(url)
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
        mine, bad, i = [], 0, offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                connection.request("POST", "/predict", bodies[i % len(bodies)], {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                bad += response.status != 200
            except (OSError, http.client.HTTPException):
                bad += 1
                connection.close()
                connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
            mine.append(time.perf_counter() - started)
            i += 1
        with lock:
            latencies.extend(mine)
            failed[0] += bad

    threads = [threading.Thread(target=client, args=(k * 7,)) for k in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((latencies, failed[0]))


def python_load(url: str, texts: list[str], connections: int, seconds: float, processes: int | None = None) -> dict:
    """The fallback generator where wrk cannot run: `processes` client processes (half the cores)
    sharing `connections` keep-alive connections. Slower per core than wrk: the JSON says which ran."""
    import multiprocessing

    processes = max(1, min(processes or (os.cpu_count() or 2) // 2, connections))
    bodies = [json.dumps({"texts": [text]}).encode() for text in texts]
    results = multiprocessing.get_context("spawn").Queue()
    shares = [connections // processes + (k < connections % processes) for k in range(processes)]
    workers = [multiprocessing.get_context("spawn").Process(target=_client_process, args=(url, bodies, share, seconds, results))
               for share in shares]
    for worker in workers:
        worker.start()
    latencies, failed = [], 0
    for _ in workers:
        mine, bad = results.get(timeout=seconds + 60)
        latencies += mine
        failed += bad
    for worker in workers:
        worker.join()
    ms = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "requests_per_second": round(len(latencies) / seconds, 1),
            **{f"p{p}_ms": round(float(np.percentile(ms, p)), 3) for p in (50, 90, 99)}, "failed": failed,
            "generator": f"python, {processes} processes"}


def generator_load(url: str, texts: list[str], connections: int, seconds: float) -> dict:
    """wrk where it runs, else the Python processes."""
    return wrk_load(url, texts, connections, seconds) if wrk_binary() else python_load(url, texts, connections, seconds)


def wrk_load(url: str, texts: list[str], connections: int, seconds: float, threads: int = 1) -> dict:
    """`wrk` against POST /predict, one review a request (cycling through `texts`): requests/s,
    latency percentiles, and anything that was not a 200."""
    bodies = ", ".join(_lua_long_string(json.dumps({"texts": [text]})) for text in texts)
    script = ("local bodies = {" + bodies + "}\nlocal i = 0\n"
              "request = function()\n  i = i % #bodies + 1\n"
              '  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[i])\nend\n')
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(ROOT / ".device" / "bin"), os.environ.get("LD_LIBRARY_PATH")]))}
    try:
        done = subprocess.run([binary, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s",
                               "-s", lua.name, f"{url}/predict"], capture_output=True, text=True, timeout=seconds + 60, env=env)
    finally:
        os.unlink(lua.name)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()[-500:]}")
    return {**parse_wrk(done.stdout), "generator": f"wrk, {threads} thread"}


def parse_wrk(report: str) -> dict:
    import re

    def ms(value: str, unit: str) -> float:
        return round(float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit], 3)

    percentiles = {f"p{int(float(p))}_ms": ms(v, u) for p, v, u in re.findall(r"^\s+(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m)\s*$", report, re.M)}
    requests = re.search(r"(\d+) requests in ([\d.]+)(\w+)", report)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    return {
        "requests": int(requests.group(1)) if requests else 0,
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1)),
        **{key: percentiles.get(key) for key in ("p50_ms", "p90_ms", "p99_ms")},
        "failed": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def short_reviews(texts: list[str], count: int = 256, most_chars: int = 300) -> list[str]:
    """Short real reviews, for requests whose cost is the server's, not the model's reading."""
    return [text for text in texts if len(text) <= most_chars][:count] or texts[:count]


def against_bare_endpoint(model: str, texts: list[str], connections: int, seconds: float, one_at_a_time: bool = True,
                          rounds: int = 3, variants: dict[str, tuple[str, ...]] | None = None) -> dict:
    """The bare endpoints, ours micro-batched, ours with each of `variants`' extra `serve`
    options and (optionally) ours one request at a time, all started at once and loaded in
    turn, `rounds` times each for `seconds` (a shared machine's speed drifts by tens of
    percent from minute to minute: interleaved rounds see the same drift); each server's
    median, its start-up seconds, and ours as a share of the bare endpoint's requests/s."""
    import statistics

    servers = [("bare_endpoint", BARE + "app", 64, ()), ("bare_bytes_endpoint", BARE + "bytes_app", 64, ()), ("batched", model, 64, ())]
    servers += [(name, model, 64, extra) for name, extra in (variants or {}).items()]
    servers += [("one_at_a_time", model, 1, ())] if one_at_a_time else []
    started, start_seconds = {}, {}
    try:
        for name, served, max_batch, extra in servers:
            began = time.perf_counter()
            started[name] = start_server(served, max_batch, extra)
            start_seconds[name] = round(time.perf_counter() - began, 1)  # loading, and a GPU's warm-up or graph captures
            generator_load(started[name][1], texts, connections, min(3.0, seconds))  # warm-up
        runs: dict[str, list[dict]] = {name: [] for name, *_ in servers}
        for _ in range(rounds):
            for name, *_ in servers:
                runs[name].append(generator_load(started[name][1], texts, connections, seconds))
        results = {}
        for name, served, *_ in servers:
            median = lambda key: statistics.median(run[key] for run in runs[name])  # noqa: E731
            results[name] = {"requests_per_second": round(median("requests_per_second"), 1), "p50_ms": median("p50_ms"),
                             "p99_ms": median("p99_ms"), "failed": sum(run["failed"] for run in runs[name]),
                             "requests": sum(run["requests"] for run in runs[name]), "generator": runs[name][0]["generator"],
                             "each_run_per_second": [run["requests_per_second"] for run in runs[name]],
                             "start_seconds": start_seconds[name]}
            if not served.startswith(BARE):
                described = httpx.get(f"{started[name][1]}/model").json()
                results[name]["served"] = described["served"]
                results[name]["parameters"] = described.get("parameters")
                if "cuda_graphs" in described:
                    results[name]["cuda_graphs"] = described["cuda_graphs"]
            print(name, results[name], flush=True)
    finally:
        for process, _ in started.values():
            process.terminate()
            process.wait(timeout=30)
    bare = results["bare_endpoint"]
    results["share_of_bare_endpoint"] = round(results["batched"]["requests_per_second"] / bare["requests_per_second"], 3)
    results["p99_over_bare_p99"] = round(results["batched"]["p99_ms"] / bare["p99_ms"], 2) if bare.get("p99_ms") else None
    results["share_of_bare_bytes_endpoint"] = round(results["batched"]["requests_per_second"]
                                                    / results["bare_bytes_endpoint"]["requests_per_second"], 3)
    if one_at_a_time:
        results["batching_speedup"] = round(results["batched"]["requests_per_second"] / results["one_at_a_time"]["requests_per_second"], 2)
    print(f"ours: {results['share_of_bare_endpoint']:.0%} of the bare endpoint's requests/s ({results['share_of_bare_bytes_endpoint']:.0%} "
          f"of the bytes-only one), p99 {results['p99_over_bare_p99']}x its p99")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--hostile", action="store_true", help="one run with every tenth request hostile")
    parser.add_argument("--max-seconds", type=float, default=90, help="--hostile: stop sending after this long")
    parser.add_argument("--generator", choices=("httpx", "wrk"), default="httpx")
    parser.add_argument("--seconds", type=float, default=15, help="--generator wrk: seconds of load per server")
    args = parser.parse_args()
    if args.generator == "wrk":
        texts = short_reviews(list(load_data(args.data)["validation"]["text"]))
        result = against_bare_endpoint(args.model, texts, args.clients, args.seconds)
        kind = "transformer" if (Path(args.model) / "tokenizer.json").is_file() else "linear"
        if kind == "linear" and json.loads((Path(args.model) / "config.json").read_text())["reviewstars"]["settings"].get("features") == "hashing":
            kind = "linear_hashed"  # (a model of more than 200k reviews: its own file, beside the TF-IDF one's)
        save(f"serve_wrk_{kind}", {"model": args.model, "connections": args.clients, "seconds": args.seconds, "rounds": 3, **result})
        return
    texts = list(load_data(args.data)["validation"]["text"])[: args.requests]
    if args.hostile:
        hostile_run(args.model, texts, args.clients, args.max_seconds)
        return
    save("serve_load", {"model": args.model, "clients": args.clients, **batched_vs_one_at_a_time(args.model, texts, args.clients)})


if __name__ == "__main__":
    main()
