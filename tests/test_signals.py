"""Real processes, real signals: SIGTERM during training and during `predict --file`, and a
resumed `--time-budget` run that goes on with the clock of the run it continues (the resumes,
which no signal reaches, go through the same script in this process)."""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from reviewstars.models import load_predictor
from reviewstars.training import last_complete_checkpoint

from conftest import synthetic_reviews
from support import cli_command, cli_env, run_cli, start_and_signal, train_args, train_command


def _state(checkpoint: str | None) -> dict:
    assert checkpoint is not None, "no complete checkpoint"
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text())


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr[-2000:]
    return lines[0]


def test_sigterm_saves_a_checkpoint_like_ctrl_c_and_the_run_resumes(tiny_data, tmp_path, vocabulary):
    output = tmp_path / "terminated"
    fixed = ("--tokenizer", str(vocabulary))
    code, stderr = start_and_signal(train_command(tiny_data, output, *fixed), output / "checkpoints", signal.SIGTERM)
    assert code == 143, stderr[-2000:]  # 128 + SIGTERM, as a scheduler expects
    message = " ".join(stderr.split("error:")[-1].split())
    assert "interrupted at step" in message and "--resume" in message and "Traceback" not in stderr
    step = int(message.split("interrupted at step ")[1].split()[0])
    assert Path(last_complete_checkpoint(output / "checkpoints")).name == f"checkpoint-{step}"
    assert not (output / "config.json").exists()  # no model yet, only the checkpoint

    resumed = run_cli(*train_args(tiny_data, output, *fixed, "--resume", "--keep-checkpoints"))  # (its last one is read below)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = _state(last_complete_checkpoint(output / "checkpoints"))
    assert final["global_step"] == final["max_steps"] > step
    assert load_predictor(output).predict(["amazing food, excellent service"]).shape == (1,)


def _signal_when(command: list[str], appears: Path, after_seconds: float, signum: int, log: Path) -> int:
    """Start `command`, send `signum` `after_seconds` after `appears` exists; its exit code."""
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=stderr)
        while not appears.exists() and process.poll() is None:
            time.sleep(0.01)
        time.sleep(after_seconds)
        process.send_signal(signum)
        return process.wait(timeout=120)


def test_a_resumed_time_budget_run_continues_the_same_clock(tiny_data, tmp_path, vocabulary):
    output = tmp_path / "budget"
    # As many passes as the clock allows (the default would end this tiny run at its passes worth taking, well before)
    arguments = train_args(tiny_data, output, "--tokenizer", vocabulary, "--time-budget", "16s", "--max-passes", "100000")
    plan_file = output / "checkpoints" / "plan.json"  # written when the plan is made, as training starts
    code = _signal_when(cli_command(*arguments), plan_file, 6.0, signal.SIGINT, tmp_path / "first.stderr")
    assert code == 130, (tmp_path / "first.stderr").read_text()[-2000:]
    plan = json.loads(plan_file.read_text())
    stopped = _state(last_complete_checkpoint(output / "checkpoints"))
    clock_at_stop = stopped["stateful_callbacks"]["TrainingClock"]["attributes"]["elapsed"]
    run_at_stop = stopped["stateful_callbacks"]["TrainingClock"]["attributes"]["run_seconds"]  # its start-up too

    resumed = run_cli(*arguments, "--resume", "--keep-checkpoints")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(plan_file.read_text())["deadline"] == plan["deadline"]
    final = _state(last_complete_checkpoint(output / "checkpoints"))
    assert final["global_step"] > stopped["global_step"]
    # The clock went on from its reading at the stop and ended at the first run's deadline...
    clock_at_end = final["stateful_callbacks"]["TrainingClock"]["attributes"]["elapsed"]
    assert plan["deadline"] <= clock_at_end <= plan["deadline"] + 3
    # ...so the resumed run trained for the rest of the budget, not for a whole new one; the time
    # it reports is the whole run's (the card's, the leaderboard's), the first process's in its ledger.
    train_seconds = json.loads((output / "config.json").read_text())["reviewstars"]["training"]["train_seconds"]
    ledger = json.loads((output / "metrics.json").read_text())["time_ledger"]
    assert ledger["before --resume"] == pytest.approx(run_at_stop, abs=0.01) and run_at_stop >= clock_at_stop
    this_process = train_seconds - ledger["before --resume"]
    assert 0 < this_process < plan["deadline"] - clock_at_stop + 3.5, (train_seconds, plan["deadline"], clock_at_stop)
    assert sum(v for k, v in ledger.items() if k != "wall") == pytest.approx(ledger["wall"], rel=0.02) and ledger["wall"] >= train_seconds
    assert f"in {train_seconds} s ({run_at_stop:.1f} s of it before --resume)" in " ".join(resumed.stdout.split())
    # Past its warm-up the learning rate only falls: the resumed run does not warm up again.
    rates = [(entry["step"], entry["learning_rate"]) for entry in final["log_history"] if "learning_rate" in entry]
    before = [rate for step, rate in rates if step <= stopped["global_step"]]
    after = [rate for step, rate in rates if step > stopped["global_step"]]
    assert before and after and after[0] <= before[-1] and after == sorted(after, reverse=True), rates


