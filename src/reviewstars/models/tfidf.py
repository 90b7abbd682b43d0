"""Scikit-learn's TF-IDF transform for word uni/bigrams, vectorised: the linear model's
features, the same numbers, several times faster (benchmarks/inference_speed.py)."""

from __future__ import annotations

import re
from itertools import chain, repeat
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy import sparse

from ..errors import ModelError
from ..text import WORD_PATTERN

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer


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
    NGRAM_MAX = 2  # words and word pairs; longer n-grams take scikit-learn's transform (`LinearPredictor`)

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, *, ngram_max: int, sublinear_tf: bool, token_pattern: str):
        if ngram_max > 2:
            raise ModelError("the fast transform handles word unigrams and bigrams (ngram_max <= 2)")
        # Runs of 2+ word characters: the same matches as `\b\w\w+\b` (a maximal run is
        # bounded by non-word characters on both sides), without the boundary checks.
        self.pattern = re.compile(r"\w{2,}" if token_pattern == WORD_PATTERN else token_pattern)
        self.sublinear_tf = sublinear_tf
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
        self.ascii_words = token_pattern == WORD_PATTERN
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
        return cls(vectorizer.vocabulary_, vectorizer.idf_, ngram_max=vectorizer.ngram_range[1],
                   sublinear_tf=vectorizer.sublinear_tf, token_pattern=vectorizer.token_pattern)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        unknown = self.words
        tokens = scan_words(texts, self.pattern, self.ascii_words)
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
        return tfidf_rows(*counted(rows[known], columns[known], len(tokens), self.columns), self.idf, self.sublinear_tf, self.columns)


def counted(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column indices, counts as float64, entries per row) of each distinct (row, column) pair:
    scikit-learn's canonical CSR (columns ascending in each row), to be built in one
    construction. Sorting the pairs as one key does it; a COO matrix converted and summed
    cost ~0.7 ms of scipy's checks per call, whatever its size: most of a server's time for
    a batch of a few reviews."""
    keys, counts = np.unique(rows * n_columns + columns, return_counts=True)
    return keys % n_columns, counts.astype(np.float64), np.bincount(keys // n_columns, minlength=n_rows)


def tfidf_rows(indices: np.ndarray, counts: np.ndarray, lengths: np.ndarray, idf: np.ndarray, sublinear_tf: bool,
               n_columns: int) -> sparse.csr_matrix:
    """`counted`'s counts weighed (1 + log tf if sublinear, idf, unit length) before the one
    float32 CSR is built: each scipy construction costs ~0.1 ms of a server's batch."""
    if sublinear_tf:
        np.log(counts, counts)
        counts += 1
    counts *= idf[indices]
    counts /= np.repeat(_row_norms(counts, lengths), lengths)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    return sparse.csr_matrix((counts.astype(np.float32), indices, indptr), shape=(len(lengths), n_columns))


def scan_words(texts: Sequence[str], pattern: re.Pattern, ascii_words: bool) -> list[list]:
    """Each text's words, lower-cased: bytes for ASCII texts read by the fast scan (one-character
    words included, for the caller to drop), str for the others (read by `pattern`)."""
    findall = pattern.findall
    if ascii_words:
        return [text.encode("ascii").translate(_ASCII_WORDS).split() if text.isascii() else findall(text.lower()) for text in texts]
    return [findall(text.lower()) for text in texts]


def unit_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Each row scaled to unit length (l2) in place, as scikit-learn's `norm="l2"`; empty rows stay empty."""
    lengths = np.diff(matrix.indptr)
    matrix.data /= np.repeat(_row_norms(matrix.data, lengths), lengths)
    return matrix


def _row_norms(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The l2 norm of each row of consecutive `values` (`lengths` per row); 1 for an empty row."""
    norms = np.sqrt(np.bincount(np.repeat(np.arange(len(lengths)), lengths), values ** 2, len(lengths)))
    return np.where(norms > 0, norms, 1.0)


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
