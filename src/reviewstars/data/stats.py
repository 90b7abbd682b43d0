"""What is in a data set: rows per split, class balance, review lengths, repeated reviews."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import STARS
from ..text import text_hashes, word_tokens

if TYPE_CHECKING:
    from datasets import DatasetDict

PERCENTILES = (5, 25, 50, 75, 95, 99)


def length_summary(lengths: np.ndarray) -> dict[str, float]:
    summary = {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 1), "max": int(lengths.max())}
    summary.update({f"p{p}": float(np.percentile(lengths, p)) for p in PERCENTILES})
    return summary


def data_stats(dataset: DatasetDict) -> dict[str, Any]:
    """Per split: rows, reviews per star, length percentiles in characters and words, and the
    reviews repeated (within the split, and of the first split's: the same words whatever
    their case or spacing), which training leaves out of one side of each cut."""
    result, first = {}, None
    for name, split in dataset.items():
        texts, labels = split["text"], np.asarray(split["label"])
        counts = np.bincount(labels, minlength=len(STARS))
        hashes = text_hashes(texts)
        result[name] = {
            "rows": len(split),
            "stars": {str(star): int(counts[star - 1]) for star in STARS},
            "star_shares": {str(star): round(float(counts[star - 1] / len(split)), 4) for star in STARS},
            "characters": length_summary(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))),
            "word_tokens": length_summary(np.fromiter((len(word_tokens(t)) for t in texts), dtype=np.int64, count=len(texts))),
            "repeated": int(len(hashes) - len(np.unique(hashes))),
        }
        if first is None:
            first = (name, hashes)
        else:
            result[name][f"also_in_{first[0]}"] = int(np.isin(hashes, first[1]).sum())
    return result
