"""Tables of predictions: read whole, or written in pieces to a file that appears only when complete."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..artifacts import atomic_file
from ..errors import DataError
from .formats import FILE_FORMATS


def read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(path, "no such file")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    # Cells as written: "007" stays a text, not the number 7 (a merge must not change a review).
    if suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, dtype=str)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    raise DataError(path, f"expected one of {', '.join(FILE_FORMATS)}")


def json_lines(frame, exact: bool = True) -> str:
    """`frame` as JSON Lines. A float32 column is written as float32 reads (0.09865783, not
    0.0986578315496), a date in ISO 8601; a missing value, NaN or an infinity (JSON has none)
    as null; an empty frame is one empty line. `exact`: every other number as it is, for
    columns of the user's: pandas' writer keeps at most 15 significant digits (10 by default:
    40.712775312345 became 40.7127753123, the largest double infinity when read), so each row
    goes through `json`, which writes the shortest text that reads back as the same number
    (twice pandas' time). Without it, pandas writes them: the predictions' own numbers are
    float32 or rounded."""
    import numpy as np

    if not len(frame):
        return "\n"
    shortest = {}
    for name in frame.columns:
        if frame[name].dtype == np.float32:  # (numpy writes a float32's shortest text)
            values = frame[name].to_numpy()
            shortest[name] = np.where(np.isfinite(values), values.astype(str).astype(np.float64), np.nan)
    if not exact:
        return frame.assign(**shortest).to_json(orient="records", lines=True, force_ascii=False, date_format="iso",
                                                double_precision=15).rstrip("\n") + "\n"
    columns = [[_json_value(value) for value in (shortest[name] if name in shortest else frame[name]).tolist()]
               for name in frame.columns]
    names = [str(name) for name in frame.columns]
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode
    return "".join(encode(dict(zip(names, row))) + "\n" for row in zip(*columns))


def _json_value(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _json_default(value):
    """What `json` does not know: a date (ISO 8601), a numpy or Arrow scalar (its Python value), else its text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return _json_value(value.item())
    return str(value)


class FrameWriter:
    """Appends frames to a temporary file that becomes `output` only when all is written.

    When nothing was written, `empty` (a frame with no rows) gives the file its header or
    schema: a reader still finds a valid table, with no rows. `exact`: JSON Lines keep every
    number of the frame as it is (`json_lines`: columns of the user's).
    """

    def __init__(self, output: Path, empty=None, exact: bool = False):
        self.output, self.suffix, self.empty, self.exact = output, output.suffix.lower(), empty, exact
        self.parquet = None
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

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            elif not table.schema.equals(self.parquet.schema):  # e.g. a column of float64 after float32 ones
                try:
                    table = table.cast(self.parquet.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as error:
                    raise DataError(self.output, f"the rows do not fit the columns written before them ({error})") from None
            self.parquet.write_table(table)
        elif self.suffix == ".csv":
            frame.to_csv(self.handle, index=False, header=self.handle.tell() == 0)
        else:
            self.handle.write(json_lines(frame, self.exact))

    def __exit__(self, kind, error, trace):
        try:
            if kind is None and not self.written and self.empty is not None:
                self.write(self.empty)
            if self.parquet is not None:
                self.parquet.close()
            if self.handle is not None:
                self.handle.close()
        except BaseException as failure:  # a signal while closing, too: the temporary file still goes
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        return self._atomic.__exit__(kind, error, trace)
