"""Outputs are never lost or mixed: a model folder is replaced whole or not at all, one
training writes a folder at a time, a wrong `--output` fails first, and what is written
gets the modes the umask asks for."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from reviewstars import artifacts
from reviewstars.artifacts import atomic_dir, write_json
from reviewstars.data import DataSettings
from reviewstars.data.frames import FrameWriter
from reviewstars.errors import Interrupted, ReviewstarsError
from reviewstars.jobs import train
from reviewstars.jobs.guard import output_lock, recover_stage
from reviewstars.models import LinearPredictor, load_predictor
from reviewstars.models.linear import LinearSettings
from reviewstars.training import TrainSettings

from conftest import synthetic_reviews
from support import cli_command, fast, tiny_scratch

TINY_SCRATCH = tiny_scratch()


def _files(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] not in skip}


@pytest.fixture
def linear_folder(tiny_data, tmp_path) -> Path:
    output = tmp_path / "model"
    train("linear", tiny_data, output, linear=LinearSettings(min_df=1))
    return output


class DiskFull(OSError):
    pass


def _fail_evaluation(monkeypatch) -> None:
    """A failure after training, once the new model exists: while it is scored."""
    def evaluate(*_args, **_kwargs):
        raise DiskFull("no space left on device")
    monkeypatch.setattr(importlib.import_module("reviewstars.jobs.train"), "evaluate_predictor", evaluate)


def test_a_run_that_fails_leaves_the_model_folder_it_would_replace_as_it_was(linear_folder, scratch_model, tiny_data,
                                                                              tmp_path, monkeypatch):
    torch_folder = tmp_path / "scratch"
    shutil.copytree(scratch_model, torch_folder)
    the_model = sorted(entry.name for entry in torch_folder.iterdir())
    before_torch = _files(torch_folder, skip=("checkpoints", "runs"))  # a run's own records there are its, not the model's
    # Settings that fail once the run has started (after the vocabulary is saved): the model is left as it was.
    with pytest.raises(ReviewstarsError, match="--max-length 2 leaves no room for text"):
        train("scratch", tiny_data, torch_folder, transformer=TrainSettings(max_length=2), scratch=TINY_SCRATCH)
    assert _files(torch_folder, skip=("checkpoints", "runs")) == before_torch
    assert sorted(entry.name for entry in torch_folder.iterdir()) == the_model

    before = _files(linear_folder)
    _fail_evaluation(monkeypatch)
    with pytest.raises(DiskFull):
        train("linear", tiny_data, linear_folder, linear=LinearSettings(min_df=1, C=0.1))
    assert _files(linear_folder) == before and isinstance(load_predictor(linear_folder), LinearPredictor)

    # A torch run that fails after training keeps its checkpoints (to --resume from); the model is untouched.
    settings = TrainSettings(learning_rate=3e-3, epochs=1, eval_steps=10, max_length=32, early_stopping=None)
    with pytest.raises(DiskFull):
        train("scratch", DataSettings(tiny_data, dev_size=50), torch_folder, transformer=settings, scratch=TINY_SCRATCH)
    assert _files(torch_folder, skip=("checkpoints", "runs")) == before_torch
    assert any((torch_folder / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    assert not list(tmp_path.glob(".scratch*"))  # no staging folder left beside it


def test_a_new_model_replaces_the_whole_old_folder(linear_folder, tiny_data):
    assert (linear_folder / "metrics.json").is_file()
    (linear_folder / "checkpoints").mkdir()
    (linear_folder / "checkpoints" / "plan.json").write_text("{}")
    (linear_folder / "old_scores.png").write_bytes(b"mine")  # not ours: kept
    # Trained on a train file alone: it is scored on reviews held out of that file, not on validation.
    train("linear", tiny_data / "train.parquet", linear_folder, linear=LinearSettings(min_df=1, C=0.5))
    names = {p.name for p in linear_folder.iterdir()}
    assert json.loads((linear_folder / "metrics.json").read_text())["split"] == "held-out"  # the old model's scores are gone
    assert (linear_folder / "old_scores.png").read_bytes() == b"mine"
    assert {"config.json", "linear.npz", "vocabulary.json", "README.md"} <= names and ".lock" not in names
    assert "checkpoints" not in names  # an older torch run's: they went with the model they were for
    assert load_predictor(linear_folder).settings.C == 0.5


def test_a_swap_cut_short_leaves_the_old_folder_or_the_new_one_never_a_mix(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    for name, text in (("config.json", "old"), ("weights", "old"), ("card.md", "kept")):
        (folder / name).write_text(text)
    (folder / "checkpoints").mkdir()

    def crash(*_args):
        raise OSError("killed")
    monkeypatch.setattr(artifacts.os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        with atomic_dir(folder) as stage:
            (stage / "config.json").write_text("new")
            (stage / "weights").write_text("new")
    assert {name: (folder / name).read_text() for name in ("config.json", "weights")} in (
        {"config.json": "old", "weights": "old"}, {"config.json": "new", "weights": "new"})


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_replacing_a_folder_keeps_its_other_entries_and_a_held_lock(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(artifacts, "_exchange", lambda *_: False)
    folder = tmp_path / "model"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text("old")
    with output_lock(folder):
        lock = os.stat(folder / ".lock").st_ino
        with atomic_dir(folder) as stage:
            (stage / "config.json").write_text("new")
        assert os.stat(folder / ".lock").st_ino == lock
    assert (folder / "config.json").read_text() == "new" and (folder / "checkpoints").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_failed_run_takes_away_only_what_a_training_writes_never_what_the_user_put_there_meanwhile(linear_folder, tiny_data,
                                                                                                     tmp_path, monkeypatch):
    """A probe's notes and another model's predictions, written into the folder while it trained,
    were deleted when the run was stopped (and a new folder went whole, with them)."""
    fit = importlib.import_module("reviewstars.jobs.fit")

    def stopped_while_the_user_writes(kind, job):
        (Path(job.output) / "notes.txt").write_text("my notes")
        (Path(job.output) / "predictions").mkdir(exist_ok=True)
        (Path(job.output) / "predictions" / "june.csv").write_text("text,stars\n")
        raise KeyboardInterrupt
    monkeypatch.setattr(fit, "fit_kind", stopped_while_the_user_writes)
    monkeypatch.setattr(importlib.import_module("reviewstars.jobs.train"), "fit_kind", stopped_while_the_user_writes)
    before = _files(linear_folder)
    for folder in (linear_folder, tmp_path / "new"):
        with pytest.raises(Interrupted):  # Ctrl-C, said in one line
            train("linear", tiny_data, folder, linear=LinearSettings(min_df=1, C=0.3))
        assert (folder / "notes.txt").read_text() == "my notes" and (folder / "predictions" / "june.csv").is_file()
        assert not {".lock", ".reviewstars"} & {p.name for p in folder.iterdir()} or folder == linear_folder
    assert _files(linear_folder, skip=("notes.txt", "predictions")) == before
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["notes.txt", "predictions"]  # ours went, theirs stayed
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(importlib.import_module("reviewstars.jobs.train"), "fit_kind", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(Interrupted):  # Ctrl-C, said in one line
        train("linear", tiny_data, tmp_path / "made", linear=LinearSettings(min_df=1))
    assert not (tmp_path / "made").exists()  # a folder the run made, with nothing of the user's in it, goes


def _one_label(tmp_path: Path) -> Path:
    """Data a training refuses once it has the folder's lock: a run that fails."""
    data = tmp_path / "one_label.csv"
    data.write_text("review,rating\n" + "".join(f"good food {i},5\n" for i in range(40)))
    return data


