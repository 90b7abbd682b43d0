"""Hashed n-gram features and their out-of-core fit: the linear model for training sets
larger than memory.

TF-IDF + logistic regression holds every review's features and its vocabulary at once,
so its memory grows with the training set. Here each word and word pair is hashed to one
of `n_features` columns (scikit-learn's `HashingVectorizer` columns: no vocabulary to
hold), idf is estimated on the first chunk (a random sample) and `SGDClassifier.partial_fit`
learns one chunk at a time: memory is bounded by a chunk, never by the training set.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Callable, Sequence

import numpy as np
from scipy import sparse

from .. import STARS
from ..errors import ModelError
from ..text import readable
from ..text import WORD_PATTERN
from .tfidf import counted, scan_words, tfidf_rows, unit_rows

TERMS_SAMPLE = 3_000   # reviews of the first chunk whose frequent n-grams are kept to name features
TERMS_KEPT = 5_000     # ... and how many: 5,000 names cost ~0.5 MB in the folder
TRANSFORM_BATCH = 10_000  # reviews scanned at once: a scan's Python objects (one per word) grow with them


def hashed_columns(hashes: Sequence[int], n_features: int) -> np.ndarray:
    """Signed 32-bit murmur hashes to columns, exactly as `HashingVectorizer` maps them."""
    hashes = np.asarray(hashes, dtype=np.int64).reshape(-1)
    return np.where(hashes == -(2 ** 31), (2 ** 31 - 1 - (n_features - 1)) % n_features, np.abs(hashes) % n_features)


class HashedFeatures:
    """`HashingVectorizer(alternate_sign=False, norm=None)` counts of word uni/bigrams, then
    1 + log(tf), idf and unit length: the TF-IDF features, with hashed columns.

    As `FastTfidf` does, the scan is one C-level pass per review; each distinct word and
    word pair of a batch is hashed once (scikit-learn hashes every occurrence), which makes
    it ~1.8x scikit-learn's transform with the same columns (tested against it).
    Longer n-grams (`ngram_max` > 2) take scikit-learn's own transform.
    """

    def __init__(self, idf: np.ndarray | None, *, n_features: int, ngram_max: int, sublinear_tf: bool, token_pattern: str):
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float32)
        self.n_features, self.ngram_max, self.sublinear_tf = n_features, ngram_max, sublinear_tf
        self.token_pattern = token_pattern
        self.pattern = re.compile(r"\w{2,}" if token_pattern == WORD_PATTERN else token_pattern)

    @classmethod
    def of(cls, settings, idf: np.ndarray | None = None) -> "HashedFeatures":
        return cls(idf, n_features=settings.n_features, ngram_max=settings.ngram_max, sublinear_tf=settings.sublinear_tf,
                   token_pattern=settings.token_pattern)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Rows of unit length, float32; `texts` already `readable`. A server's batch (a few
        reviews) is weighed before its one CSR is built (`tfidf_rows`), as `FastTfidf` does."""
        if len(texts) > TRANSFORM_BATCH or not self._scans_itself:
            return self.weigh(self.counts(texts))
        return tfidf_rows(*self._counted(texts), self.idf, self.sublinear_tf, self.n_features)

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """(1 + log) counts per hashed column, float64, a batch at a time to bound the scan's memory."""
        parts = [self._counts(texts[start:start + TRANSFORM_BATCH]) for start in range(0, len(texts), TRANSFORM_BATCH)]
        parts = parts or [self._counts([])]
        counts = sparse.vstack(parts, format="csr") if len(parts) > 1 else parts[0]
        if self.sublinear_tf:
            np.log(counts.data, counts.data)
            counts.data += 1
        return counts

    def weigh(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        counts.data *= self.idf[counts.indices]
        return unit_rows(counts).astype(np.float32)

    def columns_of(self, terms: Sequence[str]) -> np.ndarray:
        from sklearn.utils import murmurhash3_32

        return hashed_columns([murmurhash3_32(term) for term in terms], self.n_features)

    @property
    def _scans_itself(self) -> bool:
        """Word uni/bigrams of the default pattern: our own scan; anything else: scikit-learn's."""
        return self.ngram_max <= 2 and self.token_pattern == WORD_PATTERN

    def _counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        if not self._scans_itself:
            from sklearn.feature_extraction.text import HashingVectorizer

            hasher = HashingVectorizer(n_features=self.n_features, ngram_range=(1, self.ngram_max), token_pattern=self.token_pattern,
                                       lowercase=True, alternate_sign=False, norm=None, dtype=np.float64)
            return hasher.transform(texts).tocsr()
        indices, counts, lengths = self._counted(texts)
        return sparse.csr_matrix((counts, indices, np.concatenate(([0], np.cumsum(lengths)))), shape=(len(texts), self.n_features))

    def _counted(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(columns, counts, entries per review) of the canonical CSR of `texts`' hashed n-grams."""
        tokens = scan_words(texts, self.pattern, ascii_words=True)
        ids_of = dict.fromkeys(chain.from_iterable(tokens))  # each distinct word once, in order of appearance
        words = [word.decode("ascii") if isinstance(word, bytes) else word for word in ids_of]
        ids_of = dict(zip(ids_of, range(len(words))))
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        ids = np.fromiter(map(ids_of.__getitem__, chain.from_iterable(tokens)), dtype=np.int64, count=int(lengths.sum()))
        document = np.repeat(np.arange(len(tokens)), lengths)
        long_enough = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) >= 2  # the regex's \w\w+
        ids, document = ids[long_enough[ids]], document[long_enough[ids]]
        rows, columns = [document], [self.columns_of(words)[ids]]
        if self.ngram_max == 2 and len(ids) > 1:
            same_review = document[:-1] == document[1:]
            pairs, where = np.unique(ids[:-1][same_review] * len(words) + ids[1:][same_review], return_inverse=True)
            first, second = np.divmod(pairs, len(words))
            pair_columns = self.columns_of([f"{words[a]} {words[b]}" for a, b in zip(first.tolist(), second.tolist())])
            rows.append(document[:-1][same_review])
            columns.append(pair_columns[where.reshape(-1)])
        return counted(np.concatenate(rows), np.concatenate(columns), len(tokens), self.n_features)


def smooth_idf(counts: sparse.csr_matrix) -> np.ndarray:
    """scikit-learn's smoothed idf, from the document frequencies of a sample's rows."""
    frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log((1 + counts.shape[0]) / (1 + frequency)) + 1).astype(np.float32)


