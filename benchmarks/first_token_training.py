"""A fine-tuning step with the last layer at [CLS] only, against the model's full forward.

    python benchmarks/first_token_training.py [--model minilm] [--batches 20] [--max-length 128]

Both paths give the same loss and gradients (tests/test_first_token_training.py); this
measures what the skipped positions cost. Each step is forward, backward and an AdamW
update on a length-grouped batch of real reviews, as the Trainer makes them. The two
paths alternate batch by batch (and swap who goes first on each pass), so the drift of a
shared machine's speed hits both alike.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import SHARED_YELP, save

from reviewstars.data import load_data
from reviewstars.models.first_token import FirstTokenTraining
from reviewstars.models.pretrained import load_for_fine_tuning
from reviewstars.tokenization import encode, padded_batches


def length_grouped_batches(ids: list[list[int]], labels: list[int], batch_size: int, count: int, pad_id: int):
    """`count` of the length-sorted batches `predict` and the Trainer's sampler make, spread
    over the whole range of lengths."""
    import torch

    batches = list(padded_batches(ids, batch_size, pad_id))
    for rows, input_ids, mask in batches[:: max(len(batches) // count, 1)][:count]:
        yield {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
               "labels": torch.tensor([labels[i] for i in rows])}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()

    train = load_data(args.data)["train"]
    rows = min(len(train), args.batches * args.batch_size * 10)
    model, tokenizer = load_for_fine_tuning(args.model)
    ids = encode(tokenizer, list(train["text"][:rows]), args.max_length, "head+tail")
    batches = list(length_grouped_batches(ids, list(train["label"][:rows]), args.batch_size, args.batches, tokenizer.pad_token_id))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    paths = {"full forward": model, "[CLS]-only last layer": FirstTokenTraining(model)}
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for done in range(args.passes):
        for batch in batches:
            for name in (list(paths) if done % 2 == 0 else list(paths)[::-1]):
                started = time.perf_counter()
                paths[name](**batch).loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                seconds[name].append(time.perf_counter() - started)
        print(f"pass {done + 1} of {args.passes}: " + ", ".join(f"{n} {np.mean(s):.3f} s/step" for n, s in seconds.items()), flush=True)
    per_step = {name: round(float(np.mean(s)), 4) for name, s in seconds.items()}
    speedup = per_step["full forward"] / per_step["[CLS]-only last layer"]
    print(f"[CLS]-only last layer: {speedup:.2f}x the full forward's steps per second")
    save("first_token_training", {"model": args.model, "batch_size": args.batch_size, "max_length": args.max_length,
                                  "mean_tokens": round(float(np.mean([len(x) for x in ids])), 1),
                                  "steps_each": len(seconds["full forward"]), "seconds_per_step": per_step,
                                  "speedup": round(speedup, 3)})


if __name__ == "__main__":
    main()
