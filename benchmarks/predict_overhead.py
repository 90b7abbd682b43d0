"""Our own cost in `predict`, apart from the model: the forward pass replaced by a no-op,
against the fast tokenizer alone on the same reviews, in the same run.

    .venv/bin/python benchmarks/predict_overhead.py [--reviews 20000] [--model FOLDER]

The tokenizer alone is the plain batched call a user would write
(`tokenizer(texts, truncation=True, max_length=256)`). Ours is everything `predict` does
besides the forward pass: tokenizing, cutting (head+tail), sorting by length, padding,
batching, putting results back in order, calibration. Measured with the CPU's batching
(16 reviews a batch) and with the GPU's (token-budget batches, tokenized a chunk at a time
on a thread), interleaved, median of `--repeats`. The target is ours >= 80% of the
tokenizer's own speed: then the tokenizer, which runs on every core, is the only limit.
Writes `benchmarks/results/predict_overhead.json`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import SHARED_YELP, save

from reviewstars.data import load_data
from reviewstars.models import load_predictor
from reviewstars.models.pretrained import ALIASES, load_for_fine_tuning
from reviewstars.models.transformer import CUDA_CHUNK_TEXTS, CUDA_MAX_ROWS, CUDA_TOKENS_PER_BATCH, Batching, TransformerPredictor

TARGET = 0.80


def no_op_forward(input_ids: torch.Tensor, _attention_mask: torch.Tensor) -> torch.Tensor:
    return torch.zeros((len(input_ids), 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="a transformer folder or alias (its tokenizer is what is measured)")
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    texts = list(load_data(args.data)["train"]["text"])[: args.reviews]
    if args.model in ALIASES:  # a base model: its tokenizer and shapes are what matter here, not its head
        predictor = TransformerPredictor(*load_for_fine_tuning(args.model), max_length=args.max_length)
    else:
        predictor = load_predictor(args.model, device="cpu")
    predictor.max_length = args.max_length
    predictor.logits = no_op_forward  # the model out of the way: what is left is ours
    tokenizer = predictor.tokenizer

    contenders = {
        "tokenizer alone": lambda: tokenizer(texts, truncation=True, max_length=args.max_length),
        "ours, CPU batching": lambda: predictor.predict_proba(texts),
        "ours, GPU batching": lambda: predictor.star_order(predictor.proba_in_batches(
            texts, Batching(rows=CUDA_MAX_ROWS, tokens=CUDA_TOKENS_PER_BATCH, chunk=CUDA_CHUNK_TEXTS))),
    }
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    stages: dict[str, dict] = {}
    for name, run in contenders.items():
        run()  # warm-up
    for _ in range(args.repeats):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
            if name != "tokenizer alone":
                stages[name] = predictor.last_stages
    rate = {name: round(len(texts) / statistics.median(times), 1) for name, times in seconds.items()}
    share = {name: round(rate[name] / rate["tokenizer alone"], 3) for name in rate if name != "tokenizer alone"}
    for name in contenders:
        print(f"{name:<22} {rate[name]:>9,.0f} reviews/s" + (f"  {share[name]:.0%} of the tokenizer's" if name in share else ""))
    for name, found in stages.items():
        print(f"  stages, {name}: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    save("predict_overhead", {
        "reviews": len(texts), "max_length": args.max_length, "truncation": predictor.truncation, "repeats": args.repeats,
        "per_second": rate, "share_of_tokenizer": share, "target": TARGET,
        "target_met": all(value >= TARGET for value in share.values()),
        "per_second_each_run": {name: [round(len(texts) / s, 1) for s in times] for name, times in seconds.items()},
        "stages_last_run": stages, "mean_tokens": float(np.mean([len(ids) for ids in tokenizer(texts[:2000])["input_ids"]])),
    })


if __name__ == "__main__":
    main()