def take(texts: Sequence[str], rows: np.ndarray) -> list[str]:
    """`texts[rows]` for any Sequence: a datasets column or an array gathers them in one call
    (one `texts[i]` of a datasets column costs ~0.1 ms), a list one by one."""
    if isinstance(texts, (list, tuple)):
        return [texts[i] for i in rows.tolist()]
    if hasattr(texts, "iloc"):  # pandas: by position, whatever the index
        return texts.iloc[rows].tolist()
    if isinstance(texts, np.ndarray):
        return texts[rows].tolist()
    if type(texts).__name__ == "Column":  # datasets: a list of positions is one gather
        return list(texts[rows.tolist()])
    return [texts[i] for i in rows.tolist()]


def labels_of(labels: Sequence[int], chunk_size: int) -> np.ndarray:
    """All labels as one small array, read a slice at a time (a datasets column's slices are fast)."""
    by_position = labels.iloc if hasattr(labels, "iloc") else labels  # pandas: whatever the index
    parts = [np.asarray(by_position[start:start + chunk_size], dtype=np.int64) for start in range(0, len(labels), chunk_size)]
    found = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if len(found) and (found.min() < 0 or found.max() >= len(STARS)):
        raise ModelError(f"labels must be 0..{len(STARS) - 1} (stars - 1), found {found.min()}..{found.max()}")
    return found.astype(np.int8)


def frequent_terms(texts: Sequence[str], settings) -> list[str]:
    """The most frequent n-grams of a sample: names for the hashed columns (`top_features`)."""
    from sklearn.feature_extraction.text import CountVectorizer

    counter = CountVectorizer(ngram_range=(1, settings.ngram_max), token_pattern=settings.token_pattern, lowercase=True,
                              max_features=TERMS_KEPT, dtype=np.int32)
    try:
        counter.fit(texts)
    except ValueError:  # no word at all in the sample
        return []
    return [str(term) for term in counter.get_feature_names_out()]


def fit_hashed(texts: Sequence[str], labels: Sequence[int], settings,
               advance: Callable[[int], None] | None = None) -> tuple[HashedFeatures, np.ndarray, np.ndarray, list[str]]:
    """(features, coef (5, n_features), intercept (5,), named terms), learned `settings.chunk_size`
    reviews at a time over `settings.sgd_passes` seeded shuffles of the training set.

    The objective is the logistic regression's: alpha = 1 / (C * reviews) is its L2 penalty
    per review, and balanced sample weights its `class_weight="balanced"`. On the shared Yelp
    data, 3 passes of averaged SGD score 0.5965 to the logistic regression's 0.6015
    (benchmarks/linear_at_scale.py); without idf they scored ~0.58, and plain SGD needs
    more passes than averaged SGD to get there.
    """
    from sklearn.linear_model import SGDClassifier

    reviews = len(texts)
    labels = labels_of(labels, settings.chunk_size)
    if len(labels) != reviews:
        raise ModelError(f"{reviews:,} texts but {len(labels):,} labels")
    counts = np.bincount(labels, minlength=len(STARS))
    present = counts > 0
    if present.sum() < 2:
        raise ModelError("the linear model needs at least two classes in the training data")
    class_weight = np.where(present, reviews / (present.sum() * np.maximum(counts, 1)), 0.0) if settings.balanced \
        else np.ones(len(STARS))
    classifier = SGDClassifier(loss="log_loss", alpha=1.0 / (settings.C * reviews), average=True,
                               random_state=settings.shuffle_seed)
    shuffles = np.random.default_rng(settings.shuffle_seed)
    features, terms = HashedFeatures.of(settings), []
    for _ in range(settings.sgd_passes):
        order = shuffles.permutation(reviews)
        for start in range(0, reviews, settings.chunk_size):
            rows = np.sort(order[start:start + settings.chunk_size])  # in file order: a column gathers them faster
            chunk = [readable(text) for text in take(texts, rows)]
            chunk_counts = features.counts(chunk)
            if features.idf is None:  # the first chunk, a random sample of the training set
                features.idf = smooth_idf(chunk_counts)
                terms = frequent_terms(chunk[:TERMS_SAMPLE], settings)
            chunk_labels = labels[rows]
            classifier.partial_fit(features.weigh(chunk_counts), chunk_labels, classes=np.arange(len(STARS)),
                                   sample_weight=class_weight[chunk_labels])
            if advance is not None:
                advance(len(rows))
    coef = np.where(present[:, None], classifier.coef_, 0).astype(np.float32)
    intercept = np.where(present, classifier.intercept_, -1e4).astype(np.float32)  # a star never seen gets no probability
    return features, coef, intercept, terms
