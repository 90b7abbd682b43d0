"""How text becomes tokens: the lesson's word tokens, and sub-word tokenizers."""

from __future__ import annotations

import re

import numpy as np

#: The lesson's (and scikit-learn's) word pattern: runs of two or more word characters.
WORD_PATTERN = r"(?u)\b\w\w+\b"
_WORD_RE = re.compile(WORD_PATTERN)


def word_tokens(text: str, lowercase: bool = False) -> list[str]:
    return _WORD_RE.findall(text.lower() if lowercase else text)


# --------------------------------------------------------------------------- sub-word tokenizers

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterable, Sequence  # noqa: E402

from .errors import ModelError  # noqa: E402
from .text import without_lone_surrogates  # noqa: E402

#: Where to cut a review longer than the model's window. Sun et al. (2019) found keeping
#: the head and the tail of a long review better than either alone.
TRUNCATIONS = ("head", "tail", "head+tail")
SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


def load_tokenizer(name_or_path: str | Path):
    """Any Hugging Face tokenizer: a Hub id, or a local folder with tokenizer files."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(name_or_path))
    except Exception as error:  # Hub, file and format errors all mean: cannot use this name
        where = "folder" if Path(name_or_path).exists() else "Hub id (the Hub may be out of reach)"
        raise ModelError(f"cannot load a tokenizer from {name_or_path!r} as a {where}: {str(error).splitlines()[0][:200]}") from None


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = True):
    """A BERT-style WordPiece vocabulary learned from the training texts themselves."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from .progress import library_bars

    tokenizer = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase, clean_text=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()), min_frequency=2,
                                        show_progress=library_bars())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # The trainer numbers its pieces in hash-map order, which changes from run to run.
    # Tokenizing depends only on the set of pieces, so number them canonically. (Even the
    # set can differ on ties, huggingface/tokenizers#1794: training saves its vocabulary
    # once and a resumed run reuses it.)
    specials = list(SPECIAL_TOKENS.values())
    pieces = specials + sorted(set(tokenizer.get_vocab()) - set(specials))
    tokenizer.model = models.WordPiece({piece: i for i, piece in enumerate(pieces)}, unk_token=SPECIAL_TOKENS["unk_token"])
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    tokenizer.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=512, **SPECIAL_TOKENS)


