"""The linear kind: TF-IDF + logistic regression, fitted in one call; above
`OUT_OF_CORE_ABOVE` training reviews (or with `--features hashing`), hashed features
learned chunk by chunk with SGD, whose memory does not grow with the training set."""

from __future__ import annotations

import time
from dataclasses import asdict, replace

from ..data.formats import first_line
from ..errors import DataError
from ..ledger import spent
from ..models.hashed import TERMS_KEPT, TERMS_SAMPLE
from ..models.linear import LinearPredictor, LinearSettings, features_for
from ..progress import note, progress_bar, status
from .base import Kind, TrainingJob


def _train(job: TrainingJob) -> tuple[LinearPredictor, dict]:
    """The plan said before the work (which features, and why), then the fit: a spinner for
    the solver, a bar over chunks for the hashed passes."""
    settings, reviews = job.own, len(job.train)
    features, why = features_for(settings, reviews)
    predictor = LinearPredictor(replace(settings, features=features))
    started = time.perf_counter()
    if features == "hashing":
        note(f"linear: fitting hashed features + SGD ({why}): {settings.sgd_passes} passes of {settings.chunk_size:,} reviews at a time")
        with progress_bar("fitting hashed features + SGD", reviews * settings.sgd_passes) as advance, spent("fitting the model"):
            predictor.fit(job.train["text"], job.train["label"], advance=advance)
    else:
        with status(f"fitting TF-IDF + logistic regression on {reviews:,} reviews ({why})"), spent("fitting the model"):
            _fit_tfidf(predictor, job.train)
    passes = settings.sgd_passes if features == "hashing" else 1
    details = {"train_seconds": round(time.perf_counter() - started, 2), "train_examples": reviews,
               "train_examples_seen": reviews * passes, "settings": asdict(predictor.settings), "plan": {"features": features, "why": why}}
    return predictor, details


def _fit_tfidf(predictor: LinearPredictor, train) -> None:
    min_df = predictor.settings.min_df
    if min_df > len(train):  # scikit-learn says "max_df corresponds to < documents than min_df"
        raise DataError("--min-df", f"{min_df:,} keeps only n-grams seen in at least that many reviews, and there are "
                                    f"{len(train):,} to train on: none can be kept; give at most a few percent of them")
    try:
        predictor.fit(train["text"], train["label"])
    except ValueError as error:  # scikit-learn's TF-IDF finds no n-gram in --min-df of so few reviews
        why = ("every training review is the same text: there is nothing to tell one rating from another"
               if len(set(train["text"])) <= 1 else "give more reviews or a lower --min-df")
        raise DataError("--data", f"cannot fit TF-IDF + logistic regression on {len(train)} training reviews "
                                  f"({first_line(error)}): {why}") from None


def _card(predictor: LinearPredictor) -> list[str]:
    lines = ["## Strongest n-grams per rating", ""]
    if predictor.hashed is not None:
        if not predictor.terms:
            return lines + ["Hashed features keep no vocabulary, and no n-gram was named: the strongest cannot be shown."]
        lines += [f"Hashed features keep no vocabulary: the strongest of the {len(predictor.terms):,} most frequent n-grams "
                  f"(of a sample of up to {TERMS_SAMPLE:,} reviews; at most {TERMS_KEPT:,} kept).", ""]
    return lines + [f"- {star}★: {', '.join(terms) if terms else '(no training review had this rating: the model never predicts it)'}"
                    for star, terms in predictor.top_features(8).items()]


LINEAR = Kind(
    name="linear",
    summary="TF-IDF over words and word bigrams -> logistic regression (seconds on a CPU); "
            "hashed n-grams + SGD, out of core, for large training sets",
    settings=LinearSettings,
    fit=_train,
    card=_card,
)
