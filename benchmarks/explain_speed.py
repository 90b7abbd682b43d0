"""What `explain` costs: seconds a review and words rated a second, for each model folder given.

    python benchmarks/explain_speed.py --model runs/quick/linear --model runs/minilm [--reviews 60]

Occlusion rates a review once per word (at most --max-words, as the command's default), so its
cost is the model's speed times the review's length: the same seeded sample of validation
reviews for every model.
"""

from __future__ import annotations

import argparse
import time

from _common import SHARED_YELP, machine, save

import pandas as pd

from reviewstars.models import load_predictor
from reviewstars.models.explanation import explain_one, occlusions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="A model folder (give several to compare them).")
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--reviews", type=int, default=60)
    parser.add_argument("--max-words", type=int, default=300)
    args = parser.parse_args()

    texts = pd.read_parquet(f"{args.data}/validation.parquet")["text"].sample(args.reviews, random_state=0).tolist()
    words = sum(len(occlusions(text, args.max_words).spans) for text in texts)
    models = {}
    for folder in args.model:
        predictor = load_predictor(folder)
        predictor.predict_proba(texts[:4])  # warmed up: the first call pays for lazy set-up
        started = time.perf_counter()
        for text in texts:
            explain_one(predictor, text, args.max_words)
        seconds = time.perf_counter() - started
        models[folder] = {"seconds": round(seconds, 2), "seconds_a_review": round(seconds / len(texts), 3),
                          "words_a_second": round(words / seconds, 1)}
        print(f"{folder}: {len(texts)} reviews, {words:,} words rated in {seconds:.1f} s: "
              f"{seconds / len(texts):.2f} s a review, {words / seconds:,.0f} words/s", flush=True)
    save("explain_speed", {"reviews": len(texts), "words_rated": words, "mean_words": round(words / len(texts), 1),
                           "max_words": args.max_words, "models": models, "machine": machine()})


if __name__ == "__main__":
    main()
