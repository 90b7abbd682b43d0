"""Atomic writes: a crash never leaves a half-written file or model folder behind.

Files go to a temporary sibling and are renamed into place (rename is atomic on POSIX);
folders are built beside their destination and swapped in whole. Both get the modes
any file would get (0666 / 0777 less the umask), not the private 0600 / 0700 of tempfile.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


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
    os.fchmod(fd, 0o666 & ~current_umask())
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
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def atomic_dir(path: str | Path, keep_existing: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; on success its contents are moved into `path`.

    `keep_existing`: if `path` appeared meanwhile (another process wrote the same
    cache entry), keep that one and drop ours.

    A new folder appears whole (one rename). Into an existing folder (one that holds
    checkpoints, say) each entry is swapped in by rename with `config.json` last, so a
    folder never looks complete (loadable) before its weights are in place.
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
            if not keep_existing:
                raise
    if keep_existing:
        shutil.rmtree(staging, ignore_errors=True)
        return
    entries = sorted(staging.iterdir(), key=lambda p: p.name == "config.json")
    stale_config = path / "config.json"
    if stale_config.exists() and any(e.name == "config.json" for e in entries):
        stale_config.unlink()  # the old folder stops loading until the new one is whole
    for entry in entries:
        target = path / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write at leisure (in pieces, by any library);
    it replaces `path` only when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary_file(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
