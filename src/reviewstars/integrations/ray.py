"""Star ratings on Ray Data: many workers, one machine or a cluster.

Two ways in:

- `StarRater`, a callable class for your own pipeline: each Ray worker opens the model once,
  then rates batches of a text column, adding the columns `predict --file` writes::

      ds = ray.data.read_parquet("s3://bucket/reviews/")
      ds = ds.map_batches(StarRater, fn_constructor_kwargs={"model": "runs/minilm"},
                          **pool(worker_resources()), batch_format="pandas")

- `predict_with_ray` (`reviewstars predict --file ... --engine ray`): a whole file (or a
  folder or glob of files) is cut into runs of rows (`data/pieces.py`), read by Ray tasks,
  rated by a pool of `StarRater` actors sized to the cluster, and kept as Parquet parts
  named by their rows, so a stopped run goes on where it stopped (`jobs/partial.py`).
  Only small summaries come back to the driver: its memory does not grow with the data.
"""

from __future__ import annotations

import glob
import logging
import os
import time
import warnings
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray  # the `ray` extra: pip install 'reviewstars[ray]'

from .. import STARS
from ..artifacts import check_output_file, replace_dir
from ..data import FILE_FORMATS, text_column_in
from ..data.formats import Span
from ..data.pieces import index_rows, iter_span_texts
from ..errors import DataError, Interrupted, ReviewstarsError, Terminated
from ..jobs.guard import terminate_cleanly
from ..jobs.partial import PartialOutput, input_identity, write_part
from ..jobs.predict import OUTPUT_COLUMNS, beside_predictions, holds_predictions, prediction_frame
from ..jobs.shards import model_identity
from ..progress import progress_bar, warn

#: Rows a read task hands to the raters at a time (a few MB of text).
ROWS_PER_PIECE = 20_000


class StarRater:
    """Ray Data's callable class: the model loads once per worker, then rates each batch
    (pandas, or a dict of numpy arrays) of the `column` of texts."""

    def __init__(self, model: str | Path, column: str = "text", device: str | None = None, batch_size: int | None = None,
                 threads: int | None = None):
        import sys

        from ..models import load_predictor

        self.predictor = load_predictor(model, device=device)
        if threads and "torch" in sys.modules:  # one of several workers on a machine: torch's threads would fight
            sys.modules["torch"].set_num_threads(threads)
        self.column, self.batch_size = column, batch_size

    def __call__(self, batch):
        """The batch's columns (one a prediction has, such as a labelled set's `stars`, as
        `input_stars`, as `predict --keep-columns` names it), then the predictions."""
        import pandas as pd

        frame = batch if isinstance(batch, pd.DataFrame) else pd.DataFrame(batch)
        texts = [_text_of(value, self.column, row) for row, value in enumerate(frame[self.column].tolist())]
        proba = self.predictor.predict_proba(texts, batch_size=self.batch_size)
        rated = prediction_frame(texts, proba, self.column).drop(columns=self.column)
        kept = frame.reset_index(drop=True).rename(columns=beside_predictions(list(frame.columns), "a batch", list(rated.columns)))
        return pd.concat([kept, rated], axis=1)


