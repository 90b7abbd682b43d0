"""Real processes, real signals: SIGKILL mid-run, Ctrl-C, and two processes under torchrun.

Each test drives `reviewstars train` in a child process on a tiny encoder and 400
synthetic reviews, so what is checked is what a user's terminal would see; the runs
that no signal reaches (the uninterrupted one, the resumes) go through the same
script in this process.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from reviewstars.errors import TrainingInterrupted
from reviewstars.tokenization import load_tokenizer, train_wordpiece
from reviewstars.training import kept_tokenizer
from reviewstars.training import last_complete_checkpoint

from support import TINY_CLI, run_cli, run_command, start_and_signal, tiny_run, train_args, train_command

def _same_model(a: Path, b: Path) -> None:
    ours, theirs = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name in ours:
        if name.endswith("attention.key.bias"):
            # Its true gradient is zero (softmax ignores a shift shared by all keys), so
            # Adam turns rounding noise, which differs with the order of summation, into
            # steps: its values are noise in every run. Everything else must agree.
            continue
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6, msg=name)
    first, second = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
    assert first["accuracy"] == second["accuracy"] and first["confusion_matrix"] == second["confusion_matrix"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory, vocabulary) -> Path:
    output = tmp_path_factory.mktemp("faults") / "whole"
    done = run_cli(*train_args(tiny_data, output, "--tokenizer", vocabulary))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((output / "metrics.json").read_text())["accuracy"] > 0.4  # it learned (chance: 0.2)
    return output


def test_a_training_killed_with_sigkill_resumes_to_the_same_model(tiny_data, tmp_path, uninterrupted, vocabulary):
    output = tmp_path / "killed"
    fixed = ("--tokenizer", str(vocabulary))
    code, _ = start_and_signal(train_command(tiny_data, output, *fixed), output / "checkpoints", signal.SIGKILL)
    assert code == -signal.SIGKILL
    # Nothing half-written looks like a model: the folder holds only checkpoints so far.
    assert not (output / "config.json").exists() and not (output / "model.safetensors").exists()

    resumed = run_cli(*train_args(tiny_data, output, *fixed, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _same_model(output, uninterrupted)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tiny_data, tmp_path, uninterrupted, vocabulary):
    output = tmp_path / "interrupted"
    fixed = ("--tokenizer", str(vocabulary))
    code, stderr = start_and_signal(train_command(tiny_data, output, *fixed), output / "checkpoints", signal.SIGINT)
    assert code == 130, stderr[-2000:]
    message = " ".join(stderr.split("error:")[-1].split())  # the one message, unwrapped
    assert "interrupted at step" in message and "--resume" in message and "Traceback" not in stderr
    step = int(message.split("interrupted at step ")[1].split()[0])
    assert Path(last_complete_checkpoint(output / "checkpoints")).name == f"checkpoint-{step}"
    state = json.loads((output / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").read_text())
    run_at_stop = state["stateful_callbacks"]["Stopwatch"]["attributes"]["run_seconds"]

    resumed = run_cli(*train_args(tiny_data, output, *fixed, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _same_model(output, uninterrupted)
    # without a budget too, the time reported is the whole run's: the first process's seconds count
    ledger = json.loads((output / "metrics.json").read_text())["time_ledger"]
    assert ledger["before --resume"] == pytest.approx(run_at_stop, abs=0.01) and ledger["wall"] > run_at_stop


def test_two_processes_with_gloo_train_the_model_one_process_trains(tiny_data, tmp_path, uninterrupted, vocabulary):
    """torchrun, 2 CPU processes x 8 reviews = the one process's batch of 16."""
    output = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "reviewstars.cli", "train", "--data", str(tiny_data), "--output", str(output), *TINY_CLI, "--tokenizer", str(vocabulary), "--batch-size", "8"]
    done = run_command(command)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = json.loads((output / "checkpoints" / "plan.json").read_text())
    assert plan["processes"] == 2 and plan["global_batch"] == 16
    _same_model(output, uninterrupted)


