"""Training throughput: the lesson's recipe against ours, same model, same reviews, one run.

    python benchmarks/training_throughput.py [--model minilm] [--steps 20]

lesson : tokenizer(..., padding="max_length", truncation=True) -> every review 512 tokens,
         batches in random order.
ours   : dynamic padding (each batch to its own longest review), length-grouped batches,
         --max-length 256 with head+tail truncation (the defaults).
ours@512: the same as ours with max_length 512, to separate padding from truncation.

Reports training examples per second from the Trainer's own runtime (tokenization is
excluded: it is done once and cached). Target (issue 3): ours >= 2x the lesson's.
"""

from __future__ import annotations

import argparse
import tempfile

from _common import SHARED_YELP, save

from reviewstars.data import load_data
from reviewstars.models.pretrained import load_for_fine_tuning
from reviewstars.training import TrainSettings, train_transformer

RECIPES = {
    "lesson": dict(max_length=512, truncation="head", dynamic_padding=False, group_by_length=False),
    "ours@512": dict(max_length=512, truncation="head+tail", dynamic_padding=True, group_by_length=True),
    "ours": dict(max_length=256, truncation="head+tail", dynamic_padding=True, group_by_length=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    rows = args.steps * args.batch_size
    data = load_data(args.data, train_size=rows, eval_size=16, seed=42)
    results = {}
    for name, recipe in RECIPES.items():
        model, tokenizer = load_for_fine_tuning(args.model)
        settings = TrainSettings(batch_size=args.batch_size, epochs=1, eval_steps=10**6, logging_steps=10**6,
                                 early_stopping=None, learning_rate=5e-5, **recipe)
        with tempfile.TemporaryDirectory() as output:
            outcome = train_transformer(model, tokenizer, data["train"], data["validation"], output, settings)
        final = next(e for e in reversed(outcome["log_history"]) if "train_runtime" in e)
        results[name] = {
            "recipe": recipe,
            "steps": outcome["steps"],
            "train_runtime_seconds": round(final["train_runtime"], 2),
            "examples_per_second": round(rows / final["train_runtime"], 2),
        }
        print(f"{name:>9}: {results[name]['examples_per_second']:7.2f} examples/s ({final['train_runtime']:.1f} s for {rows} reviews)", flush=True)
    speedup = results["ours"]["examples_per_second"] / results["lesson"]["examples_per_second"]
    speedup_512 = results["ours@512"]["examples_per_second"] / results["lesson"]["examples_per_second"]
    print(f"ours / lesson: {speedup:.2f}x   (ours@512 / lesson: {speedup_512:.2f}x)")
    save("training_throughput", {"model": args.model, "reviews": rows, "batch_size": args.batch_size, "recipes": results,
                                 "speedup": round(speedup, 2), "speedup_same_max_length": round(speedup_512, 2)})


if __name__ == "__main__":
    main()
