"""The three file formats, each read as rows of {column: value} with its row and line numbers.

Parquet by batches, CSV and JSON Lines line by line: memory stays bounded, and every fault
names its file, row and line. The original `yelp_review_full_csv` files (no header,
`"class","text"`, class 1..5, literal `\\n` for newlines) are recognised as they are.
"""

from __future__ import annotations

import csv
import decimal
import json
import math
import numbers
import os
import re
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import DataError
from ..text import without_lone_surrogates

#: The one table of file formats, for reading reviews and writing predictions alike.
FILE_FORMATS = (".parquet", ".csv", ".jsonl")

#: Label columns found without being named, and the lowest value of each (0: labels 0..4, 1: stars 1..5).
LABEL_COLUMNS = {"label": 0, "labels": 0, "stars": 1, "star": 1, "rating": 1, "ratings": 1, "star_rating": 1, "score": 1,
                 "review_stars": 1}
#: Text columns found without being named, in this order of preference.
TEXT_COLUMNS = ("text", "review", "review_text", "reviews", "content", "body", "comment", "sentence")


def find_column(wanted: str, columns: Sequence[str]) -> str | None:
    """The column of that name, else the one of that name in any case and with spaces or
    hyphens for underscores (a CSV header "Review" for `--text-column review`, a spreadsheet's
    "Review Text" for `review_text`), else None."""
    if wanted in columns:
        return wanted
    for fold in (str.lower, _folded):
        found = [name for name in columns if fold(str(name)) == fold(wanted)]
        if found:
            return found[0] if len(found) == 1 else None
    return None


def _folded(name: str) -> str:
    return re.sub(r"[\s_-]+", "_", name.strip().lower())


def local_path(path: str | Path) -> str:
    """A local file's path as pyarrow must be given it: absolute, since a relative name with a
    colon (`reviews_10:00.parquet`) reads to it as a URI of an unknown filesystem."""
    return os.path.abspath(path)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def count_rows(path: str | Path) -> int | None:
    """Rows in a file when that is cheap to know (Parquet metadata), else None."""
    path = Path(path)
    if path.suffix.lower() == ".parquet" and path.is_file():
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(local_path(path)).metadata.num_rows
        except Exception:  # an unreadable file is reported by the reader, with its reason
            return None
    return None


class _Records:
    """A file's column names and its rows as (row, line, {column: value}), in order.
    `header_records`: how many of the file's first records are a header, not rows."""

    def __init__(self, columns: list[str], rows: Iterable[tuple[int, int | None, dict[str, Any]]], header_records: int = 0,
                 delimiter: str | None = None):
        self.columns, self._rows, self.header_records = columns, rows, header_records
        self.delimiter = delimiter  # a CSV's, as read

    def __iter__(self):
        return iter(self._rows)


@dataclass(frozen=True)
class Span:
    """A run of a file's rows: `rows` of them from the 0-based row `first_row`. In a CSV or
    JSON Lines file, reading starts at byte `start` (line `first_line`, a record's start
    found by `pieces.index_rows`) and passes over `skip` records first; a Parquet file
    needs only the rows."""

    first_row: int
    rows: int
    start: int = 0
    first_line: int = 1
    skip: int = 0


def open_records(path: str | Path, wanted: Sequence[str] = (), span: Span | None = None, *,
                 every_row_has: bool = True) -> tuple[Path, _Records]:
    """A file's columns and rows; with a `span`, only that run of rows, numbered as in the whole
    file. A JSON Lines row lacking a field the first one has is an error, unless not
    `every_row_has` (columns kept beside predictions: a missing field is a null there)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(path, "is a folder: give one of its files (predict --engine ray reads a folder of them)")
    if suffix not in FILE_FORMATS:
        delimited = " (a tab- or semicolon-separated file is read as one: name it .csv)" if suffix in (".tsv", ".tab", ".txt") else ""
        raise DataError(path, f"unknown format '{suffix}': use one of {', '.join(FILE_FORMATS)}{delimited}")
    if not path.is_file():
        raise DataError(path, "not a regular file (a folder, a device or a pipe)" if path.exists() else
                        "a link that leads nowhere, or a loop of links" if path.is_symlink() else "no such file")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    if suffix == ".parquet":
        return path, _parquet_records(path, wanted, span)
    if suffix == ".csv":
        return path, _csv_records(path, wanted, span)
    return path, _jsonl_records(path, wanted, span, every_row_has)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (numbers.Real, decimal.Decimal)):  # numpy's numbers too, and a SQL export's decimal(5,2)
        try:
            number = float(value)
        except (ValueError, OverflowError):  # a signalling NaN, an int past a float's range
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def refuse_duplicates(path: Path, columns: Sequence[str]) -> None:
    """Two columns of one name: which one holds the reviews is anyone's guess, so none is taken."""
    twice = sorted(name for name, count in Counter(columns).items() if count > 1)
    if twice:
        raise DataError(path, f"column {', '.join(repr(name) for name in twice)} appears more than once: rename or drop the copies")


