"""Atomic writes: a crash never leaves a half-written file or model folder behind.

Files go to a temporary sibling and are renamed into place (rename is atomic on POSIX);
folders are built beside their destination and swapped in whole. Both get the modes
any file would get (0666 / 0777 less the umask), not the private 0600 / 0700 of tempfile.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import json
import math
import os
import re
import shutil
import signal
import stat as stat_module
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def is_main_process() -> bool:
    """The process that writes: a lone one, or rank 0 under torchrun / accelerate launch
    (they set RANK before anything starts, so no process group is needed to tell)."""
    return int(os.environ.get("RANK", "0")) == 0


def current_umask() -> int:
    """Read from /proc where Linux allows: `os.umask` can only read it by changing it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary_prefix(path: Path) -> str:
    """`.NAME.PID.`: a temporary sibling names the process writing it, so that a file left by
    a process that was killed (`kill -9`, a lost machine: nothing of ours ran to remove it) is
    recognised and removed by the next write of the same path (a 50 MB `.stars.csv.*.tmp`
    stayed beside its output for good)."""
    remove_stale_temporaries(path)
    return f".{path.name}.{os.getpid()}."


def remove_stale_temporaries(path: Path) -> None:
    """The temporary files of `path` whose writer is dead. Not folders: killed in the middle of
    `replace_dir`, one is the old folder, still holding the user's entries."""
    for left in _left_by_dead_writers(path.parent, f".{path.name}."):
        if left.is_file():
            left.unlink(missing_ok=True)


def remove_stale_stages(path: Path, ours: Callable[[str], bool]) -> None:
    """The staging folders of `path` whose writer is dead (an export killed with `kill -9` left
    its half-written graph beside the output for good), when every entry is one that `ours`
    claims, or a temporary file: killed in the middle of `replace_dir`, a staging folder is the
    old one, and what it holds of the user's is left for the user."""
    for left in _left_by_dead_writers(path.parent, f".{path.name}."):
        if left.is_dir() and all(ours(entry.name) or (entry.is_file() and entry.name.startswith(".") and entry.name.endswith(".tmp"))
                                 for entry in left.iterdir()):
            shutil.rmtree(left, ignore_errors=True)


def _left_by_dead_writers(folder: Path, prefix: str) -> Iterator[Path]:
    """The entries of `folder` named `PREFIX<pid>.<8 of tempfile's letters>.tmp` whose writer (the
    pid) is dead: exactly those names (not those of `NAME.2024`, say), never a link."""
    name = re.compile(rf"{re.escape(prefix)}(\d+)\.[a-z0-9_]{{8}}\.tmp")
    for left in folder.glob(f"{glob.escape(prefix)}*.tmp"):
        found = name.fullmatch(left.name)
        if found and not _alive(int(found[1])) and not left.is_symlink():
            yield left


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process: alive (or on a system that cannot tell)
        return True
    return True


def _temporary_file(path: Path) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:  # SIGTERM raises: the new file must not outlive this call
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def _temporary_dir(path: Path) -> Path:
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".tmp"))
    os.chmod(staging, 0o777 & ~current_umask())
    return staging


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(error, path)
    return path


def _naming(error: BaseException, path: Path) -> BaseException:
    """A write's OSError (a full disk) with the file it was writing, so the one line names it
    (the file asked for, not the hidden temporary beside it that the system call named)."""
    if isinstance(error, OSError) and error.errno is not None:  # (without an errno, str() would lose the message)
        if not error.filename or Path(str(error.filename)).name.startswith(f".{path.name}."):
            error.filename, error.filename2 = str(path), None  # (a rename's pair would read "out.csv -> out.csv")
    return error


def check_writable(option: str, output: Path, folder: Path) -> None:
    """One line before any work when nothing can be written in `folder` (or the folder it would
    be made in), where `output` goes: a read-only file system, a folder without write
    permission. Found only once the work was done, the error named a hidden temporary file."""
    above = next((parent for parent in [Path(folder), *Path(folder).absolute().parents] if parent.is_dir()), None)
    if above is not None and not os.access(above, os.W_OK | os.X_OK):
        why = "a read-only file system" if _read_only(above) else "no permission to write in it"
        raise_output_error(option, output, f"cannot write there ({above}: {why})")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, encodable(text).encode("utf-8"))


