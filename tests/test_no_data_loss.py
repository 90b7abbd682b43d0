"""Nothing of the user's is ever deleted or written over: every command writes only into a
folder it created or that bears the mark of what reviewstars wrote, and never over one of
its own inputs (the data, a model it reads, an ensemble's member, a shard, the file the
shards rated). Each case is a hostile one found by a probe of the output rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from reviewstars.artifacts import OWNER_FILE
from reviewstars.errors import ModelError, ReviewstarsError
from reviewstars.jobs import evaluate, merge_predictions, predict_file, train
from reviewstars.jobs.ensemble import build_ensemble
from reviewstars.data import DataSettings
from reviewstars.models import LinearPredictor, load_predictor
from reviewstars.models.linear import LinearSettings

from conftest import synthetic_reviews

LINEAR = {"linear": LinearSettings(min_df=1)}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's project: a config.json of their own (not a model), and their source code."""
    folder = tmp_path / "proj"
    (folder / "src").mkdir(parents=True)
    (folder / "config.json").write_text('{"name": "my-app"}')
    (folder / "src" / "main.py").write_text("print('mine')\n")
    return folder


@pytest.fixture
def model(tiny_data, tmp_path) -> Path:
    folder = tmp_path / "model"
    train("linear", tiny_data, folder, **LINEAR)
    return folder


def test_a_folder_with_a_config_json_of_its_own_is_not_a_model_folder_and_is_refused(tiny_data, project):
    before = _snapshot(project)
    with pytest.raises(ReviewstarsError, match=r"holds files that reviewstars did not write \(config.json, src\)"):
        train("linear", tiny_data, project, **LINEAR)
    assert _snapshot(project) == before


def test_retraining_a_model_folder_keeps_the_users_own_files_and_replaces_ours(model, tiny_data):
    (model / "notes.txt").write_text("my notes")
    (model / "predictions").mkdir()
    (model / "predictions" / "june.csv").write_text("text,stars\n")
    train("linear", tiny_data / "train.parquet", model, linear=LinearSettings(min_df=1, C=0.5))
    assert (model / "notes.txt").read_text() == "my notes" and (model / "predictions" / "june.csv").is_file()
    assert json.loads((model / "metrics.json").read_text())["split"] == "held-out"  # the new model's, not the old one's
    assert load_predictor(model).settings.C == 0.5 and json.loads((model / OWNER_FILE).read_text())["what"] == "model"


def test_retraining_keeps_files_of_the_users_named_like_ours_and_replaces_all_the_old_model_wrote(model, tiny_data):
    """Patterns took a user's `backup.safetensors` and `compare_scores.xlsx` for files of ours."""
    mine = {"backup.safetensors": b"the weights I kept", "compare_scores.xlsx": b"my sheet", "dev_scores.txt": b"mine",
            "chat_template.txt": b"mine too", "model-1-of-2.safetensors": b"not transformers' name"}
    for name, content in mine.items():
        (model / name).write_bytes(content)
    mark = json.loads((model / OWNER_FILE).read_text())
    assert {"config.json", "linear.npz", "metrics.json", "README.md"} <= set(mark["files"]) and not set(mine) & set(mark["files"])
    (model / "merges.txt").write_text("an old tokenizer's merges")  # written by an earlier model of ours, as its mark says
    (model / OWNER_FILE).write_text(json.dumps({**mark, "files": [*mark["files"], "merges.txt"]}))
    train("linear", tiny_data, model, linear=LinearSettings(min_df=1, C=0.5))
    assert {name: (model / name).read_bytes() for name in mine} == mine
    assert not (model / "merges.txt").exists() and load_predictor(model).settings.C == 0.5


def test_a_model_folder_written_before_the_mark_is_still_ours(model, tiny_data):
    (model / OWNER_FILE).unlink()  # as trained by an earlier version
    (model / "notes.txt").write_text("my notes")
    train("linear", tiny_data, model, **LINEAR)
    assert (model / "notes.txt").read_text() == "my notes" and (model / OWNER_FILE).is_file()


