"""`reviewstars predict` and `merge`: stars for texts, or for a whole file of any size."""

from __future__ import annotations

import errno
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import STARS
from ..data import FILE_FORMATS, text_column_in
from ..data.pieces import (RowsInOrder, index_rows, input_columns, iter_span_columns, iter_span_texts, json_text, nested_as_json_text,
                           shard_rows)
from ..artifacts import check_output_file
from ..data.formats import local_path
from ..data.frames import FrameWriter, to_pandas
from ..errors import DataError, Interrupted, ReviewstarsError, Terminated
from ..text import MAX_TEXT_CHARS
from ..models import StarPredictor, load_predictor
from ..models.base import has_no_words, prediction_rows, stars_from_proba
from ..progress import progress_bar
from .guard import output_file_lock, terminate_cleanly
from .partial import PartialOutput, input_identity
from .shards import (check_complete_set, fingerprint, model_identity, read_shard, record_path, remove_record, same_content,
                     write_record)


def opened(model: str | Path | StarPredictor, device: str | None = None) -> StarPredictor:
    return model if isinstance(model, StarPredictor) else load_predictor(model, device=device)


def predict_texts(model: str | Path | StarPredictor, texts: Sequence[str], device: str | None = None) -> list[dict[str, Any]]:
    predictor = opened(model, device)
    texts = list(texts)
    return prediction_rows(texts, predictor.predict_proba(texts))


