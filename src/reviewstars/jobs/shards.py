"""What a `predict --shard i/N` output says it is, so that `merge` can refuse a wrong set.

Each shard output gets a record beside it, `OUTPUT.shard.json` (one format for CSV,
JSON Lines and Parquet alike): which input it rated, with which model, which i of N,
and a fingerprint of the output itself, so a record never vouches for another file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..artifacts import read_json, write_json
from ..errors import DataError, ReviewstarsError
from ..models.folder import CONFIG_FILE, model_digests
from ..text import with_article

READ_BYTES = 1 << 20  # read a MiB at a time


def record_path(output: Path) -> Path:
    return output.with_name(output.name + ".shard.json")


def fingerprint(path: Path) -> dict[str, Any]:
    """Size and a hash of the whole file. (Its first and last MiB were not enough: two inputs
    that differ only in the middle passed for one.) A shard reads the whole input anyway,
    and hashing runs at several hundred MB/s. No mtime: the N shards may run on N machines,
    each with its own copy of the input."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(READ_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def model_identity(model: Any) -> dict[str, Any]:
    """A model folder's name and a hash of its config and of every file of its weights (two
    folders of one name and config but other weights are two models)."""
    if not isinstance(model, (str, Path)):
        return {"name": f"{with_article(model.kind)} predictor given in Python"}
    folder = Path(model).expanduser()
    config = folder / CONFIG_FILE
    if not config.is_file():
        return {"name": str(model)}  # a Hub id
    return {"name": config.parent.resolve().name, **model_digests(folder)}


def remove_record(output: Path) -> None:
    """The shard record an earlier sharded run left beside `output`, now written whole: it
    describes a file that is gone (a record of ours: JSON naming its shard; else left alone)."""
    path = record_path(output)
    try:
        if path.is_file() and not path.is_symlink() and "shard" in read_json(path):
            path.unlink()
    except (OSError, ValueError, TypeError):
        pass


def write_record(output: Path, source: Path, model: Any, index: int, count: int, rows: int,
                 columns: Sequence[str], keep_columns: bool = False) -> None:
    """Written after the output is in place: a crash between the two leaves a record
    whose output fingerprint does not match, never a wrong one that does. `columns`: the
    output's, so shards rated with and without `--keep-columns` never merge into one file;
    `keep_columns`: a merge writes the user's numbers as the whole run does (`frames.json_lines`)."""
    write_json(record_path(output), {"shard": [index, count], "rows": rows, "columns": list(columns), "keep_columns": keep_columns,
                                     "input": {"name": source.name, **fingerprint(source)},
                                     "model": model_identity(model), "output": fingerprint(output)})


@dataclass
class Shard:
    path: Path
    index: int
    count: int
    record: dict[str, Any]


def read_shard(path: Path) -> Shard:
    record_file = record_path(path)
    if path.is_dir():
        raise DataError(path, "a folder, not a shard's output: give the files `predict --shard i/N` wrote")
    if not path.is_file():
        raise DataError(path, "no such file")
    if not record_file.is_file():
        if path.name.startswith("rows-") and path.parent.name.startswith("part-"):  # a part of `--engine ray`
            raise DataError(path, "a part of `predict --engine ray`, which needs no merge: its folder is the output "
                                  "(pandas.read_parquet(FOLDER); each part's `row` puts it in input order), or rate "
                                  "with --engine ray --output FILE.parquet for one file")
        raise DataError(path, f"no {record_file.name} beside it: not an output of `predict --shard i/N`")
    try:
        record = read_json(record_file)
        index, count = (int(n) for n in record["shard"])
        if not all(isinstance(record.get(key), dict) for key in ("input", "model", "output")):
            raise ValueError("incomplete")
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(record_file, "not a readable shard record: run that shard again") from None
    if record["output"] != fingerprint(path):
        raise DataError(path, f"is not the file {record_file.name} describes (changed since?): run that shard again")
    return Shard(path, index, count, record)


def check_complete_set(shards: Sequence[Shard]) -> None:
    """All from one input, one model, one set of columns and one N, each i of N once: else one
    line naming the odd one."""
    first = shards[0]
    for shard in shards[1:]:
        for what, same in (("input", same_content), ("model", dict.__eq__)):
            if not same(shard.record[what], first.record[what]):
                theirs, ours = shard.record[what].get("name"), first.record[what].get("name")
                if theirs == ours:  # two files of one name in two folders, or one file changed between the shards
                    raise ReviewstarsError(f"{shard.path}: made from another {what} than {first.path}: both named {theirs}, "
                                           "with other contents (another folder's, or changed between the shards)")
                raise ReviewstarsError(f"{shard.path}: made from another {what} ({theirs}) than {first.path} ({ours})")
        if shard.record.get("columns") != first.record.get("columns"):
            raise ReviewstarsError(f"{shard.path}: has other columns than {first.path} ({described(shard)} against "
                                   f"{described(first)}): rate every shard with the same options (--keep-columns, --column)")
        if shard.count != first.count:
            raise ReviewstarsError(f"{shard.path}: shard {shard.index}/{shard.count}, but {first.path} is one of {first.count}")
    seen: dict[int, Path] = {}
    for shard in shards:
        if shard.index in seen:
            raise ReviewstarsError(f"shard {shard.index}/{shard.count} given twice: {seen[shard.index]} and {shard.path}")
        seen[shard.index] = shard.path
    missing = [f"{i}/{first.count}" for i in range(first.count) if i not in seen]
    if missing:
        raise ReviewstarsError(f"shard {', '.join(missing)} missing: give the outputs of all {first.count} shards")


def described(shard: Shard) -> str:
    columns = shard.record.get("columns")
    return f"{len(columns)} columns" if isinstance(columns, list) else "no list of columns: an older reviewstars"


def same_content(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """The same input file, whatever its name on each machine."""
    return (first.get("bytes"), first.get("sha256")) == (second.get("bytes"), second.get("sha256"))