def test_a_model_is_never_trained_into_the_folder_it_fine_tunes_or_its_data(model, tiny_data, tmp_path):
    data_folder = tmp_path / "data"
    shutil.copytree(tiny_data, data_folder)
    before = _snapshot(data_folder)
    with pytest.raises(ReviewstarsError, match="which this command reads"):
        train("linear", data_folder, data_folder / "model", **LINEAR)
    with pytest.raises(ReviewstarsError, match=f"--output {data_folder}: is {data_folder}"):
        train("linear", data_folder, data_folder, **LINEAR)
    train_file = next(data_folder.glob("train.*")).resolve()  # a probe's "--output /: holds stars300.csv", which / does not hold
    with pytest.raises(ReviewstarsError, match=f"--output {tmp_path}: holds {train_file}, which this command reads"):
        train("linear", str(train_file), tmp_path, **LINEAR)
    assert _snapshot(data_folder) == before


@pytest.mark.parametrize("given", [".", "", ".."])
def test_the_folder_a_command_runs_in_is_never_swapped_out_under_it(tiny_data, tmp_path, monkeypatch, given):
    """`train --output .` in an empty folder wrote the model aside and swapped it in: the shell
    was left in a folder deleted under it (`ls` showed nothing, `predict --model .` found no model)."""
    here = tmp_path / "work" / "here"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    with pytest.raises(ReviewstarsError, match=r"the folder this command runs in, which writing the model replaces whole"):
        train("linear", tiny_data, given, **LINEAR)
    assert here.is_dir() and not any(here.iterdir()) and Path.cwd().samefile(here)


def test_saving_a_model_over_a_folder_of_the_users_fails_in_one_line(project):
    texts = synthetic_reviews(50)
    predictor = LinearPredictor(LinearSettings(min_df=1)).fit(texts["text"].tolist(), texts["label"].tolist())
    before = _snapshot(project)
    with pytest.raises(ModelError, match="holds files that reviewstars did not write"):
        predictor.save(project)
    assert _snapshot(project) == before


def test_an_ensemble_is_never_written_over_one_of_its_members(model, tiny_data, tmp_path):
    other = tmp_path / "other"
    train("linear", tiny_data, other, linear=LinearSettings(min_df=1, C=0.3))
    before = _snapshot(model)
    with pytest.raises(ReviewstarsError, match=f"--output {model}: is {model}, which this command reads"):
        build_ensemble([str(model), str(other)], DataSettings(tiny_data, dev_size=50), model)
    assert _snapshot(model) == before


@pytest.fixture
def shards(model, tmp_path):
    source = tmp_path / "reviews.csv"
    synthetic_reviews(30, seed=4)[["text"]].to_csv(source, index=False)
    parts = [tmp_path / f"part{i}.csv" for i in range(2)]
    for i, part in enumerate(parts):
        predict_file(model, source, part, shard=f"{i}/2")
    return source, parts


def test_merge_never_writes_over_a_part_its_record_or_the_file_the_shards_rated(shards, tmp_path):
    source, parts = shards
    kept = {path: path.read_bytes() for path in (source, *parts)}
    for output, why in ((parts[0], "is .*part0.csv, which this command reads"),
                        (parts[1].with_name(parts[1].name + ".shard.json"), "which this command reads"),
                        (source, "is the file the shards rated")):
        with pytest.raises(ReviewstarsError, match=why):
            merge_predictions(parts, output)
    copy = tmp_path / "elsewhere" / "reviews.csv"  # the same input under another name is still the input
    copy.parent.mkdir()
    shutil.copy(source, copy)
    with pytest.raises(ReviewstarsError, match="is the file the shards rated"):
        merge_predictions(parts, copy)
    assert {path: path.read_bytes() for path in kept} == kept and copy.read_bytes() == kept[source]
    assert merge_predictions(parts, tmp_path / "merged.csv")["rows"] == 30


