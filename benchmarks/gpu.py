"""Everything issue 26 asks of a GPU, in one process and one JSON (`benchmarks/results/gpu.json`),
in under 9 minutes on one H100/H200, each part explaining itself.

On the lent GPU machine, after `bash ../shared/device/pack && bash benchmarks/gpu_kit.sh` here:

    run(command='source .device/setup.sh && python3 benchmarks/gpu.py --out "$OUT"', carry=[".device"], timeout_s=600)

(0) machine: GPU, torch, transformers, cores; whether uvloop, httptools and wrk are there.
(a) train: `train --model minilm --time-budget 3m` with the command line's defaults, on the
    38,748 training reviews: the plan (passes, where it ends), steps, passes, why it ended,
    the time ledger (where every second of the run went), reviews/s, validation accuracy.
(b) predict: that model on the 2,000 validation reviews, ours (bf16) and ours in fp32 vs
    `transformers.pipeline("text-classification", batch_size=64)`, same truncation (the first
    256 tokens), interleaved, median of 3: reviews/s, agreement, and each stage of ours
    (tokenize, batch, forward, waiting for batches, device); then ours on 20,000 training
    reviews, where fixed costs matter less.
(c) overhead: ours with the forward pass replaced by a no-op against the fast tokenizer
    alone, on the same 20,000 reviews (target: ours >= 80% of the tokenizer's speed).
(d) serve: wrk (1 thread, 32 connections, one short review a request; carried by the kit)
    against the bare FastAPI endpoints and ours with MiniLM: micro-batched with each batch
    shape a CUDA graph (the default; how many shapes were captured, and the first failure if
    any), micro-batched with the eager forward (`--no-cuda-graphs`), and one at a time:
    requests/s, p50/p90/p99, failures, texts per batch, start-up seconds.

Each part is written to the JSON as soon as it is done (and to --out), a failed part as its
error, so a cut-short run keeps what it measured. Without a CUDA GPU it says so and exits 0.
`--cpu-smoke` runs the same code on this CPU with tiny sizes into `gpu_cpu_smoke.json`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from _common import ROOT, SHARED_YELP, save
from predict_overhead import no_op_forward
from serve_load import against_bare_endpoint, short_reviews, wrk_binary

from reviewstars.data import DataSettings, load_data
from reviewstars.ledger import ledger_line
from reviewstars.models import load_predictor
from reviewstars.training import TrainSettings, parse_duration
from reviewstars.training.settings import parse_batch_size


@dataclass(frozen=True)
class Sizes:
    budget: str             # --time-budget
    max_length: int | None  # training's --max-length (None: the kind's own under a budget, 128)
    train_size: int | None  # None: every training review
    dev_size: int
    reviews: int            # validation reviews scored and predicted
    many: int               # training reviews predicted in the large run and the overhead part
    repeats: int            # timed runs of each predictor (median kept)
    clients: int            # wrk's connections
    serve_seconds: float    # wrk's load on each server


ON_GPU = Sizes(budget="3m", max_length=None, train_size=None, dev_size=500, reviews=2000, many=20_000, repeats=3, clients=32,
               serve_seconds=10)
CPU_SMOKE = Sizes(budget="30s", max_length=64, train_size=1000, dev_size=100, reviews=100, many=500, repeats=1, clients=4,
                  serve_seconds=2)
AGREEMENT_TARGET = 0.995
PREDICT_TARGET = 15_000
SERVE_TARGET, SERVE_P99_MS = 1_500, 100  # MiniLM, 32 connections


def machine_part(device: str) -> dict:
    import transformers

    return {
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "torch": torch.__version__, "transformers": transformers.__version__, "cores": os.cpu_count(),
        "uvloop": importlib.util.find_spec("uvloop") is not None, "httptools": importlib.util.find_spec("httptools") is not None,
        "wrk": wrk_binary(),
    }


TOKENIZER_PROBE = """
import sys, time, json
from tokenizers import Tokenizer
tokenizer = Tokenizer.from_file(sys.argv[1])
tokenizer.no_truncation(); tokenizer.no_padding()
texts = json.load(open(sys.argv[2]))
tokenizer.encode_batch_fast(texts[:500])
started = time.perf_counter()
tokenizer.encode_batch_fast(texts)
print(len(texts) / (time.perf_counter() - started))
"""


def diagnose_part(texts: list[str], device: str) -> dict:
    """What the host around the GPU can do: its cores as this process sees them, one core's
    Python speed, and the Rust tokenizer's speed with 1, 4 and every thread."""
    import subprocess
    import sys

    from reviewstars.models.pretrained import minilm_path

    found: dict = {"cpus_visible": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
                   "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM")}
    for path in ("/sys/fs/cgroup/cpu.max", "/proc/loadavg"):
        try:
            found[path] = Path(path).read_text().strip()
        except OSError:
            pass
    try:
        found["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    started = time.perf_counter()
    sum(i * i for i in range(3_000_000))
    found["python_loop_seconds"] = round(time.perf_counter() - started, 3)  # 3M squares summed (0.15 s on the dev machine's core)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as sample:
        json.dump(texts, sample)
    rates = {}
    for threads in (1, 4, os.cpu_count() or 1):
        env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true"}
        done = subprocess.run([sys.executable, "-c", TOKENIZER_PROBE, str(minilm_path() / "tokenizer.json"), sample.name],
                              capture_output=True, text=True, env=env, timeout=120)
        rates[threads] = round(float(done.stdout.strip() or 0), 1) if done.returncode == 0 else done.stderr[-300:]
    os.unlink(sample.name)
    found["tokenizer_reviews_per_second_by_threads"] = rates
    if device == "cuda":
        found["training_steps"] = training_step_pace(texts)
    print(f"diagnose: {found}", flush=True)
    return found


def training_step_pace(texts: list[str]) -> dict:
    """Seconds a training step of MiniLM takes in a plain PyTorch loop (bf16 autocast, the
    [CLS]-only forward, fused AdamW, clipping), by batch size: what the Trainer's steps could be."""
    from reviewstars.models.first_token import FirstTokenTraining
    from reviewstars.models.pretrained import load_for_fine_tuning
    from reviewstars.tokenization import BatchPacker, encode_pieces, pieces_tokenizer

    model, tokenizer = load_for_fine_tuning("minilm")
    model = model.cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    packer, pieces = BatchPacker(tokenizer, 128, "head+tail"), encode_pieces(tokenizer, texts[:4096], pieces_tokenizer(tokenizer))
    pace = {}
    for batch_size in (16, 64, 128):
        batches = [(torch.from_numpy(ids).cuda(), torch.from_numpy(mask).cuda(), torch.randint(0, 5, (len(ids),)).cuda())
                   for _, ids, mask in packer.batches(pieces, batch_size)][:40]
        for synced in (False, True):
            for k, (ids, mask, labels) in enumerate(batches):
                if k == 10:
                    torch.cuda.synchronize()
                    started = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = FirstTokenTraining(model)(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if synced:
                    loss.item()
            torch.cuda.synchronize()
            pace[f"batch {batch_size}{', synced' if synced else ''}"] = round((time.perf_counter() - started) / (len(batches) - 10), 5)
    return {"seconds_per_step": pace}


def train_minilm(data: str, folder: Path, sizes: Sizes, batch_size: int | str, device: str) -> dict:
    from reviewstars.jobs import train

    settings = TrainSettings(time_budget=parse_duration(sizes.budget), max_length=sizes.max_length, batch_size=batch_size)
    result = train("minilm", DataSettings(data, train_size=sizes.train_size, eval_size=sizes.reviews, dev_size=sizes.dev_size),
                   folder, transformer=settings, device=device)
    seen, plan, ledger = result.train_examples_seen, result.plan, result.time_ledger
    print(f"train: plan {plan['expected_steps']:,} steps ({plan['expected_passes_over_data']:g} passes, ends by {plan['ends']}); "
          f"ran {result.steps:,} steps, {seen / result.train_examples:.2f} passes, ended by {result.ended}; "
          f"validation {result.metrics.accuracy:.4f}", flush=True)
    print(f"train: where the {ledger['wall']:.0f} s went: {ledger_line(ledger, top=8)}", flush=True)
    return {
        "budget_seconds": plan["budget_seconds"], "train_seconds": result.train_seconds, "steps": result.steps,
        "reviews_seen": seen, "passes": round(seen / result.train_examples, 3), "ended": result.ended,
        "reviews_per_second": round(seen / result.train_seconds, 1),
        "reviews_per_second_in_steps": round(seen / ledger["optimizer steps"], 1) if ledger.get("optimizer steps") else None,
        "budget_share_in_steps": result.budget_share_in_steps,
        "ledger_share_in_steps": round(ledger.get("optimizer steps", 0) / ledger["wall"], 4),
        "time_ledger": ledger,
        "batch_size": result.settings["batch_size"], "learning_rate": result.settings["learning_rate"],
        "max_length": result.settings["max_length"], "max_passes": result.settings.get("max_passes"),
        "validation_accuracy": result.metrics.accuracy, "validation_macro_f1": result.metrics.macro_f1,
        "final_dev_accuracy": result.final_dev_accuracy, "calibration": result.calibration, "plan": plan,
    }


def pipeline_stars(folder: Path, predictor, device: str) -> Callable[[list[str]], np.ndarray]:
    """The lesson's way: `transformers.pipeline`, in batches of 64, truncated as ours is."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder), device=0 if device == "cuda" else -1, batch_size=64)
    star_of = dict(zip(predictor.model.config.id2label.values(), predictor.column_stars))
    return lambda texts: np.array([star_of[o["label"]] for o in classify(texts, truncation=True, max_length=predictor.max_length)])


def our_stars(predictor, mixed_precision: bool) -> Callable[[list[str]], np.ndarray]:
    def predict(texts: list[str]) -> np.ndarray:
        predictor.mixed_precision = mixed_precision
        return predictor.predict(texts)

    return predict


def interleaved(contenders: dict[str, Callable], texts: list[str], repeats: int, stages_of=None) -> tuple[dict, dict, dict]:
    """(stars, seconds of each run, stages of the last run) for each contender, interleaved."""
    stars, seconds, stages = {}, {name: [] for name in contenders}, {}
    for predict in contenders.values():
        predict(texts[:64])  # warm-up: CUDA kernels, cuBLAS handles, pinned pages
    for _ in range(repeats):
        for name, predict in contenders.items():
            started = time.perf_counter()
            stars[name] = predict(texts)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - started)
            if stages_of is not None and name in stages_of:
                stages[name] = dict(stages_of[name].last_stages)
    return stars, seconds, stages


def predict_speed(folder: Path, texts: list[str], labels: np.ndarray, many: list[str], repeats: int, device: str) -> dict:
    """Ours (bf16 on CUDA), ours in fp32 and the pipeline, interleaved, each scored by its median time."""
    from reviewstars.devices import half_precision_dtype

    ours = load_predictor(folder, device=device)
    ours.truncation, ours.max_length = "head", 256  # what the pipeline does: the first 256 tokens
    contenders = {"ours": our_stars(ours, True), "ours_fp32": our_stars(ours, False), "pipeline": pipeline_stars(folder, ours, device)}
    stars, seconds, stages = interleaved(contenders, texts, repeats, {"ours": ours, "ours_fp32": ours})
    rate = {name: round(len(texts) / statistics.median(times), 1) for name, times in seconds.items()}
    same = lambda a, b: round(float((stars[a] == stars[b]).mean()), 4)  # noqa: E731
    print(f"predict, {len(texts):,} reviews: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rate.items())
          + f"; ours {rate['ours'] / rate['pipeline']:.2f}x the pipeline; bf16 = fp32 on {same('ours', 'ours_fp32'):.2%}", flush=True)
    print(f"predict, stages of ours: {stages.get('ours')}", flush=True)
    _, many_seconds, many_stages = interleaved({"ours": our_stars(ours, True)}, many, max(1, repeats - 1), {"ours": ours})
    many_rate = round(len(many) / statistics.median(many_seconds["ours"]), 1)
    print(f"predict, {len(many):,} reviews: ours {many_rate:,.0f}/s; stages {many_stages.get('ours')}", flush=True)
    return {
        "reviews": len(texts), "max_length": ours.max_length, "repeats": repeats,
        "ours_precision": str(half_precision_dtype()).removeprefix("torch.") if device == "cuda" else "float32",
        "ours_batching": asdict(ours.batching()),
        "per_second": rate, "per_second_each_run": {name: [round(len(texts) / s, 1) for s in times] for name, times in seconds.items()},
        "speedup_over_pipeline": round(rate["ours"] / rate["pipeline"], 2),
        "identical_to_pipeline": same("ours", "pipeline"), "fp32_identical_to_pipeline": same("ours_fp32", "pipeline"),
        "agreement_with_fp32": same("ours", "ours_fp32"), "agreement_target_met": same("ours", "ours_fp32") >= AGREEMENT_TARGET,
        "accuracy": {name: round(float((predicted == labels + 1).mean()), 4) for name, predicted in stars.items()},
        "stages": stages,
        "many": {"reviews": len(many), "per_second": many_rate, "stages": many_stages.get("ours"),
                 "per_second_each_run": [round(len(many) / s, 1) for s in many_seconds["ours"]]},
        "target_per_second": PREDICT_TARGET,
        "target_met": max(rate["ours"], many_rate) >= PREDICT_TARGET and rate["ours"] >= 5 * rate["pipeline"],
    }


def overhead(folder: Path, many: list[str], repeats: int) -> dict:
    """Ours with a no-op forward vs the tokenizer alone, on the same reviews (this machine's cores)."""
    from reviewstars.models.transformer import CUDA_CHUNK_TEXTS, CUDA_MAX_ROWS, CUDA_TOKENS_PER_BATCH, Batching

    predictor = load_predictor(folder, device="cpu")
    predictor.max_length = 256
    predictor.logits = no_op_forward
    gpu_batching = Batching(rows=CUDA_MAX_ROWS, tokens=CUDA_TOKENS_PER_BATCH, chunk=CUDA_CHUNK_TEXTS)
    contenders = {"tokenizer alone": lambda texts: predictor.tokenizer(texts, truncation=True, max_length=256),
                  "ours, no-op forward": lambda texts: predictor.proba_in_batches(texts, gpu_batching)}
    _, seconds, stages = interleaved(contenders, many, repeats, {"ours, no-op forward": predictor})
    rate = {name: round(len(many) / statistics.median(times), 1) for name, times in seconds.items()}
    share = round(rate["ours, no-op forward"] / rate["tokenizer alone"], 3)
    print(f"overhead: tokenizer alone {rate['tokenizer alone']:,.0f}/s, ours with a no-op forward "
          f"{rate['ours, no-op forward']:,.0f}/s ({share:.0%})", flush=True)
    return {"reviews": len(many), "per_second": rate, "share_of_tokenizer": share, "target_met": share >= 0.8, "stages": stages}


def serve_speed(folder: Path, texts: list[str], sizes: Sizes) -> dict:
    result = against_bare_endpoint(str(folder), short_reviews(texts), sizes.clients, sizes.serve_seconds,
                                   variants={"batched_without_cuda_graphs": ("--no-cuda-graphs",)})
    for name in ("batched", "batched_without_cuda_graphs"):
        served = result[name].get("served") or {}
        result[name]["texts_per_batch"] = round(served.get("texts", 0) / max(served.get("batches", 0), 1), 1)
    result["texts_per_batch"] = result["batched"]["texts_per_batch"]
    result["cuda_graphs_speedup"] = round(result["batched"]["requests_per_second"]
                                          / max(result["batched_without_cuda_graphs"]["requests_per_second"], 1e-9), 2)
    result["target_met"] = (result["batched"]["requests_per_second"] >= SERVE_TARGET and result["batched"]["p99_ms"] <= SERVE_P99_MS
                            and result["batched"]["failed"] == 0)
    print(f"serve: CUDA graphs {result['batched'].get('cuda_graphs')}, {result['cuda_graphs_speedup']}x the eager forward's "
          f"requests/s; target {SERVE_TARGET:,}/s with p99 <= {SERVE_P99_MS} ms: {'met' if result['target_met'] else 'missed'}", flush=True)
    return {"connections": sizes.clients, "generator": "wrk, 1 thread", "seconds": sizes.serve_seconds, **result}


class Recorder:
    """Each part into one summary, written after every part (here, and into --out if given)."""

    def __init__(self, name: str, out: str | None):
        self.name, self.out, self.summary = name, out, {}

    def part(self, key: str, work: Callable[[], dict]) -> None:
        started = time.perf_counter()
        try:
            self.summary[key] = work()
        except Exception as error:  # one broken part must not cost the others their one GPU run
            traceback.print_exc()
            self.summary[key] = {"error": f"{type(error).__name__}: {error}"[:2000]}
        self.summary[key]["wall_seconds"] = round(time.perf_counter() - started, 1)
        self.write()

    def write(self) -> None:
        path = save(self.name, self.summary)
        if self.out:
            Path(self.out).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(self.out) / path.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    packed = ROOT / ".device" / "data" / "yelp"  # the kit's copy, where ../shared could not be linked
    parser.add_argument("--data", default=str(SHARED_YELP if SHARED_YELP.is_dir() or not packed.is_dir() else packed))
    parser.add_argument("--batch-size", default=16, type=parse_batch_size, help="training's --batch-size (default: the CLI's, 16)")
    parser.add_argument("--cpu-smoke", action="store_true", help="the same code path on this CPU, with tiny sizes")
    parser.add_argument("--out", help="also copy the JSON here after each part (the device tool's $OUT)")
    parser.add_argument("--skip", default="", help="parts to skip, comma-separated (train needs none; the others need train)")
    parser.add_argument("--budget", help="training's --time-budget instead of 3m")
    parser.add_argument("--train-size", type=int, help="train on this many reviews instead of all")
    parser.add_argument("--serve-seconds", type=float, help="wrk's seconds of load on each server instead of 10")
    parser.add_argument("--diagnose", action="store_true", help="first measure the host: cores, Python, tokenizer threads, step pace")
    args = parser.parse_args()
    if (ROOT / ".device" / "minilm").is_dir() and not args.cpu_smoke:
        # The kit carries MiniLM with int8 word embeddings (to fit a call's 64 MiB) and rebuilds it in fp32:
        # not the pinned file, by design. Everywhere else the alias' SHA-256 sums are checked.
        from reviewstars.models.pretrained import UNVERIFIED_MINILM

        os.environ.setdefault(UNVERIFIED_MINILM, "1")
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure")
        return
    sizes, device, name = (CPU_SMOKE, "cpu", "gpu_cpu_smoke") if args.cpu_smoke else (ON_GPU, "cuda", "gpu")
    from dataclasses import replace

    sizes = replace(sizes, **{k: v for k, v in (("budget", args.budget), ("train_size", args.train_size),
                                                  ("serve_seconds", args.serve_seconds)) if v is not None})
    started = time.perf_counter()
    dataset = load_data(args.data)
    validation, training = dataset["validation"], dataset["train"]
    texts, labels = list(validation["text"])[: sizes.reviews], np.asarray(validation["label"])[: sizes.reviews]
    many = list(training["text"])[: sizes.many]
    recorder = Recorder(name, args.out)
    recorder.summary.update(device=device, sizes=asdict(sizes))
    skip = set(filter(None, args.skip.split(",")))
    recorder.part("machine", lambda: machine_part(device))
    if args.diagnose:
        recorder.part("diagnose", lambda: diagnose_part(many, device))
    with tempfile.TemporaryDirectory(prefix="reviewstars-gpu-") as scratch:
        folder = Path(scratch) / "minilm"
        recorder.part("train", lambda: train_minilm(args.data, folder, sizes, args.batch_size, device))
        for key, work in (("predict", lambda: predict_speed(folder, texts, labels, many, sizes.repeats, device)),
                          ("overhead", lambda: overhead(folder, many, sizes.repeats)),
                          ("serve", lambda: serve_speed(folder, list(validation["text"]), sizes))):
            if key not in skip:
                recorder.part(key, work)
    recorder.summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    recorder.write()
    print(json.dumps({k: v for k, v in recorder.summary.items() if k in ("wall_seconds",)}))


if __name__ == "__main__":
    main()
