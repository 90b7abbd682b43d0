"""Tables of predictions: read whole, or written in pieces to a file that appears only when complete."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from ..artifacts import atomic_file
from ..errors import DataError
from .formats import FILE_FORMATS, local_path

#: Rows a Parquet row group gathers before it is written: a writer fed in small pieces (a
#: chunk of predictions, a Ray worker's part) would otherwise leave one row group a piece,
#: which readers pay for in metadata and seeks (a probe counted 8 groups in 300 rows).
ROW_GROUP_ROWS = 65_536


def read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(path, "no such file")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return to_pandas(pq.read_table(local_path(path)))
    # Cells as written: "007" stays a text, not the number 7 (a merge must not change a review).
    if suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, dtype=str)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    raise DataError(path, f"expected one of {', '.join(FILE_FORMATS)}")


def arrow_table(frame):
    """`frame` as an Arrow table that pandas reads back. pandas records a nested Arrow column's
    type (`list<element: int64>[pyarrow]`, a kept column of lists) in a form its own reader
    rejects: `pd.read_parquet` of such a file failed. Such a column is recorded as `object`
    (its values read back as lists); every other column keeps its type."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.replace_schema_metadata(_readable_metadata(table.schema))


def to_pandas(table):
    """`table.to_pandas()` (a table or a record batch), with its lists and structs as Arrow
    values, as a run reads them from its input (numpy's conversion turned a struct's integer
    beside a null into a float); also for a file written before `arrow_table` took care of
    its nested columns' pandas metadata."""
    import pandas as pd
    import pyarrow as pa

    readable = table.replace_schema_metadata(_readable_metadata(table.schema))
    return readable.to_pandas(types_mapper=lambda kind: pd.ArrowDtype(kind) if pa.types.is_nested(kind) else None)


def _readable_metadata(schema):
    metadata = schema.metadata
    if not metadata or b"pandas" not in metadata:
        return metadata
    described = json.loads(metadata[b"pandas"])
    unreadable = [column for column in described.get("columns", []) if not _pandas_reads(column.get("numpy_type"))]
    for column in unreadable:
        column["numpy_type"] = "object"
    return {**metadata, b"pandas": json.dumps(described).encode()} if unreadable else metadata


@lru_cache(maxsize=256)
def _pandas_reads(dtype_name) -> bool:
    import pandas as pd

    try:
        pd.api.types.pandas_dtype(dtype_name)
    except (TypeError, ValueError, NotImplementedError):
        return False
    return True


def json_lines(frame, exact: bool = True) -> str:
    """`frame` as JSON Lines; an empty frame is one empty line. Without `exact`, pandas' writer
    (10 decimals: the predictions' own numbers are float32, or rounded). `exact`, for columns
    of the user's: pandas kept 10 decimals (40.712775312345 became 40.7127753123; the largest
    double infinity when read), so each row goes through `json`, which writes the shortest text
    that reads back as the same number; a float32 column as float32 reads (0.09172518), a date
    in ISO 8601, bytes as UTF-8 text, and NaN or an infinity as null at any depth (JSON has
    none). It costs about twice pandas' time: only `--keep-columns` outputs pay it."""
    import numpy as np

    if not len(frame):
        return "\n"
    if not exact:
        text = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
        return text if text.endswith("\n") else text + "\n"
    columns = []
    for name in frame.columns:
        column = frame[name]
        if _is_float32(column.dtype):  # (numpy writes a float32's shortest text)
            values = column.to_numpy(dtype=np.float32, na_value=np.nan)
            shortest = values.astype(str).astype(np.float64).tolist()
            columns.append(shortest if np.isfinite(values).all() else [_json_value(value) for value in shortest])
        else:
            columns.append([_json_value(value) for value in column.tolist()])
    names = [str(name) for name in frame.columns]
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default).encode
    return "".join(encode(dict(zip(names, row))) + "\n" for row in zip(*columns))


def _is_float32(dtype) -> bool:
    import numpy as np
    import pyarrow as pa

    return dtype == np.float32 or getattr(dtype, "pyarrow_dtype", None) == pa.float32()


def _json_value(value):
    """`value` as `json` can write it: NaN and infinities as null, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if hasattr(value, "tolist"):  # a numpy scalar or array (a Parquet list read by pandas)
        return _json_value(value.tolist())
    return value


def _json_default(value):
    """What `json` does not know: a date (ISO 8601), else its text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


class FrameWriter:
    """Appends frames (into a Parquet file, Arrow tables too) to a temporary file that becomes
    `output` only when all is written.

    When nothing was written, `empty` (a frame with no rows) gives the file its header or
    schema: a reader still finds a valid table, with no rows. `exact`: JSON Lines keep every
    number of the frame as it is (`json_lines`: columns of the user's).
    """

    def __init__(self, output: Path, empty=None, exact: bool = False):
        self.output, self.suffix, self.empty, self.exact = output, output.suffix.lower(), empty, exact
        self.parquet = None
        self.pending, self.pending_rows = [], 0  # Parquet: tables not yet written, for one row group
        self.handle = None
        self.written = False

    def __enter__(self):
        self._atomic = atomic_file(self.output)
        self.path = self._atomic.__enter__()
        try:  # a signal here, once the temporary file exists, must still remove it
            if self.suffix != ".parquet":
                self.handle = self.path.open("w", encoding="utf-8", newline="")
        except BaseException as failure:
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        return self

    def write(self, frame) -> None:
        self.written = True
        if self.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = frame if isinstance(frame, pa.Table) else arrow_table(frame)  # (an Arrow table: written as it is)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(local_path(self.path), table.schema)
            elif not table.schema.equals(self.parquet.schema):  # e.g. a column of float64 after float32 ones
                try:
                    table = table.cast(self.parquet.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as error:
                    raise DataError(self.output, f"the rows do not fit the columns written before them ({error})") from None
            self.pending.append(table)
            self.pending_rows += table.num_rows
            if self.pending_rows >= ROW_GROUP_ROWS:
                self._write_pending(whole_groups_only=True)
        elif self.suffix == ".csv":
            frame.to_csv(self.handle, index=False, header=self.handle.tell() == 0)
        elif len(frame):  # (an empty frame, a shard that got no rows, was a blank line amid the rows: not JSON Lines)
            self.handle.write(json_lines(frame, self.exact))

    def _write_pending(self, whole_groups_only: bool = False) -> None:
        """Row groups of `ROW_GROUP_ROWS` rows; the rows short of one wait for more, unless this is the end."""
        import pyarrow as pa

        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        written = table.num_rows - table.num_rows % ROW_GROUP_ROWS if whole_groups_only else table.num_rows
        self.parquet.write_table(table.slice(0, written), row_group_size=ROW_GROUP_ROWS)
        rest = table.slice(written)
        self.pending, self.pending_rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def __exit__(self, kind, error, trace):
        try:
            if kind is None and not self.written and self.empty is not None:
                self.write(self.empty)
            if kind is None and self.suffix == ".jsonl" and self.handle.tell() == 0:
                self.handle.write("\n")  # no rows at all: one empty line, as `json_lines` writes an empty frame
            if self.parquet is not None:
                if kind is None:
                    self._write_pending()
                self.parquet.close()
            if self.handle is not None:
                self.handle.close()
        except BaseException as failure:  # a signal while closing, too: the temporary file still goes
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        return self._atomic.__exit__(kind, error, trace)
