"""A training file larger than memory: how much memory and time before the first optimizer step?

    python benchmarks/big_training_file.py [--rows 2000000] [--budget 2m] [--file /tmp/...parquet]
    python benchmarks/big_training_file.py --source /tmp/before/src   # another checkout's code: the "before" run

Builds a Parquet file of `--rows` reviews by resampling the shared Yelp train.parquet (written
in row groups, to /tmp by default; kept for the next run), then runs what a user runs,

    reviewstars train --model scratch --data FILE --time-budget 2m --output OUT

in a process of its own, with a fresh cache (no vocabulary or tokenized reviews from an
earlier run). It follows the process's resident memory (killed past `--limit-gb`), reads
its peak (ru_maxrss) when it ends, timestamps the lines it prints, and reads from the model
folder when the first optimizer step began and the peak memory then (`plan.first_step`).
Code from before that record shows only when its plan line was printed: the Trainer starts
right after it. `--tokenization` also times tokenizing the shared train.parquet four ways.
Each run is kept in benchmarks/results/big_training_file.json under its label (before,
after, ...), beside the others.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, SHARED_YELP, save

ROW_GROUP = 50_000


def build_file(path: Path, rows: int, seed: int = 0) -> Path:
    """`rows` reviews drawn (with replacement, seeded) from the shared train.parquet, written a row group at a time."""
    import numpy as np
    import pyarrow.parquet as pq

    if path.is_file() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    pool = pq.read_table(SHARED_YELP / "train.parquet", columns=["text", "label"])
    rng = np.random.default_rng(seed)
    partial = path.with_name(path.name + ".partial")
    with pq.ParquetWriter(partial, pool.schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            writer.write_table(pool.take(rng.integers(0, len(pool), min(ROW_GROUP, rows - start))), row_group_size=ROW_GROUP)
    partial.replace(path)
    return path


def _watch(process: subprocess.Popen, limit_bytes: float, seen: dict) -> None:
    """The process tree's resident memory every 0.2 s; past the limit the process is killed."""
    import psutil

    try:
        root = psutil.Process(process.pid)
        while process.poll() is None:
            rss = 0
            for member in [root, *root.children(recursive=True)]:
                try:
                    rss += member.memory_info().rss
                except psutil.Error:
                    pass
            seen["rss_max"] = max(seen.get("rss_max", 0), rss)
            if rss > limit_bytes:
                seen["killed_at_seconds"] = round(time.perf_counter() - seen["started"], 1)
                process.kill()
                return
            time.sleep(0.2)
    except psutil.Error:
        return


