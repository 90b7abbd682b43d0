"""What protects a job's output: one training per model folder at a time, a folder that
is replaced only by a complete new model, and no half-written file left by SIGTERM.

A training writes its checkpoints into `--output` as it goes (so `--resume` finds them),
but builds the new model folder beside the old one: the old model stays whole and
loadable until the new one is complete, and a failed run leaves it as it was.

A torch run also writes the settings it started with (`checkpoints/run.json`). `--resume`
continues only that run, with those settings: with nothing to continue, or other
settings, it stops before any work instead of training a model nobody asked for over
the folder. A new run without `--resume` never mixes with an interrupted one's checkpoints.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import signal
import tempfile
import threading
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterator

from ..artifacts import (LOCK_FILE, OWNER_FILE, check_name_fits, is_main_process, mark_ours, owner_mark, read_json, resolved,
                         signals_deferred, write_json)
from ..errors import Interrupted, ReviewstarsError, Terminated
from ..ledger import open_ledger_ahead, spent
from ..models.folder import CHECKPOINTS, CONFIG_FILE, LOGS, MODEL, check_model_output, ours_in, recipe_named, replace_model_folder

CHECKING = "checking the output"  # the time ledger's entry for the guard's own work before the run
RUN_FILE = "run.json"  # in the checkpoints folder: the settings a torch run started with, what --resume must repeat
REPLACED_RUN = ".replaced"  # in the checkpoints folder: the run a new one replaces, until it has its model or a checkpoint
SETTING_ASIDE, SET_ASIDE, PUTTING_BACK = "run being set aside", "run set aside", "run being put back"  # its mark, step by step
NOT_THE_RUN = ("resume", "keep_checkpoints", "report_to", "run_name", "logging_steps")  # where it logs is not what it trains


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
        with open_ledger_ahead():  # the checks, the lock and the data's hashes are the run's seconds too
            with spent(CHECKING):
                check_training_output(output, inputs=training_inputs(arguments.get("model"), arguments.get("data")),
                                      recipe=recipe_named(str(arguments["model"])) if isinstance(arguments.get("model"), (str, Path)) else None)
                record = run_record(arguments)
            resume = bool(getattr(arguments.get("transformer"), "resume", False))
            keep_checkpoints = bool(getattr(arguments.get("transformer"), "keep_checkpoints", False))
            made = not output.is_dir()
            try:
                return _train_locked(train, args, kwargs, output, record, resume, keep_checkpoints, made)
            finally:
                if made:  # a folder this run made, left empty by a run that failed: it goes
                    with suppress(OSError):
                        output.rmdir()

    return guarded


def _train_locked(train, args, kwargs, output: Path, record: dict | None, resume: bool, keep_checkpoints: bool, made: bool):
    """`train` under the folder's lock, and the new folder swapped in when it returns. The swap
    stays outside the undo below: the folder left after it is the old one and the user's."""
    with ExitStack() as lock:
        with spent(CHECKING):
            lock.enter_context(output_lock(output))
            recover_stage(output)  # what a run killed mid-swap left beside the folder goes back into it
            settle_replaced_run(output)  # a run killed before its first checkpoint gives back the one it replaced
            # what the folder holds now (the lock aside; what was just recovered too): what a failed run must leave there
            before = {entry.name for entry in output.iterdir()} - {LOCK_FILE}
            # under the lock: a run still training there is "another training", not an interrupted one
            check_resume(output, record, resume)
            if not before:
                mark_ours(output, MODEL)  # now: a run killed before its first save leaves a folder it may resume in
            if record is not None and not resume:
                start_run(output, record)
        try:
            with terminate_cleanly():  # (the Trainer's own handler saves a checkpoint while it trains)
                result = train(*args, **kwargs)
        except BaseException as stopped:
            shutil.rmtree(stage_of(output), ignore_errors=True)
            settle_replaced_run(output)
            undo_additions(output, before)
            state, last = run_state(output) if record is not None else ("none", None)
            if isinstance(stopped, (Terminated, KeyboardInterrupt)):
                sigterm = isinstance(stopped, Terminated)
                how, error = ("terminated (SIGTERM)", Terminated) if sigterm else ("stopped (Ctrl-C)", Interrupted)
                if state == "interrupted" and last is not None:
                    raise error(f"{how} before the model was written; its checkpoint is kept "
                                f"({Path(last).name}): run the same command with --resume to finish") from None
                if not sigterm:  # (SIGTERM's own line says so already)
                    left = "nothing was written" if made else f"{output} is as it was"
                    raise error(f"{how} before the model was written: {left}") from None
            raise
        if stage_of(output).is_dir():  # our files of the old model are replaced; checkpoints, logs and the user's stay
            replace_model_folder(stage_of(output), output)
        try:
            if record is not None:
                finish_run(output, keep_checkpoints)
            elif run_state(output)[0] != "interrupted":  # a model trained in one call took the folder: a finished run's checkpoints go
                shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)
        except (Terminated, KeyboardInterrupt) as stopped:  # the new model is in place: "stopped before" would mislead
            how, error = ("terminated (SIGTERM)", Terminated) if isinstance(stopped, Terminated) else ("stopped (Ctrl-C)", Interrupted)
            raise error(f"{how} after the new model was written: {output} holds it, complete") from None
        return result