def test_evaluate_and_predict_never_write_over_what_they_read(model, tiny_data, tmp_path):
    before = _snapshot(model)
    with pytest.raises(ReviewstarsError, match="is a name of the files .*model loads or keeps .*, which this command reads"):
        evaluate(model, tiny_data, output=model / "metrics.json")
    with pytest.raises(ReviewstarsError, match="is a name of the files .*model loads or keeps"):
        evaluate(model, tiny_data, output=model / "config.json")
    for loaded in ("vocab.json", "tokenizer.json", "added_tokens.json", "Special_Tokens_Map.JSON"):  # new, but a loader would read them
        with pytest.raises(ReviewstarsError, match="is a name of the files .*model loads or keeps"):
            evaluate(model, tiny_data, output=model / loaded)
    (model / "notes.json").write_text('{"my": "notes"}')
    with pytest.raises(ReviewstarsError, match="is a file of .*model, which this command reads"):
        evaluate(model, tiny_data, output=model / "notes.json")  # a file of the user's beside the model
    source = tmp_path / "reviews.csv"
    synthetic_reviews(10)[["text"]].to_csv(source, index=False)
    with pytest.raises(ReviewstarsError, match="which this command reads"):
        predict_file(model, source, source)
    (model / "notes.json").unlink()
    assert _snapshot(model) == before
    # New files of this command's beside the model are fine, and so is the rerun that writes them again (it was refused)
    for _ in range(2):
        assert evaluate(model, tiny_data, output=model / "validation.json").accuracy > 0.2
        assert predict_file(model, source, model / "stars.csv")["rows"] == 10
    assert json.loads((model / "validation.json").read_text())["n"] > 0 and len(pd.read_csv(model / "stars.csv")) == 10


def test_compare_and_export_refuse_a_folder_of_the_users_before_any_work(model, project, tiny_data):
    from reviewstars.jobs.compare import compare

    before = _snapshot(project)
    with pytest.raises(ReviewstarsError, match="for the comparison"):
        compare(tiny_data, project, ["linear"])
    with pytest.raises(ReviewstarsError, match="for the comparison"):
        compare(tiny_data, model, ["linear"])  # a model folder is ours, but not a comparison
    assert _snapshot(project) == before


def test_export_refuses_the_model_it_exports_as_its_output(model):
    pytest.importorskip("onnxruntime")
    from reviewstars.models.onnx import export_onnx

    before = _snapshot(model)
    with pytest.raises(ReviewstarsError, match="which this command reads"):
        export_onnx(model, model)
    assert _snapshot(model) == before


def test_predict_output_without_file_is_refused(model, tmp_path):
    from typer.testing import CliRunner

    from reviewstars.cli import app

    result = CliRunner().invoke(app, ["predict", "--model", str(model), "--output", str(tmp_path / "x.csv"), "good food"])
    assert isinstance(result.exception, ReviewstarsError) and "--output needs --file" in str(result.exception)
    assert not (tmp_path / "x.csv").exists()


# --------------------------------------------------------------------------- a file of the user's under an output's name