def encodable(text: str) -> str:
    """A lone surrogate (a file name's undecodable byte, as Python reads it) as its
    `\\udcxx` escape: UTF-8 cannot hold it, and in a JSON string the escape reads back as
    the very same character."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(finite_json(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def finite_json(obj: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers, and the bare `NaN` Python writes
    is refused by jq, JavaScript and every strict parser."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(value) for value in obj]
    return obj


def read_small_text(path: Path, option: str, most: int) -> str:
    """A small text file the user names (settings, a key): a regular file or a pipe (`<(pass
    show key)`), of at most `most` bytes, else one line. (/dev/zero was read until memory ran
    out; a 6 MB YAML took 4 minutes to refuse.)"""
    from .errors import ReviewstarsError

    try:
        info = Path(path).stat()
        if not (stat_module.S_ISREG(info.st_mode) or stat_module.S_ISFIFO(info.st_mode)):
            raise ReviewstarsError(f"{option} {path}: not a file (a device, a socket or a folder); give a file")
        with open(path, "rb") as handle:
            data = handle.read(most + 1)
        if len(data) > most:
            size = f"{info.st_size:,} bytes" if info.st_size > most else "more bytes"
            raise ReviewstarsError(f"{option} {path}: {size}, more than such a file holds (at most {most:,})")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ReviewstarsError(f"{option} {path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def atomic_dir(path: str | Path, keep_existing: bool = False, replaced: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes `path` in one step.

    `keep_existing`: if `path` appeared meanwhile (another process wrote the same
    cache entry), keep that one and drop ours.

    An existing folder (one that holds checkpoints, say) is replaced whole by
    `replace_dir`, keeping its entries that the new folder does not have (all of them,
    or those that `replaced` does not claim): at every moment `path` is either the old
    folder or the new one, never a mix of the two.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if replaced is not None:
        remove_stale_stages(path, replaced)
    staging = _temporary_dir(path)
    try:
        yield staging
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise _naming(error, path)
    if not path.exists():
        try:
            os.replace(staging, path)
            return
        except OSError:  # another process's folder got there first
            pass
    if keep_existing:
        shutil.rmtree(staging, ignore_errors=True)
        return
    replace_dir(staging, path, replaced)


def replace_dir(staging: Path, path: Path, replaced: Callable[[str], bool] | None = None) -> None:
    """`staging` takes the place of the folder `path` in one step.

    The old folder's entries that the new one lacks come along, except those that
    `replaced(name)` claims (what an earlier run of ours wrote and this one did not: an
    old metrics.json must not pass for the new model's): files are hard-linked in before
    the swap, so a lock held on one stays held; folders are moved in after it. The old
    folder is then removed. A file of the user's in the folder is never lost.
    """
    moved_after = []
    for entry in path.iterdir():
        if (staging / entry.name).exists() or (replaced is not None and replaced(entry.name)):
            continue
        if entry.is_file() and not entry.is_symlink():
            try:
                os.link(entry, staging / entry.name)
                continue
            except OSError:  # a file system without hard links
                pass
        moved_after.append(entry.name)
    if _exchange(staging, path):
        old = staging
    else:  # two renames: for a moment there is no `path`, but never a mixed one
        old = staging.with_name(staging.name + ".old")
        os.replace(path, old)
        os.replace(staging, path)
    for name in moved_after:
        os.replace(old / name, path / name)
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux `renameat2`); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


STAGING_PREFIX = ".staging."


@contextmanager
def written_together(folder: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder inside `folder`; when the block ends, every file in it
    takes the place of its namesake in `folder` in one burst of renames that Ctrl-C and
    SIGTERM wait for. A set of files read together (a leaderboard and the report drawn from
    it) is then the old set or the new one, never half of each. A failed block changes nothing.
    A staging folder a killed process left is removed by the next call on the same folder."""
    folder = Path(folder)
    for left in _left_by_dead_writers(folder, STAGING_PREFIX):
        if left.is_dir():
            shutil.rmtree(left, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f"{STAGING_PREFIX}{os.getpid()}.", suffix=".tmp"))
    try:
        yield staging
        with signals_deferred():
            for entry in sorted(staging.iterdir()):
                os.replace(entry, folder / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM that arrive in the block take effect when it ends (handlers run in
    the main thread only, so elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda got, frame: received.append(got)) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # (None: one set outside Python)
        if received:
            signal.raise_signal(received[0])


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write at leisure (in pieces, by any library);
    it replaces `path` only when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary_file(path)
    try:  # from the moment the file exists: a signal (SIGTERM raises) must not leave it behind
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(error, path)


# --------------------------------------------------------------------------- what a command may write over
#
# One rule for every command that writes: a folder is written only when it is new, empty,
# or holds the mark of what reviewstars wrote there (`OWNER_FILE`); a file is never written
# over one of the command's own inputs. Anything else is refused in one line, before any work.

#: Written into every folder reviewstars creates (a model, a compare run): only such a folder is written over.
OWNER_FILE = ".reviewstars"
#: Held in a folder while a run of ours writes it (`jobs.guard.output_lock`): a folder holding only
#: this one is being made by a run that has just started, and is refused as that run's, not as the user's.
LOCK_FILE = ".lock"


def mark_ours(folder: Path, what: str, files: bool = False) -> None:
    """Say that reviewstars wrote `folder`, and as what ("model", "compare"); with `files`, also
    the names it holds now: what a later run of ours may replace there (`files_of_ours`)."""
    record: dict[str, Any] = {"written_by": "reviewstars", "what": what}
    if files:
        record["files"] = sorted(entry.name for entry in Path(folder).iterdir() if entry.name != OWNER_FILE)
    write_json(Path(folder) / OWNER_FILE, record)


def files_of_ours(folder: Path) -> set[str]:
    """The names `folder`'s mark says a run of ours wrote there (none for a folder marked before
    marks listed them)."""
    try:
        found = read_json(Path(folder) / OWNER_FILE)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return set()
    files = found.get("files") if isinstance(found, dict) else None
    return {name for name in files if isinstance(name, str)} if isinstance(files, list) else set()


#: How an output error names what a folder's mark says it holds.
WRITTEN_AS = {"model": "model folder", "compare": "comparison folder (compare's leaderboard and models)"}


def owner_mark(folder: Path) -> str | None:
    """What `folder` was written as by reviewstars ("model", "compare"), or None when it bears no mark."""
    marker = Path(folder) / OWNER_FILE
    if not marker.is_file():
        return None
    try:
        found = read_json(marker)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):  # (a JSON nested past Python's stack)
        return None
    what = found.get("what") if isinstance(found, dict) else None
    return what if isinstance(what, str) else None


