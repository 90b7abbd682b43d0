"""Command-line options made from the settings dataclasses, so each exists once.

`with_settings(...)` gives a Typer command every CLI field of the settings classes it
names, grouped by class in the help screen, and hands the command built (and checked)
settings objects instead of loose values. It also gives the command `--config FILE`:
the file's values become the options' defaults (the context's `default_map`), so what the
command line gives wins, and each value is read exactly as the same option's text.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ..errors import ReviewstarsError
from ..settings.fields import check_value, cli_fields, flag_of
from ..settings.files import check_names, read_settings_file

INTERNAL = "reviewstars.internal"  # ctx.meta: a --config file's values for fields that are not options
GIVEN = "given"  # in a command's settings: the names of the options typed on the command line


def _cli_type(item, hint) -> tuple[Any, bool]:
    """(the type the CLI reads, whether None is allowed)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    return (str if item.metadata.get("parse") else base), optional


def _group(group: tuple) -> tuple[type, str, dict[str, str]]:
    """(settings class, help panel, renamed): `renamed` maps a field to its option's name
    when an earlier group took the field's own (`--scratch`'s dropout stays `--dropout`, a
    later kind's becomes `--cnn-dropout`)."""
    cls, panel, *rest = group
    return cls, panel, (rest[0] if rest else {})


def option_name(item, renamed: dict[str, str]) -> tuple[str, str]:
    """(parameter name, flag) of a settings field's option."""
    if item.name in renamed:
        return renamed[item.name], "--" + renamed[item.name].replace("_", "-")
    return item.name, flag_of(item)


def settings_parameters(settings_class, panel: str, renamed: dict[str, str] | None = None) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(settings_class)
    parameters = []
    for item in cli_fields(settings_class):
        base, optional = _cli_type(item, hints[item.name])
        name, flag = option_name(item, renamed or {})
        decls = [f"{flag}/--no-{flag[2:]}" if base is bool and item.default else flag]
        if item.metadata.get("short"):
            decls.append(item.metadata["short"])
        help_text = item.metadata["help"]
        if item.metadata.get("choices"):
            help_text += f" One of: {', '.join(map(str, item.metadata['choices']))}."
        option = typer.Option(item.default, *decls, help=help_text, rich_help_panel=panel, show_default=item.default is not None)
        annotation = Optional[base] if optional else base
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation))
    return parameters


def option_of(settings_class, name: str):
    """A Typer option made from one field of a settings class (its flag, default and help),
    for a command that takes that one setting alone: the default and the help keep one home."""
    item = next(f for f in cli_fields(settings_class) if f.name == name)
    decls = [flag_of(item), *([item.metadata["short"]] if item.metadata.get("short") else [])]
    return typer.Option(item.default, *decls, help=item.metadata["help"])


def build_settings(settings_class, values: dict[str, Any], internal: dict[str, Any] | None = None,
                   renamed: dict[str, str] | None = None):
    """A settings object from the CLI's values: parsed ("30m" -> 1800.0) and checked.
    `internal` holds values for fields that are not options (from a --config file)."""
    renamed = renamed or {}
    chosen = {item.name: internal[item.name] for item in fields(settings_class) if item.name in (internal or {})}
    for item in cli_fields(settings_class):
        name, flag = option_name(item, renamed)
        value, parse = values[name], item.metadata.get("parse")
        if parse is not None and value is not None:
            try:
                value = parse(value)
            except ValueError as error:
                raise ReviewstarsError(f"{flag}: {error}") from None
        if item.name in renamed:  # checked here, so that the error names the option the user typed
            check_value(item, value, flag)
        chosen[item.name] = value
    return settings_class(**chosen)


def _example_setting(groups: Callable[[], list[tuple[type, str]]]) -> str:
    """The command's first setting with a number for its default, as a file writes it
    ("dev_size: 500"), for its help."""
    numbers = [(option_name(item, renamed)[0], item.default) for cls, _, renamed in map(_group, groups()) for item in cli_fields(cls)
               if isinstance(item.default, (int, float)) and not isinstance(item.default, bool)]
    return f"{numbers[0][0]}: {numbers[0][1]:g}" if numbers else ""


#: Options that take a comma-separated list on the command line: a settings file may give a list.
COMMA_SEPARATED = ("models", "evaluate_only", "report_to")


