"""A run's settings as a file: `--config FILE` reads one, every trained folder keeps one.

The file is one flat mapping from field names to values (`time_budget: 30m`,
`max_length: 128`), YAML or JSON, and a value means what it means on the command line.
`reviewstars train` writes the settings it used into the model folder as
`train_settings.yaml`, so `reviewstars train --config FOLDER/train_settings.yaml --output
NEW` repeats the run.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..artifacts import read_small_text, write_text
from ..errors import ReviewstarsError
from ..progress import warn

SETTINGS_FILE = "train_settings.yaml"
HEADER = "# The settings of this run: `reviewstars train --config THIS_FILE --output NEW_FOLDER` repeats it.\n"


#: A settings file is a few hundred bytes: one of a megabyte is not one (a 6 MB YAML took 4 minutes and 2 GB).
MAX_SETTINGS_BYTES = 1 << 20


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """The file's mapping, with `time-budget` read as `time_budget`; one line for any fault."""
    path = Path(path)
    text = read_small_text(path, "--config", MAX_SETTINGS_BYTES)
    try:
        found = json.loads(text, object_pairs_hook=_once_each) if path.suffix.lower() == ".json" else \
            yaml.load(text, Loader=_YamlOnceEach)  # noqa: S506 - a SafeLoader
    except _Twice as error:
        raise ReviewstarsError(f"{path}: {error}") from None
    except json.JSONDecodeError as error:
        raise ReviewstarsError(f"{path}: not valid JSON: {error.msg} (line {error.lineno})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ReviewstarsError(f"{path}: not valid YAML: {getattr(error, 'problem', None) or error}{where}") from None
    if found is None:  # (a file cut short, or a template never filled in)
        warn(f"--config {path}: holds no settings (empty, or comments only): the command's own options and defaults apply")
        return {}
    if not isinstance(found, dict):
        raise ReviewstarsError(f"{path}: must hold a mapping of setting names to values, not {type(found).__name__}")
    settings: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    for key, value in found.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name in settings:
            raise ReviewstarsError(f"{path}: {spelt[name]!r} and {key!r} are one setting: give it once")
        settings[name], spelt[name] = value, str(key)
    return settings


class _Twice(ValueError):
    """A settings file that names a setting twice: which value was meant?"""


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Twice(f"{key!r} is given twice: give each setting once")
        found[key] = value
    return found


class _YamlOnceEach(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives one key twice (by default the last wins, silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be given again here, and win
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                twice = key in seen
            except TypeError:  # a list as a key: the safe loader's own error says so
                continue
            if twice:
                raise _Twice(f"{key!r} is given twice (line {key_node.start_mark.line + 1}): give each setting once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def check_names(path: str | Path, values: dict[str, Any], valid: Iterable[str]) -> None:
    """A misspelt name fails loudly, naming the nearest valid one: silently ignored, it
    would train with the default the user meant to change."""
    valid = list(valid)
    for key in values:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)  # a typo's, not any name at all
            raise ReviewstarsError(f"{path}: unknown setting {key!r} for this command"
                                   + (f" (did you mean {near[0]!r}?)" if near else ""))


def settings_values(*settings: Any, renamed: dict[type, dict[str, str]] | None = None) -> dict[str, Any]:
    """Every field of the settings objects by name, written as the command line reads it.

    Two classes may share a name (`seed` is the data's option and the Trainer's internal
    copy of it): the command-line option's value takes the name, as it does on reading.
    `renamed`: by class, the option names of fields whose own name another class's option
    took (a second kind's `dropout` is `cnn_dropout`), as the command line names them.
    """
    values: dict[str, Any] = {}
    for each in settings:
        names = (renamed or {}).get(type(each), {})
        for item in fields(each):
            name = names.get(item.name, item.name)
            if name not in values or item.metadata.get("cli"):
                value, show = getattr(each, item.name), item.metadata.get("show")
                values[name] = show(value) if show and value is not None else value
    return values


def write_settings_file(folder: str | Path, model: str, *settings: Any, renamed: dict[type, dict[str, str]] | None = None) -> Path:
    """`train_settings.yaml` in `folder`: the model name and every field of `settings`."""
    # Not `resume`: the file repeats the run, and a new run into a new folder has nothing to resume from.
    values = {name: value for name, value in settings_values(*settings, renamed=renamed).items() if name != "resume"}
    found = {name: absolute(name, value) for name, value in {"model": model, **values}.items()}
    text = yaml.safe_dump(found, sort_keys=False, allow_unicode=True)
    return write_text(Path(folder) / SETTINGS_FILE, HEADER + text)


def absolute(name: str, value: Any) -> Any:
    """A local path as an absolute one, so that the file repeats its run from any folder
    (`data: my_reviews.csv` failed when run from elsewhere). The data is a path whenever
    one exists by that name; other values only when they look like one (`runs/base`, not
    `linear`, a kind, beside a folder of that name)."""
    if not isinstance(value, str) or not value:
        return value
    looks_like_a_path = name == "data" or "/" in value or value.startswith((".", "~"))
    path = Path(value).expanduser()
    return str(path.resolve()) if looks_like_a_path and path.exists() else value