def parse_shard(shard: str | None) -> tuple[int, int]:
    """`"i/N"` -> (i, N): this process rates the i-th of N runs of consecutive rows."""
    if not shard:
        return 0, 1
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise ReviewstarsError(f"--shard '{shard}': expected i/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ReviewstarsError(f"--shard '{shard}': need 0 <= i < N")
    return index, count


def predict_file(
    model: str | Path | StarPredictor,
    source: str | Path,
    output: str | Path,
    column: str | None = None,
    shard: str | None = None,
    chunk_rows: int = 8192,
    batch_size: int | None = None,
    device: str | None = None,
    keep_columns: bool = False,
) -> dict[str, Any]:
    """Rate every text of a .csv/.parquet/.jsonl file of any size into `output`: the reviews'
    column and the predictions, or with `keep_columns` every column of the input beside them
    (read again as the output is written, with the file's own types: `KeptColumns`).

    Reads, rates and keeps `chunk_rows` rows at a time (memory stays bounded; see
    `partial.py`: a stopped run goes on where it stopped), then writes the output in input
    order. With a shard "i/N" it reads and rates only the i-th of N runs of consecutive rows
    (`pieces.py`: Parquet row groups, byte ranges of CSV and JSON Lines) and adds each
    text's `row` in the input, so `merge_predictions` can join N outputs. The output
    appears only when it is complete.
    """
    output = Path(output)
    if output.suffix.lower() not in FILE_FORMATS:
        raise DataError(output, f"output must end in {', '.join(FILE_FORMATS)}")
    index, count = parse_shard(shard)
    column = text_column_in(source, column)  # as the file spells it; the output keeps the name
    if column in OUTPUT_COLUMNS:  # the texts would come back as a column of predictions
        raise ReviewstarsError(f"--column {column!r}: the predictions have a column of that name; rename the reviews' "
                               f"column (the output's own are {', '.join(OUTPUT_COLUMNS)})")
    kept = KeptColumns.of(source, column) if keep_columns else None
    unseen: set[str] = set()  # JSON fields the first record lacks: not kept (a CSV's header is its first row's)
    check_output_file(output, inputs=(source, *([model] if isinstance(model, (str, Path)) else [])), ours=holds_predictions,
                      what="predictions")
    sharded = count > 1
    if sharded:
        check_output_file(record_path(output), "--output's shard record", inputs=(source,))
    predictor = opened(model, device)
    started = time.perf_counter()
    rows_of = index_rows(source, column)
    if not rows_of.rows:
        raise DataError(source, "file has no rows")
    first, stop = shard_rows(rows_of.rows, index, count)
    model_is_a_folder = isinstance(model, (str, Path))  # a predictor given in Python is never the same one twice
    partial = PartialOutput(output, {"input": input_identity(Path(source)),
                                     "model": model_identity(model) if model_is_a_folder else uuid.uuid4().hex,
                                     "column": column, "rows": [first, stop]})
    at = resumed_from = first
    cut = without_words = 0
    empty = prediction_frame([], np.zeros((0, len(STARS))), column, [] if sharded else None)
    if kept is not None:
        empty = kept.beside(empty, None)
    with terminate_cleanly(), output_file_lock(output, "predict"):
        try:
            at = resumed_from = partial.resume(first)
            with progress_bar("predicting", total=stop - first) as advance:
                advance(at - first)
                for gap_start, gap_stop in partial.missing(first, stop):
                    row = gap_start
                    for texts in iter_span_texts(source, column, rows_of.span(gap_start, gap_stop - gap_start), chunk_rows):
                        cut += sum(len(text) > MAX_TEXT_CHARS for text in texts)
                        proba = predictor.predict_proba(texts, batch_size=batch_size)
                        partial.write(prediction_frame(texts, proba, column, range(row, row + len(texts))), row)
                        row += len(texts)
                        at += len(texts)
                        advance(len(texts))
                    if row != gap_stop:  # read fewer rows than were counted: never a summary of rows not written
                        raise DataError(source, f"has {gap_stop - row:,} rows fewer than counted when the run began (row "
                                                f"{row + 1:,} of {stop:,} is missing): was it changed while it was read?")
            inputs = None if kept is None or not kept.renamed else RowsInOrder(iter_span_columns(
                source, list(kept.renamed), rows_of.span(first, stop - first), chunk_rows, output.suffix.lower(), unseen), source)
            with FrameWriter(output, empty, exact=kept is not None) as writer:  # the user's numbers as they are
                for frame in partial.frames():
                    without_words += int(frame["empty"].sum())
                    if inputs is not None and len(frame):
                        frame = kept.beside(frame, inputs.take(len(frame)))
                    writer.write(frame if sharded else frame.drop(columns="row"))
            if sharded:
                write_record(output, Path(source), model, index, count, stop - first, empty.columns, keep_columns=kept is not None)
            else:
                remove_record(output)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not partial.folder.is_dir():
                partial.remove()
                raise
            rated = partial.kept(first, stop)  # a full disk: what is rated stays, to go on once there is room
            raise ReviewstarsError(f"{error.filename or output}: no space left on the device; {rated:,} of {stop - first:,} rows "
                                   f"are rated and kept in {partial.folder}: free some space and run the same command again "
                                   "to go on from there") from None
        except (Terminated, KeyboardInterrupt) as stopped:  # SIGTERM or Ctrl-C: what is rated stays for the next run
            rated = partial.kept(first, stop)
            sigterm = isinstance(stopped, Terminated)
            if rated == 0:
                partial.remove()
                if sigterm:
                    raise
                raise Interrupted(f"stopped (Ctrl-C) before any row was rated: {output} was not written") from None
            raise (Terminated if sigterm else Interrupted)(
                f"{'terminated (SIGTERM)' if sigterm else 'stopped (Ctrl-C)'}: {rated:,} of {stop - first:,} rows are rated "
                f"and kept in {partial.folder}: run the same command again to go on from there") from None
        except BaseException:
            partial.remove()  # bad data or a failing model: the same run would fail again
            raise
    partial.remove()
    seconds = time.perf_counter() - started
    return {"rows": stop - first, "output": str(output), "seconds": round(seconds, 3), "shard": f"{index}/{count}",
            "rows_in_input": rows_of.rows, "first_row": first, "rated": at - resumed_from,
            "predictions_per_second": round((at - resumed_from) / max(seconds, 1e-9), 1),
            # a model reads at most MAX_TEXT_CHARS of a text: its first and last halves of them (`text.readable`)
            "texts_cut": cut, "chars_read_at_most": MAX_TEXT_CHARS, "empty": without_words, "columns_not_kept": sorted(unseen - {column})}


#: The columns `predict --file` writes beside the reviews (a shard's output starts with `row` too).
OUTPUT_COLUMNS = ("row", "stars", *(f"p_{star}" for star in STARS), "expected_stars", "empty")


def beside_predictions(names: Sequence[str], where: str, predictions: Sequence[str] = OUTPUT_COLUMNS) -> dict[str, str]:
    """Each of an input's column names as it stands beside the `predictions`: its own, or
    `input_<name>` where a prediction has the name (a labelled file's `stars`)."""
    renamed = {name: f"input_{name}" if name in predictions else name for name in names}
    taken = [name for name, new in renamed.items() if new != name and new in names]
    if taken:
        raise ReviewstarsError(f"{where}: its column {taken[0]!r} is named like a prediction and 'input_{taken[0]}' is "
                               "taken too: rename one of them to keep the columns")
    return renamed


@dataclass(frozen=True)
class KeptColumns:
    """`--keep-columns`: the input's columns, each by the name it gets in the output (its
    own, or `input_<name>` when a prediction has that name: a labelled file's `stars`), and
    the output's columns in the input's order, the reviews where they were. The reviews'
    own column is taken from the input too, cell for cell: a null stays null (rated as
    a review of no words, it was read as "")."""

    renamed: dict[str, str]
    layout: list[str]

    @classmethod
    def of(cls, source: str | Path, column: str) -> "KeptColumns":
        names = input_columns(source, column)
        renamed = beside_predictions(names, str(source))  # (`column` is not one of the predictions' names)
        return cls(renamed, [renamed.get(name, name) for name in names])

    def beside(self, frame, inputs):
        """The predictions of some rows with the input's own columns of those rows (`inputs`;
        None: the header of an output with no rows)."""
        import pandas as pd

        if inputs is None:
            inputs = pd.DataFrame({name: pd.Series([], dtype=object) for name in self.renamed})
        rated = frame.drop(columns=[name for name in self.renamed.values() if name in frame.columns])  # the reviews, as read
        together = pd.concat([inputs.rename(columns=self.renamed).reset_index(drop=True), rated.reset_index(drop=True)], axis=1)
        first = ["row"] if "row" in frame.columns else []
        return together[[*first, *self.layout, *(name for name in rated.columns if name not in first and name not in self.layout)]]


def prediction_frame(texts: Sequence[str], proba: np.ndarray, column: str = "text", rows: Sequence[int] | None = None):
    """The fields of `prediction_rows` as columns (p_1..p_5 for the probabilities, so no column
    is named like a label); a shard's frame starts with each text's `row` in the input."""
    import pandas as pd

    frame = pd.DataFrame({column: list(texts), "stars": stars_from_proba(proba)})
    if rows is not None:
        frame.insert(0, "row", np.asarray(rows, dtype=np.int64))
    for i, star in enumerate(STARS):
        frame[f"p_{star}"] = proba[:, i]
    frame["expected_stars"] = proba @ np.asarray(STARS, dtype=float)
    frame["empty"] = np.asarray([has_no_words(text) for text in texts], dtype=bool)
    return frame


def with_output_types(frame):
    """The prediction columns with their own types again: CSV keeps every cell as text (the
    reviews must stay as written), and "False" is a true string."""
    import pandas as pd

    # the probabilities as `predict` writes them (float32), so CSV and Parquet parts merge into one schema
    types = {"row": "int64", "stars": "int64", "expected_stars": "float64", **{f"p_{star}": "float32" for star in STARS}}
    frame = frame.astype({name: kind for name, kind in types.items() if name in frame.columns})
    if "empty" in frame.columns and not pd.api.types.is_bool_dtype(frame["empty"]):
        frame["empty"] = frame["empty"].astype(str).map({"True": True, "False": False}).fillna(False).astype(bool)
    return frame


def merge_predictions(parts: Sequence[str | Path], output: str | Path) -> dict[str, Any]:
    """Join the outputs of `predict --shard i/N` (i = 0..N-1) into one file in input order,
    once their records show they are all N shards of one input rated by one model.

    Shard i holds the i-th run of consecutive rows, so the merge streams the outputs in
    shard order, a batch at a time (memory holds one batch, whatever the data's size), and
    checks that the rows follow each other with none missing or twice."""
    if not parts:
        raise ReviewstarsError("nothing to merge: give the shard outputs")
    shards = [read_shard(Path(part)) for part in parts]
    check_complete_set(shards)
    output = check_output_file(output, inputs=(*parts, *(record_path(Path(part)) for part in parts)))
    if output.suffix.lower() not in FILE_FORMATS:  # (JSON Lines went into merged.txt, or a name without a suffix)
        raise DataError(output, f"output must end in {', '.join(FILE_FORMATS)}")
    if output.is_file() and same_content(fingerprint(output), shards[0].record["input"]):
        raise ReviewstarsError(f"--output {output}: is the file the shards rated (an input is never written over): give another path")
    check_replaces_predictions(output)
    expected = 0
    # JSON Lines parts into a CSV or Parquet file: a kept value that is not a text as its JSON
    # text, one type a column, as a run of the whole file into that format writes it
    as_text = shards[0].path.suffix.lower() == ".jsonl" and output.suffix.lower() != ".jsonl"
    # Parquet parts into a CSV: a kept list or struct as its JSON text, as the whole run writes it
    nested_as_text = shards[0].path.suffix.lower() == ".parquet" and output.suffix.lower() == ".csv"
    exact = bool(shards[0].record.get("keep_columns"))  # as the whole run writes its JSON Lines
    # Parquet parts into a Parquet file: their Arrow tables as they are (schema and pandas metadata the
    # whole run's: a trip through pandas made a string large_string and a decimal(5, 2) decimal(3, 2))
    as_tables = output.suffix.lower() == ".parquet" and all(shard.path.suffix.lower() == ".parquet" for shard in shards)
    empty = _empty_table(shards[0].path) if as_tables else _empty_like(shards[0].path)
    with terminate_cleanly(), FrameWriter(output, empty, exact=exact) as writer:
        for shard in sorted(shards, key=lambda shard: shard.index):
            for frame in (_parquet_tables(shard.path) if as_tables else read_frames(shard.path, nested_as_text=nested_as_text)):
                if as_text:
                    frame = _values_as_json_text(frame)
                rows = np.asarray(frame["row"])
                if len(rows) and not np.array_equal(rows, np.arange(expected, expected + len(rows))):
                    raise ReviewstarsError(f"{shard.path}: the shard outputs overlap or miss rows (row {int(rows[0])} "
                                           f"where row {expected} was due): give every shard 0/N..N-1/N once")
                expected += len(rows)
                writer.write(frame.drop_columns(["row"]).replace_schema_metadata(empty.schema.metadata) if as_tables
                             else frame.drop(columns="row"))
    return {"rows": expected, "output": str(output), "parts": len(parts)}


def _values_as_json_text(frame):
    """Each column of `json` values (object dtype) with every value but a text or a null as its
    JSON text, typed as `pieces.iter_span_columns` types them for a whole run."""
    import pandas as pd
    import pyarrow as pa

    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = pd.Series([json_text(value) for value in frame[name]], dtype=pd.ArrowDtype(pa.string()), index=frame.index)
    return frame


def holds_predictions(path: Path) -> bool:
    """Predictions of ours (or nothing at all: an empty shard's output is one newline): what a
    rerun may write over."""
    if path.stat().st_size < 16 and not path.read_bytes().strip():
        return True
    try:
        first = next(read_frames(path, batch_rows=1), None)
        columns = set(first.columns) if first is not None else set(_empty_like(path).columns)
    except Exception:  # unreadable as a table in its format: not ours either
        columns = set()
    return {"stars", "p_1", "p_5"} <= columns


def check_replaces_predictions(output: Path) -> None:
    """An existing `--output` is written over only when it holds predictions (a rerun): a file
    of the user's own that happens to have the name is never lost."""
    if output.is_file() and not holds_predictions(output):
        raise ReviewstarsError(f"--output {output}: a file that is not predictions is already there; give another path "
                               "(or remove it first: nothing of yours is written over)")


def read_frames(path: Path, batch_rows: int = 16384, nested_as_text: bool = False):
    """A prediction file's rows a batch at a time, with the prediction columns' own types
    (`nested_as_text`: a Parquet file's lists and structs as their JSON text, for a CSV)."""
    import pandas as pd
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        for batch in pq.ParquetFile(local_path(path)).iter_batches(batch_size=batch_rows):
            yield nested_as_json_text(batch, to_pandas(batch)) if nested_as_text else to_pandas(batch)
        return
    if suffix == ".jsonl":
        yield from _json_lines_frames(path, batch_rows)
        return
    # Cells as written: "007" stays a text, not the number 7 (a merge must not change a review).
    with pd.read_csv(path, keep_default_na=False, dtype=str, chunksize=batch_rows) as reader:
        for frame in reader:
            yield with_output_types(frame)


def _json_lines_frames(path: Path, batch_rows: int):
    """A JSON Lines prediction file's rows, each value as `json` reads it: pandas' reader made
    a kept `1` beside a null `1.0` and moved a number's last digits. (A shard that received no
    rows is an empty line: no frame.)"""
    import pandas as pd

    def frame(records: list[dict]):
        names = list(records[0])
        return with_output_types(pd.DataFrame({name: pd.Series([record.get(name) for record in records], dtype=object)
                                               for name in names}))

    records: list[dict] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                records.append(json.loads(line))
                if len(records) == batch_rows:
                    yield frame(records)
                    records = []
    if records:
        yield frame(records)


def _parquet_tables(path: Path, batch_rows: int = 16384):
    """A Parquet prediction file's rows as Arrow tables, a batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(local_path(path))
    for batch in file.iter_batches(batch_size=batch_rows):
        yield pa.Table.from_batches([batch], schema=file.schema_arrow)


def _empty_table(path: Path):
    """A Parquet prediction file's schema as an empty table, less its `row` column, in its
    pandas metadata too (pandas reads the merged file as the whole run's): every table the
    merge writes carries this metadata, worked out once."""
    import pyarrow.parquet as pq

    table = pq.read_schema(local_path(path)).empty_table()
    table = table.drop_columns(["row"]) if "row" in table.column_names else table
    metadata = dict(table.schema.metadata or {})
    if b"pandas" in metadata:
        described = json.loads(metadata[b"pandas"])
        described["columns"] = [column for column in described.get("columns", []) if column.get("name") != "row"]
        metadata[b"pandas"] = json.dumps(described).encode()
    return table.replace_schema_metadata(metadata)


def _empty_like(path: Path):
    """The columns of a shard output without its `row`: the header of a merge of empty shards."""
    import pandas as pd
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = to_pandas(pq.read_schema(local_path(path)).empty_table())
    elif suffix == ".csv":
        frame = with_output_types(pd.read_csv(path, nrows=0, dtype=str, keep_default_na=False))
    else:
        first = next(read_frames(path, batch_rows=1), None)
        if first is None:
            return None
        frame = first.iloc[:0]
    return frame.drop(columns="row", errors="ignore")
