"""The three file formats, each read as rows of {column: value} with its row and line numbers.

Parquet by batches, CSV and JSON Lines line by line: memory stays bounded, and every fault
names its file, row and line. The original `yelp_review_full_csv` files (no header,
`"class","text"`, class 1..5, literal `\\n` for newlines) are recognised as they are.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
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
    """The column of that name, else the one of that name in any case (a CSV header
    "Review" for `--text-column review`), else None."""
    if wanted in columns:
        return wanted
    folded = [name for name in columns if str(name).lower() == wanted.lower()]
    return folded[0] if len(folded) == 1 else None


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def count_rows(path: str | Path) -> int | None:
    """Rows in a file when that is cheap to know (Parquet metadata), else None."""
    path = Path(path)
    if path.suffix.lower() == ".parquet" and path.is_file():
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # an unreadable file is reported by the reader, with its reason
            return None
    return None


class _Records:
    """A file's column names and its rows as (row, line, {column: value}), in order."""

    def __init__(self, columns: list[str], rows: Iterable[tuple[int, int | None, dict[str, Any]]]):
        self.columns, self._rows = columns, rows

    def __iter__(self):
        return iter(self._rows)


def open_records(path: str | Path, wanted: Sequence[str] = ()) -> tuple[Path, _Records]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_FORMATS:
        raise DataError(path, f"unknown format '{suffix}': use one of {', '.join(FILE_FORMATS)}")
    if not path.is_file():
        raise DataError(path, "a link that leads nowhere, or a loop of links" if path.is_symlink() else
                        "not a regular file" if path.exists() else "no such file")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    if suffix == ".parquet":
        return path, _parquet_records(path, wanted)
    if suffix == ".csv":
        return path, _csv_records(path, wanted)
    return path, _jsonl_records(path, wanted)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and not math.isfinite(value) else float(value)
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


def _parquet_records(path: Path, wanted: Sequence[str] = ()) -> _Records:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise DataError(path, f"not a readable Parquet file ({first_line(error)})") from None
    columns = parquet.schema_arrow.names
    refuse_duplicates(path, columns)
    named = [find_column(name, columns) for name in (*TEXT_COLUMNS, *LABEL_COLUMNS, *wanted)]
    read = [name for name in dict.fromkeys(named) if name is not None]

    def rows():
        row = 0
        try:
            for batch in parquet.iter_batches(batch_size=4096, columns=read):
                values = {name: batch.column(name).to_pylist() for name in read}
                for i in range(batch.num_rows):
                    row += 1
                    yield row, None, {name: values[name][i] for name in read}
        except (pa.ArrowException, OSError) as error:
            raise DataError(path, f"not a readable Parquet file ({first_line(error)})", row=row + 1) from None

    return _Records(columns, rows())


def _text_lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded one at a time: memory stays bounded, and a bad byte
    names its line and offset. (Split on b"\\n" only: no UTF-8 sequence contains it.)"""
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
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


def _csv_records(path: Path, wanted: Sequence[str] = ()) -> _Records:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))
    lines = _csv_lines(path, csv.reader(_text_lines(path), strict=True))
    try:
        first_at, first = next(lines)
    except StopIteration:
        raise DataError(path, "file is empty") from None
    header = [cell.strip() for cell in first]
    known = {name.lower() for name in (*TEXT_COLUMNS, *LABEL_COLUMNS, *wanted)}
    if any(cell.lower() in known for cell in header):
        refuse_duplicates(path, [cell.lower() for cell in header])
        return _Records(header, _csv_header_rows(path, header, lines))
    if len(first) == 2 and as_number(first[0]) is not None:
        return _Records(["stars", "text"], _yelp_csv_rows(path, [(first_at, first)], lines))
    raise DataError(
        path,
        f"its first line ({', '.join(repr(cell[:30]) for cell in first[:6])}{', ...' if len(first) > 6 else ''}) names no column "
        f"of reviews ({', '.join(TEXT_COLUMNS[:4])}, ...) and it is not the yelp_review_full_csv format (no header, "
        '"class","text"): name the columns with --text-column and --label-column',
    )


def _csv_lines(path: Path, reader: Any) -> Iterable[tuple[int, list[str]]]:
    """(first line of the record, cells), skipping blank lines; bad quoting names its line."""
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                raise DataError(path, f"a field over {MAX_CSV_FIELD:,} characters", line=reader.line_num) from None
            raise DataError(path, f"broken CSV quoting ({error})", line=reader.line_num) from None
        start, previous_end = previous_end + 1, reader.line_num
        if cells:
            yield start, cells


def _csv_header_rows(path: Path, header: list[str], lines: Iterable[tuple[int, list[str]]]):
    for row, (line, cells) in enumerate(lines, start=1):
        if len(cells) != len(header):
            raise DataError(path, f"has {len(cells)} fields, the header has {len(header)}", row=row, line=line)
        yield row, line, dict(zip(header, cells))


def _yelp_csv_rows(path: Path, head: list, lines: Iterable[tuple[int, list[str]]]):
    """The original char-CNN release: `"class","text"`, class 1..5, `\\n` escaped."""
    for row, (line, cells) in enumerate([*head, *lines], start=1):
        if len(cells) != 2:
            raise DataError(path, f'has {len(cells)} fields, expected 2 ("class","text")', row=row, line=line)
        yield row, line, {"stars": cells[0], "text": unescape_yelp_csv(cells[1])}


def unescape_yelp_csv(text: str) -> str:
    """Undo the original files' escapes, as the Hub's `yelp_review_full` loader does."""
    return text.replace('\\"', '"').replace("\\n", "\n")


def _jsonl_records(path: Path, wanted: Sequence[str] = ()) -> _Records:
    # Lines end at "\n" only: JSON strings may hold U+2028 and friends, which splitlines() splits on.
    lines = ((number, line) for number, line in enumerate(_text_lines(path), start=1) if line.strip())
    head = next(lines, None)
    if head is None:
        raise DataError(path, "file is empty")

    def parse(row: int, number: int, line: str) -> dict[str, Any]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, f"not valid JSON ({error.msg})", row=row, line=number) from None
        except RecursionError:
            raise DataError(path, "nested too deeply to be a review's record", row=row, line=number) from None
        except ValueError as error:  # an integer of thousands of digits
            raise DataError(path, f"not a usable JSON record ({first_line(error)[:80]})", row=row, line=number) from None
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, got {type(record).__name__}", row=row, line=number)
        if "\\u" not in line:  # half a UTF-16 pair can only come from a \u escape
            return record
        return {key: _without_lone_surrogates(value) for key, value in record.items()}

    first = parse(1, *head)

    def rows():
        yield 1, head[0], first
        for row, (number, line) in enumerate(lines, start=2):
            record = parse(row, number, line)
            for column in first:
                if (column in (*TEXT_COLUMNS, *LABEL_COLUMNS) or column in wanted) and column not in record:
                    raise DataError(path, f"no '{column}' field", row=row, line=number)
            yield row, number, record

    return _Records(list(first), rows())