# --------------------------------------------------------------------------- in-process pieces


class PressCtrlC(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_between_checkpoints_resumes_exactly(tiny_data, tmp_path, whole_tiny_run):
    whole, _, settings = whole_tiny_run  # tiny_run to its end with these settings (shared with test_training)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background (nohup, &)
    with pytest.raises(TrainingInterrupted, match="interrupted at step 13 .* --resume"):
        tiny_run(tiny_data, tmp_path / "stopped", settings, [PressCtrlC(13)])
    assert last_complete_checkpoint(tmp_path / "stopped" / "checkpoints").endswith("checkpoint-13")
    assert signal.getsignal(signal.SIGINT) is before  # handler given back
    # as a checkpoint written before the run's stopwatch was saved in it (the next save looked it up: KeyError)
    state = tmp_path / "stopped" / "checkpoints" / "checkpoint-13" / "trainer_state.json"
    saved = json.loads(state.read_text())
    del saved["stateful_callbacks"]["Stopwatch"]
    state.write_text(json.dumps(saved))
    resumed, _ = tiny_run(tiny_data, tmp_path / "stopped", replace(settings, resume=True))
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_a_checkpoint_cut_short_is_skipped_and_removed(tmp_path):
    from safetensors.torch import save_file

    checkpoints = tmp_path / "checkpoints"
    whole, cut, cut_weights = checkpoints / "checkpoint-10", checkpoints / "checkpoint-20", checkpoints / "checkpoint-30"
    for folder in (whole, cut, cut_weights):
        folder.mkdir(parents=True)
        save_file({"w": torch.ones(64)}, folder / "model.safetensors")
        (folder / "trainer_state.json").write_text('{"global_step": 1}')
    (cut / "trainer_state.json").write_text('{"global_st')  # killed while writing its last file
    weights = (cut_weights / "model.safetensors").read_bytes()
    (cut_weights / "model.safetensors").write_bytes(weights[:100])  # its state whole, its weights cut (a copy, a full disk)
    assert last_complete_checkpoint(checkpoints) == str(whole) and cut.exists() and cut_weights.exists()
    assert last_complete_checkpoint(checkpoints, remove_incomplete=True) == str(whole) and not cut.exists()
    assert not cut_weights.exists() and last_complete_checkpoint(tmp_path / "nothing") is None


def test_a_learned_vocabulary_is_saved_before_training_and_reused_on_resume(tiny_data, tmp_path):
    import pandas as pd
    from datasets import Dataset

    train = Dataset.from_pandas(pd.read_parquet(tiny_data / "train.parquet"))
    learn = lambda: train_wordpiece(train["text"], 200)  # noqa: E731
    first = kept_tokenizer(tmp_path, False, learn, load_tokenizer)
    assert (tmp_path / "checkpoints" / "vocabulary" / "tokenizer.json").is_file()
    again = kept_tokenizer(tmp_path, True, learn, load_tokenizer)
    assert again.get_vocab() == first.get_vocab()


def test_a_resume_with_no_whole_checkpoint_left_says_it_starts_again(tiny_data, tmp_path, whole_tiny_run, capsys):
    """Its weights cut short, the only checkpoint was skipped and the run began again from step 0, saying nothing."""
    _, _, settings = whole_tiny_run
    with pytest.raises(TrainingInterrupted):
        tiny_run(tiny_data, tmp_path / "stopped", settings, [PressCtrlC(13)])
    for weights in (tmp_path / "stopped" / "checkpoints").glob("checkpoint-*/model.safetensors"):
        weights.write_bytes(weights.read_bytes()[:100])
    capsys.readouterr()
    _, outcome = tiny_run(tiny_data, tmp_path / "stopped", replace(settings, resume=True))
    assert "--resume: no complete checkpoint in" in capsys.readouterr().err and outcome["steps"] > 13
