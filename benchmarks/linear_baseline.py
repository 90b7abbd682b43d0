"""Linear baseline on the shared Yelp data: accuracy, macro-F1, train time, predictions/s.

    python benchmarks/linear_baseline.py [--data ../shared/data/yelp]

Trains on train.parquet, scores the balanced validation.parquet (400 reviews per class),
then times prediction on the validation texts repeated to 20,000 reviews.
Target (issue 2): at least 57% accuracy; the published bag-of-words baseline is 58.0%.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import SHARED_YELP, save

from reviewstars.data import load_data
from reviewstars.scoring.scores import score_predictions
from reviewstars.models import LinearPredictor, load_predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_YELP))
    args = parser.parse_args()

    data = load_data(args.data)
    train, validation = data["train"], data["validation"]
    started = time.perf_counter()
    model = LinearPredictor().fit(train["text"], train["label"])
    train_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        model.save(folder)
        model = load_predictor(folder)  # score what a user would load
        scores = score_predictions(model.predict_proba(validation["text"]), validation["label"])

        texts = (list(validation["text"]) * 10)[:20_000]
        started = time.perf_counter()
        model.predict(texts)
        predict_seconds = time.perf_counter() - started

    result = {
        "train_rows": len(train),
        "validation_rows": len(validation),
        "accuracy": round(scores.accuracy, 4),
        "macro_f1": round(scores.macro_f1, 4),
        "mae": round(scores.mae, 4),
        "off_by_one_accuracy": round(scores.off_by_one_accuracy, 4),
        "train_seconds": round(train_seconds, 1),
        "predictions_per_second": round(len(texts) / predict_seconds),
        "parameters": model.num_parameters,
        "settings": model.settings.__dict__,
    }
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    save("linear_baseline", result)


if __name__ == "__main__":
    main()