def test_a_kill_mid_swap_is_recovered_whole_before_a_run_that_then_fails(linear_folder, tmp_path):
    """Left after the swap, the old folder (it took the lock file along) holds the run's logs and
    checkpoints and the user's folders: they go back into the model folder, merged with a folder
    of the same name made meanwhile, and a run that then fails keeps them (it took them for its own)."""
    stage = linear_folder.with_name(f".{linear_folder.name}.new")
    shutil.copytree(linear_folder, stage)
    (stage / ".lock").write_text("123\n")
    for name, text in (("runs/old_run/events.out", "logs"), ("checkpoints/run.json", "{}"), ("notes/n1.txt", "one"),
                       ("my_notes/a.txt", "a")):
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_text(text)
    (linear_folder / "notes").mkdir()
    (linear_folder / "notes" / "today.txt").write_text("today")
    (linear_folder / "notes" / "n1.txt").write_text("another one")
    with pytest.raises(ReviewstarsError, match="at least two star ratings"):
        train("linear", _one_label(tmp_path), linear_folder, linear=LinearSettings(min_df=1))
    assert (linear_folder / "runs" / "old_run" / "events.out").read_text() == "logs"
    assert (linear_folder / "checkpoints" / "run.json").is_file() and (linear_folder / "my_notes" / "a.txt").is_file()
    assert {p.name: p.read_text() for p in (linear_folder / "notes").iterdir()} == {
        "today.txt": "today", "n1.txt": "another one", "n1.txt.recovered": "one"}
    assert not stage.exists() and isinstance(load_predictor(linear_folder), LinearPredictor)


def test_a_kill_just_after_the_swap_leaves_no_copy_of_the_users_files(linear_folder, tmp_path):
    """The swap links the user's files into the new folder first, so the old one, left beside it
    by a kill -9 just after the swap, holds second names of the same files: each came back as a
    NAME.recovered duplicate. A file that only looks the same (a copy) still comes back."""
    (linear_folder / "notes.txt").write_text("my notes")
    (linear_folder / "copy.txt").write_text("as it was")
    stage = linear_folder.with_name(f".{linear_folder.name}.new")
    stage.mkdir()
    artifacts.mark_ours(stage, "model")
    (stage / ".lock").write_text("123\n")  # the old folder took the lock along: this is what the kill left
    os.link(linear_folder / "notes.txt", stage / "notes.txt")
    (stage / "copy.txt").write_text("as it was")  # another file of the same bytes: the user's older version, say
    recover_stage(linear_folder)
    names = sorted(p.name for p in linear_folder.iterdir())
    assert "notes.txt.recovered" not in names and (linear_folder / "notes.txt").read_text() == "my notes"
    assert (linear_folder / "copy.txt.recovered").read_text() == "as it was" and not stage.exists()


def test_a_half_built_folder_left_by_a_kill_goes_whole(linear_folder, tiny_data):
    """Killed while building the new folder: its files (temporaries, tokenizer files of no name of
    ours) are not the user's, and were moved into the model folder for good."""
    stage = linear_folder.with_name(f".{linear_folder.name}.new")
    stage.mkdir()
    for name in ("config.json", "merges.txt", ".trained_texts.npz.99999.abcdefgh.tmp"):
        (stage / name).write_text("half")
    artifacts.mark_ours(stage, "model")  # (a model is saved with its mark before it becomes the stage)
    train("linear", tiny_data, linear_folder, linear=LinearSettings(min_df=1, C=0.2))
    assert not {"merges.txt", ".trained_texts.npz.99999.abcdefgh.tmp"} & {p.name for p in linear_folder.iterdir()}
    assert not stage.exists()


def test_a_swap_of_two_renames_killed_between_them_leaves_the_new_model_in_place(linear_folder, tmp_path):
    """Where there is no renameat2: the old folder renamed aside (.NAME.new.old), the new one
    (.NAME.new) complete but not yet in place. Both models were deleted."""
    output = tmp_path / "swapped"
    stage, old = tmp_path / ".swapped.new", tmp_path / ".swapped.new.old"
    shutil.copytree(linear_folder, stage)
    shutil.copytree(linear_folder, old)
    (old / "notes.txt").write_text("mine")
    with pytest.raises(ReviewstarsError, match="at least two star ratings"):
        train("linear", _one_label(tmp_path), output, linear=LinearSettings(min_df=1))
    assert isinstance(load_predictor(output), LinearPredictor) and (output / "notes.txt").read_text() == "mine"
    assert not stage.exists() and not old.exists()


