"""Every second of the budget spent on learning: the clock's cadence, the plan said aloud,
a warning when the budget cannot work, the device chosen once."""

from __future__ import annotations

import re

import pytest

from reviewstars.data import DataSettings
from reviewstars.devices import resolve_device
from reviewstars.errors import ReviewstarsError
from reviewstars.jobs import train
from reviewstars.kinds.bag import BagSettings
from reviewstars.training import TrainSettings, plan_budget, too_small_budget


def test_device_resolution_on_a_machine_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") in ("cpu", "mps") and resolve_device("cpu") == "cpu" and resolve_device(None) in ("cpu", "mps")
    with pytest.raises(ReviewstarsError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ReviewstarsError, match="use auto, cpu"):
        resolve_device("tpu")
    with pytest.raises(ReviewstarsError, match=r"--device '': use auto, cpu"):  # `--device "$UNSET"`: not auto, unasked
        resolve_device("")
    with pytest.raises(ReviewstarsError, match=r"--device 'CudaX': use auto"):  # as given
        resolve_device("CudaX")
    assert resolve_device("cpu:0") == resolve_device(" CPU ") == "cpu"


def test_a_budget_too_small_to_learn_is_said_in_one_line_with_what_would_do():
    tiny = plan_budget(budget=60, elapsed=20, step_seconds=1.5, eval_example_seconds=0.1, batch_size=16, dev_rows=500, train_rows=2000)
    message = too_small_budget(tiny)
    assert message and "too few to learn anything" in message and "min on this machine" in message
    assert tiny["dev_rows"] < 500  # one evaluation of 500 reviews (50 s) would eat the minute: the dev slice shrinks
    seconds = too_small_budget(plan_budget(budget=5, elapsed=1, step_seconds=0.1, eval_example_seconds=0.001, batch_size=16,
                                           dev_rows=50, train_rows=240))
    assert re.search(r"at least 100 steps need about [1-9]\d* s on this machine$", seconds)  # it said "about 0 min"
    roomy = plan_budget(budget=1800, elapsed=20, step_seconds=0.5, eval_example_seconds=0.01, batch_size=16, dev_rows=500, train_rows=38_000)
    assert too_small_budget(roomy) is None


def test_a_budget_run_reports_its_share_in_optimizer_steps_and_warns(tiny_data, tmp_path, capsys):
    settings = TrainSettings(time_budget=8, max_length=32)
    result = train("bag", DataSettings(tiny_data, dev_size=50), tmp_path / "bag", transformer=settings,
                   bag=BagSettings(dim=8, words=200, buckets=500))
    assert result.plan["evaluations"] >= 1 and result.plan["deadline"] <= 8
    assert 0 < result.budget_share_in_steps < 1
    assert result.train_seconds <= 8 + 3  # the clock ended the run
    warned = "warning:" in capsys.readouterr().err
    assert warned == (result.plan["expected_steps"] < 100)  # warned exactly when the plan fits too few steps


def test_a_batch_larger_than_the_training_set_is_cut_to_it_and_evaluations_never_outnumber_steps(tiny_data, tmp_path, capsys):
    """A probe's plan read "~1 steps, ~100,000 reviews (416.667 passes over 240)", and
    another "~12 steps ... 119 dev evaluations"."""
    settings = TrainSettings(time_budget=8, max_length=32, batch_size=100_000)
    result = train("bag", DataSettings(tiny_data, dev_size=50), tmp_path / "bag", transformer=settings,
                   bag=BagSettings(dim=8, words=200, buckets=500))
    train_rows = result.plan["train_examples"]
    assert f"warning: bag: --batch-size 100,000 is more than the {train_rows} training reviews: batches of {train_rows}, " \
           "one step a pass" in " ".join(capsys.readouterr().err.split())
    assert result.plan["expected_examples"] == result.plan["expected_steps"] * train_rows
    assert 1 <= result.plan["evaluations"] <= result.plan["expected_steps"], result.plan
    tiny_evaluations = plan_budget(budget=10, elapsed=2, step_seconds=0.6, eval_example_seconds=1e-4, batch_size=16,
                                   dev_rows=60, train_rows=240)
    assert tiny_evaluations["evaluations"] <= tiny_evaluations["expected_steps"]


def test_settings_out_of_range_are_one_line_errors():
    from reviewstars.models.linear import LinearSettings

    with pytest.raises(ReviewstarsError, match="--C must be greater than 0"):
        LinearSettings(C=-1)
    with pytest.raises(ReviewstarsError, match="--min-df must be at least 1"):
        LinearSettings(min_df=0)
    with pytest.raises(ReviewstarsError, match="--truncation must be one of"):
        TrainSettings(truncation="middle")


@pytest.mark.trainer
def test_under_a_budget_calibration_scores_only_what_the_last_evaluation_did_not(tiny_data, tmp_path, monkeypatch):
    import importlib

    from reviewstars.models.probabilities import fit_temperature
    from reviewstars.data import carve_dev, load_data
    from reviewstars.models import load_predictor

    job = importlib.import_module("reviewstars.jobs.train")  # the module, not the function jobs exports
    scored = []
    real = job.predict_proba_batched

    def counting(predictor, texts, *args, **kwargs):
        scored.append(len(list(texts)))
        return real(predictor, texts, *args, **kwargs)

    monkeypatch.setattr(job, "predict_proba_batched", counting)
    result = train("bag", DataSettings(tiny_data, dev_size=50), tmp_path / "bag", transformer=TrainSettings(time_budget=8, max_length=32, max_passes=10_000),
                   bag=BagSettings(dim=8, words=200, buckets=500))
    # so many passes allowed that the clock, not the pass limit, ends even a fast machine's run
    assert result.steps < result.plan["max_steps"]  # the clock ended the run, with an evaluation at its last step
    dev_rows = result.plan["dev_rows"]
    assert scored == ([50 - dev_rows] if dev_rows < 50 else [])  # one scoring of each dev review, not two
    # the same temperature as scoring the whole slice afresh with the saved model
    _, dev = carve_dev(load_data(tiny_data)["train"], 50, 42)
    predictor = load_predictor(tmp_path / "bag")
    assert abs(fit_temperature(predictor.uncalibrated_proba(dev["text"]), dev["label"]) - predictor.temperature) < 1e-3
