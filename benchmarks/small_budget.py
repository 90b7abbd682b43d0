"""A new user's first ladder on a small CPU budget: is it warned, and does it keep to its time?

    python benchmarks/small_budget.py [--budget 1m] [--train-size 2000] [--models linear,scratch,minilm]

Runs `reviewstars compare --models linear,scratch,minilm --time-budget 1m --train-size 2000`
as a user would (a fresh output folder, the real command line), timestamps every line it
prints, and checks it against issue 16: each torch model's too-small-budget warning comes
before its training, and the whole run takes no longer than its budgets (one per torch
model, the linear fit's own time) plus one scoring pass of the held-out reviews per model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, SHARED_YELP, save

from reviewstars.training import parse_duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--models", default="linear,scratch,minilm")
    parser.add_argument("--budget", default="1m")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--output", default=str(ROOT / "runs" / "bench-small-budget"))
    args = parser.parse_args()

    output = Path(args.output)
    shutil.rmtree(output, ignore_errors=True)  # a fresh run: compare would reuse trained models
    command = [str(Path(sys.executable).parent / "reviewstars"), "compare", "--data", args.data, "--models", args.models,
               "--time-budget", args.budget, "--train-size", str(args.train_size), "--output", str(output)]
    started = time.perf_counter()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "COLUMNS": "160"}) as process:
        for line in process.stdout:
            lines.append((round(time.perf_counter() - started, 1), line.rstrip()))
            print(f"[{lines[-1][0]:7.1f} s] {line.rstrip()}")
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"compare failed with code {process.returncode}")

    board = json.loads((output / "leaderboard.json").read_text())
    budget = parse_duration(args.budget)
    rows = [row for row in board["models"] if row["kind"] != "ensemble"]
    scoring = {row["model"]: board["n"] / row["predictions_per_second"] for row in rows if row.get("predictions_per_second")}
    allowance = sum(budget if row.get("budget_share_in_steps") is not None else (row["train_seconds"] or 0) for row in rows)
    allowance += sum(scoring.values())
    warnings = [(t, text) for t, text in lines if text.lstrip().startswith("warning:")]
    first_step_line = {row["model"]: next((t for t, text in lines if text.lstrip().startswith(f"{row['model']}:")
                                            and "plan" in text), None) for row in rows}
    summary = {
        "command": " ".join(command[1:]),
        "wall_seconds": round(wall, 1),
        "allowance_seconds": round(allowance, 1),
        "within_allowance": wall <= allowance,
        "overhead_seconds": round(wall - allowance, 1),
        "warnings": [{"at_seconds": t, "line": text} for t, text in warnings],
        "plan_printed_at_seconds": first_step_line,
        "scoring_seconds": {k: round(v, 1) for k, v in scoring.items()},
        "models": [{k: row.get(k) for k in ("model", "accuracy", "train_seconds", "train_examples_seen", "budget_share_in_steps")}
                   for row in board["models"]],
    }
    for key, value in summary.items():
        print(f"{key:>24}: {value}")
    save(f"small_budget_{args.budget}", summary)


if __name__ == "__main__":
    main()
