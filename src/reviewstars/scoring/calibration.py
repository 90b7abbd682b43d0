"""Is a model's confidence honest? Reliability bins, the expected calibration error (ECE),
and the ECE a perfectly calibrated model would show on as many reviews (its noise floor).
The temperature that fixes an over-confident model lives with the model
(`models.probabilities`); this measures what it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..models.probabilities import checked_labels


@dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width confidence bins; `confidence` and `accuracy` are NaN where `count` is 0."""

    edges: np.ndarray       # (bins + 1,) from 0 to 1
    confidence: np.ndarray  # (bins,) mean top-label probability
    accuracy: np.ndarray    # (bins,) share of those predictions that were right
    count: np.ndarray       # (bins,) predictions in the bin


def reliability_bins(proba: np.ndarray, labels: Sequence[int], bins: int = 15) -> ReliabilityBins:
    """Top-label confidence against accuracy per equal-width bin: a reliability diagram's data.

    Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins bin 0.
    """
    proba, labels = np.asarray(proba, dtype=np.float64), checked_labels(labels, len(proba))
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == labels).astype(np.float64)
    which = _bin_of(confidence, bins)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=bins) / count
    return ReliabilityBins(np.linspace(0, 1, bins + 1), mean_confidence, accuracy, count)


def expected_calibration_error(proba: np.ndarray, labels: Sequence[int], bins: int = 15) -> float:
    """ECE (Guo et al., 2017): |accuracy - confidence| per bin, weighted by the bin's share of rows."""
    table = reliability_bins(proba, labels, bins)
    filled = table.count > 0
    if not filled.any():
        raise ValueError("no predictions to score")
    gaps = np.abs(table.accuracy[filled] - table.confidence[filled])
    return float(np.sum(gaps * table.count[filled]) / table.count.sum())


#: Draws of the noise floor: its 95th percentile decides a verdict ("within noise"), so it is
#: drawn often enough to stay put (on 1,000 reviews it moved by 0.0035 between five seeds with
#: 200 draws, enough to flip a verdict; by 0.0017 with 2,000), and less often on very many
#: reviews (each draw flips one coin per review): 2,000 draws up to 100,000 reviews (about
#: 1 s), 200 from 1,000,000.
NOISE_DRAWS_MOST, NOISE_DRAWS_LEAST, NOISE_COINS_MOST = 2000, 200, 200_000_000


def ece_noise_floor(proba: np.ndarray, bins: int = 15, draws: int | None = None, seed: int = 0) -> tuple[float, float]:
    """(mean, 95th percentile) of the ECE a perfectly calibrated model with these very
    probabilities would show on this many reviews.

    Binned ECE is biased upwards on a finite sample (each bin's accuracy is noisy and
    |noise| > 0), by about 0.02 on 2,000 reviews. An ECE at or under the 95th percentile
    cannot be told from perfect calibration. Under real miscalibration the bias is
    smaller, so "ECE - floor" is a lower bound on the miscalibration seen, not its size.

    A perfectly calibrated model's top star is right with probability equal to its
    confidence, so each draw flips one coin per review instead of drawing its label.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if len(proba) == 0:
        raise ValueError("no predictions to score")
    if draws is None:
        draws = min(NOISE_DRAWS_MOST, max(NOISE_DRAWS_LEAST, NOISE_COINS_MOST // len(proba)))
    confidence = np.sort(proba.max(axis=1))  # the coins fall the same whatever order the reviews came in
    which = _bin_of(confidence, bins)
    confidence_per_bin = np.bincount(which, weights=confidence, minlength=bins)
    rng = np.random.default_rng(seed)
    found = [np.abs(np.bincount(which, weights=rng.random(len(proba)) < confidence, minlength=bins) - confidence_per_bin).sum()
             / len(proba) for _ in range(draws)]  # sum over bins of count * |accuracy - confidence|, over n
    return float(np.mean(found)), float(np.percentile(found, 95))


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins bin 0."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