def test_the_users_folders_left_beside_a_model_by_a_kill_mid_swap_come_back(linear_folder, tiny_data):
    """Killed between the swap and moving the user's folders over, the old folder (holding them)
    is left as `.NAME.new`; the next run put them back, where it deleted them before."""
    stage = linear_folder.with_name(f".{linear_folder.name}.new")
    shutil.copytree(linear_folder, stage)  # the old model's files ...
    (stage / "my_predictions").mkdir()
    (stage / "my_predictions" / "keep.txt").write_text("precious")  # ... and a folder of the user's, not yet moved
    (stage / "checkpoints").mkdir()
    (stage / ".lock").write_text("123\n")  # the folder's lock file went along with it in the swap
    train("linear", tiny_data, linear_folder, linear=LinearSettings(min_df=1, C=0.2))
    assert (linear_folder / "my_predictions" / "keep.txt").read_text() == "precious"
    assert not stage.exists() and load_predictor(linear_folder).settings.C == 0.2


def _watch_swaps(monkeypatch) -> dict:
    """What the folder held when it was swapped in (`seen["staged"]`, its names): by
    `replace_model_folder`, for a training and an ensemble alike."""
    folder = importlib.import_module("reviewstars.models.folder")
    seen, replace_dir = {}, folder.replace_dir

    def swap(stage, output, replaced=None):
        seen["staged"] = sorted(p.name for p in stage.iterdir())
        return replace_dir(stage, output, replaced)
    monkeypatch.setattr(folder, "replace_dir", swap)
    return seen


def test_the_settings_file_is_in_the_folder_before_it_is_swapped_in(linear_folder, tiny_data, monkeypatch):
    """Written after the swap, a kill between the two left a model without train_settings.yaml."""
    from support import run_cli

    seen = _watch_swaps(monkeypatch)
    result = run_cli("train", "--model", "linear", "--data", tiny_data, "--output", linear_folder, "--min-df", "1")
    assert result.returncode == 0, result.stderr
    assert "train_settings.yaml" in seen["staged"] and "metrics.json" in seen["staged"]


def test_an_ensemble_waits_for_no_training_and_swaps_its_folder_in_whole(linear_folder, tiny_data, tmp_path, monkeypatch):
    """An ensemble wrote into a folder a training held (the training then replaced it), and a kill
    after its save left it without metrics.json."""
    from reviewstars.jobs.ensemble import build_ensemble

    other = tmp_path / "other"
    train("linear", tiny_data, other, linear=LinearSettings(min_df=1, C=0.1))
    ensemble = tmp_path / "ensemble"
    with output_lock(ensemble):
        with pytest.raises(ReviewstarsError, match="is writing this folder"):
            build_ensemble([str(linear_folder), str(other)], DataSettings(tiny_data, dev_size=50), ensemble)
    seen = _watch_swaps(monkeypatch)
    build_ensemble([str(linear_folder), str(other)], DataSettings(tiny_data, dev_size=50), ensemble)
    assert {"config.json", "metrics.json"} <= set(seen["staged"]) and (ensemble / "metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_second_training_into_the_same_folder_fails_at_once_naming_the_first(linear_folder, tiny_data):
    with output_lock(linear_folder):
        started = subprocess.run(cli_command("train", "--model", "linear", "--data", tiny_data, "--output", linear_folder),
                                 capture_output=True, text=True, timeout=120)
    assert started.returncode == 2 and "Traceback" not in started.stderr
    assert started.stderr.strip().splitlines() == [
        f"error: --output {linear_folder}: another training (pid {os.getpid()}) is writing this folder; "
        "wait for it to end, or give another --output"]
    assert not (linear_folder / ".lock").exists()  # released and removed


def test_a_lock_left_by_a_dead_process_does_not_block(linear_folder, tiny_data):
    (linear_folder / ".lock").write_text("999999999\n")  # its process died: the kernel released its flock
    train("linear", tiny_data, linear_folder, linear=LinearSettings(min_df=1))
    assert not (linear_folder / ".lock").exists()


def test_an_output_that_is_a_file_or_a_foreign_folder_is_refused_before_any_work(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(ReviewstarsError, match=f"--output {a_file}: is a file"):
        train("linear", tmp_path / "no-such-data.csv", a_file)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ReviewstarsError, match=f"--output {foreign}: holds files that reviewstars did not write \\(cat.jpg\\)"):
        train("linear", tmp_path / "no-such-data.csv", foreign)
    assert a_file.read_text() == "mine" and [p.name for p in foreign.iterdir()] == ["cat.jpg"]


def test_a_failed_run_into_a_new_folder_leaves_no_folder(tmp_path):
    with pytest.raises(ReviewstarsError, match="no such file"):
        train("linear", tmp_path / "no-such-data.csv", tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)], ids=["022", "027"])
def test_written_files_and_folders_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "metrics.json", {})
        texts = synthetic_reviews(50)
        LinearPredictor(LinearSettings(min_df=1)).fit(texts["text"].tolist(), texts["label"].tolist()).save(tmp_path / "model")
        with FrameWriter(tmp_path / "stars.csv") as writer:
            writer.write(texts)
    finally:
        os.umask(previous)
    mode = lambda path: path.stat().st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "metrics.json") == mode(tmp_path / "stars.csv") == mode(tmp_path / "model" / "config.json") == file_mode
    assert mode(tmp_path / "model") == dir_mode