def run_record(arguments: dict) -> dict | None:
    """What shapes a torch kind's run (the model, its data, its own and the Trainer's settings,
    each filled in as the kind fills it), or None for a kind trained in one call."""
    from dataclasses import asdict

    from ..kinds import KINDS, check_model_name
    from ..models.pretrained import resolve
    from .context import as_data_settings

    kind = check_model_name(arguments["model"])
    if not kind.uses_torch:
        return None
    data = asdict(as_data_settings(arguments["data"]))
    data["data"] = _as_found(data["data"])
    own = kind.own_settings((arguments.get("kind_settings") or {}).get(kind.name))
    own = asdict(own) if own is not None else {}
    if own.get("tokenizer"):
        own["tokenizer"] = _as_found(own["tokenizer"])
    training = asdict(kind.trainer_settings(arguments.get("transformer"), data["seed"]))
    if getattr(arguments.get("transformer"), "max_length", None) is None:  # the kind's default, or a folder's own length
        training["max_length"] = None  # (which one is known once its model is loaded): recorded as not given
    model = arguments["model"] if arguments["model"] in KINDS else _as_found(resolve(arguments["model"]))
    return {"model": model, "given": str(arguments["model"]), "kind": kind.name, "data": data, "own": own,
            "training": {key: value for key, value in training.items() if key not in NOT_THE_RUN},
            "data_files": _data_files(data["data"])}


def _data_files(data: str) -> dict[str, dict] | None:
    """Each local file the data is read from, by name, with its size and hash: a `--resume`
    after the file was edited would go on training on other reviews under the same name.
    None for a Hub dataset (versioned by the Hub)."""
    from ..data.files import split_files
    from .shards import fingerprint

    path = Path(data)
    with spent("hashing the data files"):
        if path.is_file():
            return {path.name: fingerprint(path)}
        if path.is_dir():
            try:
                return {file.name: fingerprint(file) for file in split_files(path).values()}
            except ReviewstarsError:  # not a data folder: said when the data is read
                return None
    return None


def _as_found(name: str) -> str:
    """A path as one absolute name however it was typed (./s1, s1, /tmp/s1); a Hub id as it is."""
    path = Path(str(name)).expanduser()
    return str(path.resolve()) if path.exists() else str(name)


