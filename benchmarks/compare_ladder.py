"""The main job, timed: the lesson's ladder on the shared data, then the same command again.

    python benchmarks/compare_ladder.py [--budget 10m] [--models linear,scratch,minilm]

Runs `reviewstars compare --data ../shared/data/yelp --models linear,scratch,minilm
--time-budget 10m` twice into the same folder: the first run trains, the second reuses.
Targets (issue 4): the first run under 40 minutes on a 2-core CPU, the second under a minute.
"""

from __future__ import annotations

import argparse
import json
import time

from _common import RESULTS, ROOT, SHARED_YELP, save

from reviewstars.jobs.compare import compare
from reviewstars.training import TrainSettings, parse_duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--models", default="linear,scratch,minilm")
    parser.add_argument("--budget", default="10m")
    parser.add_argument("--output", default=str(ROOT / "runs" / "compare-ladder"))
    parser.add_argument("--rerun-only", action="store_true", help="time only the re-run; keep the recorded first run")
    args = parser.parse_args()

    models = args.models.split(",")
    budget = parse_duration(args.budget)
    timings = []
    if args.rerun_only:
        timings.append(json.loads((RESULTS / "compare_ladder.json").read_text())["first_run_seconds"])
    for attempt in ("re-run",) if args.rerun_only else ("first run", "re-run"):
        started = time.perf_counter()
        board = compare(args.data, args.output, models, transformer=TrainSettings(time_budget=budget))
        timings.append(round(time.perf_counter() - started, 1))
        print(f"{attempt}: {timings[-1]:.1f} s")
    for rank, row in enumerate(board["models"], start=1):
        print(f"{rank}. {row['model']:>8}  accuracy {row['accuracy']:.4f}  macro-F1 {row['macro_f1']:.4f}  MAE {row['mae']:.3f}  "
              f"train {row['train_seconds']} s  seen {row['train_examples_seen']}  {row['predictions_per_second']} pred/s")
    save("compare_ladder", {"models": models, "budget": args.budget, "first_run_seconds": timings[0],
                            "rerun_seconds": timings[1], "leaderboard": board["models"]})


if __name__ == "__main__":
    main()