def test_a_parquet_written_in_small_pieces_is_one_row_group_with_every_row_in_order(tmp_path, monkeypatch):
    import pandas as pd
    import pyarrow.parquet as pq

    from reviewstars.data import frames

    rows = synthetic_reviews(300).assign(proba=0.5)
    with FrameWriter(tmp_path / "stars.parquet") as writer:  # as Ray's parts or predict's chunks come: a few rows each
        for start in range(0, len(rows), 7):
            piece = rows.iloc[start:start + 7]
            writer.write(piece if start else piece.astype({"proba": "float32"}))  # later pieces cast to the first's types
    assert pq.ParquetFile(tmp_path / "stars.parquet").metadata.num_row_groups == 1  # was one group a piece: 43
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "stars.parquet"),
                                  rows.astype({"proba": "float32"}).reset_index(drop=True))

    monkeypatch.setattr(frames, "ROW_GROUP_ROWS", 100)  # a big file: groups of bounded size, so memory stays bounded
    with FrameWriter(tmp_path / "big.parquet") as writer:
        for start in range(0, len(rows), 7):
            writer.write(rows.iloc[start:start + 7])
    metadata = pq.ParquetFile(tmp_path / "big.parquet").metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [100, 100, 100]
    assert pd.read_parquet(tmp_path / "big.parquet")["text"].tolist() == rows["text"].tolist()


@pytest.mark.parametrize("command", [
    ["train", "--model", "linear"], ["compare", "--models", "linear"], ["ensemble", "--models", "a,b"],
    ["export", "--model", "m"], ["merge", "part0.csv"], ["basics", "circles"], ["tokens", "growth"],
])
def test_a_command_whose_product_is_files_needs_output_and_writes_nothing_without_it(command, tmp_path, monkeypatch):
    """The README's one rule: a file is written only where --output says."""
    from typer.testing import CliRunner

    from reviewstars.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2 and "--output" in result.output
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- --resume continues only the run it names

def test_resume_with_nothing_to_resume_stops_before_any_work_and_keeps_the_folder(linear_folder, tiny_data, tmp_path):
    before = _files(linear_folder)
    with pytest.raises(ReviewstarsError, match="holds a trained linear model, which a new scratch model would replace"):
        train("scratch", tiny_data, linear_folder, transformer=TrainSettings(resume=True), scratch=TINY_SCRATCH)
    assert _files(linear_folder) == before
    with pytest.raises(ReviewstarsError, match="nothing to resume"):
        train("scratch", tiny_data, tmp_path / "new", transformer=TrainSettings(resume=True), scratch=TINY_SCRATCH)
    assert not (tmp_path / "new").exists()
    with pytest.raises(ReviewstarsError, match="trains in one call"):
        train("linear", tiny_data, linear_folder, transformer=TrainSettings(resume=True))
    assert _files(linear_folder) == before


def _started_run(tiny_data, output: Path, **scratch_changes) -> dict:
    """The settings file a scratch run into `output` writes when it starts (as if killed then)."""
    from reviewstars.jobs.guard import run_record, start_run

    record = run_record({"model": "scratch", "data": tiny_data, "transformer": fast(),
                         "kind_settings": {"scratch": tiny_scratch(**scratch_changes)}})
    start_run(output, record)
    return record


def test_resume_refuses_other_settings_than_the_run_it_continues(tiny_data, tmp_path):
    output = tmp_path / "stopped"
    _started_run(tiny_data, output)
    with pytest.raises(ReviewstarsError, match=r"started with other settings \(--width 32, not 24; --learning-rate 0.003, not 0.01\)"):
        train("scratch", tiny_data, output, transformer=fast(resume=True, learning_rate=0.01), scratch=tiny_scratch(width=24))
    with pytest.raises(ReviewstarsError, match="--seed 42, not 7\\)") as refused:  # said once, though data and Trainer both hold it
        train("scratch", DataSettings(str(tiny_data), seed=7), output, transformer=fast(resume=True), scratch=tiny_scratch())
    assert str(refused.value).count("--seed") == 1
    with pytest.raises(ReviewstarsError, match=r"other settings \(--model scratch, not minilm\); give"):  # not "--kind", no option
        train("minilm", tiny_data, output, transformer=fast(resume=True))


def test_a_max_length_not_given_is_recorded_as_not_given():
    """A folder fine-tuned without --max-length reads its own length (known once its model is
    loaded): the run's record says "not given", so the same command resumes it."""
    from reviewstars.jobs.guard import _differences, run_record

    record = run_record({"model": "scratch", "data": "reviews.csv", "transformer": fast(max_length=None),
                         "kind_settings": {"scratch": tiny_scratch()}})
    assert record["training"]["max_length"] is None
    assert _differences(record, {**record, "training": {**record["training"], "max_length": 64}}) == ["--max-length not given, not 64"]


def test_a_resume_with_another_width_names_the_width_not_the_feed_forward_it_implies():
    from reviewstars.jobs.guard import _differences, run_record
    from reviewstars.kinds.scratch import ScratchSettings

    def record(**own):
        return run_record({"model": "scratch", "data": "reviews.csv", "transformer": fast(),
                           "kind_settings": {"scratch": ScratchSettings(**own)}})

    assert _differences(record(width=128), record(width=64)) == ["--width 128, not 64"]
    assert _differences(record(width=128, feed_forward=300), record(width=64)) == ["--feed-forward 300, now not given",
                                                                                   "--width 128, not 64"]
    assert _differences(record(width=64, feed_forward=256), record(width=64)) == []  # the same network either way


