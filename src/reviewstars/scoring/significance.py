"""Is a leaderboard gap real? Bootstrap intervals for one model, paired tests between two.

A held-out set of a few thousand reviews leaves accuracy uncertain by a point or two,
so two models a few tenths apart are often indistinguishable. Everything here takes
internal labels 0..4 (stars - 1) or per-review correctness, and is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import binomtest

from .. import NUM_CLASSES

#: Resampled reviews gathered per chunk: bounds memory (~32 MB of indices) for any n.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float


@dataclass(frozen=True)
class BootstrapIntervals:
    accuracy: Interval
    macro_f1: Interval
    level: float
    resamples: int


@dataclass(frozen=True)
class RankRow:
    rank: int
    tied_with_previous: bool
    #: McNemar p-value against the leader of the tie group this model was tested
    #: against (the model that decided its rank); None for the first model.
    p_value_vs_leader: float | None
    #: Index (into the input) of that leader; None for the first model.
    leader: int | None


def bootstrap_interval(
    labels: Sequence[int],
    predictions: Sequence[int],
    *,
    seed: int = 0,
    resamples: int = 2000,
    level: float = 0.95,
) -> BootstrapIntervals:
    """Percentile bootstrap intervals for accuracy and macro-F1 over the scored reviews.

    Reviews are resampled with replacement, from their (true, predicted) pairs in a fixed
    order: the same predictions give the same intervals whatever order the reviews came in
    (`--eval-size` larger than the split shuffles it).
    Macro-F1 averages the classes true or predicted among the scored reviews (as
    `scores.score_predictions` and scikit-learn do), the same classes in every resample. On very small samples the percentile interval of
    macro-F1 can miss its point estimate (resamples drop rare classes, biasing it down);
    accuracy's always holds it.
    """
    y_true, y_pred = _label_arrays(labels, predictions)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, not {level}")
    cells = np.sort(y_true * NUM_CLASSES + y_pred)  # one confusion-matrix cell per review, in an order of their own
    present = np.union1d(y_true, y_pred)
    point = _confusions(cells[np.newaxis, :])
    resampled = _bootstrap_confusions(cells, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2
    return BootstrapIntervals(
        accuracy=_interval(_accuracy(point)[0], _accuracy(resampled), tail),
        macro_f1=_interval(_macro_f1(point, present)[0], _macro_f1(resampled, present), tail),
        level=level,
        resamples=resamples,
    )


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> float:
    """Two-sided exact McNemar test: are two models' accuracies on the same reviews different?

    Only the reviews exactly one model gets right carry evidence; under the null each
    is equally likely to favour either model, so their split is Binomial(n, 1/2).
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"correctness vectors must be 1-D and of equal length, not {a.shape} and {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def rank_with_ties(correctness_best_first: Sequence[Sequence[bool]], alpha: float = 0.05) -> list[RankRow]:
    """Leaderboard ranks where models the paired test cannot separate share a rank.

    Models arrive best first. The first model leads tie group 1. Each next model is
    tested (McNemar) against the leader of the current group, not against its
    neighbour: if p >= alpha it joins the group and shares the leader's rank; otherwise
    it leads a new group with rank = its 1-based position ("1, 1, 3"). Testing against
    the leader stops ties chaining down the board (A ~ B ~ C while A clearly beats C).
    """
    if len(correctness_best_first) == 0:
        return []
    rows = [RankRow(rank=1, tied_with_previous=False, p_value_vs_leader=None, leader=None)]
    leader = 0
    for position in range(1, len(correctness_best_first)):
        p_value = mcnemar_exact(correctness_best_first[leader], correctness_best_first[position])
        tied = p_value >= alpha
        rows.append(RankRow(rank=rows[leader].rank if tied else position + 1, tied_with_previous=tied, p_value_vs_leader=p_value, leader=leader))
        if not tied:
            leader = position
    return rows


def _label_arrays(labels: Sequence[int], predictions: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D and of equal length, not {y_true.shape} and {y_pred.shape}")
    if len(y_true) == 0:
        raise ValueError("no reviews to score")
    if min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= NUM_CLASSES:
        raise ValueError(f"labels and predictions must lie in 0..{NUM_CLASSES - 1} (stars - 1)")
    return y_true, y_pred


def _bootstrap_confusions(cells: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, 5, 5) confusion counts, a chunk of resamples at a time."""
    n = len(cells)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    chunks = []
    for start in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - start)
        chunks.append(_confusions(cells[rng.integers(0, n, size=(count, n))]))
    return np.concatenate(chunks)


def _confusions(cells: np.ndarray) -> np.ndarray:
    """Confusion counts of each row of cell ids, all rows in one bincount (row r's cells offset by 25r)."""
    rows = cells.shape[0]
    offset = (np.arange(rows, dtype=np.int64) * NUM_CLASSES**2)[:, np.newaxis]
    counts = np.bincount((cells + offset).ravel(), minlength=rows * NUM_CLASSES**2)
    return counts.reshape(rows, NUM_CLASSES, NUM_CLASSES)


def _accuracy(confusions: np.ndarray) -> np.ndarray:
    return np.trace(confusions, axis1=1, axis2=2) / confusions.sum(axis=(1, 2))


def _macro_f1(confusions: np.ndarray, classes: np.ndarray) -> np.ndarray:
    true_positive = np.diagonal(confusions, axis1=1, axis2=2)
    true_plus_predicted = confusions.sum(axis=2) + confusions.sum(axis=1)  # = 2TP + FP + FN
    f1 = np.divide(2 * true_positive, true_plus_predicted, out=np.zeros(true_positive.shape), where=true_plus_predicted > 0)
    return f1[:, classes].mean(axis=1)


def _interval(point: float, resampled: np.ndarray, tail: float) -> Interval:
    low, high = np.quantile(resampled, [tail, 1 - tail])
    return Interval(point=float(point), low=float(low), high=float(high))
