"""Train a transformer under a wall-clock budget on the shared Yelp data; score it.

    python benchmarks/time_budget.py --model minilm --budget 30m [--max-length 128]
    python benchmarks/time_budget.py --model scratch --budget 30m
    python benchmarks/time_budget.py --model minilm --budget 30m --layer-decay 0.9 --name 30m-llrd09

The same as `reviewstars train --model M --data ../shared/data/yelp --time-budget 30m`:
the budget covers tokenizing, measuring speed, training and keeping the best checkpoint.
Scores the balanced 2,000-review validation set afterwards (not part of the budget).
Targets (issue 3): minilm >= 60% (aim 62%); scratch beats the linear baseline.
"""

from __future__ import annotations

import argparse
import json
import time

from _common import RESULTS, ROOT, SHARED_YELP, save

from reviewstars.jobs import ScratchSettings, train
from reviewstars.training import TrainSettings, parse_duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--budget", default="30m")
    parser.add_argument("--data", default=str(SHARED_YELP))
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--eval-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--layer-decay", type=float, default=1.0)
    parser.add_argument("--freeze-embeddings", action="store_true")
    parser.add_argument("--name", default=None, help="results file suffix (default: the budget)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    settings = TrainSettings(
        time_budget=parse_duration(args.budget), max_length=args.max_length, learning_rate=args.learning_rate,
        eval_steps=args.eval_steps, logging_steps=args.eval_steps, batch_size=args.batch_size, warmup=args.warmup,
        layer_decay=args.layer_decay, freeze_embeddings=args.freeze_embeddings,
    )
    output = args.output or str(ROOT / "runs" / f"bench-{args.model}-{args.budget}")
    started = time.time()
    result = train(args.model, args.data, output, transformer=settings,
                   scratch=ScratchSettings(layers=args.layers, width=args.width, dropout=args.dropout))
    wall = time.time() - started
    metrics = result.metrics
    summary = {
        "model": args.model,
        "budget": args.budget,
        "wall_seconds_with_final_evaluation": round(wall, 1),
        **{k: getattr(result, k) for k in ("train_seconds", "train_examples_seen", "steps", "plan", "best_dev_accuracy",
                                           "final_dev_accuracy", "kept", "budget_share_in_steps", "forward", "parameters", "settings")},
        "validation_accuracy": round(metrics.accuracy, 4),
        "validation_macro_f1": round(metrics.macro_f1, 4),
        "validation_mae": round(metrics.mae, 4),
        "predictions_per_second": metrics.predictions_per_second,
    }
    linear = RESULTS / "linear_baseline.json"
    if linear.is_file():
        summary["linear_baseline_accuracy"] = json.loads(linear.read_text())["accuracy"]
    for key, value in summary.items():
        print(f"{key:>34}: {value}")
    save(f"time_budget_{args.model}_{args.name or args.budget}", summary)


if __name__ == "__main__":
    main()
