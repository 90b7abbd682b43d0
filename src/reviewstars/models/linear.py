"""The baseline: TF-IDF over words and word bigrams, then multinomial logistic regression.

Saved without pickle: `vocabulary.json` (the n-grams in column order), `linear.npz`
(idf, coefficients, intercepts) and `config.json` (the settings that rebuild the
vectorizer). Probabilities are a softmax over `X @ coef.T + intercept` computed here,
the same way after `fit` and after `load`, so a round trip predicts identically.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from scipy import sparse
from scipy.special import softmax

from .. import STARS
from ..artifacts import atomic_dir
from ..errors import ModelError, ReviewstarsError
from ..options import Settings, setting
from ..tokenization import WORD_PATTERN
from .base import StarPredictor
from .folder import CONFIG_FILE, config_text, info_of, read_section, temperature_of

if TYPE_CHECKING:  # scikit-learn is imported where used: it costs a second that `--help` need not pay
    from sklearn.feature_extraction.text import TfidfVectorizer

KIND = "linear"
WEIGHTS_FILE = "linear.npz"
VOCABULARY_FILE = "vocabulary.json"


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


class LinearPredictor(StarPredictor):
    kind = KIND

    def __init__(self, settings: LinearSettings | None = None):
        self.settings = settings or LinearSettings()
        self._vectorizer: TfidfVectorizer | None = None
        self._loaded: tuple[dict[str, int], np.ndarray] | None = None  # (vocabulary, idf) of a loaded folder
        self.coef: np.ndarray | None = None        # (5, vocabulary) float32
        self.intercept: np.ndarray | None = None   # (5,) float32
        self.info: dict[str, Any] = {}             # training data and settings, for the model card
        self._features: FastTfidf | None = None    # the vectorizer's transform, vectorised

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
    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> "LinearPredictor":
        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise ModelError("the linear model needs at least two classes in the training data")
        from sklearn.linear_model import LogisticRegression

        self.vectorizer, self._features = self.settings.vectorizer(), None
        features = self.vectorizer.fit_transform(texts)
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
        if self._features is None:
            if self._loaded is not None:
                self._features = FastTfidf(*self._loaded, self.settings)
            elif self.vectorizer is not None:
                self._features = FastTfidf.from_vectorizer(self.vectorizer)
            else:
                raise ModelError("this linear model is not trained: call fit() or load() first")
        features = self._features.transform(texts)
        return np.asarray(features @ self.coef.T) + self.intercept

    def uncalibrated_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        return softmax(self.decision_function(list(texts)), axis=1)

    @property
    def num_parameters(self) -> int:
        return 0 if self.coef is None else int(self.coef.size + self.intercept.size)

    def layer_parameters(self) -> list[tuple[str, str, int]]:
        vocabulary = self.coef.shape[1]
        return [("tf-idf -> logistic regression", f"Linear({vocabulary}, {len(STARS)})", (vocabulary + 1) * len(STARS))]

    def top_features(self, k: int = 10) -> dict[int, list[str]]:
        """The n-grams that push hardest towards each star rating: the model, explained."""
        terms = self.vectorizer.get_feature_names_out()
        return {star: [str(terms[i]) for i in np.argsort(-self.coef[star - 1])[:k]] for star in STARS}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        if self.vectorizer is None:
            raise ModelError("nothing to save: the linear model is not trained")
        path = Path(path)
        vocabulary = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        config = config_text(KIND, settings=asdict(self.settings), vocabulary_size=len(vocabulary), temperature=self.temperature, **self.info)
        with atomic_dir(path) as stage:
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
            raise ModelError(f"{path / CONFIG_FILE}: unusable linear settings ({error})") from None
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
        predictor = cls(settings)
        predictor.temperature = temperature_of(found, path / CONFIG_FILE)
        predictor._loaded = ({term: i for i, term in enumerate(vocabulary)}, idf)
        predictor.coef, predictor.intercept = coef, intercept
        predictor.info = info_of(found, "settings", "vocabulary_size")
        return predictor


class FastTfidf:
    r"""`TfidfVectorizer.transform` for word uni/bigrams, with the per-token work in numpy.

    scikit-learn builds every n-gram as a Python string and looks it up one at a time,
    which caps the baseline at ~7k reviews/s. Here each review costs one C-level scan
    and one dict lookup per word; bigrams are found by looking the pair of word ids
    (`first * words + second`) up in a hash table, all pairs at once. Same features,
    same numbers (tested against scikit-learn).

    The scan: most reviews are plain ASCII, and for those `\w` is exactly
    [A-Za-z0-9_], so one `bytes.translate` (lower-casing letters, blanking every other
    character) and a `split()` find the same words as the regex, several times faster.
    Other reviews go through the regex.
    """

    SKIP = -2  # a one-character ASCII word: the regex would not have matched it

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, settings: LinearSettings):
        if settings.ngram_max > 2:
            raise ModelError("the fast transform handles word unigrams and bigrams (ngram_max <= 2)")
        # Runs of 2+ word characters: the same matches as `\b\w\w+\b` (a maximal run is
        # bounded by non-word characters on both sides), without the boundary checks.
        self.pattern = re.compile(r"\w{2,}" if settings.token_pattern == WORD_PATTERN else settings.token_pattern)
        self.sublinear_tf = settings.sublinear_tf
        self.idf = np.asarray(idf, dtype=np.float64)
        self.columns = len(vocabulary)
        self.word_ids: dict[str, int] = {}
        unigram_column, pair_keys, pair_columns = {}, [], []
        for term, column in vocabulary.items():
            parts = term.split(" ")
            ids = [self.word_ids.setdefault(word, len(self.word_ids)) for word in parts]
            if len(ids) == 1:
                unigram_column[ids[0]] = column
            else:
                pair_keys.append(ids)
                pair_columns.append(column)
        words = len(self.word_ids)
        self.ascii_words = settings.token_pattern == WORD_PATTERN
        if self.ascii_words:
            # The same words as bytes, for reviews read by the ASCII scan (str and bytes
            # keys never collide in a dict).
            for word, index in list(self.word_ids.items()):
                if word.isascii():
                    self.word_ids[word.encode("ascii")] = index
            for byte in _ASCII_WORD_BYTES:
                self.word_ids[bytes([byte]).lower()] = self.SKIP
        self.unigram_column = np.full(words + 1, -1, dtype=np.int64)   # last slot: unknown word
        for word, column in unigram_column.items():
            self.unigram_column[word] = column
        pairs = np.asarray(pair_keys, dtype=np.int64).reshape(-1, 2)
        self.pair_column = IntTable(pairs[:, 0] * words + pairs[:, 1], np.asarray(pair_columns, dtype=np.int64))
        self.words = words

    @classmethod
    def from_vectorizer(cls, vectorizer: TfidfVectorizer) -> "FastTfidf":
        settings = LinearSettings(
            ngram_max=vectorizer.ngram_range[1], sublinear_tf=vectorizer.sublinear_tf, token_pattern=vectorizer.token_pattern
        )
        return cls(vectorizer.vocabulary_, vectorizer.idf_, settings)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        findall, unknown = self.pattern.findall, self.words
        if self.ascii_words:
            tokens = [text.encode("ascii").translate(_ASCII_WORDS).split() if text.isascii() else findall(text.lower()) for text in texts]
        else:
            tokens = [findall(text.lower()) for text in texts]
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        ids = np.fromiter(map(self.word_ids.get, chain.from_iterable(tokens), repeat(unknown)), dtype=np.int64, count=int(lengths.sum()))
        document = np.repeat(np.arange(len(tokens)), lengths)
        if self.ascii_words:
            kept = ids != self.SKIP
            ids, document = ids[kept], document[kept]

        rows, columns = [document], [self.unigram_column[ids]]
        if len(self.pair_column) and len(ids) > 1:
            first, second = ids[:-1], ids[1:]
            same_review = (document[:-1] == document[1:]) & (first != unknown) & (second != unknown)
            pair_columns = self.pair_column.get(first[same_review] * self.words + second[same_review])
            found = pair_columns >= 0
            rows.append(document[:-1][same_review][found])
            columns.append(pair_columns[found])
        rows, columns = np.concatenate(rows), np.concatenate(columns)
        known = columns >= 0
        counts = sparse.csr_matrix(
            (np.ones(int(known.sum())), (rows[known], columns[known])), shape=(len(tokens), self.columns)
        )
        counts.sum_duplicates()
        if self.sublinear_tf:
            np.log(counts.data, counts.data)
            counts.data += 1
        counts.data *= self.idf[counts.indices]
        norms = np.sqrt(np.bincount(np.repeat(np.arange(len(tokens)), np.diff(counts.indptr)), counts.data ** 2, len(tokens)))
        counts.data /= np.repeat(np.where(norms > 0, norms, 1.0), np.diff(counts.indptr))  # each row to unit length (l2)
        return counts.astype(np.float32)


class IntTable:
    """int64 key -> int64 value, looked up for a whole array of keys at once.

    Open addressing with linear probing, every probe a numpy gather: about 1.5 memory
    reads per key where a binary search (`searchsorted`) needs some twenty, which made
    the bigram lookup the baseline's slowest step. Missing keys give -1.
    """

    EMPTY = -1

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        self.size = len(keys)
        self.bits = max(int(np.ceil(np.log2(max(2 * len(keys), 2)))), 1)  # load factor <= 1/2
        self.keys = np.full(1 << self.bits, self.EMPTY, dtype=np.int64)
        self.values = np.full(1 << self.bits, -1, dtype=np.int64)
        pending, slots = np.arange(len(keys)), self._slots(keys)
        while len(pending):
            free = self.keys[slots[pending]] == self.EMPTY
            contenders = pending[free]
            _, first = np.unique(slots[contenders], return_index=True)  # one key per free slot per round
            winners = contenders[first]
            self.keys[slots[winners]], self.values[slots[winners]] = keys[winners], values[winners]
            placed = np.zeros(len(keys), dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            slots[pending] = (slots[pending] + 1) & ((1 << self.bits) - 1)

    def __len__(self) -> int:
        return self.size

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        # Fibonacci hashing: multiply by 2^64 / golden ratio (wrapping), keep the top bits.
        mixed = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return (mixed >> np.uint64(64 - self.bits)).astype(np.int64)

    def get(self, keys: np.ndarray) -> np.ndarray:
        found = np.full(len(keys), -1, dtype=np.int64)
        active, slots = np.arange(len(keys)), self._slots(keys)
        while len(active):
            stored = self.keys[slots[active]]
            hit = stored == keys[active]
            found[active[hit]] = self.values[slots[active[hit]]]
            active = active[~hit & (stored != self.EMPTY)]
            slots[active] = (slots[active] + 1) & ((1 << self.bits) - 1)
        return found


# ASCII word characters ([A-Za-z0-9_]) map to themselves, lower-cased; every other byte to a space.
_ASCII_WORD_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
_ASCII_WORDS = bytes(byte if byte in _ASCII_WORD_BYTES else 0x20 for byte in range(256)).lower()