def _users_files(tmp_path: Path) -> dict[str, bytes]:
    """Files of the user's that happen to have the names a command was told to write."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    plt.plot([0, 1])
    figure.savefig(tmp_path / "photo.png")  # a PNG of the user's, drawn by matplotlib too
    plt.close(figure)
    (tmp_path / "notes.json").write_text('{"todo": ["call mum"]}')
    (tmp_path / "notes.confusion.png").write_bytes((tmp_path / "photo.png").read_bytes())
    return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}


def test_json_and_png_outputs_never_replace_a_file_of_the_users_but_do_replace_their_own(model, tiny_data, tmp_path, vocabulary):
    from support import run_cli

    users = _users_files(tmp_path)
    refusals = [
        (("evaluate", "--model", model, "--data", tiny_data, "-o", tmp_path / "notes.json"), "notes.json: a file that is not scores"),
        (("data", "stats", "--data", tiny_data, "-o", tmp_path / "notes.json"), "notes.json: a file that is not data statistics"),
        (("tokens", "explore", "--data", tiny_data, "--tokenizer", vocabulary, "--top", 50, "-o", tmp_path / "notes.json"),
         "notes.json: a file that is not findings"),
        (("tokens", "growth", "--data", tiny_data, "--tokenizer", vocabulary, "-o", tmp_path / "photo.png"),
         "photo.png: a file that is not a plot of ours"),
        (("tokens", "growth", "--data", tiny_data, "--tokenizer", vocabulary, "-o", tmp_path / "notes.png"),
         "notes.json: a file that is not numbers of ours"),
        (("basics", "circles", "--points", 20, "--epochs", 1, "--restarts", 1, "-o", tmp_path / "photo.png"),
         "photo.png: a file that is not a plot of ours"),
    ]
    for args, message in refusals:
        done = run_cli(*args)
        assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    # evaluate's confusion matrix goes beside its JSON: that PNG is checked before any work as well
    (tmp_path / "notes.json").unlink()
    done = run_cli("evaluate", "--model", model, "--data", tiny_data, "-o", tmp_path / "notes.json")
    assert done.returncode != 0 and "notes.confusion.png: a file that is not a plot of ours" in done.stderr
    assert not (tmp_path / "notes.json").exists()
    (tmp_path / "notes.json").write_bytes(users["notes.json"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == users

    # a rerun replaces what the command wrote itself (and an empty file is nobody's)
    (tmp_path / "empty.json").touch()
    for args in (("evaluate", "--model", model, "--data", tiny_data, "-o", tmp_path / "scores.json"),
                 ("data", "stats", "--data", tiny_data, "-o", tmp_path / "empty.json"),
                 ("tokens", "growth", "--data", tiny_data, "--tokenizer", vocabulary, "-o", tmp_path / "growth.png"),
                 ("basics", "circles", "--points", 20, "--epochs", 1, "--restarts", 1, "-o", tmp_path / "circles.png")):
        for attempt in range(2):
            done = run_cli(*args)
            assert done.returncode == 0, (args, attempt, done.stderr)
    assert json.loads((tmp_path / "empty.json").read_text())["train"]["rows"] > 0
    assert json.loads((tmp_path / "scores.json").read_text())["accuracy"] > 0.2


def test_an_output_in_a_folder_the_command_reads_never_takes_a_name_it_loads_and_reruns_as_it_ran(tiny_data, vocabulary, tmp_path):
    """`tokens growth -o TOKENIZER/vocab.png` put a vocab.json beside a BERT tokenizer's vocab.txt
    (a name other tokenizers load); and the rerun of `data stats -o DATA/stats.json`, fine the
    first time, was refused as writing over an input."""
    from support import run_cli

    tokenizer = tmp_path / "tokenizer"
    shutil.copytree(vocabulary, tokenizer)
    before = _snapshot(tokenizer)
    done = run_cli("tokens", "growth", "--data", tiny_data, "--tokenizer", tokenizer, "-o", tokenizer / "vocab.png")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"--output's JSON {tokenizer / 'vocab.json'}: is a name of the files {tokenizer} loads or keeps" in done.stderr
    assert _snapshot(tokenizer) == before

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    for attempt in range(2):
        done = run_cli("data", "stats", "--data", data, "-o", data / "stats.json")
        assert done.returncode == 0 and "Traceback" not in done.stderr, (attempt, done.stderr)
    assert json.loads((data / "stats.json").read_text())["train"]["rows"] == 400


def test_a_png_is_ours_only_when_reviewstars_drew_it(tmp_path):
    from reviewstars.artifacts import png_of_ours
    from reviewstars.presentation.plots import plot_confusion_matrix

    users = _users_files(tmp_path)
    assert not png_of_ours(tmp_path / "photo.png") and not png_of_ours(tmp_path / "notes.json")
    assert png_of_ours(plot_confusion_matrix([[1, 0], [0, 1]], tmp_path / "ours.png"))
    (tmp_path / "cut.png").write_bytes(users["photo.png"][:20])  # cut short: not a PNG anything can say more of
    assert not png_of_ours(tmp_path / "cut.png")


def test_compare_never_writes_into_a_model_it_scores_or_the_tokenizer_it_reads(model, tiny_data, vocabulary, tmp_path):
    from reviewstars.jobs.compare import compare
    from reviewstars.kinds.scratch import ScratchSettings

    before = _snapshot(model)
    with pytest.raises(ReviewstarsError, match=r"--output .*model: is .*model, which this command reads"):
        compare(tiny_data, model, ["linear"], [str(model)])
    with pytest.raises(ReviewstarsError, match=r"--output .*inside: is inside .*model, which this command reads"):
        compare(tiny_data, model / "inside", ["linear"], [str(model)])
    with pytest.raises(ReviewstarsError, match="which this command reads"):
        compare(tiny_data, vocabulary / "runs", ["scratch"], scratch=ScratchSettings(tokenizer=str(vocabulary)))
    assert _snapshot(model) == before and not (model / "inside").exists() and not (vocabulary / "runs").exists()


def test_what_passes_for_a_file_of_ours_is_strict_and_plots_from_before_the_mark_still_rerun(model, tiny_data, tmp_path):
    from support import run_cli

    thesis = tmp_path / "thesis.json"  # another tool's scores: the two obvious keys are not enough
    thesis.write_text('{"accuracy": 0.91, "confusion_matrix": [[5, 1], [2, 7]], "notes": "my thesis"}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # nested past Python's stack: not ours, and no traceback
    shutil.copytree(model, tmp_path / "other")
    for path in (thesis, deep, tmp_path / "other" / "metrics.json"):  # another model's metrics are train's, not evaluate's
        before = path.read_bytes()
        done = run_cli("evaluate", "--model", model, "--data", tiny_data, "-o", path)
        assert done.returncode != 0 and "a file that is not scores of ours" in done.stderr, done.stderr
        assert path.read_bytes() == before and "Traceback" not in done.stderr
    done = run_cli("tokens", "growth", "--data", tiny_data, "-o", tmp_path / "growth.json")
    assert done.returncode != 0 and "give a path ending in .png" in done.stderr

    # a confusion matrix drawn before plots were marked: an unmarked Matplotlib PNG beside scores of ours
    assert run_cli("evaluate", "--model", model, "--data", tiny_data, "-o", tmp_path / "old.json").returncode == 0
    import matplotlib.pyplot as plt

    figure = plt.figure()
    figure.savefig(tmp_path / "old.confusion.png")
    plt.close(figure)
    done = run_cli("evaluate", "--model", model, "--data", tiny_data, "-o", tmp_path / "old.json")
    assert done.returncode == 0, done.stderr


def test_a_compare_folder_named_like_a_kind_reruns(tiny_data, tmp_path, monkeypatch):
    from reviewstars.jobs.compare import compare

    monkeypatch.chdir(tmp_path)
    for attempt in range(2):  # "linear" names a kind here, not a folder this command reads
        assert compare(tiny_data, "linear", ["linear"], ensemble=False)["models"][0]["model"] == "linear"


def test_a_linear_model_trained_into_a_stopped_torch_runs_folder_takes_its_checkpoints_with_it(scratch_model, tiny_data, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(scratch_model / "checkpoints", folder / "checkpoints")  # a run stopped before its model was written
    assert (folder / "checkpoints" / "run.json").is_file()
    train("linear", tiny_data, folder, **LINEAR)
    assert not (folder / "checkpoints").exists() and isinstance(load_predictor(folder), LinearPredictor)


def test_a_trained_model_is_replaced_only_by_a_model_of_its_own_recipe(model, scratch_model, tiny_data, tmp_path):
    """A probe's ensemble went over a trained bag model, a linear one over a fine-tuned MiniLM:
    each folder is ours, so nothing stopped it. A rerun of the folder's own recipe still replaces it."""
    before = _snapshot(model)
    with pytest.raises(ReviewstarsError, match=f"^--output {model}: holds a trained linear model, which a new scratch model "
                                               "would replace: give another folder"):
        train("scratch", tiny_data, model)
    other = tmp_path / "other"
    shutil.copytree(model, other)
    with pytest.raises(ReviewstarsError, match="holds a trained linear model, which a new ensemble model would replace"):
        build_ensemble([str(model), str(scratch_model)], DataSettings(tiny_data), other)
    assert _snapshot(model) == before and _snapshot(other) == before
    from reviewstars.models.folder import check_replaces_its_own_recipe

    export = tmp_path / "export"
    export.mkdir()
    (export / "config.json").write_text(json.dumps({"reviewstars": {"kind": "onnx", "training": {"kind": "bag"}}}))
    with pytest.raises(ReviewstarsError, match="holds an ONNX export of a bag model, which a new linear model would replace"):
        check_replaces_its_own_recipe(export, "linear")  # (it said "a trained bag model")
    assert train("linear", tiny_data, model, **LINEAR).kind == "linear"  # a rerun of its own recipe