def run_state(output: Path) -> tuple[str, str | None]:
    """("none" | "interrupted" | "finished", the last complete checkpoint) of the run in `output`."""
    checkpoints = Path(output) / CHECKPOINTS
    if not checkpoints.is_dir():  # (a linear model's folder: no 5 s of importing torch to learn that)
        return "none", None
    from ..training.checkpoints import last_complete_checkpoint

    last = last_complete_checkpoint(checkpoints)
    started = _read_run(checkpoints) if (checkpoints / RUN_FILE).is_file() else None
    if started is not None:
        return ("finished" if started.get("finished") else "interrupted"), last
    if last is None:
        return "none", None
    # A run from before its settings were written: it finished if its model was written after its last checkpoint.
    config = Path(output) / CONFIG_FILE
    finished = config.is_file() and config.stat().st_mtime >= (Path(last) / "trainer_state.json").stat().st_mtime
    return ("finished" if finished else "interrupted"), last


def _read_run(checkpoints: Path) -> dict:
    try:
        started = read_json(checkpoints / RUN_FILE)
    except (OSError, ValueError):
        started = None
    if not isinstance(started, dict):
        raise ReviewstarsError(f"{checkpoints / RUN_FILE} cannot be read; remove {checkpoints} to start afresh")
    return started


def check_resume(output: Path, record: dict | None, resume: bool) -> None:
    """One line, before any work: `--resume` with nothing to continue, or with other settings
    than the run it continues; a new run over an interrupted one's checkpoints."""
    state, last = run_state(output) if (output / CHECKPOINTS).is_dir() else ("none", None)
    if not resume:  # (a kind trained in one call is refused too: it would take the folder, and the checkpoints with it)
        if state == "interrupted" and last is not None:
            raise ReviewstarsError(f"--output {output}: an interrupted run's checkpoint is there ({Path(last).name}); "
                                   f"add --resume to continue it, or remove {output / CHECKPOINTS} to start afresh")
        return
    if record is None:
        raise ReviewstarsError("--resume: this kind trains in one call, with no checkpoints to continue from; drop --resume")
    if state != "interrupted":
        why = "its run finished" if state == "finished" else "no run's checkpoints there"
        raise ReviewstarsError(f"--resume: nothing to resume in {output} ({why}); drop --resume to train a new model")
    if not (output / CHECKPOINTS / RUN_FILE).is_file():
        return  # a run from before its settings were written: its checkpoint is all there is to check
    started = _read_run(output / CHECKPOINTS)
    changed = _differences(started, record)
    if changed:
        raise ReviewstarsError(f"--resume: the run in {output} was started with other settings ({'; '.join(changed[:4])}); "
                               f"give the same ones to continue it, or remove {output / CHECKPOINTS} to start afresh")
    if "data_files" in started and started["data_files"] != record.get("data_files"):  # (a run from before it was recorded: not checked)
        was, now = started["data_files"] or {}, record.get("data_files") or {}
        edited = sorted(name for name in {*was, *now} if was.get(name) != now.get(name))
        raise ReviewstarsError(f"--resume: {', '.join(edited) or 'the data'} changed since the run in {output} started "
                               f"(other contents under the same name): resuming would train on other reviews; "
                               f"remove {output / CHECKPOINTS} to start afresh on the data as it is now")


def _differences(started: dict, now: dict) -> list[str]:
    """'--width 64, not 128' for each setting that differs: another --model alone (its kind and
    its own settings follow from it: "--kind", "--buckets not given" named options of nothing)."""
    if started.get("model") != now.get("model"):  # each as given (`minilm`, not the folder it resolves to)
        return [f"--model {_given(started.get('given', started.get('model')))}, not {_given(now.get('given', now.get('model')))}"]
    changed: list[str] = []
    for section in ("data", "own", "training"):  # not "finished"
        was, is_ = started.get(section), now.get(section)
        if section == "own" and isinstance(was, dict) and isinstance(is_, dict):
            was, is_ = _as_given(now.get("kind"), was), _as_given(now.get("kind"), is_)
        pairs = [(section, was, is_)] if not isinstance(was, dict) or not isinstance(is_, dict) else \
            [(key, was.get(key), is_.get(key)) for key in sorted(set(was) | set(is_))]
        for key, before, after in pairs:
            said = f"--{key.replace('_', '-')} {_given(before)}, " + ("now not given" if after is None else f"not {after}")
            if before != after and said not in changed:  # (the seed is both the data's and the Trainer's: said once)
                changed.append(said)
    return changed


