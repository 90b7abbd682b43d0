"""One model's scores on labelled reviews, as one typed record.

Each metric is one field of `Scores`, declared with its computation and how a table
shows it. `score_predictions` fills every declared metric; the terminal tables,
metrics.json, the model card, leaderboard.json and the compare report all render from
the same declarations. A new metric is one field and one function here.

Star ratings are ordered, so besides exact accuracy we report the mean absolute error in
stars and the share of predictions at most one star off; the probabilities themselves
are judged by the Brier score and the calibration error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Sequence

import numpy as np

from .. import STARS


@dataclass(frozen=True)
class Predictions:
    """What a metric is computed from: a model's calibrated probabilities on labelled
    reviews, and the stars its decision chose from them."""

    proba: np.ndarray   # (n, 5)
    labels: np.ndarray  # (n,) true labels 0..4 (stars - 1)
    stars: np.ndarray   # (n,) predicted stars 1..5

    @property
    def distance(self) -> np.ndarray:
        """How many stars off each prediction is."""
        return np.abs(self.labels + 1 - self.stars)


def metric(header: str, fmt: str, compute: Callable[[Predictions], float] | None = None, *, terminal: bool = True,
           interval: bool = False, card: tuple[str, str, str | None] | None = None) -> Any:
    """A metric field: its table header, how a value shows (a format string), and how it is
    computed from the predictions (None: measured elsewhere, like speed). `terminal=False`
    keeps it to the report and the JSON; `interval` shows its 95% bootstrap interval
    beside it; `card` lists it in the model card's Hub metadata as (type, name, config)."""
    return field(default=None, metadata={"header": header, "format": fmt, "compute": compute, "terminal": terminal,
                                         "interval": interval, "card": card})


def _accuracy(p: Predictions) -> float:
    return float((p.distance == 0).mean())


def _macro_f1(p: Predictions) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(p.labels + 1, p.stars, labels=stars_present(p.labels, p.stars), average="macro", zero_division=0))


def stars_present(labels: np.ndarray, stars: np.ndarray) -> list[int]:
    """The stars the reviews have or were given: what macro-F1 averages (a star no review has
    nor got is not averaged, as in scikit-learn)."""
    return sorted(set((np.asarray(labels) + 1).tolist()) | set(np.asarray(stars, dtype=int).tolist()))


def _mae(p: Predictions) -> float:
    return float(p.distance.mean())


def _off_by_one(p: Predictions) -> float:
    return float((p.distance <= 1).mean())


def _brier(p: Predictions) -> float:
    """Brier (1950): the squared distance between the five probabilities and the true star's
    one-hot, averaged over reviews (0 is perfect, uniform guessing scores 0.8). Unlike
    accuracy it rewards honest confidence; unlike ECE it cannot be gamed by a constant."""
    return float(((p.proba - np.eye(p.proba.shape[1])[p.labels]) ** 2).sum(axis=1).mean())


def _ece(p: Predictions) -> float:
    from .calibration import expected_calibration_error

    return expected_calibration_error(p.proba, p.labels)


