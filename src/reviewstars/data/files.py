"""Local files of labelled reviews, checked row by row into `Dataset`s of `text` and `label`.

Each bad row fails with one line naming the file, the row and the fault. Reading the
formats themselves (Parquet, CSV, JSON Lines, the original Yelp CSV) is `formats.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from .. import LABEL_NAMES, NUM_CLASSES
from ..errors import DataError
from .formats import FILE_FORMATS, LABEL_COLUMNS, TEXT_COLUMNS, as_number, count_rows, find_column, first_line, open_records

if TYPE_CHECKING:
    from datasets import Dataset, Features

__all__ = ["SPLITS", "FILE_FORMATS", "Columns", "features", "split_of", "split_files", "read_folder", "read_file", "read_texts",
           "iter_text_chunks", "text_column_in", "count_rows", "first_line", "parse_label_scale"]

SPLITS = ("train", "validation", "test")
SCALES = ("auto", "0-4", "1-5")


@dataclass(frozen=True)
class Columns:
    """Where a file keeps its reviews and their ratings, and what a rating's values mean.

    `text` and `label` name the columns (None: found among the usual names, `TEXT_COLUMNS`
    and `LABEL_COLUMNS`). `scale` reads the label: "0-4" (0 is one star), "1-5" (1 is one
    star), "auto" (0-4 for a column named label, 1-5 for any other), or a mapping from each
    value to its stars ("negative=1,neutral=3,positive=5")."""

    text: str | None = None
    label: str | None = None
    scale: str = "auto"

    def stars_of(self, column: str) -> dict[str, int] | int:
        """The mapping of values to stars, or the lowest value (0 or 1) of a numeric scale."""
        if self.scale == "auto":
            return LABEL_COLUMNS.get(column.lower(), 1)
        if self.scale in ("0-4", "1-5"):
            return int(self.scale[0])
        return parse_label_scale(self.scale)


def parse_label_scale(text: str) -> str | dict[str, int]:
    """`--label-scale`: auto, 0-4, 1-5, or value=stars pairs ("neg=1,pos=5") as a dict."""
    text = str(text).strip()
    if text in SCALES:
        return text
    mapping: dict[str, int] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        value, _, stars = pair.rpartition("=")
        if not value or not stars.strip().isdigit() or not 1 <= int(stars) <= NUM_CLASSES:
            raise ValueError(f"expected auto, 0-4, 1-5 or value=stars pairs with stars 1..5 (neg=1,pos=5), got {text!r}")
        same = next((key for key in mapping if key.casefold() == value.strip().casefold()), None)  # values match in any case
        if same is not None and mapping[same] != int(stars):
            raise ValueError(f"{value.strip()!r} is given twice, as {mapping[same]} and {int(stars)} stars (values match in any case)")
        mapping[value.strip()] = int(stars)
    if not mapping:
        raise ValueError(f"expected auto, 0-4, 1-5 or value=stars pairs (neg=1,pos=5), got {text!r}")
    return mapping


def features() -> Features:
    """The Hub's `yelp_review_full` columns. A function: importing `datasets` costs a second,
    which `reviewstars --help` and a prediction need not pay."""
    from datasets import ClassLabel, Features, Value

    return Features({"text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))})


def split_of(path: Path) -> str:
    """A file named `train.*`, `validation.*` or `test.*` (in any case: `Train.CSV`) is that
    split; any other is `train`."""
    return path.stem.lower() if path.stem.lower() in SPLITS else "train"


def split_files(folder: Path) -> dict[str, Path]:
    """A folder's files by split: train.*, validation.*, test.* (one each, names in any case), in that order."""
    found: dict[str, Path] = {}
    entries = sorted(folder.iterdir())
    for file in entries:
        split = file.stem.lower()
        if file.is_file() and split in SPLITS and file.suffix.lower() in FILE_FORMATS:
            if split in found:
                raise DataError(folder, f"two files for split '{split}': {found[split].name} and {file.name}")
            found[split] = file
    if not found:
        seen = [entry.name + ("/" if entry.is_dir() else "") for entry in entries if not entry.name.startswith(".")]
        shown = ", ".join(seen[:8]) + (f" and {len(seen) - 8:,} more" if len(seen) > 8 else "") if seen else "nothing"
        raise DataError(folder, "no split files: expected train.*, validation.* or test.* with suffix "
                                + ", ".join(FILE_FORMATS) + f" (it holds {shown})")
    return {name: found[name] for name in SPLITS if name in found}