def _as_given(kind_name, own: dict) -> dict:
    from ..kinds import KINDS

    kind = KINDS.get(kind_name)
    return kind.settings.as_given(own) if kind is not None and kind.settings else own


def _given(value) -> str:
    return "not given" if value is None else str(value)


def start_run(output: Path, record: dict) -> None:
    """A new run's checkpoints folder: what the run it replaces left there (its checkpoints,
    plan and learned vocabulary: a later --resume must not mix them with this run's) is set
    aside in `REPLACED_RUN`, and this run's settings are written. The new run's model or its
    first checkpoint replaces that run for good; a run that fails before either gives it back
    (`settle_replaced_run`): the folder's model is still that run's, and so is its record."""
    checkpoints = output / CHECKPOINTS
    if checkpoints.is_symlink() and not checkpoints.exists():  # (mkdir: a FileExistsError traceback)
        raise ReviewstarsError(f"{checkpoints}: a link to {os.readlink(checkpoints)}, which is not there: "
                               "create that folder, or remove the link")
    checkpoints.mkdir(parents=True, exist_ok=True)
    aside = checkpoints / REPLACED_RUN  # inside the folder, which may be a link to another disk: one rename each
    if (aside.exists() or aside.is_symlink()) and _aside_state(aside) is None:
        raise ReviewstarsError(f"{aside}: not one of ours, and in the way of the run this training sets aside: move it away")
    entries = [entry for entry in checkpoints.iterdir() if entry.name != REPLACED_RUN]
    if entries:  # each step in the folder's mark, from its first moment: a kill -9 at any rename leaves a step to go on from
        marked = Path(tempfile.mkdtemp(dir=checkpoints, prefix=f"{REPLACED_RUN}."))
        mark_ours(marked, SETTING_ASIDE)
        os.replace(marked, aside)
        for entry in entries:
            os.replace(entry, aside / entry.name)
        mark_ours(aside, SET_ASIDE)
    write_json(checkpoints / RUN_FILE, record)


def settle_replaced_run(output: Path) -> None:
    """The run a new one set aside (`start_run`), once the new one has stopped or been killed:
    dropped if the new one left a checkpoint to `--resume` from, else put back. Every step
    can be killed and done again: the mark says which step was reached."""
    checkpoints = output / CHECKPOINTS
    aside = checkpoints / REPLACED_RUN
    for marking in checkpoints.glob(f"{REPLACED_RUN}.*") if checkpoints.is_dir() else ():  # killed while marking it: empty
        if marking.is_dir() and not marking.is_symlink() and all(e.name.startswith(OWNER_FILE) for e in marking.iterdir()):
            shutil.rmtree(marking, ignore_errors=True)
    state = _aside_state(aside)
    if state is None:  # none, or a name of the user's (start_run refuses it, in one line)
        return
    from ..training.checkpoints import last_complete_checkpoint

    if state == SET_ASIDE:  # (while SETTING_ASIDE, the old run's own checkpoints may still be in the folder)
        if last_complete_checkpoint(checkpoints) is not None:
            shutil.rmtree(aside, ignore_errors=True)
            return
        for entry in checkpoints.iterdir():  # the new run's files: no checkpoint among them
            if entry.name != REPLACED_RUN:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        mark_ours(aside, PUTTING_BACK)
    for entry in aside.iterdir():
        if entry.name != OWNER_FILE:
            os.replace(entry, checkpoints / entry.name)
    shutil.rmtree(aside, ignore_errors=True)


def _aside_state(aside: Path) -> str | None:
    """Which step of setting a run aside `aside` is at, or None: not there, or not ours."""
    if aside.is_symlink() or not aside.is_dir():
        return None
    state = owner_mark(aside)
    return state if state in (SETTING_ASIDE, SET_ASIDE, PUTTING_BACK) else None