def learned_wordpiece(texts: Sequence[str], vocab_size: int = 8000, lowercase: bool = True, use_cache: bool = True):
    """`train_wordpiece`, learned once per set of texts and kept in the cache: a second run on
    the same data starts seconds sooner (under a time budget, seconds of training) and gets
    the very same vocabulary, so its tokenized reviews come from the cache too."""
    digest = hashlib.sha256(f"wordpiece-v1\0{vocab_size}\0{lowercase}\0".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    folder = cache_dir() / "wordpiece" / digest.hexdigest()[:24]
    if use_cache and (folder / "tokenizer.json").is_file():
        try:
            return load_tokenizer(folder)
        except ModelError:
            pass  # a damaged cache entry: learn it again below, and replace it
    tokenizer = train_wordpiece(texts, vocab_size, lowercase)
    if use_cache:
        from .artifacts import atomic_dir

        with atomic_dir(folder) as stage:
            tokenizer.save_pretrained(str(stage))
    return tokenizer


def truncate(ids: Sequence[int], budget: int, strategy: str = "head+tail") -> list[int]:
    """Keep at most `budget` tokens: the first ones, the last ones, or a quarter head + the rest tail."""
    if strategy not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {strategy!r}")
    ids = list(ids)
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "tail":
        return ids[len(ids) - budget :]
    head = budget // 4  # Sun et al.: 128 head + 382 tail of 512
    return ids[:head] + ids[len(ids) - (budget - head) :]


def special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single text ([CLS] ... [SEP] for BERT)."""
    probe = "reviewstars"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    framed = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(framed) - len(bare) + 1):
        if framed[start : start + len(bare)] == bare:
            return framed[:start], framed[start + len(bare) :]
    return [], []


def encode(tokenizer, texts: Sequence[str], max_length: int = 256, strategy: str = "head+tail") -> list[list[int]]:
    """Token ids with special tokens, cut to `max_length` by `strategy`; no padding."""
    prefix, suffix = special_frame(tokenizer)
    budget = max_length - len(prefix) - len(suffix)
    if budget <= 0:
        raise ValueError(f"max_length {max_length} leaves no room for text")
    clean = [without_lone_surrogates(text) for text in texts]
    pieces = tokenizer(clean, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return [prefix + truncate(ids, budget, strategy) + suffix for ids in pieces]


def padded_batches(ids: Sequence[Sequence[int]], batch_size: int, pad_id: int = 0, max_tokens: int | None = None):
    """Yield (rows, input_ids, attention_mask) over length-sorted batches: reviews of
    similar length share a batch, so padding (wasted compute) stays small. `rows` says
    where each batch row came from, so callers put results back in input order.

    A batch holds at most `batch_size` reviews and, with `max_tokens`, at most that many
    padded tokens (rows x its longest review): a GPU gets batches of even cost, many short
    reviews or a few long ones. A review longer than `max_tokens` still goes, alone.
    """
    lengths = np.array([len(x) for x in ids], dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    start = 0
    while start < len(order):
        rows = order[start : start + rows_that_fit(lengths[order[start : start + batch_size]], max_tokens)]
        start += len(rows)
        width = int(lengths[rows].max())
        input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            input_ids[r, : len(ids[i])] = ids[i]
            attention_mask[r, : len(ids[i])] = 1
        yield rows, input_ids, attention_mask


def rows_that_fit(sorted_lengths: np.ndarray, max_tokens: int | None) -> int:
    """How many of these length-sorted reviews (at least one) fit in `max_tokens` padded tokens."""
    if max_tokens is None:
        return len(sorted_lengths)
    padded = np.arange(1, len(sorted_lengths) + 1) * sorted_lengths  # the first k rows padded to the k-th length
    return max(1, int(np.count_nonzero(padded <= max_tokens)))  # non-decreasing, so the fitting ones come first


def encoded_chunks(tokenizer, texts: Sequence[str], max_length: int, strategy: str, chunk: int | None = None):
    """`encode` `chunk` texts at a time (all at once when None), tokenizing the next chunk on
    a CPU thread while the caller works on this one: a GPU need not wait for the tokenizer."""
    from concurrent.futures import ThreadPoolExecutor

    size = chunk or max(len(texts), 1)
    parts = [texts[start : start + size] for start in range(0, len(texts), size)]
    if len(parts) <= 1:
        yield from (encode(tokenizer, part, max_length, strategy) for part in parts)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reviewstars-tokenize") as thread:
        pending = thread.submit(encode, tokenizer, parts[0], max_length, strategy)
        for part in parts[1:]:
            ready = pending.result()
            pending = thread.submit(encode, tokenizer, part, max_length, strategy)
            yield ready
        yield pending.result()


def cache_dir() -> Path:
    return Path(os.environ.get("REVIEWSTARS_CACHE", Path.home() / ".cache" / "reviewstars"))


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(spec.encode("utf-8")).hexdigest()[:16]


def tokenize_dataset(split, tokenizer, max_length: int = 256, strategy: str = "head+tail", use_cache: bool = True):
    """`input_ids`, `label` and `length` for every row, computed once and cached on disk.

    No padding here: the collator pads each batch to its own longest review (dynamic
    padding), and `length` lets the sampler group reviews of similar length.
    """
    from datasets import Dataset, load_from_disk

    texts = list(split["text"])
    digest = hashlib.sha256()
    for part in (tokenizer_fingerprint(tokenizer), str(max_length), strategy, *texts):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    digest.update(json.dumps(list(split["label"])).encode())
    folder = cache_dir() / "tokenized" / digest.hexdigest()[:24]
    if use_cache and folder.is_dir():
        return load_from_disk(str(folder))
    input_ids = encode(tokenizer, texts, max_length, strategy)
    tokenized = Dataset.from_dict({"input_ids": input_ids, "label": list(split["label"]), "length": [len(ids) for ids in input_ids]})
    if use_cache:
        from .artifacts import atomic_dir

        with atomic_dir(folder, keep_existing=True) as stage:  # processes may race to write it
            tokenized.save_to_disk(str(stage))
        tokenized = load_from_disk(str(folder))
    return tokenized
