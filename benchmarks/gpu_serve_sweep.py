"""Two questions a 3-minute GPU run left open, in one short call (about 3 minutes on an H200):

(a) tokenizing the training set: the tokenizer wrapper's batch call (what training used) against the
    Rust backend's `encode_batch_fast` (what it uses now), on every training review, interleaved;
(b) `serve` with MiniLM under wrk (32 connections, one short review a request): the bare FastAPI
    endpoint beside our server with the default micro-batching (no wait while the model is idle)
    and with short waits for company and a smaller largest batch, each loaded in turn, twice.

    run(command='source .device/setup.sh && python3 benchmarks/gpu_serve_sweep.py --out "$OUT"', carry=[".device"])

Serving speed does not depend on what the weights learned: the model is MiniLM with a fresh
5-star head, saved as `train` saves one. `--cpu-smoke` runs it all here with tiny sizes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED_YELP, save
from serve_load import BARE, generator_load, short_reviews, start_server, wrk_binary

VARIANTS = {  # name: extra `serve` options
    "default (wait 0)": (),
    "wait 1 ms": ("--max-wait-ms", "1"),
    "wait 3 ms": ("--max-wait-ms", "3"),
    "max batch 32": ("--max-batch", "32"),
}


def tokenizing(texts: list[str], repeats: int) -> dict:
    from reviewstars.models.pretrained import minilm_path
    from reviewstars.tokenization import encode, load_tokenizer, pieces_tokenizer

    tokenizer = load_tokenizer(str(minilm_path()))
    seconds = {"wrapper": [], "rust batch call": []}
    for _ in range(repeats):
        for name in seconds:
            started = time.perf_counter()
            ids = encode(tokenizer, texts, 128, "head+tail", backend=pieces_tokenizer(tokenizer) if name != "wrapper" else None)
            seconds[name].append(round(time.perf_counter() - started, 3))
    found = {"reviews": len(texts), "seconds": seconds, "cores": len(os.sched_getaffinity(0)), "last_ids_rows": len(ids),
             "speedup": round(statistics.median(seconds["wrapper"]) / statistics.median(seconds["rust batch call"]), 2)}
    print("tokenizing", found, flush=True)
    return found


def minilm_folder(folder: Path) -> str:
    from reviewstars.models.pretrained import load_for_fine_tuning
    from reviewstars.models.transformer import TransformerPredictor

    model, tokenizer = load_for_fine_tuning("minilm")
    TransformerPredictor(model, tokenizer, max_length=128, truncation="head+tail").save(folder)
    return str(folder)


def serving(model: str, texts: list[str], connections: int, seconds: float, rounds: int) -> dict:
    servers = {"bare_endpoint": (BARE + "app", ())} | {name: (model, extra) for name, extra in VARIANTS.items()}
    started, runs = {}, {name: [] for name in servers}
    try:
        for name, (served, extra) in servers.items():
            started[name] = start_server(served, 64, extra)
            generator_load(started[name][1], texts, connections, 2.0)  # warm-up
        for _ in range(rounds):
            for name in servers:
                runs[name].append(generator_load(started[name][1], texts, connections, seconds))
    finally:
        for process, _ in started.values():
            process.terminate()
            process.wait(timeout=30)
    results = {}
    for name, measured in runs.items():
        median = lambda key: statistics.median(run[key] for run in measured)  # noqa: E731
        results[name] = {"requests_per_second": round(median("requests_per_second"), 1), "p50_ms": median("p50_ms"),
                         "p99_ms": median("p99_ms"), "failed": sum(run["failed"] for run in measured),
                         "each_run_per_second": [run["requests_per_second"] for run in measured]}
        print(name, results[name], flush=True)
    return {"connections": connections, "seconds": seconds, "rounds": rounds, "generator": "wrk" if wrk_binary() else "python",
            **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true")
    parser.add_argument("--out", help="also copy the JSON here (the device tool's $OUT)")
    args = parser.parse_args()
    if (ROOT / ".device" / "minilm").is_dir() and not args.cpu_smoke:  # the kit's rebuilt copy: see gpu.py
        from reviewstars.models.pretrained import UNVERIFIED_MINILM

        os.environ.setdefault(UNVERIFIED_MINILM, "1")
    import torch

    from reviewstars.data import load_data

    packed = ROOT / ".device" / "data" / "yelp"
    data = load_data(str(SHARED_YELP if SHARED_YELP.is_dir() or not packed.is_dir() else packed))
    train_texts = list(data["train"]["text"])
    summary = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    name = "gpu_serve_sweep_cpu_smoke" if args.cpu_smoke else "gpu_serve_sweep"

    def write() -> None:
        path = save(name, summary)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(args.out) / path.name)

    summary["tokenizing"] = tokenizing(train_texts[:2000] if args.cpu_smoke else train_texts, 1 if args.cpu_smoke else 2)
    write()
    with tempfile.TemporaryDirectory() as scratch:
        model = minilm_folder(Path(scratch) / "minilm")
        texts = short_reviews(list(data["validation"]["text"]))
        summary["serve"] = serving(model, texts, 4 if args.cpu_smoke else 32, 2.0 if args.cpu_smoke else 8.0, 1 if args.cpu_smoke else 2)
    write()


if __name__ == "__main__":
    main()