def _without_lone_surrogates(value: Any) -> Any:
    return without_lone_surrogates(value) if isinstance(value, str) else value


def _parquet_records(path: Path, wanted: Sequence[str] = (), span: Span | None = None) -> _Records:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(local_path(path))
    except (pa.ArrowException, OSError) as error:
        raise DataError(path, f"not a readable Parquet file ({first_line(error)})") from None
    columns = parquet.schema_arrow.names
    refuse_duplicates(path, columns)
    named = [find_column(name, columns) for name in (*TEXT_COLUMNS, *LABEL_COLUMNS, *wanted)]
    read = [name for name in dict.fromkeys(named) if name is not None]

    def rows():
        row = span.first_row if span else 0
        try:
            for batch in _parquet_batches(parquet, read, span):
                values = {name: batch.column(name).to_pylist() for name in read}
                for i in range(batch.num_rows):
                    row += 1
                    yield row, None, {name: values[name][i] for name in read}
        except (pa.ArrowException, OSError) as error:
            raise DataError(path, f"not a readable Parquet file ({first_line(error)})", row=row + 1) from None

    return _Records(columns, rows())


PARQUET_BATCH_ROWS = 4096


def _parquet_batches(parquet, columns: Sequence[str], span: Span | None):
    """The file's batches; with a span, only the row groups it overlaps are read, then cut to it.
    A row group is streamed a batch at a time, never read whole: pandas writes up to a million
    rows in one, and 300,000 reviews read whole took 900 MB to rate (streamed: the CSV's 390)."""
    batch_size = PARQUET_BATCH_ROWS
    if span is None:
        yield from parquet.iter_batches(batch_size=batch_size, columns=columns)
        return
    start, stop, group_start = span.first_row, span.first_row + span.rows, 0
    for group in range(parquet.metadata.num_row_groups):
        group_rows = parquet.metadata.row_group(group).num_rows
        if group_start < stop and group_start + group_rows > start:
            at = group_start  # the file's row of the batch's first
            for batch in parquet.iter_batches(batch_size=batch_size, row_groups=[group], columns=columns):
                first, last = max(start, at), min(stop, at + batch.num_rows)
                if first < last:
                    yield batch.slice(first - at, last - first)
                at += batch.num_rows
                if at >= stop:
                    break
        group_start += group_rows


def _text_lines(path: Path, start: int = 0, first_line: int = 1) -> Iterator[str]:
    """The file's lines from byte `start` (line `first_line`), decoded one at a time: memory
    stays bounded, and a bad byte names its line and offset. (Split on b"\\n" only: no UTF-8
    sequence contains it.)"""
    offset = start
    with path.open("rb") as handle:
        handle.seek(start)
        for number, raw in enumerate(handle, start=first_line):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    path, f"undecodable bytes at byte {offset + error.start} (the file must be UTF-8)", line=number
                ) from None
            offset += len(raw)
            yield line.removeprefix("\ufeff") if number == 1 else line


#: The longest CSV field read (Python's csv stops at 131,072 characters, shorter than some real reviews).
MAX_CSV_FIELD = 64 << 20


def csv_delimiter(path: Path, known: set[str]) -> str:
    """What separates a CSV file's fields: a comma when the header line cut at commas names a
    column we look for (`known`, folded), else the mark that cuts it into the most fields,
    quotes respected (a tab, or the semicolon of a spreadsheet saved where the comma is the
    decimal mark: `id;"review, full";rating`), a comma when none does better."""
    header = next(_text_lines(path), "")

    def cells(mark: str) -> list[str]:
        try:
            return next(csv.reader([header], delimiter=mark, strict=True), [])
        except csv.Error:  # quotes that only another mark explains
            return []

    if any(_folded(cell) in known for cell in cells(",")):
        return ","
    return max((",", "\t", ";", "|"), key=lambda mark: len(cells(mark)))  # (max keeps the first of equals: the comma)


