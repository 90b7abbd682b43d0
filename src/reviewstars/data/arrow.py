"""A local labelled file as Arrow: every row's rating first, then only the rows chosen.

A training file may be larger than memory (2,000,000 reviews are over a gigabyte of
text) while a two-minute budget learns from a few thousand of them. So the rows a run
uses (held out, dev slice, a seeded sample) are chosen from the ratings alone, and only
those rows are read, checked and kept, as Arrow columns: the review texts never become a
Python list of the whole file. A fault still names the file and the row as numbered in it.

Parquet is read column-wise (the rating column alone for the choice, then the text and
rating of the row groups that hold chosen rows). CSV and JSON Lines are read line by line
twice: once to check every row and keep its rating, once to keep the rows chosen.
"""

from __future__ import annotations

import itertools
import os
import threading
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..errors import DataError
from ..progress import warn
from .files import Columns, _label_column, _RowChecker, features, text_column_of
from .formats import LABEL_COLUMNS, first_line, local_path, open_records

if TYPE_CHECKING:
    from datasets import Dataset

#: Rows read (and checked) at a time: bounds the Python objects alive at once.
BATCH_ROWS = 8192
UNUSABLE = -1  # a rating that is no star: found (and reported with its row) only if its row is chosen
#: Ratings in a `label` column, none of them 0, from which the file must say its scale: a balanced
#: 0-4 file has a 0 among 20 rows 99% of the time, so 1..4 there is more likely 1-5 without its 5s.
#: (A 0-4 file with 5% one-star reviews lacks one 36% of the time: its user gives --label-scale
#: once, where a silent guess would move every rating of a 1-5 file up a star.) Fewer: a warning.
SCALE_EVIDENCE_ROWS = 20
_warned_scale: set[Path] = set()  # a file read twice (its labels, then its rows) warns once


