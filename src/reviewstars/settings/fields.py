"""Settings declared once: a dataclass field carries its help, limits and CLI flag.

As `transformers.HfArgumentParser` does, the command line is generated from the
settings dataclasses (`reviewstars.cli.options`), so an option exists in one place and
every command that takes a settings class takes all of its options. The limits are
checked when a settings object is made, from the CLI or from Python alike.
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields
from typing import Any, Callable

from ..errors import ReviewstarsError


def setting(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    short: str | None = None,
    choices: tuple | None = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    parse: Callable[[str], Any] | None = None,
    show: Callable[[Any], str] | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field with what the CLI and the checks need to know about it.

    `flag` overrides the option name (default `--field-name`); `parse` reads the CLI's
    text into the field's value (e.g. "30m" -> 1800.0 seconds) and `show` writes a value
    as that text again (for settings files); `cli=False` keeps a field out of the
    command line (an internal knob).
    """
    metadata = {"help": help, "flag": flag, "short": short, "choices": choices, "at_least": at_least,
                "above": above, "at_most": at_most, "parse": parse, "show": show, "cli": cli}
    return field(default=default, metadata=metadata)


def flag_of(item) -> str:
    """The option a field answers to on the command line: `--max-length`."""
    return item.metadata.get("flag") or "--" + item.name.replace("_", "-")


class Settings:
    """Base of the settings dataclasses: each object checks its own fields when made."""

    def __post_init__(self) -> None:
        for item in fields(self):
            check_value(item, getattr(self, item.name))

    @classmethod
    def as_given(cls, values: dict) -> dict:
        """`values` (the fields of one of these, as a dict) with each setting that only follows
        from others (a default worked out from them) put back to None: not given, so that two
        runs differing in --width are not said to differ in the feed-forward width it implies."""
        return values


def check_value(item, value: Any, flag: str | None = None) -> None:
    """One line naming the option (`flag`: the name the command line gave it, when not its
    own) and what is wrong, never a traceback three modules later."""
    meta = item.metadata
    if value is None or not meta:
        return
    name = flag or flag_of(item)
    if meta.get("choices") and value not in meta["choices"]:
        raise ReviewstarsError(f"{name} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value != value or value in (float("inf"), float("-inf")):
        raise ReviewstarsError(f"{name} must be a finite number, got {value!r}")
    show = meta.get("show") or (lambda number: str(number) if isinstance(number, int) else f"{number:g}")  # a duration as one
    if meta.get("at_least") is not None and value < meta["at_least"]:
        raise ReviewstarsError(f"{name} must be at least {show(meta['at_least'])}, got {show(value)}")
    if meta.get("above") is not None and value <= meta["above"]:
        raise ReviewstarsError(f"{name} must be greater than {show(meta['above'])}, got {show(value)}")
    if meta.get("at_most") is not None and value > meta["at_most"]:
        raise ReviewstarsError(f"{name} must be at most {show(meta['at_most'])}, got {show(value)}")


def cli_fields(settings_class) -> list:
    """The fields of a settings class that are options on the command line."""
    return [item for item in fields(settings_class) if item.metadata.get("cli", False) and item.default is not MISSING]