@dataclass
class Scores:
    """A model's scores on `n` labelled reviews. The metric fields (declared with `metric`)
    are the columns every view shows; the rest says how they were measured."""

    n: int = 0
    accuracy: float | None = metric("accuracy", "{:.4f}", _accuracy, interval=True, card=("accuracy", "accuracy", None))
    macro_f1: float | None = metric("macro-F1", "{:.4f}", _macro_f1, interval=True, card=("f1", "macro-F1", "macro"))
    mae: float | None = metric("MAE (stars)", "{:.3f}", _mae)
    off_by_one_accuracy: float | None = metric("off-by-one", "{:.4f}", _off_by_one, terminal=False)
    brier: float | None = metric("Brier", "{:.3f}", _brier, terminal=False)
    ece: float | None = metric("ECE", "{:.3f}", _ece)
    ece_uncalibrated: float | None = metric("ECE uncalibrated", "{:.3f}", terminal=False)  # before the temperature
    ece_noise_floor: float | None = metric("ECE noise floor", "{:.3f}", terminal=False)    # a calibrated model's ECE here
    predictions_per_second: float | None = metric("predictions/s", "{:,.0f}", terminal=False)
    ece_noise_95: float | None = None  # 95th percentile of a perfectly calibrated model's ECE on these reviews
    decision: str = "argmax"           # how stars were chosen from the probabilities
    intervals: dict[str, Any] = field(default_factory=dict)  # level, resamples, and [low, high] by interval metric
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # precision, recall, f1, support by star
    confusion_matrix: list[list[int]] = field(default_factory=list)      # rows: true stars 1..5, columns: predicted
    temperature: float | None = None   # the calibration applied before scoring
    seconds: float | None = None       # predicting all n reviews took this long
    warnings: list[str] = field(default_factory=list)  # what the numbers do not say by themselves
    context: dict[str, Any] = field(default_factory=dict)  # what was scored: split, model, data, seed... (JSON top level)

    @staticmethod
    def metrics(terminal: bool = False) -> list:
        """The metric fields, in the order every table shows them."""
        return [f for f in fields(Scores) if "header" in f.metadata and (f.metadata["terminal"] or not terminal)]

    def computed(self) -> list:
        """The metric fields computed from the predictions (not measured elsewhere, like speed)
        that these scores hold: what a results table lists."""
        return [f for f in self.metrics() if f.metadata["compute"] is not None and getattr(self, f.name) is not None]

    def shown(self, name: str) -> str:
        """A metric as a table shows it ("-" when not measured), with its interval when it has one."""
        item = next(f for f in fields(self) if f.name == name)
        value = getattr(self, name)
        if value is None:
            return "-"
        text = item.metadata["format"].format(value)
        interval = self.intervals.get(name) if item.metadata["interval"] else None
        return f"{text} ({interval[0]:.3f}-{interval[1]:.3f})" if interval else text

    @property
    def split(self) -> str | None:
        return self.context.get("split")

    def to_json(self) -> dict[str, Any]:
        """metrics.json: every field, with the context at the top level (as files before the record had it)."""
        record = asdict(self)
        return {**record.pop("context"), **record}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "Scores":
        """A metrics.json read back, older files included: what is not a field is context."""
        names = {f.name for f in fields(cls)} - {"context"}
        return cls(**{k: v for k, v in record.items() if k in names},
                   context={k: v for k, v in record.items() if k not in names})

    def rounded(self, digits: int = 4) -> "Scores":
        """The same scores, every metric and interval rounded (what a leaderboard keeps)."""
        from dataclasses import replace

        def cut(value):
            return round(value, digits) if isinstance(value, float) else value

        return replace(self, **{f.name: cut(getattr(self, f.name)) for f in self.metrics()},
                       ece_noise_95=cut(self.ece_noise_95),
                       intervals={k: [cut(x) for x in v] if isinstance(v, list) else v for k, v in self.intervals.items()})


#: The seed of every resampling behind a score (bootstrap intervals, the ECE's noise floor).
SCORING_SEED = 0