def test_a_folder_of_ours_of_another_kind_is_named_for_what_it_is(model, tiny_data, tmp_path):
    """A probe's compare into a model folder was told it 'holds files that reviewstars did not write'."""
    from reviewstars.jobs.compare import compare

    with pytest.raises(ReviewstarsError, match=f"^--output {model}: is a model folder written by reviewstars, not a "
                                               "comparison folder: give a new or empty folder for the comparison$"):
        compare(tiny_data, model, ["linear"])
    comparison = tmp_path / "comparison"
    comparison.mkdir()
    (comparison / "leaderboard.json").write_text("[]")
    from reviewstars.artifacts import mark_ours

    mark_ours(comparison, "compare")
    with pytest.raises(ReviewstarsError, match="is a comparison folder \\(compare's leaderboard and models\\) written by "
                                               "reviewstars, not a model folder"):
        train("linear", tiny_data, comparison, **LINEAR)


def test_files_written_together_are_the_old_set_or_the_new_one(tmp_path):
    """A Ctrl-C while compare wrote its report left a new leaderboard.json beside the old report."""
    import os
    import signal

    from reviewstars.artifacts import signals_deferred, written_together

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "leaderboard.json").write_text("old")
    (folder / "report.md").write_text("old")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with written_together(folder) as stage:
            (stage / "leaderboard.json").write_text("new")
            raise RuntimeError("the report failed")
    assert [(folder / name).read_text() for name in ("leaderboard.json", "report.md")] == ["old", "old"]
    with written_together(folder) as stage:
        (stage / "leaderboard.json").write_text("new")
        (stage / "report.md").write_text("new")
    assert [(folder / name).read_text() for name in ("leaderboard.json", "report.md", "notes.txt")] == ["new", "new", "mine"]
    assert sorted(p.name for p in folder.iterdir()) == ["leaderboard.json", "notes.txt", "report.md"]
    happened = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # SIG_IGN when the suite runs in the background
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                happened.append("the block went on to its end")
    finally:
        signal.signal(signal.SIGINT, before)
    assert happened == ["the block went on to its end"]
    left = folder / ".staging.999999999.abcdefgh.tmp"  # a killed writer's (no such process)
    left.mkdir()
    with written_together(folder):
        pass
    assert not left.exists()