def _csv_records(path: Path, wanted: Sequence[str] = (), span: Span | None = None) -> _Records:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))
    known = {_folded(name) for name in (*TEXT_COLUMNS, *LABEL_COLUMNS, *wanted)}
    delimiter = csv_delimiter(path, known)
    lines = _csv_lines(path, _text_lines(path), delimiter=delimiter)
    try:
        first_at, first = next(lines)
    except StopIteration:
        raise DataError(path, "file is empty") from None
    header = [cell.strip() for cell in first]
    if span is not None:  # the header said what the columns are: now read the span's own bytes
        lines = islice(_csv_lines(path, _text_lines(path, span.start, span.first_line), span.first_line - 1, delimiter),
                       span.skip, span.skip + span.rows)
    if any(_folded(cell) in known for cell in header):
        refuse_duplicates(path, [cell.lower() for cell in header])
        return _Records(header, _csv_header_rows(path, header, lines, span.first_row if span else 0), header_records=1,
                        delimiter=delimiter)
    if len(first) == 2 and as_number(first[0]) is not None:
        head = [] if span is not None else [(first_at, first)]
        return _Records(["stars", "text"], _yelp_csv_rows(path, head, lines, span.first_row if span else 0), delimiter=delimiter)
    shown = f"{', '.join(repr(cell[:30]) for cell in first[:6])}{', ...' if len(first) > 6 else ''}"
    if any(as_number(cell) is not None for cell in first):  # a row, not names: --text-column has nothing to name
        hint = ("it reads as a row of reviews, not a header: put a header line first, naming the columns in their order "
                "(e.g. text,stars)")
    else:
        hint = "name the reviews' column (--text-column; --column for predict) and the ratings' (--label-column)"
    raise DataError(path, f"its first line ({shown}) names no column of reviews ({', '.join(TEXT_COLUMNS[:4])}, ...) and it is "
                          f'not the yelp_review_full_csv format (no header, "class","text"): {hint}')


def _csv_lines(path: Path, text_lines: Iterable[str], line_offset: int = 0, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, cells), skipping blank lines; bad quoting names its line."""
    reader = csv.reader(text_lines, strict=True, delimiter=delimiter)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise DataError(path, f"a field over {MAX_CSV_FIELD:,} characters", line=line_offset + reader.line_num) from None
            if "new-line character seen in unquoted field" in str(error):  # (Python's advice names its own open())
                raise DataError(path, "a carriage return (\\r) outside quotes: old Mac line ends (save the file with LF or "
                                      "CRLF line ends), or a field that holds one unquoted", line=line_offset + reader.line_num) from None
            raise DataError(path, f"broken CSV quoting ({error})", line=line_offset + reader.line_num) from None
        start, previous_end = previous_end + 1, reader.line_num
        if cells:
            yield line_offset + start, cells


def _csv_header_rows(path: Path, header: list[str], lines: Iterable[tuple[int, list[str]]], first_row: int = 0):
    for row, (line, cells) in enumerate(lines, start=first_row + 1):
        if len(cells) != len(header):
            raise DataError(path, f"has {len(cells)} fields, the header has {len(header)}", row=row, line=line)
        yield row, line, dict(zip(header, cells))


def _yelp_csv_rows(path: Path, head: list, lines: Iterable[tuple[int, list[str]]], first_row: int = 0):
    """The original char-CNN release: `"class","text"`, class 1..5, `\\n` escaped."""
    for row, (line, cells) in enumerate([*head, *lines], start=first_row + 1):
        if len(cells) != 2:
            raise DataError(path, f'has {len(cells)} fields, expected 2 ("class","text")', row=row, line=line)
        yield row, line, {"stars": cells[0], "text": unescape_yelp_csv(cells[1])}


def unescape_yelp_csv(text: str) -> str:
    """Undo the original files' escapes, as the Hub's `yelp_review_full` loader does."""
    return text.replace('\\"', '"').replace("\\n", "\n")


def _jsonl_records(path: Path, wanted: Sequence[str] = (), span: Span | None = None, every_row_has: bool = True) -> _Records:
    # Lines end at "\n" only: JSON strings may hold U+2028 and friends, which splitlines() splits on.
    lines = ((number, line) for number, line in enumerate(_text_lines(path), start=1) if line.strip())
    head = next(lines, None)
    if head is None:
        raise DataError(path, "file is empty")
    first = _json_record(path, 1, *head)
    needed = [column for column in first if column in (*TEXT_COLUMNS, *LABEL_COLUMNS) or column in wanted] if every_row_has else []
    if span is not None:
        lines = islice(((number, line) for number, line in enumerate(_text_lines(path, span.start, span.first_line),
                                                                      start=span.first_line) if line.strip()),
                       span.skip, span.skip + span.rows)

    def rows():
        start = 1
        if span is None:
            yield 1, head[0], first
            start = 2
        for row, (number, line) in enumerate(lines, start=span.first_row + 1 if span else start):
            record = _json_record(path, row, number, line)
            for column in needed:
                if column not in record:
                    raise DataError(path, f"no '{column}' field", row=row, line=number)
            yield row, number, record

    return _Records(list(first), rows())


def _json_record(path: Path, row: int, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(path, f"not valid JSON ({error.msg.removesuffix(' at')} at character {error.pos + 1})", row=row, line=number) from None
    except RecursionError:
        raise DataError(path, "nested too deeply to be a review's record", row=row, line=number) from None
    except ValueError as error:  # an integer of thousands of digits
        raise DataError(path, f"not a usable JSON record ({first_line(error)[:80]})", row=row, line=number) from None
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, got {type(record).__name__}", row=row, line=number)
    if "\\u" not in line:  # half a UTF-16 pair can only come from a \u escape
        return record
    return {key: _without_lone_surrogates(value) for key, value in record.items()}