def run_training(data: Path, budget: str, source: str | None, limit_gb: float, timeout: float, train_size: int | None = None) -> dict:
    output = Path(tempfile.mkdtemp(prefix="reviewstars-big-")) / "model"
    cache = Path(tempfile.mkdtemp(prefix="reviewstars-big-cache-"))
    env = {**os.environ, "COLUMNS": "200", "REVIEWSTARS_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    if source:
        env["PYTHONPATH"] = source  # before the editable install's path
    command = [sys.executable, "-m", "reviewstars.cli", "train", "--model", "scratch", "--data", str(data),
               "--time-budget", budget, "--output", str(output), *(["--train-size", str(train_size)] if train_size else [])]
    seen: dict = {"started": time.perf_counter()}
    launched = time.time()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as process:
        watcher = threading.Thread(target=_watch, args=(process, limit_gb * 2**30, seen), daemon=True)
        watcher.start()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        for line in process.stdout:
            lines.append((round(time.perf_counter() - seen["started"], 1), line.rstrip()))
            print(f"[{lines[-1][0]:7.1f} s] {line.rstrip()}", flush=True)
        timer.cancel()
    wall = time.perf_counter() - seen["started"]
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux: the largest child ended so far
    config = output / "config.json"
    training = json.loads(config.read_text())["reviewstars"]["training"] if config.is_file() else {}
    plan = training.get("plan") or {}
    first_step = plan.get("first_step") or {}
    plan_line = next((t for t, text in lines if text.startswith("scratch: plan ")), None)
    result = {
        "command": " ".join(["reviewstars", *command[3:]]),
        "source": source or "this checkout",
        "returncode": process.returncode,
        "killed_at_seconds": seen.get("killed_at_seconds"),
        "limit_gb": limit_gb,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],  # a machine shared with other work runs slower
        "timed_out": process.returncode != 0 and wall >= timeout,
        "wall_seconds": round(wall, 1),
        "peak_rss_gb": round(peak_kb / 2**20, 3),
        "peak_rss_polled_gb": round(seen.get("rss_max", 0) / 2**30, 3),
        "seconds_to_first_step": round(first_step["started"] - launched, 1) if first_step else None,
        "peak_rss_at_first_step_gb": round(first_step["peak_memory_mb"] / 1024, 3) if first_step else None,
        "seconds_to_plan_line": plan_line,
        "sample_line": next((text for _, text in lines if "sampled" in text), None),
        "train_examples": training.get("train_examples"),
        "train_examples_seen": training.get("train_examples_seen"),
        "steps": training.get("steps"),
        "held_out_examples": training.get("held_out_examples"),
        "time_ledger": training.get("time_ledger") or _ledger(output),
        "accuracy_held_out": _accuracy(output),
        "lines": [[t, text[:300]] for t, text in lines if not text.startswith(("│", "┃", "┏", "┗", "┡", "└", "┌"))][:12],
    }
    shutil.rmtree(output.parent, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return result


def tokenization_speed(repeats: int = 3) -> dict:
    """Seconds to tokenize the shared train.parquet (38,748 reviews, max_length 256, head+tail) four
    ways, best of `repeats`: the code before (every id of every review from the Rust batch call,
    cut in Python, `Dataset.from_dict`), this code (cut inside the batch call, Arrow columns), and
    `datasets.map(batched=True)` in memory and cached to a file (what several processes could share)."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    from reviewstars.text import readable
    from reviewstars.tokenization import Encoder, _piece_ids, pieces_tokenizer, special_frame, train_wordpiece, truncate
    from reviewstars.training.tokenized import _tokenized

    table = pq.read_table(SHARED_YELP / "train.parquet", columns=["text", "label"])
    split = Dataset.from_dict({"text": table.column("text").to_pylist(), "label": table.column("label").to_pylist()})
    texts, labels = list(split["text"]), np.asarray(split["label"], dtype=np.int64)
    tokenizer = train_wordpiece(texts, 8000)

    def before():
        prefix, suffix = special_frame(tokenizer)
        budget = 256 - len(prefix) - len(suffix)
        ids = [prefix + truncate(piece, budget) + suffix for piece in _piece_ids(tokenizer, [readable(t) for t in texts],
                                                                                  pieces_tokenizer(tokenizer))]
        return Dataset.from_dict({"input_ids": ids, "label": labels.tolist(), "length": [len(i) for i in ids]})

    def mapped(cache_file: str | None):
        encoder = Encoder(tokenizer, 256, backend=pieces_tokenizer(tokenizer))

        def tokenize(batch):
            ids = encoder(batch["text"])
            return {"input_ids": ids, "length": [len(i) for i in ids]}
        return split.map(tokenize, batched=True, batch_size=1000, remove_columns=["text"], cache_file_name=cache_file,
                         load_from_cache_file=False)

    with tempfile.TemporaryDirectory() as folder:
        ways = {"before: ids uncut from encode_batch_fast, cut in Python, from_dict": before,
                "now: cut inside encode_batch_fast, Arrow columns": lambda: _tokenized(split, labels, Encoder(
                    tokenizer, 256, backend=pieces_tokenizer(tokenizer))),
                "datasets.map(batched=True), in memory": lambda: mapped(None),
                "datasets.map(batched=True), cached to a file": lambda: mapped(str(Path(folder) / "tokens.arrow"))}
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        results = {}
        for _ in range(repeats):  # interleaved: a busy machine slows all of them alike
            for name, way in ways.items():
                started = time.perf_counter()
                results[name] = way()
                seconds[name].append(round(time.perf_counter() - started, 2))
    reference = results[next(iter(ways))]["input_ids"]
    return {"reviews": len(texts), "max_length": 256, "truncation": "head+tail", "seconds_each_run": seconds,
            "best_seconds": {name: min(runs) for name, runs in seconds.items()},
            "median_seconds": {name: float(np.median(runs)) for name, runs in seconds.items()},
            "same_ids": {name: result["input_ids"] == reference for name, result in results.items()}}


def _ledger(output: Path) -> dict | None:
    path = output / "time_ledger.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _accuracy(output: Path) -> float | None:
    path = output / "metrics.json"
    return round(json.loads(path.read_text())["accuracy"], 4) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--file", default=None, help="the Parquet file to build and train on (default: /tmp/reviewstars-big-ROWS.parquet)")
    parser.add_argument("--budget", default="2m")
    parser.add_argument("--source", default=None, help="run another checkout's src/ (e.g. the code before a change)")
    parser.add_argument("--label", default=None, help="the run's name in the results (default: before with --source, else after)")
    parser.add_argument("--train-size", type=int, default=None, help="pass --train-size N to the run")
    parser.add_argument("--limit-gb", type=float, default=10.0, help="kill the run when its memory passes this")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--tokenization", action="store_true", help="also time tokenizing the shared train.parquet four ways")
    args = parser.parse_args()

    path = Path(args.file or Path(tempfile.gettempdir()) / f"reviewstars-big-{args.rows}.parquet")
    started = time.perf_counter()
    build_file(path, args.rows)
    built = round(time.perf_counter() - started, 1)
    run = run_training(path, args.budget, args.source, args.limit_gb, args.timeout, args.train_size)
    run.update(rows=args.rows, file_gb=round(path.stat().st_size / 2**30, 3), build_seconds=built, budget=args.budget)
    print()
    for key in ("source", "returncode", "killed_at_seconds", "peak_rss_gb", "seconds_to_first_step", "peak_rss_at_first_step_gb",
                "seconds_to_plan_line", "train_examples", "steps", "wall_seconds", "sample_line"):
        print(f"{key:>28}: {run[key]}")
    previous = RESULTS / "big_training_file.json"
    result = {key: value for key, value in json.loads(previous.read_text()).items() if key in ("runs", "tokenization")} \
        if previous.is_file() else {}
    result["runs"] = {**result.get("runs", {}), args.label or ("before" if args.source else "after"): run}
    if args.tokenization:
        result["tokenization"] = tokenization_speed()
        for name, seconds in result["tokenization"]["median_seconds"].items():
            print(f"{seconds:8.2f} s  {name}")
    save("big_training_file", result)


if __name__ == "__main__":
    main()
