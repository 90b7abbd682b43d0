"""`--report-to`: the Trainer's own logging integrations, chosen from the command line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from reviewstars.cli import app
from reviewstars.errors import ReviewstarsError
from reviewstars.training import TrainSettings
from reviewstars.training.loop import _arguments


@pytest.mark.parametrize("command", ["train", "compare"])
def test_both_training_commands_offer_it(command):
    help_text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    assert "--report-to" in help_text and "tensorboard, mlflow, wandb, none" in help_text


@pytest.mark.parametrize("choice, expected", [("tensorboard", ["tensorboard"]), ("none", [])])
def test_the_choice_reaches_the_trainer(tmp_path, choice, expected):
    assert _arguments(TrainSettings(report_to=choice), tmp_path, under_budget=False, use_cpu=True).report_to == expected


def test_a_missing_package_is_named_before_training(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "mlflow" else real(name, *rest))
    with pytest.raises(ReviewstarsError, match=r"^--report-to mlflow needs the mlflow package: pip install mlflow$"):
        TrainSettings(report_to="mlflow")
    with pytest.raises(ReviewstarsError, match="must be one of tensorboard, mlflow, wandb, none"):
        TrainSettings(report_to="comet")


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_the_cli_says_it_in_one_line(tiny_data, tmp_path):
    done = subprocess.run([sys.executable, "-m", "reviewstars.cli", "train", "--model", "scratch", "--data", str(tiny_data),
                           "--output", str(tmp_path / "m"), "--report-to", "wandb"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --report-to wandb needs the wandb package: pip install wandb"
    assert not (tmp_path / "m").exists()
