"""A long `predict --file` keeps what it has rated: each chunk becomes a Parquet part in a
folder beside the output as soon as it is rated, so a run stopped at 90% (killed, SIGTERM,
Ctrl-C, a lost machine) goes on from there when the same command runs again.

The folder, `.OUTPUT.partial`, says which input (name, size, a hash of its bytes), model,
column and rows it holds; a run of anything else starts it afresh. The output file
appears only once every row is rated, and the folder goes with it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Iterator

from ..artifacts import atomic_file, read_json, write_json
from ..data.formats import local_path
from ..data.frames import arrow_table, to_pandas
from ..errors import ReviewstarsError
from .shards import fingerprint

PROGRESS = "progress.json"
PART = re.compile(r"^rows-(\d{12})-(\d{12})\.parquet$")


def input_identity(source: Path) -> dict[str, Any]:
    """Enough to know the input has not changed since the stopped run: a hash of its bytes (its
    size and modification time were not: a file rewritten in place with its old time kept, as
    `rsync -t` or an editor may, resumed with the old file's ratings). The run reads the whole
    file to count its rows anyway, so hashing it costs one more read from the page cache."""
    return {"name": source.resolve().name, **fingerprint(source)}


class PartialOutput:
    """The rated rows [first, at) of a run, kept as parts until the output is complete."""

    def __init__(self, output: Path, identity: dict[str, Any]):
        self.folder = output.with_name(f".{output.name}.partial")
        self.identity = identity

    def resume(self, first: int) -> int:
        """Start, or take up what a stopped run of the same job left: the rows rated so far."""
        progress = self.folder / PROGRESS
        self.check()
        try:
            same = self.folder.exists() and read_json(progress) == self.identity
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            write_json(progress, self.identity)
            return first
        return first + sum(stop - start for start, stop in self._covered(first))

    def check(self) -> None:
        """A folder of the user's under our name is one line (before any work, where a run has several)."""
        if self.folder.exists() and not self._ours():
            raise ReviewstarsError(f"{self.folder}: in the way of the partial output (not one of ours): move it away")

    def _ours(self) -> bool:
        """Our folder: a progress record, parts and their temporary files (a worker that was
        still writing when a failed run removed the folder may have left a part alone)."""
        return self.folder.is_dir() and all(entry.name == PROGRESS or PART.match(entry.name) or entry.name.startswith(".rows-")
                                            for entry in self.folder.iterdir())

    def missing(self, first: int, stop: int) -> list[tuple[int, int]]:
        """The runs of rows in [first, stop) that no kept part holds yet, in order."""
        gaps, at = [], first
        for start, end in self._covered(first):
            if start > at:
                gaps.append((at, start))
            at = max(at, end)
        return gaps + ([(at, stop)] if at < stop else [])

    def kept(self, first: int, stop: int) -> int:
        """How many rows of [first, stop) the parts on disk hold: what a stopped run keeps (a signal
        may land between a part written and the run counting it)."""
        missing = self.missing(first, stop) if self.folder.is_dir() else [(first, stop)]
        return (stop - first) - sum(end - start for start, end in missing)

    def _covered(self, first: int) -> list[tuple[int, int]]:
        return [(start, stop) for start, stop, _ in self.parts() if start >= first]

    def write(self, frame, start: int) -> None:
        write_part(self.folder, frame, start)

    def frames(self, batch_rows: int = 8192) -> Iterator:
        """The rows kept, in order, a batch at a time: memory holds one batch, not the output."""
        import pyarrow.parquet as pq

        for _, _, part in self.parts():
            for batch in pq.ParquetFile(local_path(part)).iter_batches(batch_size=batch_rows):
                yield to_pandas(batch)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def parts(self) -> list[tuple[int, int, Path]]:
        """The parts kept, in row order; one that overlaps an earlier one (a run of another
        engine cut the rows otherwise) is dropped."""
        found = (PART.match(entry.name) for entry in self.folder.iterdir())
        kept, end = [], -1
        for start, stop, part in sorted((int(match[1]), int(match[2]), self.folder / match[0]) for match in found if match):
            if start < end:
                part.unlink()
                continue
            kept.append((start, stop, part))
            end = stop
        return kept


def write_part(folder: str | Path, frame, start: int) -> Path:
    """One part, named by its rows, written whole or not at all (a worker of another process may write it)."""
    import pyarrow.parquet as pq

    path = Path(folder) / f"rows-{start:012d}-{start + len(frame):012d}.parquet"
    if not path.parent.is_dir():  # the run was given up and its folder removed: do not bring it back
        raise ReviewstarsError(f"{path.parent}: gone")
    with atomic_file(path) as part:
        pq.write_table(arrow_table(frame), part)
    return path
