"""Reviews in, a validated `DatasetDict` with `text` (str) and `label` (0..4) out.

`--data` is either a Hugging Face Hub dataset name (default `yelp_review_full`) or a
local path: one file (`.parquet`, `.csv`, `.jsonl`) or a folder whose files are named by
split (`train.*`, `validation.*`, `test.*`). Local files are checked row by row, so a
bad file fails with one line naming the file, the row and the fault, not a traceback
three modules later.

Accepted columns: `text` plus `label` (0..4) or `stars` (1..5). The original
`yelp_review_full_csv` files (no header, `"class","text"`, class 1..5, literal `\\n`
for newlines) are recognised as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import NUM_CLASSES
from ..errors import DataError
from ..options import Settings, setting
from .files import (FILE_FORMATS, SPLITS, count_rows, first_line, iter_text_chunks, read_file, read_folder, read_texts,
                    split_of)

if TYPE_CHECKING:  # imported where used: `datasets` costs a second that `--help` need not pay
    from datasets import Dataset, DatasetDict

DEFAULT_DATASET = "yelp_review_full"
DEFAULT_SEED = 42

__all__ = ["DEFAULT_DATASET", "DEFAULT_SEED", "DataSettings", "FILE_FORMATS", "SPLITS", "carve_dev", "count_rows",
           "eval_split_name", "iter_text_chunks", "load_data", "pick_split", "read_file", "read_texts", "subset"]


@dataclass
class DataSettings(Settings):
    """Which reviews a run learns from and is scored on: the same for every kind."""

    data: str = setting(DEFAULT_DATASET, "Hub dataset name, or a local .parquet/.csv/.jsonl file or folder.", short="-d")
    train_size: int | None = setting(None, "Train on a seeded sample of N reviews.", at_least=1)
    eval_size: int | None = setting(None, "Score on a seeded sample of N held-out reviews.", at_least=1)
    dev_size: int = setting(500, "Reviews carved from train (balanced by class) to follow training, calibrate and weigh ensembles.",
                            at_least=0)
    seed: int = setting(DEFAULT_SEED, "Seed for subsets, the dev slice and training.", at_least=0, at_most=2**32 - 1)

    def __post_init__(self) -> None:
        self.data = str(self.data)
        super().__post_init__()


# --------------------------------------------------------------------------- loading


def load_data(
    source: str | Path = DEFAULT_DATASET,
    *,
    train_size: int | None = None,
    eval_size: int | None = None,
    seed: int = DEFAULT_SEED,
) -> DatasetDict:
    """Load `source` and take the lesson's seeded subsets.

    `train_size` samples the train split, `eval_size` every other split, each with
    `shuffle(seed).select(range(n))` so a run is reproducible from its settings.
    """
    from datasets import DatasetDict

    path = Path(source)
    if path.exists():
        splits = read_folder(path) if path.is_dir() else {split_of(path): read_file(path)}
        dataset = DatasetDict(splits)
    elif _looks_like_path(str(source)):
        raise DataError(source, "no such file or folder")
    else:
        dataset = _load_hub(str(source))
    sizes = {name: (train_size if name == "train" else eval_size) for name in dataset}
    return DatasetDict({name: subset(split, sizes[name], seed) for name, split in dataset.items()})


def subset(split: Dataset, n: int | None, seed: int = DEFAULT_SEED) -> Dataset:
    """The lesson's `shuffle(seed).select(range(n))`; `None` keeps every row in order."""
    if n is None:
        return split
    if n <= 0:
        raise DataError("subset", f"size must be positive, got {n}")
    return split.shuffle(seed=seed).select(range(min(n, len(split))))


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


def carve_dev(train: Dataset, size: int, seed: int = DEFAULT_SEED) -> tuple[Dataset, Dataset]:
    """(train minus the dev slice, the dev slice): `size` reviews, as many of each class
    as the train split allows, so a dev accuracy means what a balanced score means (a
    model that always says 5 stars scores 0.2, not the 0.38 of an imbalanced slice)."""
    import numpy as np

    size = min(size, len(train) // 5)
    if size <= 0:
        return train, train.select([])
    labels = np.asarray(train["label"])
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == k)) for k in range(NUM_CLASSES)]
    quota = size // NUM_CLASSES
    chosen = [rows[:quota] for rows in per_class]
    short = size - sum(len(rows) for rows in chosen)
    if short > 0:  # a rare class gave fewer: fill from the rest, still seeded
        rest = rng.permutation(np.concatenate([rows[quota:] for rows in per_class]))
        chosen.append(rest[:short])
    dev_rows = np.sort(np.concatenate(chosen)).astype(int)
    keep = np.ones(len(train), dtype=bool)
    keep[dev_rows] = False
    return train.select(np.flatnonzero(keep)), train.select(dev_rows)


# --------------------------------------------------------------------------- the Hub


def _load_hub(name: str) -> DatasetDict:
    import datasets
    from datasets import DatasetDict

    try:
        loaded = datasets.load_dataset(name)
    except Exception as error:  # the Hub raises many kinds; all mean the same to a user
        raise DataError(
            name,
            f"could not load from the Hugging Face Hub ({first_line(error)}). Offline? "
            "Pass a local copy: --data PATH (a .parquet/.csv/.jsonl file, or a folder of "
            "train.*/validation.*/test.* files)",
        ) from None
    for split_name, split in loaded.items():
        missing = {"text", "label"} - set(split.column_names)
        if missing:
            raise DataError(name, f"split '{split_name}' has no {' or '.join(sorted(missing))} column")
    return DatasetDict({k: v.select_columns(["text", "label"]) for k, v in loaded.items()})


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith((".", "/", "~"))
        or Path(source).suffix.lower() in FILE_FORMATS
        or source.count("/") > 1
    )
