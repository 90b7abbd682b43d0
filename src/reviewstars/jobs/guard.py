"""What protects a job's output: one training per model folder at a time, a folder that
is replaced only by a complete new model, and no half-written file left by SIGTERM.

A training writes its checkpoints into `--output` as it goes (so `--resume` finds them),
but builds the new model folder beside the old one: the old model stays whole and
loadable until the new one is complete, and a failed run leaves it as it was.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import signal
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterator

from ..artifacts import check_output_folder, is_main_process, mark_ours, replace_dir, resolved
from ..errors import ReviewstarsError, Terminated
from ..models.folder import CHECKPOINTS, LOCK_FILE, LOGS, MODEL, is_model_folder_of_ours, is_our_file


def one_training_per_output(train: Callable) -> Callable:
    """Wrap `train(model, data, output, ...)`: check `output` before any work, lock it,
    and swap in the folder built at `staged(output)` only when `train` returns."""
    signature = inspect.signature(train)

    @functools.wraps(train)
    def guarded(*args, **kwargs):
        if not is_main_process():  # under torchrun the first process guards the folder for all
            return train(*args, **kwargs)
        arguments = signature.bind(*args, **kwargs).arguments
        output = resolved(arguments["output"])
        check_training_output(output, inputs=training_inputs(arguments.get("model"), arguments.get("data")))
        before = {entry.name for entry in output.iterdir()} if output.is_dir() else None
        with output_lock(output):
            if not before:
                mark_ours(output, MODEL)  # now: a run killed before its first save leaves a folder it may resume in
            try:
                result = train(*args, **kwargs)
            except BaseException:
                shutil.rmtree(stage_of(output), ignore_errors=True)
                undo_additions(output, before)
                raise
            if stage_of(output).is_dir():  # our files of the old model are replaced; checkpoints, logs and the user's stay
                replace_dir(stage_of(output), output, replaced=is_our_file)
            return result

    return guarded


def stage_of(output: Path) -> Path:
    output = Path(output).resolve()
    return output.with_name(f".{output.name}.new")


def staged(output: str | Path) -> Path:
    """Where to build the new model folder; `one_training_per_output` swaps it in whole."""
    stage = stage_of(Path(output))
    shutil.rmtree(stage, ignore_errors=True)  # left by a run killed while writing it
    return stage


def check_training_output(output: Path, inputs: tuple[str | Path, ...] = ()) -> None:
    """One line, before any work, when `--output` cannot become a model folder: a file, an
    input of the run, or a folder holding files that reviewstars did not write."""
    if output.is_dir() and _training_by_products(output):
        return
    check_output_folder(output, is_model_folder_of_ours, "model", inputs=inputs)


def _training_by_products(folder: Path) -> bool:
    """Only what a training writes before its model (checkpoints, logs, its lock): a run that
    was stopped before the folder had its mark, which `--resume` continues."""
    names = {entry.name for entry in folder.iterdir()}
    return bool(names) and names <= {CHECKPOINTS, LOGS, LOCK_FILE}


def training_inputs(model: object, data: object) -> tuple[str | Path, ...]:
    """The paths a training reads (a data file or folder, a model folder to fine-tune): never its output."""
    from ..kinds import KINDS
    from ..models.pretrained import ALIASES

    found = [getattr(data, "data", data), None if model in KINDS or model in ALIASES else model]
    return tuple(str(item) for item in found if isinstance(item, (str, Path)) and str(item) and Path(str(item)).expanduser().exists())


@contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold `output/.lock` (`filelock`: flock on POSIX, msvcrt on Windows, both let go by the
    kernel when the process dies, so a lock is never stale); a second training into the same
    folder fails at once, naming the first. The file holds the holder's pid, and goes at release."""
    from filelock import FileLock, Timeout

    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReviewstarsError(f"--output {output}: cannot create it ({error.strerror})") from None
    path = output / LOCK_FILE
    lock = FileLock(path, timeout=0, on_acquired=_write_pid)
    try:
        lock.acquire()
    except Timeout:
        raise ReviewstarsError(f"--output {output}: another training (pid {_holder(path)}) is writing this folder; "
                               "wait for it to end, or give another --output") from None
    except OSError as error:
        raise ReviewstarsError(f"--output {output}: cannot write there ({error.strerror})") from None
    try:
        yield
    finally:
        # Removed while still held (filelock's acquire re-checks that the file it locked is still
        # linked, so a waiter never holds a removed one); on Windows filelock removes it at release.
        with suppress(OSError):
            path.unlink()
        lock.release()


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{os.getpid()}\n".encode())


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip() or "unknown"
    except OSError:  # Windows: the holder's locked byte cannot be read
        return "unknown"


def undo_additions(output: Path, before: set[str] | None) -> None:
    """After a failed run: what it added to the folder goes, unless it holds a checkpoint
    to `--resume` from (a Ctrl-C, a crash after hours of training)."""
    if (output / CHECKPOINTS).is_dir():
        from ..training.checkpoints import last_complete_checkpoint

        if last_complete_checkpoint(output / CHECKPOINTS):
            return
    if before is None:
        shutil.rmtree(output, ignore_errors=True)
        return
    for entry in output.iterdir():
        if entry.name in before or entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """SIGTERM raises `Terminated` for the duration, so that open atomic writes remove
    their temporary files, and the process ends with one line and code 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum, _frame):
        raise Terminated("terminated (SIGTERM): the output was not written")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
