"""What is in a data set: rows per split, class balance, review lengths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import STARS
from ..text import word_tokens

if TYPE_CHECKING:
    from datasets import DatasetDict

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
