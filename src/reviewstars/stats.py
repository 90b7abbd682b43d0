"""What is in a data set: rows per split, class balance, review lengths."""

from __future__ import annotations

from typing import Any

import numpy as np
from datasets import DatasetDict
from rich.table import Table

from . import STARS
from .tokenization import word_tokens

PERCENTILES = (5, 25, 50, 75, 95, 99)


def length_summary(lengths: np.ndarray) -> dict[str, float]:
    summary = {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 1), "max": int(lengths.max())}
    summary.update({f"p{p}": float(np.percentile(lengths, p)) for p in PERCENTILES})
    return summary


def data_stats(dataset: DatasetDict) -> dict[str, Any]:
    """Per split: rows, reviews per star, and length percentiles in characters and words."""
    result = {}
    for name, split in dataset.items():
        texts, labels = split["text"], np.asarray(split["label"])
        counts = np.bincount(labels, minlength=len(STARS))
        result[name] = {
            "rows": len(split),
            "stars": {str(star): int(counts[star - 1]) for star in STARS},
            "star_shares": {str(star): round(float(counts[star - 1] / len(split)), 4) for star in STARS},
            "characters": length_summary(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))),
            "word_tokens": length_summary(np.fromiter((len(word_tokens(t)) for t in texts), dtype=np.int64, count=len(texts))),
        }
    return result


def stats_tables(stats: dict[str, Any]) -> list[Table]:
    balance = Table(title="rows and class balance")
    balance.add_column("split")
    balance.add_column("rows", justify="right")
    for star in STARS:
        balance.add_column(f"{star}★", justify="right")
    for name, split in stats.items():
        balance.add_row(name, f"{split['rows']:,}", *[
            f"{split['stars'][str(s)]:,} ({split['star_shares'][str(s)]:.0%})" for s in STARS
        ])
    lengths = Table(title="review length percentiles")
    lengths.add_column("split")
    lengths.add_column("unit")
    keys = ["min", *[f"p{p}" for p in PERCENTILES], "max", "mean"]
    for key in keys:
        lengths.add_column(key, justify="right")
    for name, split in stats.items():
        for unit in ("characters", "word_tokens"):
            lengths.add_row(name, unit.replace("_", " "), *[f"{split[unit][k]:g}" for k in keys])
    return [balance, lengths]