def read_folder(folder: Path, columns: Columns = Columns()) -> dict[str, Dataset]:
    return {name: read_file(file, columns) for name, file in split_files(folder).items()}


def read_file(path: str | Path, columns: Columns = Columns()) -> Dataset:
    """Read and validate one local labelled file into a `Dataset` of `text` and `label`."""
    from .arrow import LabelledFile

    return LabelledFile(path, columns).read()


def read_texts(path: str | Path, column: str | None = None) -> list[str]:
    """Texts to predict from a local file; labels are not needed, empty texts are kept."""
    return [text for chunk in iter_text_chunks(path, column) for text in chunk]


def text_column_in(path: str | Path, column: str | None = None) -> str:
    """The name of a file's column of reviews: `column` as the file spells it, or the first
    of the usual names found (its header is read, not its rows)."""
    path, records = open_records(path, wanted=(column,) if column else ())
    return text_column_of(path, records.columns, column, option="--column")


#: A chunk of texts ends at its rows, or at this many characters: 8,192 reviews of 90,000
#: characters each held 10.6 GB (the linear model's features of a chunk); Yelp's 8,192 hold ~6M.
CHUNK_CHARS = 8_000_000


def in_chunks(texts: Iterable[str], rows_per_chunk: int, chars_per_chunk: int | None = None) -> Iterator[list[str]]:
    """`texts` in lists of at most `rows_per_chunk` texts and about `chars_per_chunk`
    (default `CHUNK_CHARS`) characters, a longer text alone: what is held at once is bounded by both."""
    chars_per_chunk = chars_per_chunk or CHUNK_CHARS
    chunk: list[str] = []
    chars = 0
    for text in texts:
        if chunk and chars + len(text) > chars_per_chunk:
            yield chunk
            chunk, chars = [], 0
        chunk.append(text)
        chars += len(text)
        if len(chunk) == rows_per_chunk:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def iter_text_chunks(path: str | Path, column: str | None = None, rows_per_chunk: int = 8192) -> Iterator[list[str]]:
    """A file's texts in order, in chunks (`in_chunks`): memory stays bounded for any
    file size. `column` names them (None: found among the usual names). A bad row raises
    a DataError naming it when the reader reaches it."""
    path, records = open_records(path, wanted=(column,) if column else ())
    column = text_column_of(path, records.columns, column, option="--column")
    seen = False
    for chunk in in_chunks(texts_to_rate(path, records, column), rows_per_chunk):
        seen = True
        yield chunk
    if not seen:
        raise DataError(path, "file has no rows")


def texts_to_rate(path: Path, records: Iterable[tuple[int, int | None, dict[str, Any]]], column: str) -> Iterator[str]:
    """The `column` of each of a file's records (row, line, values), as `text_to_rate` reads it."""
    return (text_to_rate(record.get(column), path, column, row, line) for row, line, record in records)


