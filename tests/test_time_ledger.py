"""Where a run's time went: every training result carries a ledger of named entries that add
up to the run's wall time, and the plan ends a run at the passes worth taking."""

from __future__ import annotations

import json
import time

import pytest

from reviewstars.data import DataSettings
from reviewstars.jobs import train
from reviewstars.ledger import TimeLedger
from reviewstars.models.linear import LinearSettings
from reviewstars.training import TrainSettings
from reviewstars.training.budget import MIN_EXAMPLES, examples_worth_learning, plan_budget
from reviewstars.training.clock import TrainingClock

from support import tiny_scratch

TINY_SCRATCH = tiny_scratch()


def test_nested_entries_count_each_second_once():
    ledger = TimeLedger()
    with ledger.spent("outer"):
        time.sleep(0.05)
        with ledger.spent("inner"):
            time.sleep(0.05)
    record = ledger.record()
    assert record["inner"] == pytest.approx(0.05, abs=0.02) and record["outer"] == pytest.approx(0.05, abs=0.02)
    assert sum(v for k, v in record.items() if k != "wall") == pytest.approx(record["wall"], abs=1e-3)


@pytest.mark.parametrize("kind", ["linear", "scratch"])
def test_the_ledger_adds_up_to_the_wall_time_of_the_run(kind, tiny_data, tmp_path):
    settings = {"linear": {"linear": LinearSettings(min_df=1)},
                "scratch": {"transformer": TrainSettings(time_budget=8, max_length=32, learning_rate=3e-3), "scratch": TINY_SCRATCH}}[kind]
    started = time.perf_counter()
    result = train(kind, DataSettings(tiny_data, dev_size=50), tmp_path / "model", **settings)
    wall = time.perf_counter() - started
    ledger = result.time_ledger
    assert sum(v for k, v in ledger.items() if k != "wall") == pytest.approx(ledger["wall"], abs=0.01)
    # the run is the call: outside the ledger only the writing of the ledger itself and the swap of the folder
    assert ledger["wall"] == pytest.approx(wall, rel=0.02, abs=0.1)  # (a busy machine: tens of ms; the torch import was 5 s)
    assert ledger["checking the output"] > 0  # the guard's checks and lock, before the run
    assert 0 <= ledger["other"] < 0.1 * ledger["wall"]  # the named entries claim nearly all of it
    written = json.loads((tmp_path / "model" / "time_ledger.json").read_text())
    assert written == ledger and json.loads((tmp_path / "model" / "metrics.json").read_text())["time_ledger"] == ledger
    if kind == "linear":
        assert ledger["fitting the model"] > 0 and "optimizer steps" not in ledger
    else:
        for entry in ("tokenizing", "starting the trainer", "probing speed and batch size", "optimizer steps", "dev evaluations",
                      "calibration"):
            assert ledger[entry] > 0, entry
        # of the budget, or of the run's own time where it took longer (a busy machine)
        assert ledger["optimizer steps"] == pytest.approx(result.budget_share_in_steps * max(8, result.train_seconds), rel=0.05)


def test_the_output_guards_seconds_are_the_runs_too(tiny_data, tmp_path, monkeypatch):
    """Under pytest-xdist the guard's first `import filelock` (0.13 s), ahead of the ledger,
    made a 0.8 s ledger of a 0.9 s call: what a run spends checking and locking its output
    was nowhere in its ledger."""
    from reviewstars.jobs import guard

    checked = guard.check_training_output
    monkeypatch.setattr(guard, "check_training_output", lambda *a, **k: (time.sleep(0.4), checked(*a, **k)))
    started = time.perf_counter()
    result = train("linear", DataSettings(tiny_data, dev_size=50), tmp_path / "model", linear=LinearSettings(min_df=1))
    wall = time.perf_counter() - started
    assert result.time_ledger["checking the output"] >= 0.4
    assert result.time_ledger["wall"] == pytest.approx(wall, abs=0.1)


def test_hashing_the_data_files_has_its_own_entry(tmp_path):
    """A torch run hashes its data files (for --resume) before it starts: 650k reviews are seconds."""
    from reviewstars.jobs.guard import _data_files
    from reviewstars.ledger import open_ledger

    data = tmp_path / "reviews.csv"
    data.write_bytes(b'"5","Great tacos."\n' * 2_000_000)  # 36 MB: tens of ms of sha256
    with open_ledger() as ledger:
        hashed = _data_files(str(data))
        record = ledger.record()
    assert hashed["reviews.csv"]["bytes"] == data.stat().st_size and record["hashing the data files"] > 0.005


def test_a_run_takes_over_the_ledger_opened_ahead_of_it_and_a_nested_run_keeps_its_own():
    from reviewstars.ledger import current, open_ledger, open_ledger_ahead

    with open_ledger_ahead() as ahead:
        time.sleep(0.05)
        with open_ledger() as run:
            assert run is ahead and current() is ahead
            with open_ledger() as member:  # an ensemble member's own run
                assert member is not ahead
            assert current() is ahead
        assert run.record()["wall"] >= 0.05
    assert current() is None