def _text_of(value: Any, column: str, row: int) -> str:
    """A review, or none (a null: rated as a review of no words, and flagged empty); anything
    else is refused, as `predict --file` refuses it (a number or bytes were rated as empty)."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and value != value) or type(value).__name__ == "NAType":
        return ""
    raise DataError(f"column {column!r}", f"row {row} of a batch is {type(value).__name__} ({str(value)[:40]!r}), not a text: "
                            "give the reviews as strings")


#: The column of the read pieces that says which input file a row is of (the raters' `folders`).
FILE_NUMBER = "__reviewstars_file"


class _RateAndKeep(StarRater):
    """The CLI's worker: rates a run of rows of one file and keeps it as a part in that file's
    folder; returns only its size (and this worker's process, to count the workers that rated)."""

    def __init__(self, folders: list[str], **options: Any):
        super().__init__(**options)
        self.folders = folders

    def __call__(self, batch):
        import pandas as pd

        sizes = []
        for number, piece in batch.groupby(FILE_NUMBER, sort=False):  # one piece, so one file, a batch as Ray cuts them
            rated = super().__call__(piece.drop(columns=FILE_NUMBER))
            ordered = rated[["row", self.column, *OUTPUT_COLUMNS[1:]]].astype({self.column: object})  # as predict_file writes it
            write_part(self.folders[int(number)], ordered, int(ordered["row"].iloc[0]))
            sizes.append((int(number), len(ordered)))
        return pd.DataFrame({FILE_NUMBER: [n for n, _ in sizes], "rows": [c for _, c in sizes], "worker": os.getpid()})


def _read_piece(batch, column: str) -> Any:
    """A read task: one run of rows of one file, with their row numbers in the file."""
    import pandas as pd

    frames = []
    for number, path, first_row, rows, start, first_line, skip in zip(
            batch["file"], batch["path"], batch["first_row"], batch["rows"], batch["start"], batch["first_line"], batch["skip"]):
        span = Span(int(first_row), int(rows), int(start), int(first_line), int(skip))
        texts = [text for chunk in iter_span_texts(path, column, span) for text in chunk]
        frames.append(pd.DataFrame({"row": np.arange(span.first_row, span.first_row + len(texts), dtype=np.int64),
                                    column: texts, FILE_NUMBER: int(number)}))
    return pd.concat(frames, ignore_index=True)


def cluster_resources() -> dict[str, float]:
    return ray.cluster_resources()


def worker_resources(workers: int | None = None, resources: dict[str, float] | None = None) -> dict[str, Any]:
    """The actor pool for a cluster: one worker per GPU where there are GPUs; else one per
    CPU, each reserving half a CPU, so the read tasks always find CPUs free (two 1-CPU
    actors on 2 CPUs leave none for reading, and Ray Data waits forever)."""
    resources = resources if resources is not None else cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if gpus:
        return {"workers": workers or gpus, "num_gpus": 1, "num_cpus": 1}
    return {"workers": workers or cpus, "num_cpus": 0.5}


def check_pool_fits(resources: dict[str, Any], cluster: dict[str, float], fixed: bool) -> None:
    """More workers than the machines hold never start, and the run waits for them forever:
    on a Ray of fixed size (the local one) that is one line now; a cluster that may grow is told.
    Each worker's CPU share is taken, and half a CPU must stay free for the read tasks."""
    workers, cpus, gpus = resources["workers"], cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    needs_cpu = workers * resources.get("num_cpus", 0) + 0.5
    short = []
    if needs_cpu > cpus:
        short.append(f"{needs_cpu:g} CPUs (each worker takes {resources.get('num_cpus', 0):g}, reading half of one) "
                     f"of the {cpus:g} there")
    if workers * resources.get("num_gpus", 0) > gpus:
        short.append(f"{workers * resources['num_gpus']:g} GPUs of the {gpus:g} there")
    if not short:
        return
    most = max(0, int((cpus - 0.5) // resources["num_cpus"])) if resources.get("num_cpus") else workers
    if resources.get("num_gpus"):
        most = min(most, int(gpus))
    what = f"--workers {workers}: needs {' and '.join(short)}"
    if fixed:
        raise ReviewstarsError(f"{what}: give --workers {most} or fewer" if most else f"{what}: this Ray is too small to rate on")
    warn(f"{what}: the run waits until the cluster has them")


def pool(resources: dict[str, Any]) -> dict[str, Any]:
    """`worker_resources` as `map_batches` arguments: a fixed pool of actors."""
    from ray.data import ActorPoolStrategy

    # No actor restarts: Ray keeps the pool's constructor arguments in its object store and
    # warns that a restart could fail; a run that loses a worker stops, and runs again from its parts.
    return {"compute": ActorPoolStrategy(size=resources["workers"]), "max_restarts": 0,
            **{key: value for key, value in resources.items() if key != "workers"}}


def start_ray(address: str | None = None, verbose: bool = False) -> None:
    """Join the cluster at `address`, or start a local Ray on this machine; quiet unless `verbose`."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    level = logging.INFO if verbose else logging.ERROR
    _check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=verbose, logging_level=level,
                 configure_logging=not verbose, ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ReviewstarsError(f"--engine ray: could not start {where} ({str(error).splitlines()[0][:160]})") from None
    from ray.data import DataContext

    for name in ("ray", "ray.data"):  # a worker's error comes back as our one line; Ray's report of it is noise
        logging.getLogger(name).setLevel(level if verbose else logging.CRITICAL)
    context = DataContext.get_current()
    context.enable_progress_bars = verbose  # ours shows the rows; Ray's bars are per operator
    context.print_on_execution_start = verbose


def _check_reachable(address: str | None, seconds: float = 5.0) -> None:
    """A cluster's HOST:PORT that answers no connection is one line now: Ray retried it for
    minutes, printing its own warnings every 30 s. (`ray://` addresses fail fast by themselves;
    Ray finds "auto" and starts "local".)"""
    import socket

    if not address or "://" in address or address in ("auto", "local"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ReviewstarsError(f"--ray-address {address}: expected HOST:PORT (the head node's GCS port, 6379 by default), "
                               "ray://HOST:PORT, auto or local")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as error:
        raise ReviewstarsError(f"--engine ray: could not start the Ray cluster at {address} (nothing answers there: "
                               f"{getattr(error, 'strerror', None) or error}); is its head node running?") from None


def input_files(source: str | Path) -> list[Path]:
    """A file, a folder of files or a glob, in name order."""
    text = str(source)
    if any(char in text for char in "*?["):
        found = [Path(name) for name in sorted(glob.glob(os.path.expanduser(text), recursive=True))]
    elif Path(text).expanduser().is_dir():
        found = sorted(Path(text).expanduser().iterdir())
    elif not Path(text).expanduser().exists():
        raise DataError(source, "no such file or folder")
    else:
        return [Path(text).expanduser()]
    files = [path for path in found if path.is_file() and path.suffix.lower() in FILE_FORMATS]
    if not files:
        raise DataError(source, f"no {', '.join(FILE_FORMATS)} files there")
    return files


def predict_with_ray(
    model: str | Path,
    source: str | Path,
    output: str | Path,
    column: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    rows_per_piece: int = ROWS_PER_PIECE,
    verbose: bool = False,
) -> dict[str, Any]:
    """Rate every review of `source` on Ray into `output`: a folder of Parquet parts (one per
    run of rows, named by its rows, with each review's `row` in its file), each input file's
    in a folder of their own that `predictions.json` names beside the file's path; or, for an
    output ending in .parquet/.csv/.jsonl of one input file, that file in input order, as
    `predict --file` writes it."""
    from ..models import load_predictor

    output = Path(output).expanduser()
    files = input_files(source)
    columns = {path: text_column_in(path, column) for path in files}  # every header checked before any work
    if len(set(columns.values())) > 1:
        raise DataError(source, f"the files name their reviews' column differently ({', '.join(sorted(set(columns.values())))}): "
                                "give --column")
    column = next(iter(columns.values()))
    if column in OUTPUT_COLUMNS:
        raise ReviewstarsError(f"--column {column!r}: the predictions have a column of that name; rename the reviews' column")
    as_file = output.suffix.lower() in FILE_FORMATS
    if as_file and len(files) > 1:
        raise ReviewstarsError(f"--output {output}: {len(files)} input files rate into a folder of parts: give a folder")
    inputs = (*files, model)
    if as_file:
        check_output_file(output, inputs=inputs, ours=holds_predictions, what="predictions")  # never a file of the user's
    else:
        _check_output_folder(output, inputs)
    load_predictor(model, device=device)  # a bad folder or device: one line here, not a worker's traceback
    jobs = [_FileJob.of(path, output if as_file else output / f"part-{number:05d}-{path.stem}", column, model)
            for number, path in enumerate(files)]  # an empty file: one line before any work
    created = not output.exists()
    started = time.perf_counter()
    ours = not ray.is_initialized()  # a Ray this call starts (or joins), and may stop when the run is stopped
    start_ray(address, verbose)
    resources = worker_resources(workers)
    check_pool_fits(resources, cluster_resources(), fixed=address in (None, "local"))
    try:
        rated, worker_processes = _rate_files(jobs, model, column, resources, batch_size, device, rows_per_piece, ours)
    except BaseException:
        if created and output.is_dir() and not any(output.iterdir()):
            output.rmdir()
        raise
    summaries = [{"rows": job.rows_of.rows, "rated": count} for job, count in zip(jobs, rated)]
    if not as_file:
        _write_manifest(output, files, summaries, model)
        _remove_stale_parts(output, {job.target.name for job in jobs})
    rows = sum(summary["rows"] for summary in summaries)
    seconds = time.perf_counter() - started
    return {"rows": rows, "output": str(output), "seconds": round(seconds, 3), "engine": "ray",
            "workers": resources["workers"], "worker_processes": worker_processes, "files": len(files),
            "rated": sum(rated), "predictions_per_second": round(sum(rated) / max(seconds, 1e-9), 1)}


@dataclass
class _FileJob:
    """One input file: its rows, where its predictions go, and the parts of a stopped run."""

    path: Path
    target: Path
    rows_of: Any
    partial: PartialOutput

    @classmethod
    def of(cls, path: Path, target: Path, column: str, model) -> "_FileJob":
        rows_of = index_rows(path, column)
        if not rows_of.rows:
            raise DataError(path, "file has no rows")
        partial = PartialOutput(target, {"input": input_identity(path), "model": model_identity(model), "column": column,
                                         "rows": [0, rows_of.rows]})
        partial.check()
        return cls(path, target, rows_of, partial)

    def kept(self) -> int:
        return self.partial.kept(0, self.rows_of.rows)


def _rate_files(jobs: list[_FileJob], model, column: str, resources: dict[str, Any], batch_size, device,
                rows_per_piece: int, ours: bool) -> tuple[list[int], int]:
    """Every file's missing rows through one pool of raters, so each worker opens the model
    once for the whole run, not once per file; each file then finished. The rows rated per
    file, and how many worker processes rated them. Stopped, a Ray that is `ours` is shut
    down before the rows kept are counted: its workers would go on writing parts after the count."""
    rated, workers_seen = [0] * len(jobs), set()
    total = sum(job.rows_of.rows for job in jobs)
    with terminate_cleanly():
        try:
            done = sum(job.partial.resume(0) for job in jobs)
            per_piece = max(1, min(rows_per_piece, -(-total // (4 * resources["workers"]))))  # work for every worker
            pieces = [{"file": number, "path": str(job.path), **asdict(span)} for number, job in enumerate(jobs)
                      for start, stop in job.partial.missing(0, job.rows_of.rows)
                      for span in job.rows_of.spans(start, stop, per_piece)]
            what = jobs[0].path.name if len(jobs) == 1 else f"{len(jobs)} files"
            with progress_bar(f"rating {what} on Ray ({resources['workers']} workers)", total=total) as advance:
                advance(done)
                if pieces:
                    read = ray.data.from_items(pieces, override_num_blocks=len(pieces))
                    texts = read.map_batches(_read_piece, fn_kwargs={"column": column}, batch_size=1, batch_format="numpy",
                                             num_cpus=0.5, udf_modifying_row_count=True)
                    kept = _quietly(texts.map_batches)(_RateAndKeep, batch_size=None, batch_format="pandas", udf_modifying_row_count=True,
                                             fn_constructor_kwargs={"folders": [str(job.partial.folder) for job in jobs],
                                                                    "model": str(model), "column": column, "device": device,
                                                                    "batch_size": batch_size,
                                                                    "threads": 1 if not resources.get("num_gpus") else None},
                                             **pool(resources))
                    for summary in kept.iter_batches(batch_size=None, batch_format="numpy"):
                        for number, count, worker in zip(summary[FILE_NUMBER], summary["rows"], summary["worker"]):
                            rated[int(number)] += int(count)
                            workers_seen.add(int(worker))
                            advance(int(count))
            for job in jobs:
                if job.partial.missing(0, job.rows_of.rows):
                    raise ReviewstarsError(f"{job.path}: some rows were not rated (a worker lost?): run the same command again")
            for job in jobs:
                _finish(job.partial, job.target)
        except (Terminated, KeyboardInterrupt) as stopped:  # what is rated stays for the next run, and the line says so
            sigterm = isinstance(stopped, Terminated)
            if ours:  # (a probe was told 500 rows were kept, and found 5,250 on disk)
                with suppress(Exception):
                    ray.shutdown()
            kept_rows = [(job, job.kept()) for job in jobs if job.partial.folder.exists()]  # (the workers' parts, all of them)
            for job, count in kept_rows:
                if not count:
                    job.partial.remove()
            if not any(count for _, count in kept_rows):
                raise
            folders = [job.partial.folder for job, count in kept_rows if count]
            where = str(folders[0]) if len(folders) == 1 else f"{len(folders)} .partial folders in {folders[0].parent}"
            raise (Terminated if sigterm else Interrupted)(
                f"{'terminated (SIGTERM)' if sigterm else 'stopped (Ctrl-C)'}: {'' if ours else 'at least '}"
                f"{sum(count for _, count in kept_rows):,} of {total:,} rows are rated and kept in {where}: "
                "run the same command again to go on from there") from None
        except BaseException as error:
            for job in jobs:
                job.partial.remove()
            raise _ours(error) from None
    return rated, len(workers_seen)


def _quietly(function):
    """Ray's deprecation warnings are not the user's business."""
    def call(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)
    return call


def _finish(partial: PartialOutput, target: Path) -> None:
    """A file: the parts streamed into it in row order. A folder: the parts themselves."""
    if target.suffix.lower() in FILE_FORMATS:
        from ..data.frames import FrameWriter

        with FrameWriter(target) as writer:
            for frame in partial.frames():
                writer.write(frame.drop(columns="row"))
        partial.remove()
    else:
        (partial.folder / "progress.json").unlink()
        if target.exists():  # an earlier run's parts: all replaced
            replace_dir(partial.folder, target, replaced=lambda name: True)
        else:
            partial.folder.rename(target)


def _remove_stale_parts(output: Path, current: set[str]) -> None:
    """An earlier run's parts of files this run did not rate: a reader of `part-*/*.parquet`
    would take them for this run's rows (a probe read 7 rows of 4)."""
    import shutil

    for entry in output.iterdir():
        if entry.is_dir() and entry.name.startswith("part-") and entry.name not in current and not entry.is_symlink():
            shutil.rmtree(entry)


def _write_manifest(output: Path, files: list[Path], summaries: list[dict[str, int]], model) -> None:
    from ..artifacts import write_json

    write_json(output / "predictions.json", {
        "model": model_identity(model), "rows": sum(s["rows"] for s in summaries),
        "files": [{"name": path.name, "path": str(path), "rows": summary["rows"], "parts": f"part-{number:05d}-{path.stem}"}
                  for number, (path, summary) in enumerate(zip(files, summaries))],
        "order": "each part holds consecutive rows of its file, named rows-FIRST-STOP.parquet; `row` is the row in the file",
        "stars": list(STARS)})


def _check_output_folder(output: Path, inputs) -> None:
    for given in inputs:
        given = Path(given).expanduser()
        if given.exists() and (given.resolve() == output.resolve() or output.resolve() in given.resolve().parents):
            raise ReviewstarsError(f"--output {output}: holds an input ({given}): give another folder")
    if output.is_symlink() and not output.exists():  # its parts would go nowhere (a FileExistsError, after Ray started)
        raise ReviewstarsError(f"--output {output}: a link that leads nowhere: give a folder")
    if output.exists() and not output.is_dir():
        raise ReviewstarsError(f"--output {output}: is a file; with --engine ray give a folder (or a .parquet/.csv/.jsonl file)")
    if output.is_dir() and not all(_written_by_us(entry) for entry in output.iterdir()):
        raise ReviewstarsError(f"--output {output}: a folder with files reviewstars did not write: give an empty or new folder")


def _written_by_us(entry: Path) -> bool:
    """The manifest, a file's parts, or the parts of a stopped run."""
    return entry.name == "predictions.json" or (entry.is_dir() and (
        entry.name.startswith("part-") or (entry.name.startswith(".part-") and entry.name.endswith(".partial"))))


def _ours(error: BaseException) -> BaseException:
    """A worker's failure as our own one line. Ray wraps it (RayTaskError of a
    UserCodeException) and keeps our error only as text in the worker's traceback."""
    if isinstance(error, ReviewstarsError):
        return error
    import re

    from .. import errors

    found = re.findall(r"^reviewstars\.errors\.(\w+): (.+)$", str(error), flags=re.MULTILINE)
    if not found:
        return error
    name, message = found[-1]
    ours = ReviewstarsError(message)
    ours.exit_code = getattr(getattr(errors, name, ReviewstarsError), "exit_code", ReviewstarsError.exit_code)
    return ours
