"""Local files of labelled reviews, checked row by row into `Dataset`s of `text` and `label`.

Each bad row fails with one line naming the file, the row and the fault. Reading the
formats themselves (Parquet, CSV, JSON Lines, the original Yelp CSV) is `formats.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .. import LABEL_NAMES, NUM_CLASSES
from ..errors import DataError
from .formats import FILE_FORMATS, LABEL_COLUMNS, as_number, count_rows, first_line, open_records

if TYPE_CHECKING:
    from datasets import Dataset, Features

__all__ = ["SPLITS", "FILE_FORMATS", "features", "split_of", "read_folder", "read_file", "read_texts",
           "iter_text_chunks", "count_rows", "first_line"]

SPLITS = ("train", "validation", "test")


def features() -> Features:
    """The Hub's `yelp_review_full` columns. A function: importing `datasets` costs a second,
    which `reviewstars --help` and a prediction need not pay."""
    from datasets import ClassLabel, Features, Value

    return Features({"text": Value("string"), "label": ClassLabel(names=list(LABEL_NAMES))})


def split_of(path: Path) -> str:
    """A file named `train.*`, `validation.*` or `test.*` is that split; any other is `train`."""
    return path.stem if path.stem in SPLITS else "train"


def read_folder(folder: Path) -> dict[str, Dataset]:
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        if file.is_file() and file.stem in SPLITS and file.suffix.lower() in FILE_FORMATS:
            if file.stem in found:
                raise DataError(folder, f"two files for split '{file.stem}': {found[file.stem].name} and {file.name}")
            found[file.stem] = file
    if not found:
        raise DataError(
            folder,
            "no split files: expected train.*, validation.* or test.* with suffix "
            + ", ".join(FILE_FORMATS),
        )
    return {name: read_file(found[name]) for name in SPLITS if name in found}


def read_file(path: str | Path) -> Dataset:
    """Read and validate one local labelled file into a `Dataset` of `text` and `label`."""
    path, records = open_records(path)
    columns = records.columns
    label_column = _label_column(path, columns)
    checker = _RowChecker(path, label_column)
    for row, line, record in records:
        checker.add(row, record.get("text"), record.get(label_column), line)
    if not checker.table.texts:
        raise DataError(path, "file has no rows")
    from datasets import Dataset

    return Dataset.from_dict({"text": checker.table.texts, "label": checker.table.labels}, features=features())


def read_texts(path: str | Path, column: str = "text") -> list[str]:
    """Texts to predict from a local file; labels are not needed, empty texts are kept."""
    return [text for chunk in iter_text_chunks(path, column) for text in chunk]


def iter_text_chunks(path: str | Path, column: str = "text", rows_per_chunk: int = 8192) -> Iterator[list[str]]:
    """A file's texts in order, `rows_per_chunk` at a time: memory stays bounded for any
    file size. A bad row raises a DataError naming it when the reader reaches it."""
    path, records = open_records(path, wanted=(column,))
    if column not in records.columns:
        raise DataError(path, f"no '{column}' column (columns: {', '.join(map(str, records.columns)) or 'none'})")
    chunk: list[str] = []
    seen = 0
    for row, line, record in records:
        text = record.get(column)
        if not isinstance(text, str):
            raise DataError(path, f"{column} must be a string, got {type(text).__name__}", row=row, line=line)
        chunk.append(text)
        seen += 1
        if len(chunk) == rows_per_chunk:
            yield chunk
            chunk = []
    if not seen:
        raise DataError(path, "file has no rows")
    if chunk:
        yield chunk


@dataclass
class _Table:
    texts: list[str]
    labels: list[int]


class _RowChecker:
    """Validates rows one at a time so each fault can name its row (and line)."""

    def __init__(self, path: Path, label_column: str):
        self.path, self.label_column = path, label_column
        self.offset = LABEL_COLUMNS[label_column]
        self.table = _Table([], [])

    def add(self, row: int, text: Any, label: Any, line: int | None = None) -> None:
        self.table.texts.append(self._text(text, row, line))
        self.table.labels.append(self._label(label, row, line))

    def fail(self, row: int, fault: str, line: int | None = None) -> DataError:
        return DataError(self.path, fault, row=row, line=line)

    def _text(self, text: Any, row: int, line: int | None) -> str:
        if text is None:
            raise self.fail(row, "text is missing", line)
        if not isinstance(text, str):
            raise self.fail(row, f"text must be a string, got {type(text).__name__} {text!r:.40}", line)
        if not text.strip():
            raise self.fail(row, "text is empty", line)
        return text

    def _label(self, value: Any, row: int, line: int | None) -> int:
        column, low = self.label_column, self.offset
        number = as_number(value)
        if number is None:
            shown = "missing" if value is None or value == "" else repr(value)
            raise self.fail(row, f"{column} {shown} is not a number (expected {low}..{low + NUM_CLASSES - 1})", line)
        if number != int(number) or not low <= number <= low + NUM_CLASSES - 1:
            shown = int(number) if number == int(number) else number
            raise self.fail(row, f"{column} {shown} is out of range {low}..{low + NUM_CLASSES - 1}", line)
        return int(number) - low


def _label_column(path: Path, columns: Sequence[str]) -> str:
    if "text" not in columns:
        raise DataError(path, f"no 'text' column (columns: {', '.join(map(str, columns)) or 'none'})")
    for name in LABEL_COLUMNS:
        if name in columns:
            return name
    raise DataError(path, f"no 'label' (0..4) or 'stars' (1..5) column (columns: {', '.join(map(str, columns))})")


