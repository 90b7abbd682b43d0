"""What a user sees: our lines only. The libraries' logs, load reports, warnings and bars
stay off (`progress.silence_libraries`) unless `reviewstars --verbose ...` asks for them."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pytest

import reviewstars

from support import reviewstars as fresh_process, tiny_cli

#: What only a library prints: load reports, weight-loading and shard bars, tqdm rates,
#: warnings (ours start with "warning:" and none is expected here), torch's glog lines.
NOISE = re.compile(r"LOAD REPORT|Loading weights|Writing model shards|warning|pin_memory|it/s\]|examples/s\]|Traceback"
                   r"|^[WIE]\d{4} ", re.IGNORECASE | re.MULTILINE)


SILENCING = ("TRANSFORMERS_VERBOSITY", "DATASETS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_HUB_VERBOSITY",
             "HF_DATASETS_DISABLE_PROGRESS_BARS", "TRANSFORMERS_NO_ADVISORY_WARNINGS", "TF_CPP_MIN_LOG_LEVEL", "TORCH_LOGS")


def reviewstars_cli(*args, python_flags=()) -> str:
    """Run a command as a user would (our own bars and notes on), return all it printed."""
    # REVIEWSTARS_QUIET is the suite's; the libraries' switches are what importing our CLI
    # in this process set (it silences them): a user's shell has neither.
    env = {k: v for k, v in os.environ.items() if k != "REVIEWSTARS_QUIET" and k not in SILENCING}
    done = fresh_process(*args, env={**env, "HF_HUB_OFFLINE": "1"}, python_flags=python_flags)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def assert_quiet(printed: str) -> None:
    found = NOISE.search(printed)
    assert found is None, f"library output {found.group(0)!r} in:\n{printed[-3000:]}"
    assert not printed.startswith("\n")  # the tokenizers trainers' hidden bars


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """(the folder, what `train` printed) of a tiny scratch model, trained under -W error::SyntaxWarning."""
    folder = tmp_path_factory.mktemp("quiet") / "scratch"
    printed = reviewstars_cli("train", "--data", tiny_data, "--output", folder, *tiny_cli(epochs=2),
                              python_flags=["-W", "error::SyntaxWarning"])
    return folder, printed


def test_train_prints_only_ours(trained):
    folder, printed = trained
    assert_quiet(printed)
    assert "trained scratch on" in printed and "accuracy" in printed


@pytest.mark.parametrize("command", [
    ["predict", "--model", "{folder}", "amazing perfect", "awful rude"],
    ["evaluate", "--model", "{folder}", "--data", "{data}", "--output", "{tmp}/metrics.json"],
    ["basics", "params", "--model", "{folder}"],
    ["export", "--model", "{folder}", "--format", "onnx", "--quantize", "int8", "--output", "{tmp}/onnx"],
], ids=lambda command: command[0] if command[0] != "basics" else "params")
def test_using_a_model_prints_only_ours(trained, tiny_data, tmp_path, command):
    if command[0] == "export":
        pytest.importorskip("onnxscript")
        pytest.importorskip("onnxruntime")
    folder, _ = trained
    printed = reviewstars_cli(*[part.format(folder=folder, data=tiny_data, tmp=tmp_path) for part in command])
    assert_quiet(printed)
    if command[0] == "export":  # the exported folder is a model like any other, and as quiet
        printed = reviewstars_cli("predict", "--model", tmp_path / "onnx", "--json", "Amazing food, excellent!", "Awful and rude.")
        assert_quiet(printed)
        rows = json.loads(printed)
        assert [len(r["probabilities"]) for r in rows] == [5, 5] and all(1 <= r["stars"] <= 5 for r in rows)


def test_verbose_first_brings_the_libraries_back(tiny_data, tmp_path):
    printed = reviewstars_cli("--verbose", "train", "--data", tiny_data, "--output", tmp_path / "m", *tiny_cli(epochs=1))
    assert "Writing model shards" in printed  # the Hub's bar, shown at each save


def test_our_sources_compile_without_syntax_warnings():
    """-W error::SyntaxWarning above only reaches modules imported before the CLI silences
    warnings (and only when no cached bytecode exists): compile every source here instead."""
    for path in Path(reviewstars.__file__).parent.rglob("*.py"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", SyntaxWarning)
            compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_circles_prints_one_labelled_line_per_start(tmp_path):
    printed = reviewstars_cli("basics", "circles", "--points", 100, "--epochs", 50, "--restarts", 2, "--output", tmp_path / "c.png")
    assert_quiet(printed)
    lines = [line.strip() for line in printed.splitlines() if "epochs" in line]
    labelled = re.compile(r"(network, sgd|network, adam|linear)  start \d: 50 epochs, loss \d\.\d{4}, accuracy \d\.\d{3}")
    assert len(lines) == 2 + 2 + 1 and all(labelled.fullmatch(line) for line in lines), lines


def test_a_bar_that_never_moved_goes_with_the_error_that_stopped_it(monkeypatch):
    """`predict --file` of a column of numbers left "⠋ predicting 0/400" above its one-line error."""
    import io

    from rich.console import Console

    from reviewstars import progress

    monkeypatch.delenv("REVIEWSTARS_QUIET", raising=False)
    for moved, shown in ((0, False), (10, True)):
        screen = io.StringIO()
        monkeypatch.setattr(progress, "console", Console(file=screen, width=100))
        with pytest.raises(ValueError):
            with progress.progress_bar("predicting", 400) as advance:
                advance(moved)
                raise ValueError("row 1: review must be a string")
        assert (f"{moved}/400" in screen.getvalue()) is shown, screen.getvalue()  # a bar that moved says how far it got