class LabelledFile:
    """One local file of reviews and ratings: its number of rows, every row's star class,
    and any of its rows as a checked `Dataset` of `text` and `label`."""

    def __init__(self, path: str | Path, columns: Columns = Columns()):
        self.columns = columns
        self.path, records = open_records(path, wanted=tuple(filter(None, (columns.text, columns.label))))
        self.text_column = text_column_of(self.path, records.columns, columns.text)
        self.label_column = _label_column(self.path, records.columns, columns.label)
        #: Other columns of a usual rating name, when the ratings' column was found rather than named:
        #: a file with `label` and `stars` that disagree is read from `label` (and says so).
        self.other_rating_columns = [] if columns.label else [
            name for name in records.columns if name != self.label_column and str(name).lower() in LABEL_COLUMNS]
        if self.text_column == self.label_column:
            raise DataError(self.path, f"the column {self.text_column!r} cannot hold both the reviews and their ratings: "
                                       "give --text-column and --label-column two different columns")
        self.parquet = self.path.suffix.lower() == ".parquet"
        self._rows: int | None = self._parquet_file().metadata.num_rows if self.parquet else None
        self._labels: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def checker(self) -> _RowChecker:
        return _RowChecker(self.path, self.label_column, self.columns.stars_of(self.label_column), self.text_column)

    @property
    def rows(self) -> int:
        """How many rows the file has (Parquet says; CSV and JSON Lines are read once for it)."""
        if self._rows is None:
            self.labels()
        return self._rows

    def labels(self) -> np.ndarray:
        """Every row's star class (0..4), in file order. Parquet: from its rating column alone,
        `UNUSABLE` where a rating is none (reported if that row is chosen). CSV, JSON Lines:
        every row is checked, so the first bad row fails as a whole read would."""
        if self._labels is None:
            self._labels = self._parquet_labels() if self.parquet else self._stream_labels()
            self._rows = len(self._labels)
            if not self._rows:
                raise DataError(self.path, "file has no rows")
            self._check_scale(self._labels)
        return self._labels

    def read(self) -> Dataset:
        """Every row, checked, in file order."""
        if self.parquet:
            self.labels()  # (the rating column alone: its scale checked)
            return self.take(np.arange(self.rows))
        checker, texts, labels, faults = self.checker(), [], array("q"), _Faults()
        for row, line, record in open_records(self.path, self._wanted())[1]:
            try:
                text, label = checker.check(row, record.get(self.text_column), record.get(self.label_column), line)
            except DataError as fault:
                faults.add(fault)
                continue
            texts.append(text)
            labels.append(label)
        faults.raise_any()
        if not texts:
            raise DataError(self.path, "file has no rows")
        self._check_scale(np.frombuffer(labels, dtype=np.int64))
        return _dataset(texts, labels)

    def _check_scale(self, classes: np.ndarray) -> None:
        """A column named `label` is read as 0-4 (0 is one star, as in yelp_review_full) unless
        told otherwise; one that is never 0 in `SCALE_EVIDENCE_ROWS` ratings or more is more likely
        1-5 without its 5s, and read as 0-4 every rating would move up a star, silently. Such a
        file must say its scale. (In fewer rows a missing one-star rating is mere chance.)"""
        if self.columns.scale != "auto" or self.columns.stars_of(self.label_column) != 0:
            return
        found = classes[classes != UNUSABLE]
        if not len(found) or found.min() == 0:
            return
        if len(found) >= SCALE_EVIDENCE_ROWS:
            raise DataError(self.path, f"{self.label_column} runs {found.min()}..{found.max()} and is never 0: say which "
                                       f"rating is one star: --label-scale 1-5 (1 is one star) or --label-scale 0-4 "
                                       f"(0 is, as in yelp_review_full; a column named {self.label_column!r} is read so)")
        if self.path not in _warned_scale:
            _warned_scale.add(self.path)
            warn(f"{self.path}: {self.label_column} runs {found.min()}..{found.max()} in {len(found)} rows, never 0: read as "
                 f"0-4 (0 is one star, as in yelp_review_full); if 1 is one star, give --label-scale 1-5")

    def take(self, rows: np.ndarray) -> Dataset:
        """The rows at these positions (0-based, in this order), checked in file order."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.rows == 0:
            raise DataError(self.path, "file has no rows")
        order = np.argsort(rows, kind="stable")
        wanted = rows[order]
        texts, labels = self._parquet_take(wanted) if self.parquet else self._stream_take(wanted)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))  # from file order to the order asked
        return _dataset(texts, labels, None if np.array_equal(back, np.arange(len(back))) else back)

    # ------------------------------------------------------------------ Parquet

    def _parquet_file(self):
        import pyarrow.parquet as pq

        return pq.ParquetFile(local_path(self.path))

    def _unreadable(self, error: BaseException, row: int | None = None) -> DataError:
        return DataError(self.path, f"not a readable Parquet file ({first_line(error)})", row=row)

    def _parquet_labels(self) -> np.ndarray:
        """The rating column alone; each distinct value is read once (a rating column holds a few)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            column = self._parquet_file().read(columns=[self.label_column]).column(0)
        except (pa.ArrowException, OSError) as error:
            raise self._unreadable(error) from None
        star_class = self._star_class()
        try:
            values = pc.unique(column)
            found = pc.fill_null(pc.index_in(column, value_set=values), len(values)).to_numpy()
        except pa.ArrowNotImplementedError:  # a nested column: no rating, but only a chosen row says so
            return np.fromiter((star_class(value) for value in column.to_pylist()), dtype=np.int8, count=len(column))
        classes = np.fromiter((*map(star_class, values.to_pylist()), UNUSABLE), dtype=np.int8, count=len(values) + 1)
        return classes[found]

    def _star_class(self):
        checker = self.checker()

        def star_class(value: Any) -> int:
            try:
                return checker.label(value, 0, None)
            except DataError:
                return UNUSABLE

        return star_class

    def _parquet_take(self, wanted: np.ndarray) -> tuple[Any, array]:
        """The text column (Arrow chunks) and the checked classes of the `wanted` rows (sorted). Only the
        row groups that hold them are read, several at once (decoding them is the cost); the rows
        are checked here, in file order."""
        import pyarrow as pa

        metadata = self._parquet_file().metadata
        starts = np.cumsum([0, *(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))])
        groups = np.unique(np.searchsorted(starts, wanted, side="right") - 1).tolist()
        checker, pieces, labels = self.checker(), [], array("q")
        workers = max(1, min(len(groups), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
        readers = threading.local()  # one reader a thread, not one a row group: a footer is read once each

        def rows_of(group: int) -> list[tuple[np.ndarray, Any]]:
            if not hasattr(readers, "parquet"):
                readers.parquet = self._parquet_file()
            return self._group_rows(readers.parquet, group, starts, wanted)

        faults = _Faults()  # every bad row counted, as a CSV's are: a file is fixed in one go
        with ThreadPoolExecutor(workers) as pool:
            for chosen_rows, chosen in itertools.chain.from_iterable(pool.map(rows_of, groups)):
                texts, ratings = chosen.column(0).to_pylist(), chosen.column(1).to_pylist()
                for number, text, rating in zip(chosen_rows.tolist(), texts, ratings):
                    try:
                        labels.append(checker.check(number + 1, text, rating)[1])
                    except DataError as fault:
                        faults.add(fault)
                pieces.append(chosen.column(0))
        faults.raise_any()
        return pa.chunked_array([piece.cast(pa.string()) for piece in pieces], type=pa.string()), labels  # chunks: no 2 GB limit

    def _group_rows(self, parquet, group: int, starts: np.ndarray, wanted: np.ndarray) -> list[tuple[np.ndarray, Any]]:
        """(rows, their text and rating as Arrow) of the `wanted` rows in one row group, a batch at a time."""
        import pyarrow as pa

        row, found = int(starts[group]), []
        try:
            columns = [self.text_column, self.label_column]
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=columns):
                lo, hi = np.searchsorted(wanted, [row, row + batch.num_rows])
                if hi > lo:
                    found.append((wanted[lo:hi], batch if hi - lo == batch.num_rows else batch.take(pa.array(wanted[lo:hi] - row))))
                row += batch.num_rows
        except (pa.ArrowException, OSError) as error:
            raise self._unreadable(error, row=row + 1) from None
        return found

    # ------------------------------------------------------------------ CSV, JSON Lines

    def _wanted(self) -> tuple[str, ...]:
        return tuple(filter(None, (self.columns.text, self.columns.label)))

    def _records(self) -> Iterator[tuple[int, int | None, dict]]:
        return iter(open_records(self.path, self._wanted())[1])

    def _stream_labels(self) -> np.ndarray:
        checker, labels, faults = self.checker(), array("b"), _Faults()
        for row, line, record in self._records():
            try:
                labels.append(checker.check(row, record.get(self.text_column), record.get(self.label_column), line)[1])
            except DataError as fault:
                faults.add(fault)
        faults.raise_any()
        return np.frombuffer(labels, dtype=np.int8).copy() if labels else np.zeros(0, dtype=np.int8)

    def _stream_take(self, wanted: np.ndarray) -> tuple[list[str], array]:
        """The `wanted` rows (sorted), reading the file up to the last of them."""
        checker, texts, labels = self.checker(), [], array("q")
        numbers = iter((wanted + 1).tolist())  # rows as the reader numbers them, from 1
        wanted_row = next(numbers, None)
        for row, line, record in self._records():
            if wanted_row is None:
                break
            if row == wanted_row:
                text, label = checker.check(row, record.get(self.text_column), record.get(self.label_column), line)
                texts.append(text)
                labels.append(label)
                wanted_row = next(numbers, None)
        return texts, labels


class _Faults:
    """The bad rows of a whole read: the first one's fault, with how many more there are and
    where, so a file is fixed in one go rather than a row a run."""

    SHOWN = 5

    def __init__(self):
        self.first: DataError | None = None
        self.more: list[int] = []
        self.count = 0

    def add(self, fault: DataError) -> None:
        self.count += 1
        if self.first is None:
            self.first = fault
        elif len(self.more) < self.SHOWN:
            self.more.append(fault.row)

    def raise_any(self) -> None:
        if self.first is None:
            return
        if self.count == 1:
            raise self.first
        rest = ", ".join(map(str, self.more)) + (", ..." if self.count - 1 > len(self.more) else "")
        first = self.first
        more = f"{self.count - 1:,} more bad row{'s' if self.count > 2 else ''}"
        raise DataError(first.source, f"{first.fault} (and {more}: {rest})", row=first.row, line=first.line)


def _dataset(texts, labels: array, order: np.ndarray | None = None) -> Dataset:
    """A `Dataset` of `text` and `label` built from Arrow columns (`order`: its rows, taken in that order)."""
    import pyarrow as pa
    from datasets import Dataset, DatasetInfo
    from datasets.table import InMemoryTable

    text = texts if isinstance(texts, pa.ChunkedArray) else pa.array(texts, type=pa.string())
    label = pa.array(np.frombuffer(labels, dtype=np.int64) if len(labels) else np.zeros(0, dtype=np.int64))
    table = pa.table({"text": text, "label": label})
    if order is not None:
        table = table.take(pa.array(order))
    return Dataset(InMemoryTable(table), info=DatasetInfo(features=features()))