def test_resume_refuses_data_edited_since_the_run_started(tiny_data, tmp_path):
    """A probe kept 150 of a file's 300 rows and resumed: the run went on, on other reviews
    and another dev slice, under the same settings."""
    import shutil

    import pandas as pd

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    output = tmp_path / "stopped"
    _started_run(data, output)
    train_file = next(data.glob("train.*"))
    frame = pd.read_parquet(train_file) if train_file.suffix == ".parquet" else pd.read_csv(train_file)
    frame.iloc[: len(frame) // 2].to_parquet(train_file) if train_file.suffix == ".parquet" else frame.iloc[: len(frame) // 2].to_csv(train_file, index=False)
    with pytest.raises(ReviewstarsError, match=rf"--resume: {train_file.name} changed since the run in .* started \(other contents"):
        train("scratch", data, output, transformer=fast(resume=True), scratch=tiny_scratch())


def test_a_finished_run_has_nothing_to_resume_and_a_new_run_replaces_its_checkpoints(tiny_data, tmp_path):
    output = tmp_path / "model"
    train("scratch", tiny_data, output, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    run = json.loads((output / "checkpoints" / "run.json").read_text())
    assert run["finished"] is True and run["kind"] == "scratch" and run["own"]["width"] == TINY_SCRATCH.width
    with pytest.raises(ReviewstarsError, match="nothing to resume in .*its run finished"):
        train("scratch", tiny_data, output, transformer=fast(resume=True), scratch=TINY_SCRATCH)
    # A stale checkpoint of an older run, numbered past this run's: a new run clears it.
    stale = output / "checkpoints" / "checkpoint-99999"
    (output / "checkpoints" / next(p.name for p in (output / "checkpoints").glob("checkpoint-*"))).rename(stale)
    train("scratch", tiny_data, output, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    assert not stale.exists() and any((output / "checkpoints").glob("checkpoint-*"))


def test_a_finished_run_removes_its_checkpoints_unless_asked_to_keep_them(tiny_data, tmp_path):
    """Nothing can resume a finished run, and its checkpoints weigh 3x its model (MiniLM: 261 MB
    beside 87): they go once the model is written. A run stopped before that keeps them."""
    output = tmp_path / "model"
    train("scratch", tiny_data, output, transformer=fast(), scratch=TINY_SCRATCH)
    checkpoints = output / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["plan.json", "run.json"]
    assert json.loads((checkpoints / "run.json").read_text())["finished"] is True
    with pytest.raises(ReviewstarsError, match="nothing to resume in .*its run finished"):
        train("scratch", tiny_data, output, transformer=fast(resume=True), scratch=TINY_SCRATCH)
    assert load_predictor(output).predict(["great food"]).shape == (1,)
    kept = tmp_path / "kept"
    train("scratch", tiny_data, kept, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    assert any((kept / "checkpoints").glob("checkpoint-*/trainer_state.json")) and (kept / "checkpoints" / "vocabulary").is_dir()


def test_a_new_run_stopped_before_its_first_checkpoint_gives_back_the_finished_run(tiny_data, tmp_path, monkeypatch):
    """Stopped before it learned its own vocabulary, a new run with --vocab-size 300 once resumed
    with the finished run's 200-piece one. Then a stopped run deleted the finished run's kept
    checkpoints and left its own record beside that run's model. Now the finished run, whose
    model the folder still holds, gets its checkpoints and record back, and a --resume is
    refused as for any finished run: nothing of it mixes with a new one."""
    import reviewstars.jobs.context as context
    from reviewstars.jobs.guard import REPLACED_RUN, settle_replaced_run

    output = tmp_path / "model"
    train("scratch", tiny_data, output, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    checkpoints = output / "checkpoints"
    finished = {p.name: p.stat().st_ino for p in checkpoints.iterdir()}
    record = (checkpoints / "run.json").read_text()
    assert "vocabulary" in finished and any(name.startswith("checkpoint-") for name in finished)

    def stopped(*_args, **_kwargs):
        raise KeyboardInterrupt
    with monkeypatch.context() as patch:
        patch.setattr(context.RunContext, "splits", stopped)
        with pytest.raises(Interrupted, match="before the model was written"):  # Ctrl-C, said in one line
            train("scratch", tiny_data, output, transformer=fast(), scratch=tiny_scratch(vocab_size=300))
    assert {p.name: p.stat().st_ino for p in checkpoints.iterdir()} == finished and (checkpoints / "run.json").read_text() == record
    with pytest.raises(ReviewstarsError, match="nothing to resume in .*its run finished"):
        train("scratch", tiny_data, output, transformer=fast(resume=True), scratch=tiny_scratch(vocab_size=300))

    # kill -9 right after a new run set the finished one aside: the next run puts it back first
    _started_run(tiny_data, output, vocab_size=300)
    assert (checkpoints / REPLACED_RUN).is_dir() and "vocabulary" not in {p.name for p in checkpoints.iterdir()}
    settle_replaced_run(output)
    assert {p.name: p.stat().st_ino for p in checkpoints.iterdir()} == finished and (checkpoints / "run.json").read_text() == record

    # a new run that finishes replaces the finished one for good
    train("scratch", tiny_data, output, transformer=fast(), scratch=tiny_scratch(vocab_size=300))
    assert sorted(p.name for p in checkpoints.iterdir()) == ["plan.json", "run.json"]
    assert json.loads((checkpoints / "run.json").read_text())["own"]["vocab_size"] == 300


class Killed(BaseException):
    """kill -9, as far as the folder can tell: nothing after it runs."""


def test_a_kill_at_any_rename_of_setting_a_run_aside_or_putting_it_back_loses_nothing(tiny_data, tmp_path, monkeypatch):
    """A probe killed the put-back at its 3rd and 4th rename: the next run took the finished
    run's files already back for the new run's and deleted them, or found a checkpoint already
    back and dropped the rest (run.json among them)."""
    from reviewstars.jobs.guard import settle_replaced_run

    output = tmp_path / "model"
    train("scratch", tiny_data, output, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    checkpoints = output / "checkpoints"
    finished = {p.name: p.stat().st_ino for p in checkpoints.iterdir()}
    renames = os.replace

    def killed_at(n):
        calls = iter(range(10_000))

        def replace(*args, **kwargs):
            if next(calls) == n:
                raise Killed
            return renames(*args, **kwargs)
        return replace

    for step in ("setting aside", "putting back"):
        for n in range(len(finished) + 3):
            with monkeypatch.context() as patch:
                if step == "setting aside":
                    patch.setattr(os, "replace", killed_at(n))
                try:
                    _started_run(tiny_data, output, vocab_size=300)
                    if step == "putting back":
                        patch.setattr(os, "replace", killed_at(n))
                        settle_replaced_run(output)
                except Killed:
                    pass
            settle_replaced_run(output)  # the next run, first thing
            assert {p.name: p.stat().st_ino for p in checkpoints.iterdir()} == finished, (step, n)


@pytest.mark.parametrize("theirs", ["file", "folder", "link"])
def test_a_name_of_the_users_where_a_run_is_set_aside_is_refused_and_left_alone(tiny_data, tmp_path, theirs):
    """The probe's `.replaced` of its own: a file was a traceback; a folder's files went into
    checkpoints/ and then away; a link's target lost its files."""
    from reviewstars.jobs.guard import REPLACED_RUN

    output = tmp_path / "model"
    train("scratch", tiny_data, output, transformer=fast(), scratch=TINY_SCRATCH)
    mine, aside = tmp_path / "mine", output / "checkpoints" / REPLACED_RUN
    mine.mkdir()
    (mine / "precious.txt").write_text("mine")
    {"file": lambda: aside.write_text("mine"), "folder": lambda: shutil.copytree(mine, aside),
     "link": lambda: aside.symlink_to(mine)}[theirs]()
    before = _files(output)
    with pytest.raises(ReviewstarsError, match=r"\.replaced: not one of ours, .*move it away"):
        train("scratch", tiny_data, output, transformer=fast(), scratch=tiny_scratch(width=48))
    assert _files(output) == before and (mine / "precious.txt").read_text() == "mine"


def test_a_checkpoints_link_to_nowhere_is_one_line_before_any_work(tiny_data, tmp_path):
    """A probe's `checkpoints` linked to a folder since removed: a FileExistsError traceback."""
    output = tmp_path / "model"
    output.mkdir()
    (output / "checkpoints").symlink_to(tmp_path / "gone")
    with pytest.raises(ReviewstarsError, match=r"checkpoints: a link to .*gone, which is not there: create that folder, or remove the link"):
        train("scratch", tiny_data, output, transformer=fast(), scratch=TINY_SCRATCH)
    assert (output / "checkpoints").is_symlink() and not (tmp_path / "gone").exists()


def test_paths_typed_another_way_are_the_same_run(tiny_data, tmp_path, monkeypatch):
    from reviewstars.jobs.guard import run_record

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(tiny_data)
    given = {"model": "scratch", "transformer": fast(), "kind_settings": {"scratch": tiny_scratch()}}
    assert run_record({**given, "data": "data"}) == run_record({**given, "data": str(tmp_path / "data")}) \
        == run_record({**given, "data": "./data"})


def test_a_second_training_into_a_folder_still_training_is_told_so_not_to_resume(tiny_data, tmp_path):
    output = tmp_path / "busy"
    train("scratch", tiny_data, output, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    (output / "config.json").unlink()  # as a run that is still training
    run = output / "checkpoints" / "run.json"
    run.write_text(json.dumps({k: v for k, v in json.loads(run.read_text()).items() if k != "finished"}))
    script = f"from pathlib import Path; from reviewstars.jobs.guard import output_lock; import time\nwith output_lock(Path({str(output)!r})): time.sleep(30)"
    holder = subprocess.Popen([*cli_command()[:1], "-c", script])
    try:
        deadline = time.time() + 20
        while not (output / ".lock").exists() or not (output / ".lock").read_text().strip():
            assert time.time() < deadline
            time.sleep(0.1)
        with pytest.raises(ReviewstarsError, match="another training .* is writing this folder"):
            train("scratch", tiny_data, output, transformer=fast(), scratch=TINY_SCRATCH)
    finally:
        holder.kill()
        holder.wait()


def test_a_new_run_over_an_interrupted_one_says_to_resume_it(tiny_data, tmp_path):
    output = tmp_path / "stopped"
    train("scratch", tiny_data, output, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    (output / "config.json").unlink()  # as a run stopped before its model was written
    run = output / "checkpoints" / "run.json"
    run.write_text(json.dumps({k: v for k, v in json.loads(run.read_text()).items() if k != "finished"}))
    before = _files(output)
    with pytest.raises(ReviewstarsError, match=r"an interrupted run's checkpoint is there \(checkpoint-\d+\); add --resume"):
        train("scratch", tiny_data, output, transformer=fast(), scratch=TINY_SCRATCH)
    with pytest.raises(ReviewstarsError, match=r"an interrupted run's checkpoint is there"):  # a linear model would take them too
        train("linear", tiny_data, output)
    assert _files(output) == before


def test_predict_writes_over_its_own_predictions_but_never_a_file_of_the_users(linear_model, tiny_data, tmp_path):
    from reviewstars.jobs import predict_file

    source = tiny_data / "validation.parquet"
    mine = tmp_path / "notes.csv"
    mine.write_text("my,own\nnotes,here\n")
    with pytest.raises(ReviewstarsError, match="a file that is not predictions is already there"):
        predict_file(linear_model, source, mine)
    assert mine.read_text() == "my,own\nnotes,here\n"
    rated = tmp_path / "rated.csv"
    predict_file(linear_model, source, rated)
    predict_file(linear_model, source, rated)  # a rerun replaces its own output
    (tmp_path / "empty.jsonl").touch()
    predict_file(linear_model, source, tmp_path / "empty.jsonl")
    assert len(rated.read_text().splitlines()) == 151


def test_two_predicts_into_one_output_never_mix_their_models(linear_model, tiny_data, tmp_path):
    """The second run took the first's kept parts for its own: the first exited 0 with the other
    model's predictions in most of its rows, the second with a traceback. Now the second stops
    at once, naming the first."""
    from reviewstars.jobs import predict_file
    from reviewstars.jobs.guard import output_file_lock

    rated = tmp_path / "rated.csv"
    with output_file_lock(rated, "predict"):
        with pytest.raises(ReviewstarsError, match=rf"--output {rated}: another predict \(pid {os.getpid()}\) is writing it"):
            predict_file(linear_model, tiny_data / "validation.parquet", rated)
    assert not rated.exists() and not (tmp_path / ".rated.csv.partial").exists()
    predict_file(linear_model, tiny_data / "validation.parquet", rated)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rated.csv"]  # no lock or part left


def test_a_run_from_before_run_json_is_finished_only_if_its_model_came_after_its_last_checkpoint(tiny_data, tmp_path):
    from reviewstars.jobs.guard import run_state

    output = tmp_path / "old"
    train("scratch", tiny_data, output, transformer=fast(keep_checkpoints=True), scratch=TINY_SCRATCH)
    (output / "checkpoints" / "run.json").unlink()  # as a folder written before the run's settings were kept
    state, last = run_state(output)
    assert state == "finished"
    later = (output / "config.json").stat().st_mtime + 60  # a retraining over the model, stopped after a checkpoint
    os.utime(Path(last) / "trainer_state.json", (later, later))
    assert run_state(output)[0] == "interrupted"


def test_a_write_error_names_its_file_only_when_it_has_an_errno(tmp_path):
    import errno

    from reviewstars.artifacts import _naming

    named = _naming(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "out.csv")
    assert named.filename == str(tmp_path / "out.csv")
    plain = _naming(OSError("the reader's own words"), tmp_path / "out.csv")
    assert str(plain) == "the reader's own words"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder no file can be created in")
def test_a_folder_no_file_can_be_created_in_is_not_a_run_holding_the_lock(linear_model, tmp_path):
    """`-o /proc/out.csv` said "another predict (pid unknown) is writing it": filelock times out there too."""
    from reviewstars.jobs import predict_file

    source = tmp_path / "two.csv"
    source.write_text("text\ngood food\nawful\n")
    with pytest.raises(ReviewstarsError, match=r"--output /proc/out.csv: cannot write there \(no file can be created in /proc\)"):
        predict_file(linear_model, source, Path("/proc/out.csv"))


def test_an_empty_shard_output_in_json_lines_is_its_own_to_replace(linear_model, tmp_path):
    from reviewstars.jobs import predict_file

    source = tmp_path / "two.jsonl"
    source.write_text('{"text": "good food"}\n{"text": "awful"}\n')
    for _ in range(2):  # shard 1 of 4 gets no rows: its output is one empty line
        predict_file(linear_model, source, tmp_path / "shard1.jsonl", shard="1/4")


def test_a_temporary_file_left_by_a_killed_writer_goes_with_the_next_write(tmp_path):
    """`kill -9` mid-write left `.stars.csv.<random>.tmp` (50 MB) beside the output for good."""
    dead = next(pid for pid in range(4_000_000, 4_100_000) if not artifacts._alive(pid))
    output = tmp_path / "stars.csv"
    stale = tmp_path / f".stars.csv.{dead}.x1y2z3w4.tmp"
    stale.write_bytes(b"half" * 1000)
    mine = tmp_path / f".stars.csv.{os.getpid()}.a1b2.tmp"  # a write of this very process, in flight
    mine.write_bytes(b"in flight")
    folder = tmp_path / f".stars.csv.{dead}.dir.tmp"  # a folder is never taken: it may be an old model holding the user's
    folder.mkdir()
    other = tmp_path / f".other.csv.{dead}.x1y2.tmp"  # another file's: not this write's business
    other.write_bytes(b"x")
    dated = tmp_path / f".stars.csv.2024.{os.getpid()}.a1b2c3d4.tmp"  # of `stars.csv.2024`, whose 2024 is no pid
    dated.write_bytes(b"in flight")
    artifacts.write_text(output, "text,stars\n")
    assert not stale.exists() and mine.exists() and folder.is_dir() and other.exists() and dated.exists()
    assert output.read_text() == "text,stars\n"


def test_a_staging_folder_left_by_a_killed_writer_goes_with_the_next_model_written_there_unless_it_may_hold_the_users(tmp_path):
    """An export killed with `kill -9` left `.OUT.PID.xxxxxxxx.tmp` (its half-written graph) for good."""
    from reviewstars.models.folder import model_folder

    dead = next(pid for pid in range(4_000_000, 4_100_000) if not artifacts._alive(pid))
    output = tmp_path / "exported"
    half_built = tmp_path / f".exported.{dead}.abcd1234.tmp"
    half_built.mkdir()
    (half_built / "model.fp32.onnx").write_bytes(b"half a graph")
    (half_built / f".config.json.{dead}.x1y2z3w4.tmp").write_bytes(b"{")
    old_with_users = tmp_path / f".exported.{dead}.efgh5678.tmp"  # killed mid-swap: the old folder, a folder of the user's in it
    (old_with_users / "predictions").mkdir(parents=True)
    with model_folder(output) as stage:
        (stage / "config.json").write_text("{}")
    assert not half_built.exists() and (old_with_users / "predictions").is_dir() and (output / "config.json").is_file()


def test_a_named_pipe_is_not_replaced_by_a_file(linear_model, tiny_data, tmp_path):
    from reviewstars.jobs import predict_file

    pipe = tmp_path / "stars.csv"
    os.mkfifo(pipe)
    with pytest.raises(ReviewstarsError, match="is not a regular file"):
        predict_file(linear_model, tiny_data / "validation.parquet", pipe)
    assert pipe.is_fifo()


def test_a_full_disk_during_predict_keeps_the_rows_rated_to_go_on_later(linear_model, tiny_data, tmp_path, monkeypatch):
    import errno

    from reviewstars.jobs import predict_file

    partial = importlib.import_module("reviewstars.jobs.partial")
    real, written = partial.write_part, []

    def fills_up(folder, frame, start):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(folder))
        written.append(start)
        return real(folder, frame, start)
    monkeypatch.setattr(partial, "write_part", fills_up)
    output = tmp_path / "stars.csv"
    with pytest.raises(ReviewstarsError, match=r"no space left on the device; 50 of 150 rows are rated and kept in .*\.stars\.csv\.partial: "
                                               "free some space and run the same command again"):
        predict_file(linear_model, tiny_data / "validation.parquet", output, chunk_rows=50)
    monkeypatch.setattr(partial, "write_part", real)
    summary = predict_file(linear_model, tiny_data / "validation.parquet", output, chunk_rows=50)
    assert summary["rated"] == 100 and summary["rows"] == 150


def test_a_lesson_plot_does_not_replace_another_commands_plot(linear_model, tmp_path):
    """`tokens growth --output MODEL/confusion_matrix.png` replaced a model folder's plot (any PNG
    of ours was taken as its own); a plot is this command's when its numbers beside it are."""
    from support import run_cli

    folder = tmp_path / "model"
    shutil.copytree(linear_model, folder)
    from reviewstars.presentation.plots import plot_confusion_matrix

    plot = plot_confusion_matrix([[1, 0], [0, 1]], folder / "confusion_matrix.png")
    before = plot.read_bytes()
    quick = ("--points", "100", "--epochs", "20", "--restarts", "1")
    refused = run_cli("basics", "circles", *quick, "--output", plot)
    assert refused.returncode == 2 and "a plot of ours" in " ".join(refused.stderr.split()) and plot.read_bytes() == before
    assert not plot.with_suffix(".json").exists()
    mine = tmp_path / "circles.png"
    assert run_cli("basics", "circles", *quick, "--output", mine).returncode == 0
    again = run_cli("basics", "circles", *quick, "--output", mine)  # a rerun replaces its own plot and numbers
    assert again.returncode == 0, again.stderr


def test_a_folder_of_the_users_named_like_a_models_stage_is_never_removed(linear_folder, tiny_data):
    """`.NAME.new` beside the output was taken for a half-built model and removed whole."""
    from reviewstars.jobs.guard import stage_of

    mine = stage_of(linear_folder)
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ReviewstarsError, match=r"\.new: in the way of the new model folder \(not one of ours\): move it away"):
        train("linear", tiny_data, linear_folder)
    assert (mine / "notes.txt").read_text() == "mine" and load_predictor(linear_folder) is not None


def test_a_place_nothing_can_be_written_is_one_line_before_any_work_naming_the_output(linear_model, tiny_data, tmp_path, monkeypatch):
    """evaluate, export and merge found a read-only --output only once the work was done, and
    named the hidden temporary beside it."""
    import errno

    from reviewstars.jobs import evaluate

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(artifacts.os, "access", lambda path, mode: False if Path(path) == locked else real_access(path, mode))
    monkeypatch.setattr(artifacts, "_read_only", lambda folder: True)
    scored = []
    monkeypatch.setattr(importlib.import_module("reviewstars.jobs.evaluate"), "evaluate_predictor", lambda *a, **k: scored.append(1))
    with pytest.raises(ReviewstarsError, match=rf"--output {locked / 'e.json'}: cannot write there \({locked}: a read-only file system\)"):
        evaluate(linear_model, tiny_data, output=locked / "e.json")
    with pytest.raises(ReviewstarsError, match=rf"--output {locked / 'model'}: cannot write there \({locked}: a read-only"):
        train("linear", tiny_data, locked / "model")
    assert not scored and not any(locked.iterdir())
    error = artifacts._naming(OSError(errno.EROFS, "Read-only file system", str(locked / ".e.json.123.abcdefgh.tmp")), locked / "e.json")
    assert error.filename == str(locked / "e.json")


def test_the_scores_and_their_plot_are_replaced_together_or_not_at_all(linear_model, tiny_data, tmp_path, monkeypatch):
    """A full disk between the two left a JSON of one evaluation beside the plot of another."""
    import errno

    from reviewstars.jobs import evaluate
    from reviewstars.presentation import plots

    output = tmp_path / "scores.json"
    evaluate(linear_model, tiny_data, split="train", output=output)
    before = output.read_bytes(), output.with_suffix(".confusion.png").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "plot_confusion_matrix", full)
    with pytest.raises(OSError):
        evaluate(linear_model, tiny_data, split="validation", output=output)
    assert (output.read_bytes(), output.with_suffix(".confusion.png").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.confusion.png", "scores.json"]


def test_a_new_model_replaces_what_the_old_ones_mark_lists_not_every_name_of_ours(tmp_path):
    """Re-exporting an ONNX folder took the user's metrics.json there: a name of ours, which an export never writes."""
    from reviewstars.artifacts import mark_ours
    from reviewstars.models.folder import replace_model_folder

    def folder(name: str, files: dict[str, str], listed: bool) -> Path:
        path = tmp_path / name
        path.mkdir()
        for file, text in files.items():
            (path / file).write_text(text)
        mark_ours(path, "model", files=listed)
        return path

    exported = {"config.json": "{}", "model.onnx": "old"}
    output = folder("onnx", exported, listed=True)
    (output / "metrics.json").write_text('{"my_own_scores": [1, 2, 3]}')  # the user's, written after the export
    (output / "compare_scores.json").write_text("{}")  # ours, kept beside the model after its mark: goes with the model
    replace_model_folder(folder("stage", {**exported, "model.onnx": "new"}, listed=False), output)
    assert (output / "model.onnx").read_text() == "new" and not (output / "compare_scores.json").exists()
    assert (output / "metrics.json").read_text() == '{"my_own_scores": [1, 2, 3]}'

    legacy = folder("legacy", {**exported, "metrics.json": "{}"}, listed=False)  # a mark that lists nothing: ours by name
    replace_model_folder(folder("stage2", exported, listed=False), legacy)
    assert not (legacy / "metrics.json").exists()