def finish_run(output: Path, keep_checkpoints: bool = False) -> None:
    """The run's model is complete: nothing is left to `--resume`. Its checkpoints (and the
    vocabulary kept for a resume) go unless asked to stay: for MiniLM 261 MB beside an 87 MB
    model, which nothing reads again. `run.json`, marked finished, and the plan stay."""
    from ..training.checkpoints import VOCABULARY, is_checkpoint

    path = output / CHECKPOINTS / RUN_FILE
    if _aside_state(path.parent / REPLACED_RUN) is not None:  # the run this one replaced
        shutil.rmtree(path.parent / REPLACED_RUN, ignore_errors=True)
    if path.is_file():
        write_json(path, {**_read_run(path.parent), "finished": True})
    if not keep_checkpoints and path.parent.is_dir():
        for entry in path.parent.iterdir():
            if entry.is_dir() and (is_checkpoint(entry) or entry.name == VOCABULARY):
                shutil.rmtree(entry, ignore_errors=True)


def stage_of(output: Path) -> Path:
    output = Path(output).resolve()
    return output.with_name(f".{output.name}.new")


def staged(output: str | Path) -> Path:
    """Where to build the new model folder; `one_training_per_output` swaps it in whole."""
    recover_stage(Path(output))
    return stage_of(Path(output))


def recover_stage(output: Path) -> None:
    """What a run killed in the middle of making or swapping in a model folder left beside it:

    - killed while building, `.NAME.new` is a half-built model (files of ours, temporaries,
      tokenizer files): it goes whole;
    - killed just after the swap, `.NAME.new` is the old folder (it took the folder's lock file
      along), still holding what `replace_dir` moves over after the swap: the user's entries,
      the run's checkpoints and logs. They go back into the folder, then the rest goes;
    - where a swap takes two renames (`.NAME.new.old`: no `renameat2`), the new folder is
      complete once the old one is renamed aside: it takes the folder's place if that is empty
      (or holds only the lock of the run that recovers it).

    A name the folder holds meanwhile is merged with, never written over (`_merge_into`)."""
    stage = stage_of(output)
    old = stage.with_name(stage.name + ".old")
    for left in (stage, old):  # ours bear our mark (a model's) or the run's lock: a folder of the user's by that name stays
        if (left.exists() or left.is_symlink()) and (left.is_symlink() or not left.is_dir()
                                                     or (owner_mark(left) is None and not (left / LOCK_FILE).exists())):
            raise ReviewstarsError(f"{left}: in the way of the new model folder (not one of ours): move it away")
    if old.is_dir() and stage.is_dir() and (not output.exists() or {e.name for e in output.iterdir()} <= {LOCK_FILE}):
        output.mkdir(exist_ok=True)  # (the run that recovers it may hold its lock there already)
        _merge_into(stage, output)
    for left in (stage, old):
        if not left.is_dir():
            continue
        if left == old or (left / LOCK_FILE).exists():  # the old folder, not a half-built one
            output.mkdir(exist_ok=True)
            ours = ours_in(left)
            _merge_into(left, output, keep=lambda name: not ours(name) and name != LOCK_FILE)
        shutil.rmtree(left, ignore_errors=True)


def _merge_into(source: Path, target: Path, keep: Callable[[str], bool] = lambda name: True) -> None:
    """Move `source`'s entries (those `keep` names) into `target`: a folder into one of the same
    name entry by entry; a name taken otherwise as NAME.recovered (.recovered-2, ...). A file
    that `target` holds already, as a hard link of the same file (`replace_dir` links the
    user's files into the new folder before the swap), is that file: its second name goes."""
    for entry in list(source.iterdir()):
        if not keep(entry.name):
            continue
        there = target / entry.name
        if not (there.exists() or there.is_symlink()):
            os.replace(entry, there)
        elif _same_file(entry, there):
            entry.unlink()
        elif entry.is_dir() and not entry.is_symlink() and there.is_dir() and not there.is_symlink():
            _merge_into(entry, there)
        else:
            names = (target / f"{entry.name}.recovered{'' if n == 1 else f'-{n}'}" for n in range(1, 10_000))
            os.replace(entry, next(name for name in names if not name.exists()))


