"""The linear model at scale: TF-IDF + logistic regression against hashed features + SGD.

    python benchmarks/linear_at_scale.py [--sizes all,40000,200000,1000000] [--tfidf-up-to 200000]

For each size, a training set resampled (seeded, with replacement) from the shared
train.parquet (`all`: the file itself, 38,748 distinct reviews) is fitted by each path in a process of its own, so that its peak resident
memory (ru_maxrss) is that fit's alone; reported beside it is the memory the fit added
over the process before it (Python, libraries, the texts). Then the model is saved,
loaded, scored on validation.parquet, and timed predicting 20,000 reviews. Times are
given as wall and as CPU seconds of the process: on a machine shared with other work,
the CPU seconds are what compares the two paths.

TF-IDF stops at `--tfidf-up-to` reviews: beyond, it takes longer than this benchmark's
10 minutes on 2 cores. Resampled reviews repeat the same 38,748, so the vocabulary stops
growing and the larger sizes show time and memory, not what more data would teach (and a
review seen twice passes `min_df=2`: the resampled vocabularies are larger). Accuracy is
compared on `all`.
`OUT_OF_CORE_ABOVE` in reviewstars.models.linear is chosen from this table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

from _common import ROOT, SHARED_YELP, save

PREDICT_REVIEWS = 20_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def one_fit(features: str, size: int, data: str, seed: int) -> dict:
    """One path at one size, in this (fresh) process."""
    import numpy as np
    import pandas as pd

    from reviewstars.models import load_predictor
    from reviewstars.models.linear import LinearPredictor, LinearSettings

    train, validation = pd.read_parquet(f"{data}/train.parquet"), pd.read_parquet(f"{data}/validation.parquet")
    rows = np.random.default_rng(seed).integers(0, len(train), size) if size else np.arange(len(train))  # 0: the file as it is
    pool = train["text"].tolist()
    texts, labels = [pool[i] for i in rows], train["label"].to_numpy()[rows]  # references: no copy of the texts
    import sklearn.linear_model  # noqa: F401  the libraries count before the fit, not in it

    before_mb = _rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    model = LinearPredictor(LinearSettings(features=features)).fit(texts, labels)
    fit_seconds, fit_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as folder:
        model.save(folder)
        loaded = load_predictor(folder)
        accuracy = float((loaded.predict(validation["text"].tolist()) - 1 == validation["label"].to_numpy()).mean())
        many = (validation["text"].tolist() * (PREDICT_REVIEWS // len(validation) + 1))[:PREDICT_REVIEWS]
        started, cpu_started = time.perf_counter(), time.process_time()
        loaded.predict(many)
        predict_seconds, predict_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"features": features, "reviews": len(rows), "resampled": bool(size),
            "fit_seconds": round(fit_seconds, 1), "fit_cpu_seconds": round(fit_cpu_seconds, 1),
            "peak_rss_mb": round(peak_mb), "fit_added_mb": round(peak_mb - before_mb), "validation_accuracy": round(accuracy, 4),
            "predictions_per_second": round(PREDICT_REVIEWS / predict_seconds),
            "predictions_per_cpu_second": round(PREDICT_REVIEWS / predict_cpu_seconds), "parameters": model.num_parameters}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--sizes", default="all,40000,200000,1000000")
    parser.add_argument("--tfidf-up-to", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", nargs=2, metavar=("FEATURES", "SIZE"), help=argparse.SUPPRESS)  # a child process's job
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_fit(args.one[0], int(args.one[1]), args.data, args.seed)))
        return

    from reviewstars.models.linear import OUT_OF_CORE_ABOVE, LinearSettings

    runs = []
    for size in [0 if size == "all" else int(size) for size in args.sizes.split(",")]:
        for features in ("tfidf", "hashing"):
            if features == "tfidf" and size > args.tfidf_up_to:
                continue
            child = subprocess.run([sys.executable, __file__, "--one", features, str(size), "--data", args.data, "--seed", str(args.seed)],
                                   capture_output=True, text=True, cwd=ROOT / "benchmarks")
            if child.returncode != 0:
                sys.exit(f"{features} at {size:,} reviews failed:\n{child.stderr[-3000:]}")
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            run = runs[-1]
            which = f"{run['features']:>8} {run['reviews']:>10,} reviews{'' if run['resampled'] else ' (all)'}"
            print(f"{which}: fit {run['fit_seconds']:>7.1f} s ({run['fit_cpu_seconds']:.1f} s CPU), "
                  f"peak {run['peak_rss_mb']:>6,} MB (+{run['fit_added_mb']:,} MB), accuracy {run['validation_accuracy']:.4f}, "
                  f"{run['predictions_per_second']:>6,} predictions/s ({run['predictions_per_cpu_second']:,} per CPU s)", flush=True)
    defaults = LinearSettings()
    save("linear_at_scale", {
        "runs": runs,
        "out_of_core_above": OUT_OF_CORE_ABOVE,
        "hashing_settings": {"n_features": defaults.n_features, "sgd_passes": defaults.sgd_passes, "chunk_size": defaults.chunk_size},
        "note": "resampled: drawn with replacement from the 38,748 reviews of train.parquet (else the file itself); scored on "
                "validation.parquet (2,000 balanced); fit_added_mb: peak RSS of the fit over the process's RSS before it; "
                "CPU seconds count every thread (the logistic regression's solver uses two)",
    })


if __name__ == "__main__":
    main()
