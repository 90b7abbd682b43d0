"""The reviews a run trains on, as token ids: tokenized once, cached on disk.

Only the reviews handed in are tokenized (a large training file is sampled first:
`data.training_splits`), a chunk at a time, each cut to its window inside the
tokenizer's batch call (`tokenization.Encoder`), and the ids go straight into Arrow
columns: no Python list holds every id of the set, nor every token of a long review.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..tokenization import Encoder, cache_dir, pieces_tokenizer, tokenizer_fingerprint

#: Reviews tokenized in one batch call: every core busy, and few Python lists alive at once.
CHUNK_REVIEWS = 1024


def tokenize_dataset(split, tokenizer, max_length: int = 256, strategy: str = "head+tail", use_cache: bool = True):
    """`input_ids`, `label` and `length` for every row, computed once and cached on disk.

    No padding here: the collator pads each batch to its own longest review (dynamic
    padding), and `length` lets the sampler group reviews of similar length. Several
    processes: the first tokenizes and writes the cache, the others read it
    (`training.distributed.main_process_first` around this call).
    """
    from datasets import load_from_disk

    labels = np.asarray(list(split["label"]), dtype=np.int64)
    digest = hashlib.sha256()
    for part in ("readable-v1", tokenizer_fingerprint(tokenizer), str(max_length), strategy):  # what `encode` makes of them
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    for texts in _chunks(split):
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
    digest.update(json.dumps(labels.tolist()).encode())
    folder = cache_dir() / "tokenized" / digest.hexdigest()[:24]
    if use_cache and folder.is_dir():
        return load_from_disk(str(folder))
    tokenized = _tokenized(split, labels, Encoder(tokenizer, max_length, strategy, backend=pieces_tokenizer(tokenizer)))
    if use_cache:
        from ..artifacts import atomic_dir

        with atomic_dir(folder, keep_existing=True) as stage:  # processes may race to write it
            tokenized.save_to_disk(str(stage))
        tokenized = load_from_disk(str(folder))
    return tokenized


def _chunks(split):
    """The split's texts, `CHUNK_REVIEWS` at a time."""
    for batch in split.select_columns(["text"]).iter(batch_size=CHUNK_REVIEWS):
        yield batch["text"]


def _tokenized(split, labels: np.ndarray, encoder: Encoder):
    """A `Dataset` of input_ids (list<int64>), label and length, built from Arrow arrays."""
    import itertools

    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    flats, lengths = [], []
    for texts in _chunks(split):
        ids = encoder(texts)
        counts = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flats.append(np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(counts.sum())))
        lengths.append(counts)
    length = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    flat = np.concatenate(flats) if flats else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(length)])
    lists = pa.LargeListArray if offsets[-1] >= 2**31 else pa.ListArray
    input_ids = lists.from_arrays(pa.array(offsets, type=pa.int64() if lists is pa.LargeListArray else pa.int32()), pa.array(flat))
    return Dataset(InMemoryTable(pa.table({"input_ids": input_ids, "label": pa.array(labels), "length": pa.array(length)})))
