"""Runs of a file's rows that a process can read without parsing the rest: the unit of
`predict --shard i/N`, of a resumed prediction and of a Ray worker's task.

Parquet says where its rows are (row groups). A CSV or JSON Lines file is indexed by one
pass over its line ends that parses nothing but a line's quotes (`_quoted_after`: is a
newline a record's end or inside a quoted review?): every `EVERY`-th record's byte offset
and line are kept, so the index of 2 million reviews is a few hundred KB and a span starts
reading at most `EVERY` records before its first row. Rows keep their numbers in the whole file, so every
error still names the file's own row.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import DataError
from .files import in_chunks, text_column_of, texts_to_rate
from .formats import Span, count_rows, local_path, open_records

#: Keep the start of every EVERY-th record.
EVERY = 64


@dataclass
class RowIndex:
    """Where a file's rows start: enough to read any run of them."""

    path: Path
    rows: int
    starts: array | None = None  # byte offsets of records 0, EVERY, 2*EVERY, ... (text formats)
    lines: array | None = None   # their first lines
    groups: list[int] | None = None  # Parquet: the first row of each row group

    def span(self, first_row: int, rows: int) -> Span:
        rows = max(0, min(rows, self.rows - first_row))
        if self.starts is None or rows == 0:
            return Span(first_row, rows)
        checkpoint = first_row // EVERY
        return Span(first_row, rows, self.starts[checkpoint], self.lines[checkpoint], first_row - checkpoint * EVERY)

    def spans(self, first_row: int, stop: int, rows_per_span: int) -> list[Span]:
        """[first_row, stop) cut into spans of about `rows_per_span` rows. Parquet is cut at its
        row groups (a span reads whole groups: half a group costs a whole one), and a group
        much larger than `rows_per_span` into equal parts."""
        rows_per_span = max(1, rows_per_span)
        if not self.groups:
            cuts = list(range(first_row, stop, rows_per_span))
        else:
            cuts = []
            for start, end in zip([first_row, *(g for g in self.groups if first_row < g < stop)],
                                  [*(g for g in self.groups if first_row < g < stop), stop]):
                parts = max(1, (end - start) // (4 * rows_per_span))
                cuts += [start + (end - start) * k // parts for k in range(parts)]
        return [self.span(start, end - start) for start, end in zip(cuts, [*cuts[1:], stop])]


def index_rows(path: str | Path, column: str | None = None) -> RowIndex:
    """The file's row count and, for CSV and JSON Lines, where its records start. The
    header is read (and checked, with the `column` of reviews) as any reader would; the
    rows are not parsed."""
    path, records = open_records(path, wanted=(column,) if column else ())
    rows = count_rows(path)
    if rows is not None:  # Parquet
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(local_path(path)).metadata
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        return RowIndex(path, rows, groups=[sum(sizes[:i]) for i in range(len(sizes))])
    starts, lines = array("q"), array("q")
    csv = path.suffix.lower() == ".csv"
    delimiter = (records.delimiter or ",").encode()
    record, line, offset = -records.header_records, 0, 0
    open_quotes = False  # inside a quoted CSV field at this line's start
    with path.open("rb") as handle:
        for raw in handle:
            line, size = line + 1, len(raw)
            if line == 1:  # (the readers drop a byte-order mark: a line of one alone is blank to them)
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not open_quotes and not _blank(raw, csv):
                if record >= 0 and record % EVERY == 0:
                    starts.append(offset)
                    lines.append(line)
                record += 1
            if csv:
                open_quotes = _quoted_after(raw, delimiter, open_quotes)
            offset += size
    return RowIndex(path, max(record, 0), starts, lines)


def _quoted_after(raw: bytes, delimiter: bytes, quoted: bool) -> bool:
    """Whether a CSV line ends inside a quoted field (its newline is the review's, not the
    record's end), as Python's `csv` reads it: a quote opens a field only at the field's start
    (`12" pizza` is text), `""` inside one is a quote, and the quote after it closes it.
    `quoted`: whether the line starts inside one. Only the quotes and delimiters are looked at."""
    if b'"' not in raw:  # most lines: the state goes on as it was
        return quoted
    at, end = 0, len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
    field_start = not quoted
    while at < end:
        if quoted:
            closing = raw.find(b'"', at, end)
            if closing < 0:
                return True
            if raw.startswith(b'"', closing + 1):  # (the line's end is no quote)
                at = closing + 2  # a quote, written twice
                continue
            quoted, field_start, at = False, False, closing + 1
        elif field_start and raw.startswith(b'"', at):
            quoted, at = True, at + 1
        else:  # an unquoted field (or what follows a closing quote): its quotes are text, to the next delimiter
            cut = raw.find(delimiter, at, end)
            if cut < 0:
                return False
            field_start, at = True, cut + len(delimiter)
    return quoted


def _blank(raw: bytes, csv: bool) -> bool:
    """A line the readers skip: an empty CSV line, or a JSON Lines line of white space (as
    `str.strip` has it, however long: a line of 80 spaces counted as a record duplicated a row)."""
    if csv:
        return not raw.strip(b"\r\n")
    head = raw.lstrip()
    return not head or (head[:1] != b"{" and not raw.decode("utf-8", "replace").strip())


def shard_rows(total: int, index: int, count: int) -> tuple[int, int]:
    """Shard i of N: rows [ceil(i*total/N), ceil((i+1)*total/N)), so the first shards take the odd rows."""
    return -(-index * total // count), -(-(index + 1) * total // count)


def iter_span_texts(path: str | Path, column: str, span: Span, rows_per_chunk: int = 8192) -> Iterator[list[str]]:
    """The span's texts in order, in chunks of at most `rows_per_chunk` (`files.in_chunks`: and
    of bounded characters); a bad row names its row in the file."""
    path, records = open_records(path, wanted=(column,), span=span)
    column = text_column_of(path, records.columns, column, option="--column")
    yield from in_chunks(texts_to_rate(path, records, column), rows_per_chunk)


def input_columns(path: str | Path, reviews: str | None = None) -> list[str]:
    """A file's columns as it names them: its header, its Parquet schema, or its first JSON
    record's keys (`reviews`: the reviews' column, when the header names it otherwise than usual)."""
    return list(open_records(path, wanted=(reviews,) if reviews else ())[1].columns)


def iter_span_columns(path: str | Path, columns: Sequence[str], span: Span, rows_per_chunk: int = 8192,
                      for_format: str = ".jsonl", unseen: set | None = None) -> Iterator:
    """The span's rows of `columns` as frames of at most `rows_per_chunk` rows, with the file's
    own types as far as `for_format` (the output's) holds them: Parquet's Arrow types (an
    integer id with gaps stays an integer; a nested value is its JSON text in a CSV), a CSV's
    cells as written, JSON's values (in a CSV or Parquet output, a value that is not a text
    is its JSON text: one type a column, whatever the rows hold). A JSON field missing from
    a row is null there; one the first row lacks is not kept, and added to `unseen`."""
    import pandas as pd
    import pyarrow as pa

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        from .formats import _parquet_batches

        for batch in _parquet_batches(pq.ParquetFile(local_path(path)), list(columns), span):
            frame = batch.to_pandas(types_mapper=pd.ArrowDtype)
            yield nested_as_json_text(batch, frame) if for_format == ".csv" else frame
        return
    as_text = path.suffix.lower() == ".jsonl" and for_format != ".jsonl"
    _, records = open_records(path, wanted=tuple(columns), span=span, every_row_has=False)
    values: dict[str, list] = {name: [] for name in columns}

    def frame():
        kind = pd.ArrowDtype(pa.string()) if as_text else object
        return pd.DataFrame({name: pd.Series(found, dtype=kind) for name, found in values.items()})

    for _, _, record in records:
        for name in columns:
            value = record.get(name)
            values[name].append(json_text(value) if as_text else value)
        if unseen is not None:
            unseen.update(key for key in record if key not in values and key not in unseen)
        if len(values[columns[0]]) == rows_per_chunk:
            yield frame()
            values = {name: [] for name in columns}
    if values[columns[0]]:
        yield frame()


def nested_as_json_text(batch, frame):
    """`frame` (read from the Arrow `batch`) with each nested column (a list, a struct) as its
    JSON text: how a CSV holds it."""
    import pandas as pd
    import pyarrow as pa

    for field in batch.schema:
        if pa.types.is_nested(field.type):
            frame[field.name] = pd.Series([None if value is None else json.dumps(value, ensure_ascii=False, default=str)
                                           for value in batch.column(field.name).to_pylist()],
                                          dtype=pd.ArrowDtype(pa.string()), index=frame.index)
    return frame


def json_text(value: Any) -> Any:
    """A JSON value for a column of texts: a text or a null as it is, anything else as its JSON text."""
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class RowsInOrder:
    """Frames of a file's rows handed out `take(n)` rows at a time, whatever their own lengths:
    how columns read again meet the predictions made of the same rows."""

    def __init__(self, frames: Iterator, path: str | Path):
        self.frames, self.path, self.held = frames, path, None

    def take(self, rows: int):
        import pandas as pd

        parts, count = [], 0
        while count < rows:
            if self.held is None or not len(self.held):
                self.held = next(self.frames, None)
                if self.held is None:
                    raise DataError(self.path, "has fewer rows than were rated: was it changed while it was read?")
            part = self.held.iloc[: rows - count]
            self.held = self.held.iloc[len(part):]
            parts.append(part)
            count += len(part)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
