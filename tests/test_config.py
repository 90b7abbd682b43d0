"""`--config FILE` for train and compare, and the `train_settings.yaml` every trained folder keeps."""

from __future__ import annotations

import json
import re
from dataclasses import fields

import pytest
import yaml
from typer.testing import CliRunner

from reviewstars.cli import app
from reviewstars.data import DataSettings
from reviewstars.errors import ReviewstarsError
from reviewstars.models.linear import LinearSettings
from reviewstars.settings.files import SETTINGS_FILE, read_settings_file
from reviewstars.training import TrainSettings
from reviewstars.training.settings import format_duration, parse_duration

from support import run_cli


def cli(*args):
    return run_cli(*args, env={"REVIEWSTARS_QUIET": "1", "HF_HUB_OFFLINE": "1"})


def scores(folder) -> dict:
    """metrics.json without its timings."""
    metrics = json.loads((folder / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in ("seconds", "predictions_per_second", "time_ledger")}


def test_a_folder_settings_file_repeats_its_run(tiny_data, tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    done = cli("train", "--model", "linear", "--data", tiny_data, "--output", first, "--min-df", 1, "--C", 0.5)
    assert done.returncode == 0, done.stderr
    saved = yaml.safe_load((first / SETTINGS_FILE).read_text())
    every = [f.name for cls in (DataSettings, TrainSettings, LinearSettings) for f in fields(cls)]
    assert set(saved) == {"model", *every} - {"resume"}  # a repeated run starts anew: it never resumes
    assert (saved["model"], saved["data"], saved["min_df"], saved["C"]) == ("linear", str(tiny_data), 1, 0.5)

    done = cli("train", "--config", first / SETTINGS_FILE, "--output", again)
    assert done.returncode == 0, done.stderr
    assert (again / SETTINGS_FILE).read_text() == (first / SETTINGS_FILE).read_text()
    assert scores(again) == scores(first)


def test_a_settings_file_written_from_one_folder_repeats_its_run_from_another(tiny_data, tmp_path, monkeypatch):
    """`data: my_reviews.csv`, as typed in the folder the run started in, failed from anywhere else."""
    monkeypatch.chdir(tiny_data.parent)
    first = tmp_path / "first"
    assert cli("train", "--model", "linear", "--data", tiny_data.name, "--output", first, "--min-df", 1).returncode == 0
    assert yaml.safe_load((first / SETTINGS_FILE).read_text())["data"] == str(tiny_data.resolve())
    monkeypatch.chdir(tmp_path)
    done = cli("train", "--config", first / SETTINGS_FILE, "--output", tmp_path / "again")
    assert done.returncode == 0, done.stderr
    assert scores(tmp_path / "again") == scores(first)


@pytest.fixture
def captured(monkeypatch):
    """Run `train` and `compare` up to their jobs, keeping what the jobs were handed."""
    import reviewstars.jobs.compare
    import reviewstars.jobs

    seen = {}

    def job(*args, **kwargs):
        seen.update(args=args, **kwargs)
        raise ReviewstarsError("stop here")

    monkeypatch.setattr(reviewstars.jobs, "train", job)
    monkeypatch.setattr(reviewstars.jobs.compare, "compare", job)
    return seen


def test_the_command_line_wins_over_the_file(captured, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model: scratch\ntime-budget: 30m\nmax_length: 128\nlearning_rate: 1.0e-4\nlayers: 2\n"
                      "logging_steps: 7\nbalanced: false\n")
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--output", str(tmp_path / "m"), "--max-length", "64"])
    assert str(result.exception) == "stop here"
    training = captured["transformer"]
    assert captured["args"][0] == "scratch" and captured["scratch"].layers == 2
    assert (training.time_budget, training.max_length, training.learning_rate, training.logging_steps) == (1800.0, 64, 1e-4, 7)
    assert training.balanced  # the name is the linear option's (--no-balanced), as on the command line

    config = tmp_path / "ladder.json"
    config.write_text(json.dumps({"models": "linear,bag", "C": 2, "time_budget": 90}))
    result = CliRunner().invoke(app, ["compare", "--config", str(config), "--output", str(tmp_path), "--C", "0.25"])
    assert str(result.exception) == "stop here"
    assert captured["args"][2] == ["linear", "bag"] and captured["linear"].C == 0.25
    assert captured["transformer"].time_budget == 90 * 60  # a bare number means what it means after --time-budget


def test_a_misspelt_name_is_one_line_naming_the_nearest(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model: linear\nlearning_rat: 1.0e-4\n")
    done = cli("train", "--config", config, "--output", tmp_path / "m")
    assert done.returncode == 2 and not (tmp_path / "m").exists()
    assert done.stderr.strip() == f"error: {config}: unknown setting 'learning_rat' for this command (did you mean 'learning_rate'?)"
    # A name no setting is near gets no guess: serve given a training's settings was told "the nearest is 'cuda_graphs'"
    served = tmp_path / "train_settings.yaml"
    served.write_text("data: reviews.csv\n")
    done = cli("serve", "--model", tmp_path / "m", "--config", served)
    assert done.returncode == 2 and done.stderr.strip() == f"error: {served}: unknown setting 'data' for this command"


@pytest.mark.parametrize("text, fault", [
    ("train_size: true\n", "train_size: expected a value, got true"),  # not --train-size 1
    ("C: abc\n", "C: Input should be a valid number"),  # the file's name, not a --C the user never typed
    ("seed: 1.5\n", "seed: Input should be a valid integer"),
    ("max_length: [128]\n", "max_length: expected one value, got a list"),
    ("time_budget: 40x\n", "time_budget: cannot read the duration '40x'"),  # its setting's own parsing, too
    ("time_budget: 40d\n", "time_budget must be at most 30d, got 40d"),
    ("train_size: 0\n", "train_size must be at least 1, got 0"),  # and its bounds
    ("device: cudaX\n", "device: 'cudaX': use auto, cpu, cuda, cuda:N or mps"),  # the file, not a --device never typed
])
def test_a_wrong_value_in_a_file_is_one_line_naming_the_file(tmp_path, text, fault):
    config = tmp_path / "run.yaml"
    config.write_text("model: linear\n" + text)
    done = cli("train", "--config", config, "--output", tmp_path / "m")
    assert done.returncode == 2 and not (tmp_path / "m").exists()
    assert done.stderr.strip().startswith(f"error: {config}: {fault}") and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_label_given_two_ratings_is_refused():
    with pytest.raises(ReviewstarsError, match="--label-scale: 'pos' is given twice, as 5 and 1 stars"):
        DataSettings(label_scale="neg=1,pos=5,pos=1")
    assert DataSettings(label_scale="neg=1,pos=5,pos=5").label_scale  # the same twice says nothing wrong


@pytest.mark.parametrize("text, fault", [("[1, 2]", "must hold a mapping"), ("model: [linear\n", "not valid YAML")])
def test_a_file_that_is_not_a_mapping_is_one_line(tmp_path, text, fault):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    with pytest.raises(ReviewstarsError, match=fault):
        read_settings_file(config)


def test_a_file_with_no_settings_reads_as_none_and_says_so(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("# model: linear\n")
    assert read_settings_file(config) == {}
    assert f"warning: --config {config}: holds no settings (empty, or comments only)" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("seconds", [1800.0, 90.5, 3600.0, 45.0])
def test_durations_are_written_as_text_that_reads_back(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


def test_durations_read_as_a_person_writes_them():
    """The compare report said "time budget 0.333333 min per model" for --time-budget 20s."""
    assert [format_duration(s) for s in (20.0, 1800.0, 90.5, 5400.0, 30 * 86400.0)] == ["20s", "30m", "90.5s", "90m", "30d"]
    assert parse_duration("2d") == 2 * 86400 and parse_duration("1d12h") == 36 * 3600  # the help's "at most 30 days" reads


def test_a_later_kind_with_an_option_an_earlier_one_has_gets_it_in_its_own_name(monkeypatch, tmp_path):
    """Two kinds may both have a dropout: the first registered keeps `--dropout`, the later
    one's is `--KIND-dropout`, in its own panel; each value reaches its own kind, a bad value
    names the option typed, and the settings file writes and reads the option's name."""
    from dataclasses import dataclass

    import typer

    from reviewstars import kinds
    from reviewstars.cli.app import _training_groups
    from reviewstars.cli.options import with_settings
    from reviewstars.kinds import Kind, ScratchSettings
    from reviewstars.settings.fields import Settings, setting
    from reviewstars.settings.files import write_settings_file

    @dataclass
    class DemoSettings(Settings):
        dropout: float = setting(0.5, "The demo's dropout.", at_least=0, at_most=0.9)
        filters: int = setting(100, "The demo's filters.", at_least=1)

    monkeypatch.setitem(kinds.KINDS, "demo", Kind(name="demo", summary="a kind for this test", settings=DemoSettings))
    groups = _training_groups()
    assert {cls: renamed for cls, _, renamed in groups}[DemoSettings] == {"dropout": "demo_dropout"}
    demo = typer.Typer()
    seen = {}

    @demo.command()
    @with_settings(lambda: groups)
    def run(settings: dict, model: str = typer.Option("demo", "--model")) -> None:
        seen.update(settings)

    help_text = CliRunner().invoke(demo, ["--help"], env={"COLUMNS": "200"}).output
    assert "--demo-dropout" in help_text and "demo model" in help_text and "scratch model" in help_text
    assert CliRunner().invoke(demo, ["--dropout", "0.3", "--demo-dropout", "0.7", "--filters", "8"]).exit_code == 0
    assert seen[ScratchSettings].dropout == 0.3 and seen[DemoSettings].dropout == 0.7 and seen[DemoSettings].filters == 8
    refused = CliRunner().invoke(demo, ["--demo-dropout", "5"])
    assert refused.exit_code != 0 and "--demo-dropout" in str(refused.exception or refused.output)
    write_settings_file(tmp_path, "demo", seen[DemoSettings], renamed={cls: renamed for cls, _, renamed in groups})
    written = yaml.safe_load((tmp_path / SETTINGS_FILE).read_text())
    assert written["demo_dropout"] == 0.7 and "dropout" not in written
    seen.clear()
    assert CliRunner().invoke(demo, ["--config", str(tmp_path / SETTINGS_FILE)]).exit_code == 0
    assert seen[DemoSettings].dropout == 0.7 and seen[ScratchSettings].dropout == ScratchSettings().dropout


def test_a_setting_given_twice_is_refused_and_a_yaml_list_of_models_is_read(captured, tmp_path):
    """YAML and JSON keep the last of two values silently; `models: [linear, bag]` was refused as a list."""
    for name, text, said in (("twice.yaml", "C: 1.0\nmin_df: 1\nC: 2.0\n", "'C' is given twice (line 3): give each setting once"),
                             ("twice.json", '{"C": 1, "C": 2}', "'C' is given twice: give each setting once"),
                             ("spelt.yaml", "time-budget: 1m\ntime_budget: 2m\n", "'time-budget' and 'time_budget' are one setting")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ReviewstarsError, match=re.escape(said)):
            read_settings_file(tmp_path / name)
    config = tmp_path / "ladder.yaml"
    config.write_text("models: [linear, bag]\nevaluate_only: [runs/a, runs/b]\n")
    result = CliRunner().invoke(app, ["compare", "--config", str(config), "--output", str(tmp_path / "out")])
    assert str(result.exception) == "stop here"
    assert captured["args"][2:4] == (["linear", "bag"], ["runs/a", "runs/b"])


def test_yaml_merge_keys_still_read_and_a_list_as_a_key_is_one_line(tmp_path):
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &b {max_length: 64, epochs: 1}\n<<: *b\nepochs: 2\n")  # a merged key given again wins
    assert read_settings_file(merged)["epochs"] == 2 and read_settings_file(merged)["max_length"] == 64
    odd = tmp_path / "odd.yaml"
    odd.write_text("? [a, b]\n: 1\n")
    with pytest.raises(ReviewstarsError, match="not valid YAML: found unhashable key"):
        read_settings_file(odd)


def test_a_settings_file_that_is_no_small_file_is_one_line(tmp_path):
    """/dev/zero was read until memory ran out, and a 6 MB YAML took 4 minutes and 2 GB."""
    import os
    import threading

    from reviewstars.errors import ReviewstarsError
    from reviewstars.settings.files import MAX_SETTINGS_BYTES, read_settings_file

    huge = tmp_path / "huge.yaml"
    huge.write_text("model: linear\nrun_name: [" + "x, " * (MAX_SETTINGS_BYTES // 3) + "x]\n")
    for path, why in (("/dev/zero", "not a file"), (tmp_path, "not a file"),
                      (huge, r"1,048,603 bytes, more than such a file holds \(at most 1,048,576\)")):
        with pytest.raises(ReviewstarsError, match=f"--config {path}: {why}"):
            read_settings_file(path)
    pipe = tmp_path / "fifo.yaml"  # a pipe is read, as `--config <(...)` gives one: bounded all the same
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_text("model: linear\n"))
    writer.start()
    assert read_settings_file(pipe) == {"model": "linear"}
    writer.join()