def text_to_rate(text: Any, path: Path, column: str, row: int, line: int | None) -> str:
    """A cell of a file to rate: a review, or none (an empty CSV cell, a null in Parquet or
    JSON Lines alike: rated, and flagged empty); anything else names its row."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise DataError(path, f"{column} must be a string, got {type(text).__name__}", row=row, line=line)
    return text


class _RowChecker:
    """Validates rows one at a time so each fault can name its row (and line)."""

    def __init__(self, path: Path, label_column: str, scale: dict[str, int] | int, text_column: str = "text"):
        self.path, self.label_column, self.text_column = path, label_column, text_column
        self.mapping = scale if isinstance(scale, dict) else None
        self.offset = 0 if isinstance(scale, dict) else scale
        if self.mapping is not None:  # a value as the file spells it: "Negative" for negative, "3.0" for 3
            self.folded = {key.casefold(): stars for key, stars in self.mapping.items()}
            self.numbers = {as_number(key): stars for key, stars in self.mapping.items() if as_number(key) is not None}

    def check(self, row: int, text: Any, label: Any, line: int | None = None) -> tuple[str, int]:
        """(the text, its star class 0..4), or a DataError naming the row's first fault."""
        return self._text(text, row, line), self.label(label, row, line)

    def fail(self, row: int, fault: str, line: int | None = None) -> DataError:
        return DataError(self.path, fault, row=row, line=line)

    def _text(self, text: Any, row: int, line: int | None) -> str:
        if text is None:
            raise self.fail(row, f"{self.text_column} is missing", line)
        if not isinstance(text, str):
            raise self.fail(row, f"{self.text_column} must be a string, got {type(text).__name__} {text!r:.40}", line)
        if not text.strip():
            raise self.fail(row, f"{self.text_column} is empty", line)
        return text

    def label(self, value: Any, row: int, line: int | None) -> int:
        column, low = self.label_column, self.offset
        if self.mapping is not None:
            key = str(int(value)) if isinstance(value, float) and value == int(value) else str(value).strip()
            stars = self.mapping.get(key) or self.folded.get(key.casefold()) or self.numbers.get(as_number(value))
            if stars is None:
                raise self.fail(row, f"{column} {value!r:.60} is not in --label-scale ({', '.join(self.mapping)[:200]})", line)
            return stars - 1
        number = as_number(value)
        if number is None and (value is None or (isinstance(value, str) and not value.strip())):
            raise self.fail(row, f"{column} is missing (expected a rating, {low}..{low + NUM_CLASSES - 1}): fill it in, or "
                                 "drop the row", line)
        if number is None:
            shown = f"{value!r:.60}"  # (a cell of a megabyte: its start)
            raise self.fail(row, f"{column} {shown} is not a number (expected {low}..{low + NUM_CLASSES - 1}; for words, "
                                 "map them: --label-scale negative=1,positive=5)", line)
        if number != int(number):
            raise self.fail(row, f"{column} {number!r} is not a whole number of stars: map each value to stars with "
                                 f"--label-scale (e.g. 1=1,1.5=2,...,4.5=5,5=5)", line)
        if not low <= number <= low + NUM_CLASSES - 1:
            other = 1 - low  # the other numeric scale's lowest value
            if other <= number <= other + NUM_CLASSES - 1:
                hint = f"if {column} counts from {other}, say --label-scale {other}-{other + NUM_CLASSES - 1}"
            else:
                hint = "a wider scale (1-10, 0-100, ...): map its values to stars with --label-scale, e.g. 1=1,2=1,3=2,...,10=5"
            shown = str(int(number)) if abs(number) < 1e15 else f"{number:.6g}"  # (not a 300-digit line)
            raise self.fail(row, f"{column} {shown} is out of range {low}..{low + NUM_CLASSES - 1} ({hint})", line)
        return int(number) - low


def _listed(columns: Sequence[str]) -> str:
    return ", ".join(repr(str(name)) for name in columns) or "none"


def text_column_of(path: Path, columns: Sequence[str], given: str | None, option: str = "--text-column") -> str:
    """The column of reviews: the one named, else the first of the usual names found."""
    return _column_of(path, columns, given, option, TEXT_COLUMNS,
                      f"no column of reviews among the usual names ({', '.join(TEXT_COLUMNS)})", f"name it with {option}")


#: The columns `predict` writes beside its `stars`: a file that has them holds a model's ratings, not true ones.
PREDICTION_COLUMNS = frozenset({"p_1", "p_2", "p_3", "p_4", "p_5", "expected_stars"})


def _label_column(path: Path, columns: Sequence[str], given: str | None) -> str:
    """The column of ratings: the one named, else the first of the usual names found (never a
    predictions file's `stars`: scored against itself, a model read 1.0000)."""
    found = _column_of(path, columns, given, "--label-column", LABEL_COLUMNS,
                       "no column of ratings among the usual names (label 0..4, stars or rating 1..5)",
                       "name it with --label-column (and its scale with --label-scale)")
    if not given and found.lower() == "stars" and PREDICTION_COLUMNS <= {str(name).lower() for name in columns}:
        raise DataError(path, "holds predictions (stars beside p_1..p_5 and expected_stars, as `predict` writes them): its "
                              "stars are a model's, not the reviews' own ratings; score the reviews' file, or name its true "
                              "ratings with --label-column (predict --keep-columns keeps them)")
    return found


def _column_of(path: Path, columns: Sequence[str], given: str | None, option: str, usual: Sequence[str],
               none_found: str, hint: str) -> str:
    """The column named by `option` (it must exist), else the first of the `usual` names found."""
    if given is not None and not given.strip():  # `--column ''` (an unset shell variable): was the default, silently
        raise DataError(path, f"{option} is empty: name a column ({_listed(columns)}), or leave the option out")
    if given:
        found = find_column(given, columns)
        if found is None:
            raise DataError(path, f"no column {given!r} ({option}); its columns: {_listed(columns)}")
        return found
    found = next((name for name in (find_column(candidate, columns) for candidate in usual) if name), None)
    if found is None:
        raise DataError(path, f"{none_found}; its columns: {_listed(columns)}: {hint}")
    return found


