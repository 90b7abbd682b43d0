"""Is a longer review worth its cost when the passes are fixed? The same pretrained
encoder fine-tuned for the same passes over the same reviews, keeping 128 and 256
tokens a review, scored on the validation split: all of it, and the reviews longer
than 128 tokens (the only ones the two lengths see differently).

    .venv/bin/python benchmarks/length_at_equal_passes.py [--model minilm] [--train-size 2000] [--seeds 42,7]

Under a time budget a run that ends at its passes worth taking (a GPU's 3-minute MiniLM)
has time left; a run that ends at the deadline (a CPU's) has none. This measures what the
left time could buy: the longer length at the same passes. Each model trained at 128 is
also scored at 256 (prediction only). Writes `benchmarks/results/length_at_equal_passes.json`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED_YELP, save

from reviewstars.data import DataSettings
from reviewstars.jobs import train
from reviewstars.models import load_predictor
from reviewstars.training import TrainSettings


def score(predictor, texts, labels, long_rows) -> tuple[dict, np.ndarray]:
    stars = np.asarray(predictor.predict(texts))
    right = stars - 1 == labels
    return {"accuracy": round(float(right.mean()), 4), "accuracy_long": round(float(right[long_rows].mean()), 4)}, stars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--dev-size", type=int, default=200)
    parser.add_argument("--passes", type=float, default=2.0)
    parser.add_argument("--lengths", default="128,256")
    parser.add_argument("--seeds", default="42,7")
    args = parser.parse_args()

    import pandas as pd

    validation = pd.read_parquet(Path(args.data) / "validation.parquet")
    texts, labels = validation["text"].tolist(), validation["label"].to_numpy()
    lengths = [int(x) for x in args.lengths.split(",")]
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for length in lengths:
            with tempfile.TemporaryDirectory(prefix="reviewstars-length-") as scratch:
                folder = Path(scratch) / "model"
                started = time.perf_counter()
                result = train(args.model, DataSettings(args.data, train_size=args.train_size, dev_size=args.dev_size, seed=seed,
                                                                eval_size=200),  # scored below, on all of it
                               folder, transformer=TrainSettings(epochs=args.passes, max_length=length, report_to="none"))
                seconds = time.perf_counter() - started
                predictor = load_predictor(folder)
                tokens = predictor.tokenizer(texts, truncation=False)["input_ids"]
                long_rows = np.array([len(t) > min(lengths) for t in tokens])
                run = {"seed": seed, "max_length": length, "steps": result.steps, "train_seconds": round(seconds, 1),
                       "optimizer_steps_seconds": result.time_ledger.get("optimizer steps"),
                       "long_reviews": int(long_rows.sum())}
                scores, stars = score(predictor, texts, labels, long_rows)
                run.update(scores)
                for other in lengths:
                    if other != length:
                        predictor.max_length = other
                        scores, stars_other = score(predictor, texts, labels, long_rows)
                        run[f"predicted_at_{other}"] = {**scores, "same_star_on_long": round(float((stars_other == stars)[long_rows].mean()), 4)}
                        predictor.max_length = length
            print(run, flush=True)
            runs.append(run)
    mean = {length: {key: round(float(np.mean([r[key] for r in runs if r["max_length"] == length])), 4)
                     for key in ("accuracy", "accuracy_long", "optimizer_steps_seconds")} for length in lengths}
    print("mean over seeds:", mean)
    save("length_at_equal_passes", {"model": args.model, "train_size": args.train_size, "dev_size": args.dev_size,
                                    "passes": args.passes, "validation_reviews": len(texts), "runs": runs, "mean": mean})


if __name__ == "__main__":
    main()
