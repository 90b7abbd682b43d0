"""A longer budget must never give a worse model: the same kind on the same small training
set under a short and a long budget, scored on the same held-out reviews.

    .venv/bin/python benchmarks/budget_monotone.py [--model minilm] [--budgets 2m,6m] [--train-size 500]

Each run is `train --model MODEL --time-budget B` on `--train-size` reviews (the balanced dev
slice of `--dev-size` comes out of them), scored on the validation split. Prints each run's
plan (passes, and whether it ends at the passes worth taking or at the deadline), what it
did, and whether the longer budget scored at least the shorter one's accuracy minus 0.01.
Writes `benchmarks/results/budget_monotone.json`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import SHARED_YELP, save

from reviewstars.data import DataSettings
from reviewstars.jobs import train
from reviewstars.training import TrainSettings, parse_duration

TOLERANCE = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--budgets", default="2m,6m")
    parser.add_argument("--train-size", type=int, default=500)
    parser.add_argument("--dev-size", type=int, default=100)
    args = parser.parse_args()

    runs = []
    for budget in args.budgets.split(","):
        with tempfile.TemporaryDirectory(prefix="reviewstars-monotone-") as scratch:
            result = train(args.model, DataSettings(args.data, train_size=args.train_size, dev_size=args.dev_size),
                           Path(scratch) / "model", transformer=TrainSettings(time_budget=parse_duration(budget)))
        plan = result.plan
        run = {"budget": budget, "train_examples": result.train_examples, "steps": result.steps,
               "passes": round(result.train_examples_seen / result.train_examples, 2), "ended": result.ended,
               "plan": {k: plan[k] for k in ("expected_steps", "expected_passes_over_data", "ends", "stop_after_steps", "max_passes")},
               "validation_accuracy": result.metrics.accuracy, "macro_f1": result.metrics.macro_f1,
               "time_ledger": result.time_ledger}
        print(f"{budget}: plan ~{plan['expected_steps']:,} steps ({plan['expected_passes_over_data']:g} passes, ends by "
              f"{plan['ends']}; at most {plan['stop_after_steps']:,} steps worth taking); ran {result.steps:,} steps, "
              f"{run['passes']:g} passes, ended by {result.ended}: validation {run['validation_accuracy']:.4f}", flush=True)
        runs.append(run)
    monotone = all(later["validation_accuracy"] >= earlier["validation_accuracy"] - TOLERANCE for earlier, later in zip(runs, runs[1:]))
    print(f"a longer budget no worse than a shorter one (within {TOLERANCE}): {monotone}")
    save("budget_monotone", {"model": args.model, "train_size": args.train_size, "dev_size": args.dev_size, "runs": runs,
                             "tolerance": TOLERANCE, "monotone": monotone})


if __name__ == "__main__":
    main()
