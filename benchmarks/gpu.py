"""Everything the issue "Every second of the budget spent on learning" asks of a GPU, in one
process and one JSON (`benchmarks/results/gpu.json`), in under 8 minutes on one H100/H200.

On the lent GPU machine, after `bash ../shared/device/pack` here (it fills `.device/`):

    run(command='source .device/setup.sh && python3 benchmarks/gpu.py; cp benchmarks/results/gpu.json "$OUT"/',
        carry=[".device"], timeout_s=600)

(a) train: `train --model minilm --time-budget 3m --batch-size auto` on the 38,748 training
    reviews, on CUDA: steps, reviews/s (wall clock, and inside optimizer steps), the share of
    the budget spent in optimizer steps, the batch auto chose and its learning rate, the
    plan, accuracy on the validation reviews;
(b) predict: that model on the 2,000 validation reviews, ours (bf16, token-budget batches)
    and ours in fp32 vs `transformers.pipeline("text-classification", device=0, batch_size=64)`,
    same truncation (the first 256 tokens): reviews/s (median of 3 interleaved runs), the
    share of identical stars, and bf16's agreement with fp32 (target: >= 99.5%);
(c) serve: 32 concurrent clients, one review a request: failures (target: 0), p50/p99 and the
    speed-up of micro-batching over `--max-batch 1` (`serve_load.batched_vs_one_at_a_time`).

Each part is written to the JSON as soon as it is done, a failed part as its error, so a
cut-short run still returns what it measured. Without a CUDA GPU it says so in one line
and exits 0. `--cpu-smoke` runs the same code on this CPU with tiny sizes (a 30 s budget on
1,000 reviews of 64 tokens, 100 predicted, 4 clients) into `gpu_cpu_smoke.json`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from _common import ROOT, SHARED_YELP, save
from inference_speed import timed
from serve_load import batched_vs_one_at_a_time

from reviewstars.data import DataSettings, load_data
from reviewstars.models import load_predictor
from reviewstars.training import TrainSettings, parse_duration
from reviewstars.training.settings import parse_batch_size


@dataclass(frozen=True)
class Sizes:
    budget: str             # --time-budget
    max_length: int         # tokens kept a review
    train_size: int | None  # None: every training review
    dev_size: int
    reviews: int            # validation reviews scored and predicted
    repeats: int            # timed runs of each predictor (median kept)
    clients: int
    requests: int
    serve_seconds: float    # each server's load test stops sending after this long


ON_GPU = Sizes(budget="3m", max_length=256, train_size=None, dev_size=500, reviews=2000, repeats=3, clients=32, requests=640, serve_seconds=90)
CPU_SMOKE = Sizes(budget="30s", max_length=64, train_size=1000, dev_size=100, reviews=100, repeats=1, clients=4, requests=40, serve_seconds=60)
AGREEMENT_TARGET = 0.995


def train_minilm(data: str, folder: Path, sizes: Sizes, batch_size: int | str, device: str) -> dict:
    from reviewstars.jobs import train

    settings = TrainSettings(time_budget=parse_duration(sizes.budget), max_length=sizes.max_length, batch_size=batch_size)
    result = train("minilm", DataSettings(data, train_size=sizes.train_size, eval_size=sizes.reviews, dev_size=sizes.dev_size),
                   folder, transformer=settings, device=device)
    seen, budget = result.train_examples_seen, result.plan["budget_seconds"]
    in_steps = (result.budget_share_in_steps or 0) * budget
    return {
        "budget_seconds": budget, "train_seconds": result.train_seconds, "steps": result.steps, "reviews_seen": seen,
        "reviews_per_second": round(seen / result.train_seconds, 1),
        "reviews_per_second_in_steps": round(seen / in_steps, 1) if in_steps else None,
        "budget_share_in_steps": result.budget_share_in_steps,
        "batch_size": result.settings["batch_size"], "learning_rate": result.settings["learning_rate"],
        "validation_accuracy": result.metrics["accuracy"], "validation_macro_f1": result.metrics["macro_f1"],
        "final_dev_accuracy": result.final_dev_accuracy, "plan": result.plan,
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


def predict_speed(folder: Path, texts: list[str], labels: np.ndarray, repeats: int, device: str) -> dict:
    """Ours (bf16 on CUDA), ours in fp32 and the pipeline, interleaved, each scored by its median time."""
    from reviewstars.devices import half_precision_dtype

    ours = load_predictor(folder, device=device)
    ours.truncation = "head"  # what the pipeline does: keep the first max_length tokens
    contenders = {"ours": our_stars(ours, True), "ours_fp32": our_stars(ours, False), "pipeline": pipeline_stars(folder, ours, device)}
    for predict in contenders.values():
        predict(texts[:64])  # warm-up: CUDA kernels, cuBLAS handles
    stars, seconds = {}, {name: [] for name in contenders}
    for _ in range(repeats):
        for name, predict in contenders.items():
            stars[name], elapsed = timed(predict, texts)
            seconds[name].append(elapsed)
    rate = {name: round(len(texts) / float(np.median(times)), 1) for name, times in seconds.items()}
    same = lambda a, b: round(float((stars[a] == stars[b]).mean()), 4)  # noqa: E731
    return {
        "reviews": len(texts), "max_length": ours.max_length, "repeats": repeats,
        "ours_precision": str(half_precision_dtype()).removeprefix("torch.") if device == "cuda" else "float32",
        "ours_batching": asdict(ours.batching()),
        "per_second": rate, "per_second_each_run": {name: [round(len(texts) / s, 1) for s in times] for name, times in seconds.items()},
        "speedup_over_pipeline": round(rate["ours"] / rate["pipeline"], 2),
        "identical_to_pipeline": same("ours", "pipeline"), "fp32_identical_to_pipeline": same("ours_fp32", "pipeline"),
        "agreement_with_fp32": same("ours", "ours_fp32"), "agreement_target_met": same("ours", "ours_fp32") >= AGREEMENT_TARGET,
        "accuracy": {name: round(float((predicted == labels + 1).mean()), 4) for name, predicted in stars.items()},
    }


def serve_speed(folder: Path, texts: list[str], sizes: Sizes) -> dict:
    result = batched_vs_one_at_a_time(str(folder), texts[: sizes.requests], sizes.clients, sizes.serve_seconds)
    return {"clients": sizes.clients, "failed": result["batched"]["failed"] + result["one_at_a_time"]["failed"], **result}


def measure_part(summary: dict, name: str, work: Callable[[], dict], result_name: str) -> None:
    """One part into `summary`; a failure is kept as its error and the other parts still run.
    The JSON is rewritten after each part, so a run cut short keeps what it measured."""
    started = time.perf_counter()
    try:
        summary[name] = work()
    except Exception as error:  # one broken part must not cost the others their one GPU run
        traceback.print_exc()
        summary[name] = {"error": f"{type(error).__name__}: {error}"[:2000]}
    summary[name]["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"{name}: {summary[name]}", flush=True)
    save(result_name, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    packed = ROOT / ".device" / "data" / "yelp"  # the kit's copy, where ../shared could not be linked
    parser.add_argument("--data", default=str(SHARED_YELP if SHARED_YELP.is_dir() or not packed.is_dir() else packed))
    parser.add_argument("--batch-size", default="auto", type=parse_batch_size, help="training's --batch-size (default: auto)")
    parser.add_argument("--cpu-smoke", action="store_true", help="the same code path on this CPU, with tiny sizes")
    args = parser.parse_args()
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure")
        return
    sizes, device, result_name = (CPU_SMOKE, "cpu", "gpu_cpu_smoke") if args.cpu_smoke else (ON_GPU, "cuda", "gpu")
    started = time.perf_counter()
    validation = load_data(args.data)["validation"]
    texts, labels = list(validation["text"])[: sizes.reviews], np.asarray(validation["label"])[: sizes.reviews]
    summary = {"device": device, "sizes": asdict(sizes)}
    with tempfile.TemporaryDirectory(prefix="reviewstars-gpu-") as scratch:
        folder = Path(scratch) / "minilm"
        measure_part(summary, "train", lambda: train_minilm(args.data, folder, sizes, args.batch_size, device), result_name)
        measure_part(summary, "predict", lambda: predict_speed(folder, texts, labels, sizes.repeats, device), result_name)
        measure_part(summary, "serve", lambda: serve_speed(folder, list(validation["text"]), sizes), result_name)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    save(result_name, summary)


if __name__ == "__main__":
    main()