def test_sigterm_during_predict_file_leaves_no_temporary_file(linear_model, tmp_path):
    source = tmp_path / "reviews.csv"
    synthetic_reviews(40_000, seed=3)[["text"]].to_csv(source, index=False)
    folder = tmp_path / "predictions"
    folder.mkdir()
    command = cli_command("predict", "--model", linear_model, "--file", source, "--output", folder / "stars.csv")
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=stderr)
        while not any(folder.iterdir()) and process.poll() is None:  # its temporary output appeared: mid-write
            time.sleep(0.002)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 143
    assert "SIGTERM" in _one_error_line((tmp_path / "stderr").read_text())
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("stopping", ["predict", "linear", "linear-written", "export"])
def test_ctrl_c_says_in_one_line_what_is_kept(stopping, linear_model, scratch_model, tiny_data, tmp_path, monkeypatch):
    """Ctrl-C ended predict --file, a linear training and export with code 130 and no word; a
    probe's Ctrl-C just after a new model took the folder said "before the model was written"."""
    import importlib

    from support import run_cli

    if stopping == "predict":  # a Ctrl-C once the first chunk is kept
        predict = importlib.import_module("reviewstars.jobs.predict")
        real, calls = predict.prediction_frame, []

        def rated_then_stopped(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:  # (the first call makes the output's empty frame)
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        monkeypatch.setattr(predict, "prediction_frame", rated_then_stopped)
        source = tmp_path / "reviews.csv"
        synthetic_reviews(300, seed=3)[["text"]].to_csv(source, index=False)
        command = ("predict", "--model", linear_model, "--file", source, "--output", tmp_path / "stars.csv")
        monkeypatch.setattr(predict, "predict_file", functools.partial(predict.predict_file, chunk_rows=100))
        monkeypatch.setattr(importlib.import_module("reviewstars.jobs"), "predict_file", predict.predict_file)
        said = r"stopped \(Ctrl-C\): 100 of 300 rows are rated and kept in .*\.stars\.csv\.partial: run the same command again to go on from there"
    elif stopping == "linear":
        monkeypatch.setattr(importlib.import_module("reviewstars.jobs.train"), "fit_kind", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        command = ("train", "--model", "linear", "--data", tiny_data, "--output", tmp_path / "new", "--dev-size", "50")
        said = r"stopped \(Ctrl-C\) before the model was written: nothing was written"
    elif stopping == "linear-written":  # the model swapped in, then the stop
        guard = importlib.import_module("reviewstars.jobs.guard")
        monkeypatch.setattr(guard, "run_state", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        command = ("train", "--model", "linear", "--data", tiny_data, "--output", tmp_path / "written", "--dev-size", "50")
        said = r"stopped \(Ctrl-C\) after the new model was written: .*written holds it, complete"
    else:
        pytest.importorskip("onnxruntime")
        onnx = importlib.import_module("reviewstars.models.onnx")
        monkeypatch.setattr(onnx, "export_onnx", lambda *_a, **_k: (_ for _ in ()).throw(KeyboardInterrupt()))
        command = ("export", "--model", scratch_model, "--output", tmp_path / "onnx")
        said = r"stopped \(Ctrl-C\): every write is atomic, so nothing half-written was left"
    result = run_cli(*command)
    assert result.returncode == 130 and re.fullmatch(said, _one_error_line(result.stderr).removeprefix("error: ")), result.stderr
    assert not (tmp_path / "new").exists() and not (tmp_path / "stars.csv").exists() and not (tmp_path / "onnx").exists()
    if stopping == "linear-written":
        from reviewstars.models import load_predictor

        assert load_predictor(tmp_path / "written").predict(["great food"])[0] in range(1, 6)


def test_a_signal_while_the_output_lock_is_taken_leaves_no_lock_file(tmp_path, monkeypatch):
    """The suite once caught predict --file's `.stars.csv.lock` left behind: its SIGTERM came
    while the lock was being taken, after the file was made."""
    import os

    import filelock

    from reviewstars.errors import Terminated
    from reviewstars.jobs.guard import output_file_lock, terminate_cleanly

    taking = filelock.FileLock.acquire

    def interrupted_while_taking(self, *args, **kwargs):
        taken = taking(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # the file made and locked, the lock not yet handed over
        return taken

    monkeypatch.setattr(filelock.FileLock, "acquire", interrupted_while_taking)
    ran = []
    with pytest.raises(Terminated):
        with terminate_cleanly(), output_file_lock(tmp_path / "stars.csv", "predict"):
            ran.append("the body")
    assert ran == [] and list(tmp_path.iterdir()) == []


def test_a_stopped_export_leaves_no_graph_behind(scratch_model, tmp_path, monkeypatch):
    """A killed export left its 91 MB traced graph in the system's temporary folder for good: it
    is traced into the new folder's stage beside the output, which a stop removes (and which the
    next export there removes when a `kill -9` left it)."""
    pytest.importorskip("onnxruntime")
    import reviewstars.models.onnx as onnx
    from reviewstars.errors import Terminated

    output, seen = tmp_path / "out" / "onnx", []

    def traced_then_stopped(_ort, graph_file, _network):
        seen.append(graph_file)
        raise Terminated("terminated (SIGTERM)")

    monkeypatch.setattr(onnx, "_check_against_torch", traced_then_stopped)
    with pytest.raises(Terminated):
        onnx.export_onnx(scratch_model, output)
    assert seen and seen[0].parent.parent == output.parent and seen[0].parent.name.startswith(".onnx.")
    assert list(output.parent.iterdir()) == []


def test_ctrl_c_while_the_commands_load_is_one_line():
    """The first second or two of every command is importing: a Ctrl-C there printed the imports' traceback."""
    import sys

    interrupting = ("import sys\n"
                    "class Interrupt:\n"
                    "    def find_spec(self, name, path=None, target=None):\n"
                    "        if name == 'reviewstars.cli.main':\n"
                    "            raise KeyboardInterrupt\n"
                    "sys.meta_path.insert(0, Interrupt())\n"
                    "sys.argv = ['reviewstars', 'train', '--help']\n"
                    "from reviewstars.cli import main\n")
    done = subprocess.run([sys.executable, "-c", interrupting], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert (done.returncode, done.stderr) == (130, "error: stopped (Ctrl-C) while starting: nothing was written\n")


def test_cleaning_up_after_a_stop_imports_nothing_heavy():
    """A SIGTERM that lands while torch is imported leaves it half-imported: the cleanup then
    imported transformers again and ended in a traceback and exit code 1, not one line and 143."""
    import sys

    probe = ("import sys\n"
             "import reviewstars.jobs.guard, reviewstars.training.checkpoints\n"
             "print(sorted({'torch', 'transformers'} & set(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_a_stop_that_torch_onnx_wraps_in_its_own_error_is_still_one_line():
    """A SIGTERM mid-trace came out as torch.onnx's 277-line report, exit code 1."""
    from reviewstars.errors import Terminated
    from reviewstars.models.onnx import _stop_within

    stop = Terminated("terminated (SIGTERM): the output was not written")
    try:
        try:
            raise stop
        except Terminated as inner:
            raise RuntimeError("torch.onnx: Failed to export the model") from inner
    except RuntimeError as wrapped:
        assert _stop_within(wrapped) is stop
    assert _stop_within(ValueError("a real failure")) is None