def resolved(path: str | Path, option: str = "--output") -> Path:
    """`path` made absolute with its links followed; a loop of links is one line, not a traceback."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError):  # "Symlink loop from ..."
        raise_output_error(option, Path(path), "a loop of symbolic links")


def overlapping(first: Path, second: Path) -> bool:
    """The same path, or one inside the other."""
    first, second = resolved(first), resolved(second, "an input")
    return first == second or first in second.parents or second in first.parents


#: The most bytes a temporary or staging sibling adds to an output's name
#: (`..NAME.new.PID.xxxxxxxx.tmp`: a model folder's stage, staged in turn), and what a
#: temporary of ours adds to the name it is written for (`.NAME.PID.xxxxxxxx.tmp`).
SIBLING_BYTES = 32
TEMPORARY_BYTES = 27


def check_name_fits(option: str, path: Path, margin: int = SIBLING_BYTES) -> None:
    """A name the file system takes, whose temporaries it takes too (`margin` more bytes): a
    name of 240 bytes was written to its temporary only once the work was done, and failed
    there with a traceback."""
    most = 255
    for parent in Path(path).absolute().parents:
        try:
            most = os.pathconf(parent, "PC_NAME_MAX")
            break
        except (OSError, ValueError):  # not there (yet), or a name too long itself
            continue
    for part in Path(path).parts[:-1]:
        if len(os.fsencode(part)) > most:
            raise_output_error(option, path, f"a folder in it has a name longer than the file system's {most} bytes")
    size = len(os.fsencode(Path(path).name))
    if size > most - margin:
        raise_output_error(option, path, f"a name of {size} bytes; give one of at most {most - margin} (the file system "
                                         f"takes {most}, and the temporary files written beside it add up to {margin})")


def check_output_folder(folder: str | Path, ours: Callable[[Path], bool], what: str, option: str = "--output",
                        inputs: tuple[str | Path, ...] = (), name_margin: int = SIBLING_BYTES) -> Path:
    """`folder` resolved, when a command may write `what` there: a new or empty folder, or one
    that `ours` recognises as written by us; never one of the command's `inputs` (nor a folder
    inside one, nor one holding one). Else one line saying why."""
    folder = Path(folder).expanduser()
    check_name_fits(option, folder, name_margin)
    check_writable(option, folder, folder.parent)  # (a new folder is built beside it, then swapped in)
    if folder.is_dir():
        check_writable(option, folder, folder)
    where = resolved(folder, option)
    here = Path.cwd().resolve()
    if where == here or where in here.parents:  # (`--output .`: a probe's shell was left in a folder deleted under it)
        raise_output_error(option, folder, f"{'is' if where == here else 'holds'} the folder this command runs in, which "
                                           f"writing the {what} replaces whole: give a folder of its own, such as runs/NAME")
    for given in inputs:
        if Path(given).exists() and overlapping(folder, Path(given)):
            source = resolved(given, "an input")
            how = "is" if where == source else "holds" if where in source.parents else "is inside"
            # (the input as found: "/ holds train.csv" read as if train.csv were in /)
            raise_output_error(option, folder, f"{how} {source if how == 'holds' else given}, which this command reads: "
                                               "give another folder (an input is never written over)")
    if folder.exists() and not folder.is_dir():
        raise_output_error(option, folder, f"is a file, not a folder; give a folder for the {what}")
    if folder.is_dir():
        try:
            names = sorted(entry.name for entry in folder.iterdir())
        except OSError as error:
            raise_output_error(option, folder, f"cannot be read ({error.strerror})")
        if names and names != [LOCK_FILE] and not ours(folder):
            written_as = owner_mark(folder)
            if written_as is not None:  # ours, but another thing: a model folder is not a comparison
                raise_output_error(option, folder, f"is a {WRITTEN_AS.get(written_as, written_as + ' folder')} written by "
                                                   f"reviewstars, not a {what} folder: give a new or empty folder for the {what}")
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            marked = [name for name in names if (folder / name).is_dir() and owner_mark(folder / name) is not None]
            if marked and len(marked) == len([name for name in names if name != LOCK_FILE]):  # a folder of ours holding folders of ours
                raise_output_error(option, folder, f"holds folders reviewstars wrote as other things ({shown}): give a new "
                                                   f"or empty folder for the {what}")
            raise_output_error(option, folder, f"holds files that reviewstars did not write ({shown}): give a new or "
                                               f"empty folder for the {what} (nothing of yours is written over)")
    return folder


#: Names that a loader (ours, transformers', ONNX Runtime's) reads from a model or tokenizer folder:
#: a file of such a name, even a new one, in a folder a command reads would change what it loads
#: as (a `vocab.json` beside a BERT tokenizer's `vocab.txt`, say).
LOADER_FILE = re.compile(
    r"^(config|generation_config|preprocessor_config|tokenizer|tokenizer_config|special_tokens_map|added_tokens|vocab"
    r"|vocabulary|merges|chat_template|spiece|sentencepiece\.bpe|model|pytorch_model|adapter_config|adapter_model)"
    r"\.(json|txt|model|jinja|yaml)$|\.(safetensors|bin|onnx|npz|model|pt|pth|h5|msgpack|gguf)$|^\.reviewstars$", re.IGNORECASE)


def check_output_file(path: str | Path, option: str = "--output", inputs: tuple[str | Path, ...] = (),
                      ours: Callable[[Path], bool] | None = None, what: str = "", suffix: str | None = None) -> Path:
    """`path` resolved, when it is not one of the command's `inputs` (a file it reads; in a
    folder it reads, a file already there unless `ours` knows it as this command's, or a name
    that folder loads or keeps as its own) and not a folder; and, given `ours`, when a file already
    there is one `ours` recognises as this command's `what` (a rerun), never a file of the
    user's that happens to have the name; given `suffix`, when its name ends so (JSON in a
    file named .csv is a surprise later). Else one line saying why."""
    path = Path(path).expanduser()
    check_name_fits(option, path)
    where = resolved(path, option)
    if path.is_dir():
        raise_output_error(option, path, "is a folder; give a file path")
    check_writable(option, path, path.parent)
    if path.exists() and not path.is_file():  # a named pipe a reader waits on would become a plain file
        raise_output_error(option, path, "is not a regular file (a pipe, a device or a socket); give a file path")
    above = next((parent for parent in path.parents if parent.exists()), None)  # where its folder would be made
    if above is not None and not above.is_dir():
        raise_output_error(option, path, f"cannot be written: {above} is a file, not a folder")
    if suffix is not None and path.suffix.lower() != suffix:
        raise_output_error(option, path, f"this writes {suffix.lstrip('.').upper()}: give a file name ending in {suffix}")
    for given in inputs:
        given = Path(given)
        if not given.exists():
            continue  # a Hub id, not a path
        source = resolved(given, "an input")
        if where == source:
            raise_output_error(option, path, f"is {given}, which this command reads: give another path (an input is "
                                             "never written over)")
        if not (given.is_dir() and source in where.parents):
            continue
        if where.parent == source and (LOADER_FILE.search(path.name) or path.name in files_of_ours(source)):
            raise_output_error(option, path, f"is a name of the files {given} loads or keeps (its config, weights, "
                                             "tokenizer, metrics), which this command reads: give another path (an input "
                                             "is never written over)")
        if path.exists() and not (ours is not None and path.is_file() and ours(path)):  # a rerun's own file goes again
            raise_output_error(option, path, f"is a file of {given}, which this command reads: give another path (an "
                                             "input is never written over)")
    if ours is not None and path.is_file() and path.stat().st_size:
        if not ours(path):
            raise_output_error(option, path, f"a file that is not {what} is already there; give another path "
                                             "(or remove it first: nothing of yours is written over)")
    return path


#: What a file of ours may weigh at most when it is read to be recognised (a large file is not one of ours).
OURS_AT_MOST_BYTES = 64 << 20

#: The `Software` text of every PNG reviewstars draws: how a rerun recognises its own plot.
PNG_SOFTWARE = "reviewstars"


def json_where(looks_ours: Callable[[Any], bool]) -> Callable[[Path], bool]:
    """Recognises a JSON file that a command of ours wrote, by its content (`looks_ours`)."""

    def ours(path: Path) -> bool:
        if path.stat().st_size > OURS_AT_MOST_BYTES:
            return False
        try:
            return bool(looks_ours(read_json(path)))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            return False

    return ours


def json_with_keys(*keys: str) -> Callable[[Path], bool]:
    """Recognises a JSON object that a command of ours wrote: one with all of `keys`."""
    return json_where(lambda found: isinstance(found, dict) and all(key in found for key in keys))


def png_software(path: Path) -> str | None:
    """The `Software` text chunk of a PNG (None: not a PNG, or none there). Matplotlib writes
    its text chunks before the image data, so the first 64 KiB hold them."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return None
    if not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    at = 8
    while at + 8 <= len(head):
        length, kind = int.from_bytes(head[at:at + 4], "big"), head[at + 4:at + 8]
        if kind == b"tEXt":
            key, _, value = head[at + 8:at + 8 + length].partition(b"\0")
            if key == b"Software":
                return value.decode("latin-1")
        if kind in (b"IDAT", b"IEND"):
            return None
        at += 12 + length
    return None


def png_of_ours(path: Path) -> bool:
    """A PNG whose `Software` text names reviewstars: a plot a command of ours drew."""
    return (png_software(path) or "").startswith(PNG_SOFTWARE)


def plot_beside(numbers: Path, numbers_ours: Callable[[Path], bool]) -> Callable[[Path], bool]:
    """Recognises the plot this command drew: a PNG of ours (or a Matplotlib one, drawn before
    plots were marked) beside its numbers, the JSON drawn with it, which are this command's. A
    plot of ours without them is another command's (a model folder's confusion matrix, a
    report's reliability diagram): not this one's to replace."""

    def ours(path: Path) -> bool:
        drawn = png_of_ours(path) or (png_software(path) or "").startswith("Matplotlib")
        return drawn and numbers.is_file() and numbers_ours(numbers)

    return ours


def raise_output_error(option: str, path: Path, why: str):
    from .errors import ReviewstarsError

    raise ReviewstarsError(f"{option} {path}: {why}")
