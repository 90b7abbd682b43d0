"""The baseline: TF-IDF over words and word bigrams, then multinomial logistic regression;
above `OUT_OF_CORE_ABOVE` training reviews, hashed features learned chunk by chunk with SGD
(`models.hashed`), whose memory does not grow with the training set.

Saved without pickle: `vocabulary.json` (the n-grams in column order; none for hashed
features), `linear.npz` (idf, coefficients, intercepts; for hashed features, a few
frequent n-grams to name columns) and `config.json` (the settings that rebuild the
features). Probabilities are a softmax over `X @ coef.T + intercept` computed here, the
same way after `fit` and after `load`, so a round trip predicts identically.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from scipy.special import softmax

from .. import STARS
from ..errors import ModelError, ReviewstarsError
from ..settings.fields import Settings, setting
from ..text import readable
from ..text import WORD_PATTERN
from .base import StarPredictor
from .folder import CONFIG_FILE, FOLDED, calibration_of, check_finite, config_text, info_of, model_folder, read_section
from .hashed import HashedFeatures, fit_hashed
from .tfidf import FastTfidf

if TYPE_CHECKING:  # scikit-learn is imported where used: it costs a second that `--help` need not pay
    from sklearn.feature_extraction.text import TfidfVectorizer

KIND = "linear"
WEIGHTS_FILE = "linear.npz"
VOCABULARY_FILE = "vocabulary.json"
FEATURES = ("auto", "tfidf", "hashing")
#: Above this many training reviews `--features auto` hashes. Measured on 2 cores
#: (benchmarks/linear_at_scale.py): at 200k, TF-IDF + logistic regression takes 5 CPU
#: minutes and 1.4 GB more, and grows with every review; hashed features + SGD take 1
#: minute and 0.4 GB, flat to 1M. Below it TF-IDF keeps its edge: half a point of
#: accuracy on the 39k Yelp reviews, named n-grams, a folder a third the size.
OUT_OF_CORE_ABOVE = 200_000


@dataclass
class LinearSettings(Settings):
    """Defaults tuned on the shared Yelp data (benchmarks/linear_baseline.py)."""

    ngram_max: int = setting(2, "Longest word n-gram (2: words and word bigrams).", at_least=1, at_most=5)
    # n-grams seen in a single review are noise, and half the vocabulary
    min_df: int = setting(2, "Drop n-grams seen in fewer reviews.", at_least=1)
    max_df: float = setting(0.95, "Drop n-grams seen in more than this share of reviews.", above=0, at_most=1, cli=False)
    # 1 + log(tf): a word said five times is not five times the evidence
    sublinear_tf: bool = setting(True, "Count 1 + log(tf) instead of tf.", cli=False)
    # 0.5: 60.1%, 1: 60.2%, 4: 59.1% on the shared validation set
    C: float = setting(1.0, "Inverse L2 regularisation strength.", flag="--C", above=0)
    balanced: bool = setting(True, "Weight classes by inverse frequency.")
    max_iter: int = setting(300, "Solver iterations.", at_least=1, cli=False)
    # Only the pattern we write: a crafted pattern in a folder from elsewhere could hang predict.
    token_pattern: str = setting(WORD_PATTERN, "Word pattern.", choices=(WORD_PATTERN,), cli=False)
    features: str = setting("auto", "tfidf (a vocabulary, all in memory), hashing (hashed n-grams learned chunk by chunk: "
                                    "any number of reviews) or auto (hashing above --out-of-core-above reviews).", choices=FEATURES)
    out_of_core_above: int = setting(OUT_OF_CORE_ABOVE, "With --features auto: hash above this many training reviews.", at_least=0)
    # 2^20 columns: as many as scikit-learn's default; 2^21 scored the same on the shared data
    n_features: int = setting(1 << 20, "Hashed feature columns.", at_least=1 << 8, at_most=1 << 26, cli=False)
    sgd_passes: int = setting(3, "Hashed features: passes of SGD over the training set.", at_least=1, cli=False)
    chunk_size: int = setting(50_000, "Hashed features: reviews in memory at a time.", at_least=1, cli=False)
    shuffle_seed: int = setting(0, "Hashed features: seed of the passes' shuffles and of SGD.", cli=False)

    def vectorizer(self, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            ngram_range=(1, self.ngram_max),
            min_df=self.min_df,
            max_df=self.max_df,
            sublinear_tf=self.sublinear_tf,
            token_pattern=self.token_pattern,
            lowercase=True,
            dtype=np.float32,
            vocabulary=vocabulary,
        )


def features_for(settings: LinearSettings, reviews: int) -> tuple[str, str]:
    """(tfidf or hashing, why) for a training set of `reviews`: what `--features auto` picks."""
    if settings.features != "auto":
        return settings.features, f"--features {settings.features}"
    if reviews > settings.out_of_core_above:
        return "hashing", f"out of core: {reviews:,} reviews > {settings.out_of_core_above:,}"
    return "tfidf", f"in memory: {reviews:,} reviews <= {settings.out_of_core_above:,}"


class LinearPredictor(StarPredictor):
    kind = KIND
    releases_gil = False  # numpy on a few sparse rows: a server's thread would hand the GIL back and forth for nothing

    def __init__(self, settings: LinearSettings | None = None):
        self.settings = settings or LinearSettings()
        self._vectorizer: TfidfVectorizer | None = None
        self._loaded: tuple[dict[str, int], np.ndarray] | None = None  # (vocabulary, idf) of a loaded folder
        self.coef: np.ndarray | None = None        # (5, vocabulary) float32
        self.intercept: np.ndarray | None = None   # (5,) float32
        self.info: dict[str, Any] = {}             # training data and settings, for the model card
        self._features: FastTfidf | None = None    # the vectorizer's transform, vectorised
        self._coef_rows: tuple[np.ndarray, np.ndarray] | None = None  # (coef, coef.T row-major): see `_logits`
        self.hashed: HashedFeatures | None = None  # hashed features instead of a vocabulary
        self.terms: list[str] = []                 # ... and frequent n-grams that name their columns

    @property
    def vectorizer(self) -> TfidfVectorizer | None:
        """scikit-learn's vectorizer. A loaded model builds it only when asked (to save, to
        name its top features): predicting needs only `FastTfidf`, and skipping scikit-learn
        makes `predict` and `serve` start 2 s sooner."""
        if self._vectorizer is None and self._loaded is not None:
            vocabulary, idf = self._loaded
            self._vectorizer = self.settings.vectorizer(vocabulary)
            self._vectorizer.idf_ = idf
        return self._vectorizer

    @vectorizer.setter
    def vectorizer(self, vectorizer: TfidfVectorizer | None) -> None:
        self._vectorizer, self._loaded, self._features = vectorizer, None, None

    # ------------------------------------------------------------------ training
    def fit(self, texts: Sequence[str], labels: Sequence[int], advance: Callable[[int], None] | None = None) -> "LinearPredictor":
        """`--features auto` picks by the number of reviews (`features_for`). Hashed features
        read `texts` (any Sequence: a list, a datasets column) a chunk at a time and call
        `advance(reviews)` after each chunk."""
        features, _ = features_for(self.settings, len(texts))
        self.settings, self.hashed, self.terms = replace(self.settings, features=features), None, []
        if features == "hashing":
            self.vectorizer = None
            self.hashed, self.coef, self.intercept, self.terms = fit_hashed(texts, labels, self.settings, advance)
            return self
        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise ModelError("the linear model needs at least two classes in the training data")
        from sklearn.linear_model import LogisticRegression

        self.vectorizer, self._features = self.settings.vectorizer(), None
        features = self.vectorizer.fit_transform([readable(text) for text in texts])
        classifier = LogisticRegression(
            C=self.settings.C,
            class_weight="balanced" if self.settings.balanced else None,
            max_iter=self.settings.max_iter,
            solver="lbfgs",
        )
        classifier.fit(features, labels)
        # Spread the classes that training never saw back over all five columns.
        self.coef = np.zeros((len(STARS), features.shape[1]), dtype=np.float32)
        self.intercept = np.full(len(STARS), -1e4, dtype=np.float32)
        self.coef[classifier.classes_] = classifier.coef_ if len(classifier.classes_) > 2 else np.vstack(
            [-classifier.coef_[0] / 2, classifier.coef_[0] / 2]
        )
        intercepts = classifier.intercept_ if len(classifier.classes_) > 2 else np.array(
            [-classifier.intercept_[0] / 2, classifier.intercept_[0] / 2]
        )
        self.intercept[classifier.classes_] = intercepts
        return self

    # ------------------------------------------------------------------ inference
    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        if self.hashed is not None:
            return self._logits(self.hashed.transform([readable(text) for text in texts]))
        if self.settings.ngram_max > FastTfidf.NGRAM_MAX:  # trigrams and longer: scikit-learn's own transform
            if self.vectorizer is None:
                raise ModelError("this linear model is not trained: call fit() or load() first")
            return self._logits(self.vectorizer.transform([readable(text) for text in texts]))
        if self._features is None:
            if self._loaded is not None:
                self._features = FastTfidf(*self._loaded, ngram_max=self.settings.ngram_max,
                                           sublinear_tf=self.settings.sublinear_tf, token_pattern=self.settings.token_pattern)
            elif self.vectorizer is not None:
                self._features = FastTfidf.from_vectorizer(self.vectorizer)
            else:
                raise ModelError("this linear model is not trained: call fit() or load() first")
        return self._logits(self._features.transform([readable(text) for text in texts]))

    def _logits(self, features) -> np.ndarray:
        """`features @ coef.T + intercept`. scipy multiplies by a row-major matrix only, and
        `coef.T` is column-major: it copied all of `coef` on every call (4 ms a batch for a
        model of 229k n-grams, 20 MB for hashed features), so the transpose is kept (a second
        copy of the weights in memory). `coef` is then read-only: a change in place would
        leave the copy stale; a new `coef` gets a new copy."""
        if self._coef_rows is None or self._coef_rows[0] is not self.coef:
            self.coef.flags.writeable = False
            self._coef_rows = (self.coef, np.ascontiguousarray(self.coef.T))
        return np.asarray(features @ self._coef_rows[1]) + self.intercept

    def weights_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return softmax(self.decision_function(list(texts)), axis=1)

    def warm_up(self, max_batch: int, cuda_graphs: bool = True) -> int:
        """Build the vectorised transform and the row-major coefficients now: the first request
        to a server of a model trained on 38k reviews waited 0.8 s for them, on the event loop."""
        self.decision_function(["warm up"])
        return 0

    @property
    def num_parameters(self) -> int:
        return 0 if self.coef is None else int(self.coef.size + self.intercept.size)

    def layer_parameters(self) -> list[tuple[str, str, int]]:
        columns = self.coef.shape[1]
        name = "hashed tf-idf -> logistic regression (SGD)" if self.hashed is not None else "tf-idf -> logistic regression"
        return [(name, f"Linear({columns}, {len(STARS)})", (columns + 1) * len(STARS))]

    def top_features(self, k: int = 10) -> dict[int, list[str]]:
        """The n-grams that push hardest towards each star rating: the model, explained.
        Hashed features keep no vocabulary: they name only the frequent n-grams kept (`terms`)."""
        unseen = {star for star in STARS if self.never_trained_on(star)}  # nothing pushes towards them: no list
        if self.hashed is not None:
            terms, columns = self.terms, self.hashed.columns_of(self.terms)
            return {star: [] if star in unseen else [terms[i] for i in np.argsort(-self.coef[star - 1, columns], kind="stable")[:k]]
                    for star in STARS}
        terms = self.vectorizer.get_feature_names_out()
        return {star: [] if star in unseen else [str(terms[i]) for i in np.argsort(-self.coef[star - 1])[:k]] for star in STARS}

    def never_trained_on(self, star: int) -> bool:
        """A star no training review had: `fit` leaves its weights at zero and its intercept far below the others."""
        return not np.any(self.coef[star - 1]) and float(self.intercept[star - 1]) < -100

    # ------------------------------------------------------------------ persistence
    def fold_temperature(self) -> bool:
        """Divide the coefficients and intercepts by the temperature: the same softmax, in the weights."""
        if not self.folded and self.temperature != 1.0 and self.coef is not None:
            self.coef, self.intercept = self.coef / self.temperature, self.intercept / self.temperature
            self.folded = True
        return self.folded

    def save(self, path: str | Path) -> Path:
        if self.hashed is not None:
            return self._save_hashed(Path(path))
        if self.vectorizer is None:
            raise ModelError("nothing to save: the linear model is not trained")
        path = Path(path)
        self.fold_temperature()
        vocabulary = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        config = config_text(KIND, settings=asdict(self.settings), vocabulary_size=len(vocabulary), temperature=self.temperature,
                             **{FOLDED: self.folded}, **self.info)
        with model_folder(path) as stage:
            (stage / CONFIG_FILE).write_text(config, encoding="utf-8")
            (stage / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
            np.savez(stage / WEIGHTS_FILE, idf=self.vectorizer.idf_, coef=self.coef, intercept=self.intercept)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "LinearPredictor":
        """`device` is accepted for the common interface: scikit-learn's model runs on the CPU."""
        path = Path(path)
        found = read_section(path)
        try:
            settings = LinearSettings(**found["settings"])
        except (KeyError, TypeError, ReviewstarsError) as error:
            shown = re.sub(r"[\x00-\x1f\x7f]", lambda found: repr(found.group())[1:-1], str(error))  # one line: "\n" as \n
            raise ModelError(f"{path / CONFIG_FILE}: unusable linear settings ({shown})") from None
        if settings.features == "hashing":
            return cls._load_hashed(path, found, settings)
        settings = replace(settings, features="tfidf")  # what a folder from before `features` holds
        try:
            vocabulary = json.loads((path / VOCABULARY_FILE).read_text(encoding="utf-8"))
            with np.load(path / WEIGHTS_FILE, allow_pickle=False) as weights:
                idf, coef, intercept = weights["idf"], weights["coef"], weights["intercept"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:  # a file cut short, or not ours
            raise ModelError(f"{path}: not a readable linear model folder ({type(error).__name__}: {error})") from None
        if not isinstance(vocabulary, list) or not all(isinstance(term, str) for term in vocabulary) \
                or len(set(vocabulary)) != len(vocabulary):
            raise ModelError(f"{path / VOCABULARY_FILE}: must be a list of distinct terms (strings)")
        if coef.shape != (len(STARS), len(vocabulary)) or idf.shape != (len(vocabulary),) or intercept.shape != (len(STARS),):
            raise ModelError(f"{path}: the vocabulary and the weights do not match")
        check_finite((("idf", idf), ("coef", coef), ("intercept", intercept)), path)
        predictor = cls(settings)
        predictor.temperature, predictor.folded = calibration_of(found, path / CONFIG_FILE)
        predictor._loaded = ({term: i for i, term in enumerate(vocabulary)}, idf)
        predictor.coef, predictor.intercept = coef, intercept
        predictor.info = info_of(found, "settings", "vocabulary_size")
        return predictor

    def _save_hashed(self, path: Path) -> Path:
        self.fold_temperature()
        config = config_text(KIND, settings=asdict(self.settings), temperature=self.temperature, **{FOLDED: self.folded}, **self.info)
        with model_folder(path) as stage:
            (stage / CONFIG_FILE).write_text(config, encoding="utf-8")
            np.savez(stage / WEIGHTS_FILE, idf=self.hashed.idf, coef=self.coef, intercept=self.intercept,
                     terms=np.asarray(self.terms, dtype=str))
        return path

    @classmethod
    def _load_hashed(cls, path: Path, found: dict, settings: LinearSettings) -> "LinearPredictor":
        """A hashed folder: no vocabulary, `n_features` columns, and the named terms as a string array (no pickle)."""
        try:
            with np.load(path / WEIGHTS_FILE, allow_pickle=False) as weights:
                idf, coef, intercept, terms = weights["idf"], weights["coef"], weights["intercept"], weights["terms"]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ModelError(f"{path}: not a readable linear model folder ({type(error).__name__}: {error})") from None
        columns = settings.n_features
        if coef.shape != (len(STARS), columns) or idf.shape != (columns,) or intercept.shape != (len(STARS),):
            raise ModelError(f"{path}: the weights do not match n_features = {columns:,}")
        if terms.ndim != 1 or (terms.size and terms.dtype.kind != "U"):
            raise ModelError(f"{path / WEIGHTS_FILE}: its terms must be a list of strings")
        check_finite((("idf", idf), ("coef", coef), ("intercept", intercept)), path)
        predictor = cls(settings)
        predictor.temperature, predictor.folded = calibration_of(found, path / CONFIG_FILE)
        predictor.hashed = HashedFeatures.of(settings, idf)
        predictor.coef, predictor.intercept, predictor.terms = coef, intercept, [str(term) for term in terms]
        predictor.info = info_of(found, "settings")
        return predictor