def score_predictions(proba: np.ndarray, labels: Sequence[int], decision: str = "argmax") -> Scores:
    """Every metric of a model's probabilities on labelled reviews (labels 0..4): each
    declared metric's computation, 95% bootstrap intervals, per-class precision and recall,
    the confusion matrix, the calibration error's noise floor, and warnings.

    The same predictions always get the same scores, whichever command scores them: the
    bootstrap and the noise floor draw from one fixed seed (`SCORING_SEED`), never from a
    run's data seed (`compare` once drew from it, and its intervals and calibration verdict
    differed from `train`'s and `evaluate`'s for the very same predictions)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from ..models.probabilities import star_decision
    from .calibration import ece_noise_floor
    from .significance import bootstrap_interval

    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0:
        raise ValueError("no examples to score")
    proba = np.asarray(proba, dtype=np.float64)
    predictions = Predictions(proba, labels, star_decision(proba, decision))
    scores = Scores(n=int(len(labels)), decision=decision)
    for item in Scores.metrics():
        if item.metadata["compute"] is not None:
            setattr(scores, item.name, item.metadata["compute"](predictions))
    bootstrap = bootstrap_interval(labels, predictions.stars - 1, seed=SCORING_SEED)
    scores.intervals = {"level": bootstrap.level, "resamples": bootstrap.resamples,
                        **{f.name: [getattr(bootstrap, f.name).low, getattr(bootstrap, f.name).high]
                           for f in Scores.metrics() if f.metadata["interval"]}}
    # A star never predicted has no precision, one no review has no recall, and one with neither
    # no F1 (macro-F1 leaves it out): None (null in JSON, "-" in tables), never a 0 that reads as a failure.
    precision, recall, f1, support = precision_recall_fscore_support(labels + 1, predictions.stars, labels=list(STARS),
                                                                     zero_division=np.nan)
    scores.per_class = {str(star): {"precision": defined(precision[i]), "recall": defined(recall[i]), "f1": defined(f1[i]),
                                    "support": int(support[i])} for i, star in enumerate(STARS)}
    scores.confusion_matrix = confusion_matrix(labels + 1, predictions.stars, labels=list(STARS)).tolist()
    scores.ece_noise_floor, scores.ece_noise_95 = ece_noise_floor(proba, seed=SCORING_SEED)
    scores.warnings = result_warnings(scores, labels, predictions.stars)
    return scores


def defined(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


#: Past this share of the reviews on one star, a model says little more than that star...
ONE_STAR_SHARE = 0.8
#: ...when there are this many reviews at least (one review is always 100% of one star).
ONE_STAR_MIN_REVIEWS = 20


def result_warnings(scores: Scores, labels: np.ndarray, stars: np.ndarray) -> list[str]:
    """What a result does not say by itself: a model that gives one star to most reviews (of
    twenty or more, not mostly of that star themselves), or
    whose accuracy is within noise of a constant guess (the share of the commonest true
    star: 0.20 on balanced reviews)."""
    found = []
    counts = np.bincount(np.asarray(stars, dtype=int), minlength=len(STARS) + 1)[1:]
    star = int(counts.argmax()) + 1
    truly = float(np.mean(np.asarray(labels) + 1 == star)) if len(labels) else 0.0
    if len(stars) >= ONE_STAR_MIN_REVIEWS and counts.max() >= ONE_STAR_SHARE * len(stars) and truly < ONE_STAR_SHARE:
        # (reviews that are mostly that star, rightly rated so, are no fault of the model's)
        found.append(f"predicts {star} star{'s' if star > 1 else ''} for {counts.max() / len(stars):.0%} of the reviews: it has "
                     "learned little more than that")
    present, had = stars_present(labels, stars), sorted(set((np.asarray(labels) + 1).tolist()))
    given_only = [star for star in present if star not in had]
    if given_only and len(had) < len(STARS):  # (a probe's 1/3/5-star data: 0.42 over five, 0.69 over its three)
        found.append(f"these reviews are rated {', '.join(map(str, had))} stars only: macro-F1 averages those and the "
                     f"{', '.join(map(str, given_only))} the model also gave them, each with an F1 of 0 (as scikit-learn "
                     f"does), so it is lower than over the stars the reviews have")
    elif len(present) < len(STARS):
        found.append(f"macro-F1 averages the {len(present)} star ratings these reviews have or were given "
                     f"({', '.join(map(str, present))}), not all {len(STARS)}")
    constant = float(np.bincount(labels, minlength=len(STARS)).max() / max(len(labels), 1))
    low, high = scores.intervals["accuracy"]
    if high < constant:
        found.append(f"accuracy {scores.accuracy:.3f} is worse than a constant guess ({constant:.3f}: the commonest "
                     f"star's share; 95% interval up to {high:.3f}): the model is broken, or was trained on other ratings")
    elif low <= constant:
        found.append(f"accuracy {scores.accuracy:.3f} is within noise of a constant guess ({constant:.3f}: the commonest "
                     f"star's share; 95% interval from {low:.3f})")
    if len(labels) < FEW_TO_SCORE:
        found.append(f"only {len(labels)} review{'s' if len(labels) != 1 else ''} scored: the 95% intervals (a bootstrap "
                     f"of them) are not to be trusted below {FEW_TO_SCORE}")
    return found


#: Below this many scored reviews a bootstrap's interval understates the noise (one review: a point).
FEW_TO_SCORE = 30


def calibration_verdict(ece: float, floor: float, high: float) -> str:
    """What an ECE says once its noise floor is known, in a few words."""
    if ece <= high:
        return f"within noise (a perfectly calibrated model would show {floor:.3f}, up to {high:.3f})"
    return f"{ece - floor:.3f} above its noise floor of {floor:.3f}"
