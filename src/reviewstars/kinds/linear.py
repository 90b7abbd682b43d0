"""The linear kind: TF-IDF + logistic regression, fitted in one call."""

from __future__ import annotations

from ..data.formats import first_line
from ..errors import DataError
from ..models.linear import LinearPredictor, LinearSettings
from .base import Kind, fit_in_one_call


def _fit(train, settings: LinearSettings) -> LinearPredictor:
    try:
        return LinearPredictor(settings).fit(train["text"], train["label"])
    except ValueError as error:  # scikit-learn's TF-IDF finds no n-gram in --min-df of so few reviews
        raise DataError("--data", f"cannot fit TF-IDF + logistic regression on {len(train)} training reviews "
                                  f"({first_line(error)}): give more reviews or a lower --min-df") from None


def _card(predictor: LinearPredictor) -> list[str]:
    lines = ["## Strongest n-grams per rating", ""]
    return lines + [f"- {star}★: {', '.join(terms)}" for star, terms in predictor.top_features(8).items()]


LINEAR = Kind(
    name="linear",
    summary="TF-IDF over words and word bigrams -> logistic regression (seconds on a CPU)",
    settings=LinearSettings,
    fit=fit_in_one_call(_fit, "fitting TF-IDF + logistic regression"),
    card=_card,
)
