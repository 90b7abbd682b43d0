"""Atomic writes: a crash never leaves a half-written file or model folder behind.

Files go to a temporary sibling and are renamed into place (rename is atomic on POSIX);
folders are built beside their destination and swapped in whole. Both get the modes
any file would get (0666 / 0777 less the umask), not the private 0600 / 0700 of tempfile.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Collection, Iterator


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


def _temporary_file(path: Path) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:  # SIGTERM raises: the new file must not outlive this call
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def _temporary_dir(path: Path) -> Path:
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, encodable(text).encode("utf-8"))


def encodable(text: str) -> str:
    """A lone surrogate (a file name's undecodable byte, as Python reads it) as its
    `\\udcxx` escape: UTF-8 cannot hold it, and in a JSON string the escape reads back as
    the very same character."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def atomic_dir(path: str | Path, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes `path` in one step.

    `keep_existing`: if `path` appeared meanwhile (another process wrote the same
    cache entry), keep that one and drop ours.

    An existing folder (one that holds checkpoints, say) is replaced whole by
    `replace_dir`, keeping its entries that the new folder does not have: at every
    moment `path` is either the old folder or the new one, never a mix of the two.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _temporary_dir(path)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not path.exists():
        try:
            os.replace(staging, path)
            return
        except OSError:  # another process's folder got there first
            pass
    if keep_existing:
        shutil.rmtree(staging, ignore_errors=True)
        return
    replace_dir(staging, path)


def replace_dir(staging: Path, path: Path, carry: Collection[str] | None = None) -> None:
    """`staging` takes the place of the folder `path` in one step.

    The old folder's entries that the new one lacks come along (all of them, or only
    those named in `carry`): files are hard-linked in before the swap, so a lock held on
    one stays held; folders are moved in after it. The old folder is then removed.
    """
    moved_after = []
    for entry in path.iterdir():
        if (staging / entry.name).exists() or (carry is not None and entry.name not in carry):
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