def config_parameter(groups: Callable[[], list[tuple[type, str]]], repeats: str = "") -> inspect.Parameter:
    """`--config FILE`, read before every other option (eager): its values for options
    become their defaults, its values for internal fields wait in `ctx.meta`."""

    def load(ctx: typer.Context, path: Optional[Path]) -> Optional[Path]:
        if path is None:
            return None
        values = {key: ",".join(value) if key in COMMA_SEPARATED and isinstance(value, list) and all(isinstance(v, str) for v in value)
                  else value for key, value in read_settings_file(path).items()}  # `models: [linear, bag]` as YAML says lists
        options = [p.name for p in ctx.command.params if p.name != "config"]
        internal = [item.name for cls, _, _ in map(_group, groups()) for item in fields(cls) if item.name not in options]
        check_names(path, values, options + internal)
        by_name = {p.name: p for p in ctx.command.params}
        settings_fields = {option_name(item, renamed)[0]: item for cls, _, renamed in map(_group, groups()) for item in cli_fields(cls)}
        for key, value in values.items():
            if key in by_name and value is not None:
                _check_file_value(path, key, value, by_name[key], ctx, settings_fields.get(key))
        ctx.default_map = {**(ctx.default_map or {}), **{k: v for k, v in values.items() if k in options}}
        ctx.meta[INTERNAL] = {k: v for k, v in values.items() if k not in options}
        return path

    example = _example_setting(groups)
    option = typer.Option(None, "--config", is_eager=True, callback=load, dir_okay=False, rich_help_panel="Settings file",
                          help=f"A YAML or JSON file of this command's settings by name{f' ({example})' if example else ''}, "
                               f"as its options read them; options given here win.{f' {repeats}' if repeats else ''}")
    return inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[Path])


def _check_file_value(path: Path, key: str, value: Any, param, ctx, item=None) -> None:
    """A settings file's value, read as its option would read it (its type, then its setting's
    parsing and bounds), or one line naming the file (not the option: the user typed none).
    `true` is not the number 1."""
    if isinstance(value, bool) and not getattr(param, "is_flag", False):
        raise ReviewstarsError(f"{path}: {key}: expected a value, got {str(value).lower()}")
    if isinstance(value, (dict, list)):
        raise ReviewstarsError(f"{path}: {key}: expected one value, got a {type(value).__name__}")
    try:
        value = param.process_value(ctx, value)
    except Exception as error:  # the CLI library's own BadParameter (typer may carry its own click)
        message = getattr(error, "message", None) or str(error)
        raise ReviewstarsError(f"{path}: {key}: {message}") from None
    if key == "device" and value is not None:  # there, now: the job would blame a --device the user never typed
        from ..devices import resolve_device

        try:
            resolve_device(str(value))
        except ReviewstarsError as error:
            raise ReviewstarsError(f"{path}: device: {str(error).removeprefix('--device ')}") from None
    if item is None or value is None:
        return
    try:
        parse = item.metadata.get("parse")
        check_value(item, parse(value) if parse is not None else value, flag=f"{path}: {key}")
    except ValueError as error:
        raise ReviewstarsError(f"{path}: {key}: {error}") from None
    except ReviewstarsError as error:
        if str(error).startswith(f"{path}:"):
            raise
        raise ReviewstarsError(f"{path}: {error}") from None


def with_settings(groups: Callable[[], list[tuple[type, str]]], repeats: str = ""):
    """Decorate a command taking `settings: dict[type, object]` plus its own options
    (and `--config FILE`; `repeats`: what a file of the command's own writing does, for its help)."""

    def decorate(command):
        own = inspect.signature(command)
        hints = typing.get_type_hints(command)
        own_parameters = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in own.parameters.values() if p.name != "settings"]
        generated = [p for cls, panel, renamed in map(_group, groups()) for p in settings_parameters(cls, panel, renamed)]
        generated.append(config_parameter(groups, repeats))
        names = [p.name for p in own_parameters + generated]
        duplicated = {n for n in names if names.count(n) > 1}
        if duplicated:
            raise RuntimeError(f"options declared twice for {command.__name__}: {sorted(duplicated)}")

        @functools.wraps(command)
        def run(ctx: typer.Context, **values):
            internal = ctx.meta.get(INTERNAL)
            built: dict = {cls: build_settings(cls, values, internal, renamed) for cls, _, renamed in map(_group, groups())}
            # (by name: typer may carry its own copy of click, whose ParameterSource is another class)
            built[GIVEN] = {name for name in values if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"}
            return command(settings=built, **{p.name: values[p.name] for p in own_parameters})

        context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
        run.__signature__ = inspect.Signature([context, *own_parameters, *generated])
        run.__annotations__ = {}
        del run.__wrapped__  # typer must read the new signature, not the wrapped one
        return run

    return decorate

