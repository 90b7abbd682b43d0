"""`--report-to`: the Trainer's own logging integrations, chosen from the command line."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from reviewstars.cli import app
from reviewstars.errors import ReviewstarsError
from reviewstars.training import TrainSettings
from reviewstars.training.loop import _arguments

from support import run_cli


@pytest.mark.parametrize("command", ["train", "compare"])
def test_both_training_commands_offer_it(command):
    help_text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    assert "--report-to" in help_text and "--run-name" in help_text
    assert "tensorboard, wandb, mlflow, comet_ml" in " ".join(help_text.split())


def test_every_integration_of_the_installed_trainer_is_offered():
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    from reviewstars.training.settings import REPORTERS

    assert set(REPORTERS) == set(INTEGRATION_TO_CALLBACK)


@pytest.mark.parametrize("choice, expected", [("tensorboard", ["tensorboard"]), ("none", []),
                                              (" tensorboard ,codecarbon", ["tensorboard", "codecarbon"])])
def test_the_choice_reaches_the_trainer(tmp_path, monkeypatch, choice, expected):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: object() if name == "codecarbon" else real(name, *rest))
    arguments = _arguments(TrainSettings(report_to=choice), tmp_path / "my-model" / "checkpoints", under_budget=False, use_cpu=True)
    assert arguments.report_to == expected
    assert arguments.run_name == "my-model"  # the model folder's name, not the Trainer's "checkpoints"
    named = _arguments(TrainSettings(run_name="lr sweep 3"), tmp_path / "m" / "checkpoints", under_budget=False, use_cpu=True)
    assert named.run_name == "lr sweep 3"


def test_a_missing_package_is_named_before_training(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "mlflow" else real(name, *rest))
    with pytest.raises(ReviewstarsError, match=r"^--report-to mlflow needs the mlflow package: pip install mlflow$"):
        TrainSettings(report_to="mlflow")
    with pytest.raises(ReviewstarsError, match=r"'comet' is not one of the Trainer's integrations: tensorboard, wandb, "):
        TrainSettings(report_to="comet")
    with pytest.raises(ReviewstarsError, match="needs the mlflow package"):
        TrainSettings(report_to="tensorboard,mlflow")
    assert TrainSettings(report_to="all").report_to == "all"


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_the_cli_says_it_in_one_line(tiny_data, tmp_path):
    done = run_cli("train", "--model", "scratch", "--data", tiny_data, "--output", tmp_path / "m", "--report-to", "wandb")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --report-to wandb needs the wandb package: pip install wandb"
    assert not (tmp_path / "m").exists()