def _same_file(entry: Path, there: Path) -> bool:
    """Two names of one file (a hard link): not a copy, which may differ tomorrow."""
    if entry.is_symlink() or there.is_symlink() or not (entry.is_file() and there.is_file()):
        return False
    return os.path.samefile(entry, there)


def check_training_output(output: Path, inputs: tuple[str | Path, ...] = (), recipe: str | None = None) -> None:
    """One line, before any work, when `--output` cannot become a model folder: a file, an
    input of the run, a folder holding files that reviewstars did not write, or a trained
    model of another recipe (retraining a folder's own recipe replaces it: a rerun)."""
    check_name_fits("--output", output)
    if output.is_dir() and _training_by_products(output):
        return
    check_model_output(output, inputs=inputs, recipe=recipe)


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
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReviewstarsError(f"--output {output}: cannot create it ({error.strerror})") from None
    with held(output / LOCK_FILE, f"--output {output}", "another training (pid {pid}) is writing this folder; "
                                                        "wait for it to end, or give another --output"):
        yield


@contextmanager
def output_file_lock(output: Path, command: str) -> Iterator[None]:
    """The same for an output file (`predict --file`): `.NAME.lock` beside it. Two runs into
    one output would share its kept parts, and the one to finish first would write rows
    rated by the other's model."""
    with held(output.with_name(f".{output.name}.lock"), f"--output {output}",
              f"another {command} (pid {{pid}}) is writing it; wait for it to end, or give another --output"):
        yield


@contextmanager
def held(path: Path, where: str, busy: str) -> Iterator[None]:
    """Hold the lock file `path`, or say in one line `where`: `busy` (its `{pid}`: the holder's)."""
    from filelock import FileLock, Timeout

    lock = FileLock(path, timeout=0, on_acquired=_write_pid)
    acquired = False
    try:
        # A SIGTERM or Ctrl-C in the middle of taking the lock left its file behind for good:
        # it waits until the lock is held (and then removed below) or refused.
        with signals_deferred():
            try:
                lock.acquire()
                acquired = True
            except NotImplementedError:  # a file system without locks (some network ones): the run goes on unguarded
                pass
            except Timeout:
                if not path.exists():  # none to hold it: filelock also times out where it cannot create the file (/proc)
                    raise ReviewstarsError(f"{where}: cannot write there (no file can be created in {path.parent})") from None
                raise ReviewstarsError(f"{where}: {busy.format(pid=_holder(path))}") from None
            except OSError as error:
                raise ReviewstarsError(f"{where}: cannot write there ({error.strerror})") from None
        yield
    finally:
        if acquired:
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


#: What a training writes into `--output` itself while it runs (the model is built aside, in
#: `stage_of(output)`): all that a failed run may take away again. Anything else that appears
#: in the folder meanwhile is the user's (notes, predictions of another model) and stays.
WRITTEN_WHILE_TRAINING = (OWNER_FILE, CHECKPOINTS, LOGS)


def undo_additions(output: Path, before: set[str] | None) -> None:
    """After a failed run: what it added to the folder goes, unless it holds a checkpoint
    to `--resume` from (a Ctrl-C, a crash after hours of training). A folder it made goes
    too once nothing else is in it (`output_lock` removes its lock at release)."""
    if (output / CHECKPOINTS).is_dir():
        from ..training.checkpoints import last_complete_checkpoint

        if last_complete_checkpoint(output / CHECKPOINTS):
            return
    for name in WRITTEN_WHILE_TRAINING:
        entry = output / name
        if name in (before or ()) or not (entry.exists() or entry.is_symlink()):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


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
