"""Tables of predictions: read whole, or written in pieces to a file that appears only when complete."""

from __future__ import annotations

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


class FrameWriter:
    """Appends frames to a temporary file that becomes `output` only when all is written.

    When nothing was written, `empty` (a frame with no rows) gives the file its header or
    schema: a reader still finds a valid table, with no rows.
    """

    def __init__(self, output: Path, empty=None):
        self.output, self.suffix, self.empty = output, output.suffix.lower(), empty
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
            text = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")  # (a kept date, as ISO 8601)
            self.handle.write(text if text.endswith("\n") else text + "\n")

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
