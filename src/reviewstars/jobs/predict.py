"""`reviewstars predict` and `merge`: stars for texts, or for a whole file of any size."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import STARS
from ..data import FILE_FORMATS, count_rows, iter_text_chunks, text_column_in
from ..artifacts import check_output_file
from ..data.frames import FrameWriter, read_frame
from ..errors import DataError, ReviewstarsError
from ..text import MAX_TEXT_CHARS
from ..models import StarPredictor, load_predictor
from ..models.base import has_no_words, prediction_rows, stars_from_proba
from ..progress import progress_bar
from .guard import terminate_cleanly
from .shards import check_complete_set, fingerprint, read_shard, record_path, same_content, write_record


def opened(model: str | Path | StarPredictor, device: str | None = None) -> StarPredictor:
    return model if isinstance(model, StarPredictor) else load_predictor(model, device=device)


def predict_texts(model: str | Path | StarPredictor, texts: Sequence[str], device: str | None = None) -> list[dict[str, Any]]:
    predictor = opened(model, device)
    texts = list(texts)
    return prediction_rows(texts, predictor.predict_proba(texts))


def parse_shard(shard: str | None) -> tuple[int, int]:
    """`"i/N"` -> (i, N): this process rates rows i, i+N, i+2N... of the file."""
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
) -> dict[str, Any]:
    """Rate every text of a .csv/.parquet/.jsonl file of any size into `output`.

    Reads and writes `chunk_rows` rows at a time (memory stays bounded), predicts each
    chunk in length-sorted batches, and writes rows back in input order. With a shard
    "i/N" it rates rows i, i+N, ... and adds their input `row` so `merge_predictions`
    can put N outputs back together. The output appears only when it is complete.
    """
    output = Path(output)
    if output.suffix.lower() not in FILE_FORMATS:
        raise DataError(output, f"output must end in {', '.join(FILE_FORMATS)}")
    index, count = parse_shard(shard)
    column = text_column_in(source, column)  # as the file spells it; the output keeps the name
    if column in OUTPUT_COLUMNS:  # the texts would come back as a column of predictions
        raise ReviewstarsError(f"--column {column!r}: the predictions have a column of that name; rename the reviews' "
                               f"column (the output's own are {', '.join(OUTPUT_COLUMNS)})")
    check_output_file(output, inputs=(source, *([model] if isinstance(model, (str, Path)) else [])))
    if count > 1:
        check_output_file(record_path(output), "--output's shard record", inputs=(source,))
    predictor = opened(model, device)
    total = count_rows(source)
    rows = seen = cut = 0
    started = time.perf_counter()
    sharded = count > 1
    empty = prediction_frame([], np.zeros((0, len(STARS))), column, [] if sharded else None)
    with terminate_cleanly():
        with FrameWriter(output, empty) as writer, progress_bar("predicting", total=None if total is None else -(-(total - index) // count)) as advance:
            for chunk in iter_text_chunks(source, column, chunk_rows):
                mine = [(seen + k, text) for k, text in enumerate(chunk) if (seen + k) % count == index]
                seen += len(chunk)
                if not mine:
                    continue
                texts = [text for _, text in mine]
                cut += sum(len(text) > MAX_TEXT_CHARS for text in texts)
                proba = predictor.predict_proba(texts, batch_size=batch_size)
                writer.write(prediction_frame(texts, proba, column, [row for row, _ in mine] if sharded else None))
                rows += len(texts)
                advance(len(texts))
        if sharded:
            write_record(output, Path(source), model, index, count, rows)
    seconds = time.perf_counter() - started
    return {"rows": rows, "output": str(output), "seconds": round(seconds, 3), "shard": f"{index}/{count}",
            "predictions_per_second": round(rows / max(seconds, 1e-9), 1),
            # a model reads at most MAX_TEXT_CHARS of a text: its first and last halves of them (`text.readable`)
            "texts_cut": cut, "chars_read_at_most": MAX_TEXT_CHARS}


#: The columns `predict --file` writes beside the reviews (a shard's output starts with `row` too).
OUTPUT_COLUMNS = ("row", "stars", *(f"p_{star}" for star in STARS), "expected_stars", "empty")


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

    types = {"row": "int64", "stars": "int64", "expected_stars": "float64", **{f"p_{star}": "float64" for star in STARS}}
    frame = frame.astype({name: kind for name, kind in types.items() if name in frame.columns})
    if "empty" in frame.columns and not pd.api.types.is_bool_dtype(frame["empty"]):
        frame["empty"] = frame["empty"].astype(str).map({"True": True, "False": False}).fillna(False).astype(bool)
    return frame


def merge_predictions(parts: Sequence[str | Path], output: str | Path) -> dict[str, Any]:
    """Put the outputs of `predict --shard i/N` (i = 0..N-1) back into input order,
    once their records show they are all N shards of one input rated by one model."""
    import pandas as pd

    if not parts:
        raise ReviewstarsError("nothing to merge: give the shard outputs")
    shards = [read_shard(Path(part)) for part in parts]
    check_complete_set(shards)
    output = check_output_file(output, inputs=(*parts, *(record_path(Path(part)) for part in parts)))
    if output.is_file() and same_content(fingerprint(output), shards[0].record["input"]):
        raise ReviewstarsError(f"--output {output}: is the file the shards rated (an input is never written over): give another path")
    frames = [with_output_types(read_frame(shard.path)) if shard.path.suffix.lower() == ".csv" else read_frame(shard.path)
              for shard in shards]  # CSV alone loses the columns' types
    merged = pd.concat([frame for frame in frames if len(frame)] or frames[:1], ignore_index=True).sort_values("row", kind="stable")
    if merged["row"].duplicated().any() or (len(merged) and merged["row"].iloc[-1] != len(merged) - 1):
        raise ReviewstarsError("the shard outputs overlap or miss rows: give every shard 0/N..N-1/N once")
    with terminate_cleanly(), FrameWriter(output) as writer:
        writer.write(merged.drop(columns="row"))
    return {"rows": len(merged), "output": str(output), "parts": len(parts)}
