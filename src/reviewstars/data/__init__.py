"""Reviews in, a validated `DatasetDict` with `text` (str) and `label` (0..4) out.

`--data` is either a Hugging Face Hub dataset name (default `yelp_review_full`) or a
local path: one file (`.parquet`, `.csv`, `.jsonl`) or a folder whose files are named by
split (`train.*`, `validation.*`, `test.*`). Local files are checked row by row, so a
bad file fails with one line naming the file, the row and the fault, not a traceback
three modules later.

Columns: the reviews in `text` (or `review`, `content`, ... found by name, or any column
named by `--text-column`), their ratings in `label` (0..4) or `stars`/`rating` (1..5), or any
column named by `--label-column`, read on the scale `--label-scale` says (0-4, 1-5, or a
mapping of values to stars). The original `yelp_review_full_csv` files (no header,
`"class","text"`, class 1..5, literal `\\n` for newlines) are recognised as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import NUM_CLASSES
from ..errors import DataError
from ..settings.fields import Settings, setting
from .files import (FILE_FORMATS, SPLITS, Columns, count_rows, first_line, iter_text_chunks, parse_label_scale, read_file,
                    read_texts, split_files, split_of, text_column_in)

if TYPE_CHECKING:  # imported where used: `datasets` costs a second that `--help` need not pay
    import numpy as np
    from datasets import Dataset, DatasetDict

    from .arrow import LabelledFile

DEFAULT_DATASET = "yelp_review_full"
DEFAULT_SEED = 42
#: numpy's and torch's generators take a seed of 32 bits at most.
MAX_SEED = 2**32 - 1

__all__ = ["DEFAULT_DATASET", "DEFAULT_SEED", "Columns", "DataSettings", "FILE_FORMATS", "HELD_OUT", "SPLITS", "TrainingSplits",
           "carve_dev", "carve_rows", "count_rows", "training_splits", "open_splits", "shuffled",
           "eval_split_name", "iter_text_chunks", "text_column_in", "lesson_texts", "load_data", "pick_split", "read_file", "read_texts", "subset"]


@dataclass
class DataSettings(Settings):
    """Which reviews a run learns from and is scored on: the same for every kind."""

    data: str = setting(DEFAULT_DATASET, "Hub dataset name, or a local .parquet/.csv/.jsonl file or folder.", short="-d")
    train_size: int | None = setting(None, "Train on a seeded sample of N reviews (ensemble: the one its members were trained on).", at_least=1)
    eval_size: int | None = setting(None, "Score on a seeded sample of N held-out reviews.", at_least=1)
    dev_size: int = setting(500, "Reviews carved from train (balanced by class) to follow training, calibrate and weigh ensembles.",
                            at_least=0)
    seed: int = setting(DEFAULT_SEED, "Seed for subsets, the dev slice and training.", at_least=0, at_most=MAX_SEED)
    text_column: str | None = setting(None, "The column of reviews (default: the first of text, review, content, ... found).")
    label_column: str | None = setting(None, "The column of ratings (default: the first of label, stars, rating, ... found).")
    label_scale: str = setting("auto", "What a rating means: 0-4 or 1-5 (the lowest is one star), value=stars pairs "
                               "(negative=1,neutral=3,positive=5), or auto (0-4 for a column named label, 1-5 for others).")

    def __post_init__(self) -> None:
        self.data = str(self.data)
        super().__post_init__()
        try:
            parse_label_scale(self.label_scale)
        except ValueError as error:
            from ..errors import ReviewstarsError

            raise ReviewstarsError(f"--label-scale: {error}") from None

    def columns(self) -> Columns:
        return Columns(self.text_column, self.label_column, self.label_scale)


# --------------------------------------------------------------------------- loading


def load_data(
    source: str | Path = DEFAULT_DATASET,
    *,
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int = DEFAULT_SEED,
    columns: Columns | None = None,
) -> DatasetDict:
    """Load `source` and take the lesson's seeded subsets.

    `train_size` samples the train split, `eval_size` every other split, each as
    `shuffle(seed).select(range(n))` would, so a run is reproducible from its settings; a
    local file's other rows are never kept (a Parquet file's are not even checked).
    `columns` says where the reviews and ratings are, and what a rating means.
    """
    from datasets import DatasetDict

    splits = open_splits(source, columns or Columns())
    return DatasetDict({name: _sample(split, train_size if name == "train" else eval_size, seed) for name, split in splits.items()})


def open_splits(source: str | Path, columns: Columns = Columns()) -> dict[str, LabelledFile | InMemorySplit]:
    """Each split of `source`, its columns found but its rows not yet read (a Hub dataset's are)."""
    from .arrow import LabelledFile

    path = Path(source)
    if path.exists():
        files = split_files(path) if path.is_dir() else {split_of(path): path}
        return {name: LabelledFile(file, columns) for name, file in files.items()}
    if _looks_like_path(str(source)):
        raise DataError(source, "no such file or folder")
    return {name: InMemorySplit(split, f"{source}[{name}]") for name, split in _load_hub(str(source), columns).items()}


class InMemorySplit:
    """A split already in memory (the Hub's), read as a local file is: its star classes, and the rows chosen."""

    def __init__(self, dataset: Dataset, name: str):
        self.dataset, self.name, self.rows = dataset, name, len(dataset)

    def labels(self) -> np.ndarray:
        import numpy as np

        return np.asarray(self.dataset["label"])

    def read(self) -> Dataset:
        return self.dataset

    def take(self, rows) -> Dataset:
        return self.dataset.select(rows)


def subset(split: Dataset, n: int | None, seed: int = DEFAULT_SEED) -> Dataset:
    """The lesson's `shuffle(seed).select(range(n))`; `None` keeps every row in order."""
    if n is None:
        return split
    if n <= 0:
        raise DataError("subset", f"size must be positive, got {n}")
    return split.shuffle(seed=seed).select(range(min(n, len(split))))


def shuffled(n: int, seed: int):
    """Positions 0..n-1 in the order `Dataset.shuffle(seed=seed)` puts them."""
    import numpy as np

    return np.random.default_rng(seed).permutation(n)


def _sample(split: LabelledFile | InMemorySplit, n: int | None, seed: int) -> Dataset:
    """`subset(split.read(), n, seed)`, reading only the rows it keeps."""
    if n is None:
        return split.read()
    if n <= 0:
        raise DataError("subset", f"size must be positive, got {n}")
    return split.take(shuffled(split.rows, seed)[:n])


def lesson_texts(data: str | Path, seed: int | None = None) -> list[str]:
    """The reviews the tokenization lessons read, which need no ratings: a file's column of
    text (an unlabelled file too: it was refused for want of a --label-column those commands
    lack), else the training split; shuffled as `Dataset.shuffle(seed=seed)` would."""
    path = Path(data).expanduser()
    if path.is_file():
        texts = read_texts(path)
    else:
        dataset = load_data(data)
        texts = list(dataset[pick_split(dataset, for_eval=False)]["text"])
    return texts if seed is None else [texts[i] for i in shuffled(len(texts), seed)]


def pick_split(dataset: DatasetDict, wanted: str | None = None, *, for_eval: bool = True) -> str:
    """The split to use: `wanted` if given, else test > validation > train for scoring."""
    if wanted is not None:
        if wanted not in dataset:
            raise DataError("--split", f"no split '{wanted}' (have: {', '.join(dataset)})")
        return wanted
    order = ("test", "validation", "train") if for_eval else ("train",)
    for name in order:
        if name in dataset:
            return name
    return next(iter(dataset))


def eval_split_name(dataset: DatasetDict) -> str | None:
    """The held-out split a training run reports on, if the data has one."""
    for name in ("validation", "test"):
        if name in dataset:
            return name
    return None


#: A file with no validation or test split keeps this share of its reviews aside to score on
#: (balanced by class, seeded), at most `MAX_HELD_OUT` of them.
HELD_OUT_SHARE = 0.2
MAX_HELD_OUT = 2000
HELD_OUT = "held-out"  # the split's name when it was carved from the training file


@dataclass
class TrainingSplits:
    """What a training run learns from, follows its progress on, and is scored on.

    `train` holds the reviews trained on (`--train-size` of them when given), `dev` the
    balanced slice carved beside them (calibration, the ensemble's weights), `held_out` the
    reviews scored: the data's validation or test split, else a seeded, balanced slice of
    its training file set aside first (`held_out_name` says which). `notes` say what a
    user would not expect (a slice smaller than asked). `sampled` says how many of the
    training file's reviews were read, when not all of them were."""

    train: Dataset
    dev: Dataset
    held_out: Dataset | None
    held_out_name: str | None
    notes: list[str]      # what it did that a user would not expect (a slice smaller than asked): warnings
    sampled: str | None = None  # "sampled 18,500 of 2,000,000 reviews in big.parquet (...)"
    source_rows: int = 0        # reviews in the training file
    source_name: str = ""
    copies_left_out: int = 0    # training and dev reviews left out as copies of a dev or held-out review
    train_with_copies: Dataset | None = None  # the reviews to train on before that (None: no copies)
    dev_copies_left_out: int = 0  # ... of which dev reviews (copies of held-out ones)
    held_out_repeats: int = 0     # held-out rows read and scored once, as copies of others among them

    def capped(self, at_most: int | None, data: "DataSettings", why: str = "") -> "TrainingSplits":
        """These splits with at most `at_most` reviews to train on: the very reviews, in the
        same order, that `training_splits(data, at_most, why)` keeps (no cap with a
        --train-size). The held-out reviews and the dev slice are unchanged."""
        whole = self.train_with_copies if self.train_with_copies is not None else self.train
        if at_most is None or data.train_size is not None or len(whole) <= at_most:
            return self
        from dataclasses import replace

        kept = whole.select(shuffled(len(whole), data.seed)[:at_most])
        train, copies = without_copies(kept, hashes_of(self.dev, self.held_out))
        copies += self.dev_copies_left_out
        notes = [line for line in self.notes if line != copies_note(self.copies_left_out)] + ([copies_note(copies)] if copies else [])
        held = len(self.held_out) + self.held_out_repeats if self.held_out_name == HELD_OUT and self.held_out is not None else 0
        read = len(kept) + len(self.dev) + self.dev_copies_left_out + held
        reason = f" ({why})" if why else ""
        return replace(self, train=train, sampled=f"sampled {read:,} of {self.source_rows:,} reviews in {self.source_name}{reason}",
                       notes=notes, copies_left_out=copies, train_with_copies=None)

    def describe(self) -> str:
        if self.held_out is None:
            scored = "nothing held out to score on"
        elif self.held_out_name == HELD_OUT:
            balance = ("balanced by star" if is_balanced(self.held_out["label"]) else
                       "as balanced by star as the file's stars allow")
            scored = (f"scored on {len(self.held_out):,} review{'s' if len(self.held_out) != 1 else ''} held out of the "
                      f"training file, {balance} (it has no validation or test split)")
        else:
            scored = f"scored on {len(self.held_out):,} {self.held_out_name} reviews"
        sampled = f"{self.sampled}: " if self.sampled else ""
        return f"{sampled}{len(self.train):,} reviews to train on, {len(self.dev):,} to follow it (the dev slice), {scored}"


def training_splits(data: DataSettings, at_most: int | None = None, why: str = "") -> TrainingSplits:
    """The one way every command that trains (train, compare, ensemble) cuts the data.

    The cut is made on the training file's ratings alone, and only the rows it keeps are
    read: a file of millions of reviews costs the memory of those it trains on. `at_most`
    caps the reviews trained on (`why`: what a time budget can use), when no --train-size
    is given; the held-out reviews and the dev slice are chosen first, so they stay the
    same whatever the cap."""
    import numpy as np

    splits = open_splits(data.data, data.columns())
    if "train" not in splits:
        raise DataError(data.data, f"no train split to learn from (have: {', '.join(splits)})")
    source = splits["train"]
    other_ratings, rating_column = getattr(source, "other_rating_columns", []), getattr(source, "label_column", None)
    if data.train_size is None and at_most is None:  # every review is used: one reading, as a whole file
        source = InMemorySplit(source.read(), source.name)
    others = {name: _sample(split, data.eval_size, data.seed) for name, split in splits.items() if name != "train"}
    held_out_name = eval_split_name(others)
    labels = source.labels()
    rows, held_rows = np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    if held_out_name is None:
        size = data.eval_size or min(MAX_HELD_OUT, int(HELD_OUT_SHARE * len(rows)))
        rows, held_rows = carve_rows(labels, size, data.seed + 1, at_most=len(rows) // 2)
        held_out_name = HELD_OUT if len(held_rows) else None
    dev_cap = None  # a fifth of the reviews at most...
    if data.train_size is not None:  # the reviews trained on: the dev slice comes on top
        rows = rows[shuffled(len(rows), data.seed)[: data.train_size + data.dev_size]]
        dev_cap = max(len(rows) - data.train_size, len(rows) // 5)  # ...or what --train-size leaves, when more
    kept, dev_positions = carve_rows(labels[rows], data.dev_size, data.seed, at_most=dev_cap)
    rows, dev_rows = rows[kept], rows[dev_positions]
    available = len(rows)
    capped = data.train_size is None and at_most is not None and available > at_most
    if capped:
        rows = rows[shuffled(available, data.seed)[:at_most]]
    train, dev, held_out = _take_together(source, rows, dev_rows, held_rows)
    if held_out_name != HELD_OUT:
        held_out = others[held_out_name] if held_out_name else None
    held_repeats = 0
    if held_out_name == HELD_OUT:  # cut from a file that repeats reviews: each is scored once (copies narrowed the interval)
        held_out, held_repeats = first_of_each_text(held_out)
    train_with_copies, dev_read = train, len(dev)
    held_hashes = hashes_of(held_out)
    dev, dev_copies = without_copies(dev, held_hashes)  # the dev slice steers training and calibration: no copies either
    train, copies = without_copies(train, np.concatenate([held_hashes, hashes_of(dev)]))
    copies += dev_copies
    if copies and not len(train):
        raise DataError(data.data, f"all {copies:,} reviews to train on are copies of reviews held out to score or follow the "
                                   "model (the file repeats its reviews): none is left to learn from")
    notes = [copies_note(copies)] if copies else []
    if other_ratings:
        others = ", ".join(repr(str(name)) for name in other_ratings)
        notes.insert(0, f"{source.name} has {others} beside {rating_column!r}: the ratings are read from "
                        f"{rating_column!r} (--label-column names the one to read)")
    if held_repeats:
        notes.append(f"the held-out reviews cut from {source.name} held {held_repeats:,} copies of others among them: "
                     f"each is scored once ({len(held_out):,} reviews)")
    if dev_read < data.dev_size and data.dev_size:  # (as carved; copies left out since are said apart)
        why_short = f"--train-size takes {available:,}" if data.train_size is not None and dev_read * 5 > available + dev_read \
            else "a dev slice takes at most a fifth"
        asked = "the default --dev-size" if data.dev_size == DataSettings.dev_size else "--dev-size"  # (a user who gave none set nothing)
        less = f" ({dev_copies:,} of its {dev_read:,} left out as copies)" if dev_copies else ""
        notes.append(f"the dev slice holds {len(dev):,} reviews{less}, not {asked} {data.dev_size:,}: the training data has "
                     f"{available + dev_read:,} ({why_short})")
    if data.eval_size is not None and held_out is not None and len(held_out) + held_repeats < data.eval_size:
        where = (f"{len(held_rows):,} reviews are held out of {source.name} to score (at most half of it)" if held_out_name == HELD_OUT
                 else f"{held_out_name} has {len(held_out):,} reviews: each of them is scored")
        notes.append(f"--eval-size {data.eval_size:,}, but {where}")
    if data.train_size is not None and available < data.train_size:
        notes.append(f"--train-size {data.train_size:,}, but the data has {available:,} reviews to train on beside the dev slice")
    read = len(train_with_copies) + dev_read + len(held_rows)
    sampled = None
    if read < source.rows:
        reason = f" (--train-size {data.train_size:,})" if data.train_size is not None else f" ({why})" if capped and why else ""
        sampled = f"sampled {read:,} of {source.rows:,} reviews in {source.name}{reason}"
    return TrainingSplits(train, dev, held_out, held_out_name, notes, sampled, source.rows, source.name, copies,
                          train_with_copies if copies else None, dev_copies, held_repeats)


def without_copies(part: Dataset, kept_apart: np.ndarray) -> tuple[Dataset, int]:
    """`part` less its reviews whose very text hashes to one of `kept_apart` (the dev slice's
    and the scored split's), and how many: a file that repeats reviews (a scrape run twice, a
    test file cut from the training file) would otherwise score a model on reviews it learned,
    and report memory as reading (0.93 against 0.45 measured on a file of three copies)."""
    import numpy as np

    from ..text import text_hashes

    if not len(kept_apart) or not len(part):
        return part, 0
    copies = np.isin(text_hashes(part["text"]), kept_apart)
    if not copies.any():
        return part, 0
    return part.select(np.flatnonzero(~copies)), int(copies.sum())


def first_of_each_text(part: Dataset) -> tuple[Dataset, int]:
    """`part` with each text once (its first row), and how many copies went."""
    import numpy as np

    from ..text import text_hashes

    if not len(part):
        return part, 0
    _, first = np.unique(text_hashes(part["text"]), return_index=True)
    if len(first) == len(part):
        return part, 0
    return part.select(np.sort(first)), len(part) - len(first)


def hashes_of(*parts: Dataset | None) -> np.ndarray:
    """The text hashes of the reviews of `parts` (None: no such part), together."""
    import numpy as np

    from ..text import text_hashes

    return np.concatenate([np.zeros(0, dtype=np.uint64), *(text_hashes(part["text"]) for part in parts if part is not None)])


def copies_note(copies: int) -> str:
    return (f"left out {copies:,} training and dev reviews that are copies of reviews in the dev slice or the scored split "
            "(the same words, whatever their case or spacing: the file repeats reviews): a model is scored only on reviews "
            "it did not learn from")


def _take_together(source: LabelledFile | InMemorySplit, *parts: np.ndarray) -> list[Dataset]:
    """The rows of each part, read from the file in one pass."""
    import numpy as np

    together = source.take(np.concatenate(parts))
    ends = np.cumsum([len(part) for part in parts])
    return [together.select(range(end - len(part), end) if len(part) else []) for part, end in zip(parts, ends)]


def carve_dev(train: Dataset, size: int, seed: int = DEFAULT_SEED, at_most: int | None = None) -> tuple[Dataset, Dataset]:
    """(train minus the dev slice, the dev slice): see `carve_rows`."""
    import numpy as np

    kept, dev = carve_rows(np.asarray(train["label"]), size, seed, at_most)
    return train.select(kept), train.select(dev)


def carve_rows(labels: np.ndarray, size: int, seed: int = DEFAULT_SEED, at_most: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(positions kept, positions of the slice carved), each in order: `size` rows, as many
    of each class as the labels allow, so a dev accuracy means what a balanced score means
    (a model that always says 5 stars scores 0.2, not the 0.38 of an imbalanced slice).
    Rows of no class (`arrow.UNUSABLE`) are never carved."""
    import numpy as np

    size = min(size, len(labels) // 5 if at_most is None else at_most)
    if size <= 0:
        return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == k)) for k in range(NUM_CLASSES)]
    # A rare star (under half of an even share of the reviews) gives a slice at most half of its
    # reviews (more only when asked: --train-size 200 beside --dev-size 500) and keeps one: the
    # held-out slice and then the dev slice leave it reviews to train on (50 one-star reviews
    # among 2,000 five-star ones all went to the slices, and nothing learned one star). Other
    # stars are carved as they always were.
    share = max(0.5, size / len(labels))
    per_class = [rows[: len(rows) - max(1, int(len(rows) * (1 - share)))] if len(rows) * NUM_CLASSES < len(labels) / 2 else rows
                 for rows in per_class]
    counts = even_counts([len(rows) for rows in per_class], size, rng)
    chosen = [rows[:count] for rows, count in zip(per_class, counts)]
    carved = np.sort(np.concatenate(chosen)).astype(np.int64)
    keep = np.ones(len(labels), dtype=bool)
    keep[carved] = False
    return np.flatnonzero(keep), carved


def even_counts(available: list[int], size: int, rng) -> list[int]:
    """How many rows of each class a slice of `size` takes: an even share of each, and the
    share of a class that has too few shared evenly among the others (a file of 1, 3 and 5
    stars gives 40 of each to a slice of 120, not 24 of each and 48 drawn from the rest).
    What no even share can split goes one row each to classes drawn with `rng`."""
    counts = [0] * len(available)
    left = min(size, sum(available))
    while left > 0:
        open_classes = [k for k, have in enumerate(available) if counts[k] < have]
        each = left // len(open_classes)
        if each == 0:  # fewer rows left than classes: one each, to classes drawn at random
            for k in rng.permutation(open_classes)[:left]:
                counts[int(k)] += 1
            break
        for k in open_classes:
            take = min(each, available[k] - counts[k])
            counts[k] += take
            left -= take
    return counts


def is_balanced(labels) -> bool:
    """Every star present in the slice as often as any other, to one review."""
    import numpy as np

    labels = np.asarray(labels, dtype=np.int64)
    present = np.bincount(labels[labels >= 0], minlength=NUM_CLASSES)
    present = present[present > 0]
    return len(present) == 0 or int(present.max() - present.min()) <= 1


# --------------------------------------------------------------------------- the Hub


def _load_hub(name: str, columns: Columns = Columns()) -> DatasetDict:
    from ..hub import offline_unless_reachable, out_of_reach_hint, why_the_hub_failed

    offline_unless_reachable()  # before `datasets` retries a Hub it cannot reach for half a minute
    import datasets
    from datasets import DatasetDict

    from .files import _label_column, features, text_column_of

    try:
        loaded = datasets.load_dataset(name)
    except Exception as error:  # the Hub raises many kinds; all mean the same to a user
        raise DataError(
            name,
            f"could not load from the Hugging Face Hub ({why_the_hub_failed(error)}). Offline? "
            "Pass a local copy: --data PATH (a .parquet/.csv/.jsonl file, or a folder of "
            "train.*/validation.*/test.* files)." + out_of_reach_hint(),
        ) from None
    splits = {}
    for split_name, split in loaded.items():
        where = Path(f"{name}[{split_name}]")
        text, label = text_column_of(where, split.column_names, columns.text), _label_column(where, split.column_names, columns.label)
        scale = columns.stars_of(label)
        if (text, label, scale) == ("text", "label", 0):  # yelp_review_full's own
            splits[split_name] = split.select_columns(["text", "label"])
            continue

        def relabel(batch, text=text, label=label, scale=scale):
            stars = [scale[str(v)] for v in batch[label]] if isinstance(scale, dict) else [int(v) - scale + 1 for v in batch[label]]
            return {"text": batch[text], "label": [s - 1 for s in stars]}
        splits[split_name] = split.map(relabel, batched=True, remove_columns=split.column_names, features=features())
    return DatasetDict(splits)


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith((".", "/", "~"))
        or Path(source).suffix.lower() in FILE_FORMATS
        or source.count("/") > 1
    )
