"""How text becomes tokens: sub-word tokenizers (WordPiece, or a pretrained model's), truncation,
and tokenized splits cached on disk. The lesson's word tokens are `text.word_tokens`."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import ModelError
from .text import readable

#: Where to cut a review longer than the model's window. Sun et al. (2019) found keeping
#: the head and the tail of a long review better than either alone.
TRUNCATIONS = ("head", "tail", "head+tail")
SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


def check_tokenizer_name(name_or_path: str | Path) -> Path:
    """A tokenizer folder that is not there, or holds none, is one line at once; a Hub id only
    the Hub can check."""
    path = Path(name_or_path).expanduser()
    if str(name_or_path).startswith(("/", ".", "~")) and not path.exists():
        raise ModelError(f"cannot load a tokenizer from {str(name_or_path)!r}: no such folder")
    if path.is_dir() and not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")):
        raise ModelError(f"cannot load a tokenizer from {str(name_or_path)!r}: the folder holds no tokenizer "
                         "(tokenizer.json, tokenizer_config.json or vocab.txt)")
    return path


def check_tokenizer_loads(name_or_path: str) -> None:
    """A tokenizer checked before any long work: a folder by its files, a Hub id by loading it
    (a few small files), so one misspelt, or out of reach and not in the cache, is one line at once."""
    if check_tokenizer_name(name_or_path).exists():
        return
    _load_hub_tokenizer_once(str(name_or_path))


@functools.lru_cache(maxsize=None)  # a Hub id found is found for the run (a failure raises, and is not kept)
def _load_hub_tokenizer_once(name: str) -> None:
    load_tokenizer(name)


def load_tokenizer(name_or_path: str | Path):
    """Any Hugging Face tokenizer: a Hub id, or a local folder with tokenizer files."""
    from transformers import AutoTokenizer

    path = check_tokenizer_name(name_or_path)
    if not path.exists():
        from .hub import offline_unless_reachable

        offline_unless_reachable()
    try:
        return AutoTokenizer.from_pretrained(str(name_or_path))
    except Exception as error:  # Hub, file and format errors all mean: cannot use this name
        if Path(name_or_path).exists():
            raise ModelError(f"cannot load a tokenizer from the folder {str(name_or_path)!r}: "
                             f"{(str(error).splitlines() or [type(error).__name__])[0][:200]}") from None
        from .hub import out_of_reach_hint, why_the_hub_failed

        raise ModelError(f"cannot load the tokenizer {str(name_or_path)!r} from the Hugging Face Hub ({why_the_hub_failed(error)}). "
                         "Offline? Give a tokenizer folder: --tokenizer PATH (any model folder holds one)."
                         + out_of_reach_hint()) from None


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


def encode(tokenizer, texts: Sequence[str], max_length: int = 256, strategy: str = "head+tail", backend=None) -> list[list[int]]:
    """Token ids with special tokens, cut to `max_length` by `strategy`; no padding (see `Encoder`)."""
    return Encoder(tokenizer, max_length, strategy, backend)(texts)


class Encoder:
    """Texts to token ids with special tokens, cut to `max_length` by `strategy`; no padding.

    With `backend` (`pieces_tokenizer`'s) the ids come from its batch call alone, cut inside
    it (`cut_pieces`): the same ids, without the wrapper building a Python encoding per text
    on one core while the rest wait, nor a list of every token of a long review."""

    def __init__(self, tokenizer, max_length: int = 256, strategy: str = "head+tail", backend=None):
        self.tokenizer, self.strategy = tokenizer, strategy
        self.prefix, self.suffix = special_frame(tokenizer)
        self.budget = max_length - len(self.prefix) - len(self.suffix)
        if self.budget <= 0:
            raise ValueError(f"max_length {max_length} leaves no room for text")
        self.cutter = cutting_tokenizer(backend, self.budget, strategy) if backend is not None else None

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        clean = [readable(text) for text in texts]
        if self.cutter is not None:
            pieces = cut_pieces(self.cutter, clean, self.budget, self.strategy)
        else:
            pieces = [truncate(ids, self.budget, self.strategy) for ids in _piece_ids(self.tokenizer, clean)]
        return [self.prefix + ids + self.suffix for ids in pieces]


def cutting_tokenizer(backend, budget: int, strategy: str = "head+tail"):
    """A copy of `backend` (`pieces_tokenizer`'s) that cuts each text to `budget` ids itself:
    its first ones (head, and head+tail, whose tail comes from the ids cut off), or its last."""
    from tokenizers import Tokenizer

    if strategy not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {strategy!r}")
    cutter = Tokenizer.from_str(backend.to_str())
    cutter.enable_truncation(max_length=budget, stride=0, direction="left" if strategy == "tail" else "right")
    return cutter


def cut_pieces(cutter, clean: list[str], budget: int, strategy: str = "head+tail") -> list[list[int]]:
    """Each text's ids, no special tokens, cut to `budget` by `strategy` inside the batch call
    (`cutter` from `cutting_tokenizer`): `truncate` of the full ids, without listing them all.
    head+tail: the cut-off ids come back in windows of `budget`; the tail is read from the last ones."""
    encodings = cutter.encode_batch_fast(clean, add_special_tokens=False) if clean else []
    if strategy != "head+tail":
        return [encoding.ids for encoding in encodings]
    head, tail = budget // 4, budget - budget // 4
    pieces = []
    for encoding in encodings:
        ids, windows = encoding.ids, encoding.overflowing
        if not windows:
            pieces.append(ids)
            continue
        rest: list[int] = []
        for window in reversed(windows):  # from the end of the review, until the tail is covered
            rest = window.ids + rest
            if len(rest) >= tail:
                break
        if len(rest) < tail:
            rest = ids + rest
        pieces.append(ids[:head] + rest[len(rest) - tail :])
    return pieces


def _piece_ids(tokenizer, clean: list[str], backend=None) -> list[list[int]]:
    """Each text's ids, no special tokens, uncut: in the Rust backend's batch call where there is one."""
    if backend is not None:
        return [encoding.ids for encoding in backend.encode_batch_fast(clean, add_special_tokens=False)]
    return tokenizer(clean, add_special_tokens=False, truncation=False, verbose=False)["input_ids"] if clean else []


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


# --------------------------------------------------------------------------- batches for inference, without Python loops


@dataclass(frozen=True)
class Pieces:
    """Texts as one flat array of token ids (no special tokens yet, nothing cut) and where
    each text's ids start: what `BatchPacker` cuts and pads, a batch at a time, in numpy."""

    flat: np.ndarray     # int64, every text's ids one after the other
    starts: np.ndarray   # where text i's ids begin in `flat`
    lengths: np.ndarray  # how many ids text i has


def pieces_tokenizer(tokenizer):
    """A private copy of a fast tokenizer's Rust backend with no truncation and no padding
    (a saved tokenizer.json may carry both, e.g. MiniLM's fixed 128), or None for a slow one.
    Its batch call runs on every core and returns ids alone (`encode_batch_fast`: no offsets)."""
    backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is None or not hasattr(backend, "encode_batch_fast"):
        return None
    from tokenizers import Tokenizer

    spec = json.loads(backend.to_str())
    normalizer = spec.get("normalizer")
    if _ours(normalizer):  # `text.readable` has done those steps already: 18% of the tokenizer's time, twice
        rest = normalizer["normalizers"][len(OUR_STEPS):]
        spec["normalizer"] = None if not rest else rest[0] if len(rest) == 1 else {**normalizer, "normalizers": rest}
    copy = Tokenizer.from_str(json.dumps(spec))
    copy.no_truncation()
    copy.no_padding()
    return copy


def encode_pieces(tokenizer, texts: Sequence[str], backend=None) -> Pieces:
    """Every text's ids in one batched call (`backend` from `pieces_tokenizer` where there is one)."""
    import itertools

    ids = _piece_ids(tokenizer, [readable(text) for text in texts], backend)
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    starts = np.cumsum(lengths) - lengths
    return Pieces(flat, starts, lengths)


class BatchPacker:
    """Cuts texts to `max_length` tokens by a truncation strategy, frames them with the
    tokenizer's special tokens and pads them, a whole batch at a time in numpy: the same
    rows as `encode` + `padded_batches`, without a Python loop per review."""

    def __init__(self, tokenizer, max_length: int, strategy: str = "head+tail", shapes: "ShapeBuckets | None" = None):
        if strategy not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {TRUNCATIONS}, got {strategy!r}")
        prefix, suffix = special_frame(tokenizer)
        self.prefix, self.suffix = np.asarray(prefix, dtype=np.int64), np.asarray(suffix, dtype=np.int64)
        self.budget = max_length - len(prefix) - len(suffix)
        if self.budget <= 0:
            raise ValueError(f"max_length {max_length} leaves no room for text")
        self.strategy, self.pad_id, self.max_length, self.shapes = strategy, tokenizer.pad_token_id or 0, max_length, shapes

    def lengths(self, pieces: Pieces) -> np.ndarray:
        """Each text's length once cut and framed: what a batch is padded to."""
        return np.minimum(pieces.lengths, self.budget) + len(self.prefix) + len(self.suffix)

    def batches(self, pieces: Pieces, batch_size: int, max_tokens: int | None = None):
        """Yield (rows, input_ids, attention_mask) over length-sorted batches, as `padded_batches`.
        With `shapes`, every batch has one of their few shapes (`ShapeBuckets`): padding rows
        (with a mask on their first token alone) come after the `rows` given."""
        lengths = self.lengths(pieces)
        order = np.argsort(lengths, kind="stable")
        widths = lengths if self.shapes is None else self.shapes.widths(lengths, self.max_length)
        start = 0
        while start < len(order):
            fit = rows_that_fit(widths[order[start : start + batch_size]], max_tokens)
            if self.shapes is not None and fit < len(order) - start:  # a full batch: the rows of a bucket
                fit = self.shapes.rows_down(fit)  # (the last batch takes what is left, padded up to one)
            rows = order[start : start + fit]
            start += len(rows)
            if self.shapes is None:
                yield (rows, *self.pack(pieces, rows))
            else:
                yield (rows, *self.pack(pieces, rows, width=int(widths[rows].max()), total_rows=self.shapes.rows_up(len(rows))))

    def pack(self, pieces: Pieces, rows: np.ndarray, width: int | None = None,
             total_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask) of `rows`, padded to the longest of them (or to `width`),
        and with padding rows up to `total_rows`."""
        lengths, starts = pieces.lengths[rows], pieces.starts[rows]
        kept = np.minimum(lengths, self.budget)
        dropped = lengths - kept  # cut from the middle (head+tail), the end (head) or the start (tail)
        head = {"head": kept, "tail": np.zeros_like(kept), "head+tail": np.minimum(kept, self.budget // 4)}[self.strategy]
        widest = int(kept.max()) if len(kept) else 0
        position = np.arange(widest)[None, :]
        source = starts[:, None] + position + np.where(position >= head[:, None], dropped[:, None], 0)
        inside = position < kept[:, None]
        before, after = len(self.prefix), len(self.suffix)
        input_ids = np.full((max(total_rows or 0, len(rows)), max(width or 0, before + widest + after)), self.pad_id, dtype=np.int64)
        input_ids[: len(rows), :before] = self.prefix
        input_ids[: len(rows), before : before + widest] = np.where(inside, pieces.flat[np.where(inside, source, 0)] if len(pieces.flat) else 0,
                                                          self.pad_id)
        if after:
            input_ids[np.arange(len(rows))[:, None], (before + kept)[:, None] + np.arange(after)[None, :]] = self.suffix
        filled = np.ones(len(input_ids), dtype=np.int64)  # padding rows: their first token alone, so no row is all masked
        filled[: len(rows)] = kept + before + after
        attention_mask = (np.arange(input_ids.shape[1])[None, :] < filled[:, None]).astype(np.int64)
        return input_ids, attention_mask


@dataclass(frozen=True)
class ShapeBuckets:
    """Batch shapes from a small set: rows a power of two, widths a multiple of `width_step`.

    A GPU pays for every new tensor shape (kernels loaded and chosen on first use): on an
    H200 host the first prediction of 2,000 reviews ran at 1,700 reviews/s and the next
    ones at 16,000-17,000, and a server whose batches all differed answered single reviews
    in 40 ms. With these buckets a model meets a few dozen shapes, each warmed once
    (`TransformerPredictor.warm_up`), for at most twice the rows of a small batch and
    `width_step - 1` padding tokens more per row: free on a GPU, which is why they are
    used on CUDA only.
    """

    width_step: int = 32

    def widths(self, lengths: np.ndarray, max_length: int) -> np.ndarray:
        return np.minimum(-(-lengths // self.width_step) * self.width_step, max(max_length, int(lengths.max(initial=0))))

    @staticmethod
    def rows_down(rows: int) -> int:
        return 1 << (max(rows, 1).bit_length() - 1)

    @staticmethod
    def rows_up(rows: int) -> int:
        return 1 << (max(rows, 1) - 1).bit_length()

    def all_shapes(self, max_rows: int, max_length: int) -> list[tuple[int, int]]:
        """Every (rows, width) a batch of at most `max_rows` texts cut to `max_length` can have."""
        rows = [1 << k for k in range(self.rows_up(max_rows).bit_length())]
        widths = sorted({min(w, max_length) for w in range(self.width_step, max_length + self.width_step, self.width_step)})
        return [(r, w) for r in rows for w in widths]


#: The normalizer steps `reads_as_reviewstars` puts first, as tokenizer.json writes them.
OUR_STEPS = ("Replace", "NFKC")


def _ours(normalizer: dict | None) -> bool:
    steps = (normalizer or {}).get("normalizers") if (normalizer or {}).get("type") == "Sequence" else None
    return bool(steps) and tuple(step.get("type") for step in steps[:len(OUR_STEPS)]) == OUR_STEPS


def reads_as_reviewstars(tokenizer):
    """`tokenizer` with what `text.readable` does to a review before any model reads it
    (invisible characters out, then Unicode's NFKC) as the first steps of its own normalizer,
    so that a saved folder's tokenizer, in `pipeline` or `from_pretrained`, reads "ＧＲＥＡＴ ｆｏｏｄ"
    or "ﬁne" as `reviewstars` does (a probe found 2 stars against 5). Both are idempotent:
    our own path, which has already applied them, reads the same ids."""
    from tokenizers import Regex, normalizers

    from .text import INVISIBLE

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or _ours(json.loads(backend.to_str()).get("normalizer")):
        return tokenizer  # (a slow one; or saved by us before)
    steps = [normalizers.Replace(Regex(INVISIBLE), ""), normalizers.NFKC()]
    backend.normalizer = normalizers.Sequence(steps + ([backend.normalizer] if backend.normalizer is not None else []))
    return tokenizer


#: The class a saved tokenizer is opened as: its tokenizer.json as written. A class of its own
#: (transformers 5's `BertTokenizer`, MiniLM's) builds its normalizer again from its settings
#: and drops the steps `reads_as_reviewstars` added ("ＧＲＥＡＴ" read as [UNK] in `pipeline`).
GENERIC_TOKENIZER_CLASS = "PreTrainedTokenizerFast"


def save_tokenizer(tokenizer, folder: str | Path) -> None:
    """`tokenizer` saved into `folder` so that `AutoTokenizer.from_pretrained(folder)` (and so
    `pipeline`) reads a review as `reviewstars` does: with `reads_as_reviewstars`'s steps, and
    opened as the generic fast class, with the inputs the model was trained on."""
    reads_as_reviewstars(tokenizer)
    tokenizer.save_pretrained(folder)
    config_path = Path(folder) / "tokenizer_config.json"
    if getattr(tokenizer, "backend_tokenizer", None) is None or not config_path.is_file():
        return  # (a slow tokenizer: no tokenizer.json to read as written)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("tokenizer_class") != GENERIC_TOKENIZER_CLASS:
        config.update(tokenizer_class=GENERIC_TOKENIZER_CLASS, model_input_names=list(tokenizer.model_input_names))
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def cache_dir() -> Path:
    return Path(os.environ.get("REVIEWSTARS_CACHE", Path.home() / ".cache" / "reviewstars"))


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(spec.encode("utf-8")).hexdigest()[:16]