def test_a_folder_holding_models_of_ours_is_not_called_the_users(linear_model, tmp_path):
    """`compare --output COMPARE/models` said it 'holds files that reviewstars did not write (linear)'."""
    from reviewstars.artifacts import check_output_folder

    models = tmp_path / "models"
    shutil.copytree(linear_model, models / "linear")
    with pytest.raises(ReviewstarsError, match=r"holds folders reviewstars wrote as other things \(linear\)"):
        check_output_folder(models, lambda folder: False, "comparison")
    (models / "notes.txt").write_text("mine")
    with pytest.raises(ReviewstarsError, match="holds files that reviewstars did not write"):
        check_output_folder(models, lambda folder: False, "comparison")


def test_an_output_name_too_long_for_its_temporaries_is_refused_before_any_work(model, tiny_data, tmp_path):
    """A name of 240 bytes (legal) failed with a traceback once the work was done: its temporary is longer."""
    from reviewstars.artifacts import SIBLING_BYTES

    long_name = "é" * 120  # 240 bytes
    fits = "b" * (255 - SIBLING_BYTES - 4) + ".csv"
    out = tmp_path / "out"
    for job in (lambda name: train("linear", tiny_data, out / name, **LINEAR),
                lambda name: predict_file(model, tiny_data / "validation.parquet", out / f"{name}.csv"),
                lambda name: evaluate(model, tiny_data, output=out / f"{name}.json")):
        with pytest.raises(ReviewstarsError, match=r"a name of 2\d\d bytes; give one of at most 223 \(the file system takes 255"):
            job(long_name)
    assert not out.exists()
    predict_file(model, tiny_data / "validation.parquet", out / fits)
    assert (out / fits).is_file()
    longest = "m" * (255 - SIBLING_BYTES)  # its stage `.NAME.new` and the stage's temporaries fit too (a 220-byte name
    train("linear", tiny_data, out / longest, **LINEAR)  # trained, then failed at the save)
    assert load_predictor(out / longest).predict(["great food"]).shape == (1,)