def test_a_run_well_past_its_budget_says_so_and_where_the_time_went(capsys):
    """A probe's MiniLM took 91 s of a 60 s budget (its batch-size probe alone 60 s), unsaid."""
    from reviewstars.jobs.result import TrainResult
    from reviewstars.jobs.train import _warn_of_an_overrun

    def result(seconds):
        return TrainResult(model="minilm", kind="pretrained", output="m", data={}, train_examples=800, train_examples_seen=16,
                           train_seconds=seconds, parameters=1, time_ledger={"probing speed and batch size": 59.6,
                                                                              "optimizer steps": 13.8, "other": 1.0, "wall": 91.3})
    _warn_of_an_overrun("minilm", TrainSettings(time_budget=60), result(91.3))
    _warn_of_an_overrun("minilm", TrainSettings(time_budget=60), result(63.0))  # within a tenth: said nothing
    _warn_of_an_overrun("minilm", TrainSettings(), result(91.3))  # no budget: nothing to overrun
    said = " ".join(capsys.readouterr().err.split())
    assert said.count("warning") == 1 and ("minilm: training took 91 s of a 60 s --time-budget; most of it probing speed and "
                                           "batch size (60 s): a busy machine, or a budget too short") in said


def test_a_linear_model_trains_without_importing_torch(tiny_data, tmp_path):
    """A probe's linear run spent 5.5 s importing torch and transformers after its ledger
    closed (to look for checkpoints a linear model never has): 14.5 s for a 6 s ledger, and
    a Ctrl-C in those seconds said "stopped before the model was written" after it was."""
    import subprocess
    import sys

    script = ("import sys; from reviewstars.jobs import train; from reviewstars.data import DataSettings; "
              f"train('linear', DataSettings({str(tiny_data)!r}, dev_size=50), {str(tmp_path / 'm')!r}); "
              "print(sorted(name for name in ('torch', 'transformers') if name in sys.modules))")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and ran.stdout.strip().splitlines()[-1] == "[]", ran.stderr[-2000:]


def test_a_budget_that_holds_more_than_the_passes_worth_taking_ends_at_them():
    fast = plan_budget(budget=180, elapsed=5, step_seconds=0.01, eval_example_seconds=1e-4, batch_size=16, dev_rows=500,
                       train_rows=38_248, max_passes=2)
    assert fast["ends"] == "passes" and fast["stop_after_steps"] == fast["expected_steps"] == fast["max_steps"] == 4781
    assert fast["expected_passes_over_data"] == pytest.approx(2, abs=0.001)
    slow = plan_budget(budget=180, elapsed=5, step_seconds=1.0, eval_example_seconds=1e-2, batch_size=16, dev_rows=500,
                       train_rows=38_248, max_passes=2)
    assert slow["ends"] == "deadline" and slow["expected_steps"] < 200 and slow["stop_after_steps"] == 4781  # still a limit
    # However small the training set, a fine-tuning gets enough updates.
    assert examples_worth_learning(400, 2) == MIN_EXAMPLES and examples_worth_learning(38_248, 2) == 76_496
    assert examples_worth_learning(400, None) is None


def test_the_learning_rate_decays_to_zero_at_the_last_step_worth_taking():
    plan = plan_budget(budget=3600, elapsed=0, step_seconds=0.01, eval_example_seconds=1e-4, batch_size=16, dev_rows=100,
                       train_rows=1000, max_passes=2)
    clock = TrainingClock(plan, warmup=0.1)
    last = plan["stop_after_steps"]
    assert clock.learning_rate_factor(last // 2) == pytest.approx(0.5 / 0.9, rel=0.01)
    assert clock.learning_rate_factor(last) == 0.0


def test_a_run_whose_budget_holds_more_passes_stops_after_them_and_says_so(tiny_data, tmp_path, capsys):
    settings = TrainSettings(time_budget=600, max_length=32, learning_rate=3e-3, max_passes=0.5)
    started = time.perf_counter()
    result = train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "model", transformer=settings, scratch=TINY_SCRATCH)
    assert time.perf_counter() - started < 120  # far from its ten minutes
    assert result.ended == "passes" and result.plan["ends"] == "passes"
    assert result.steps == result.plan["stop_after_steps"] == -(-MIN_EXAMPLES // 16)  # 350 reviews: the minimum of updates
    assert result.final_dev_accuracy is not None  # evaluated at its end


def test_a_resumed_run_says_it_goes_on_with_its_plan_not_a_deadline_from_its_own_start(monkeypatch):
    """A probe's resumed run said "ends after them, before the budget's 04:48:07", read from the
    resumed process's start, then ended at its deadline long before."""
    import reviewstars.training.loop as loop

    said = []
    monkeypatch.setattr(loop, "note", said.append)
    monkeypatch.setattr(loop, "warn", said.append)
    plan = {"deadline": 60.0, "budget_seconds": 60.0, "ends": "passes", "max_passes": 2, "expected_steps": 1000,
            "expected_examples": 16000, "expected_passes_over_data": 2, "train_examples": 8000, "evaluations": 4, "dev_rows": 100}
    loop._announce("scratch", plan, time.time(), resumed=True)
    assert said == ["scratch: --resume: the stopped run's plan of ~1,000 steps (2 passes over 8,000 reviews) goes on to the last "
                    "of them, or its deadline if sooner, on the run's own clock (the time before --resume counts against the budget)"]
    said.clear()
    loop._announce("scratch", plan, time.time())
    assert len(said) == 1 and "ends after them, before the budget's" in said[0]
    said.clear()
    loop._announce("scratch", {**plan, "max_passes": 0.5, "train_examples": 300}, time.time())  # (a probe's ran 16, unsaid)
    assert said[1] == ("scratch: --max-passes 0.5 over 300 reviews is fewer than the 16,000 reviews' worth any run may learn from: "
                       "up to 53.3 passes")
