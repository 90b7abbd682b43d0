"""Issue: a leaderboard that knows its error bars, calibrated stars, an ensemble.
On tiny data: a trained model carries a temperature that never changes its argmax;
an ensemble folder round-trips through load / predict / serve / evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reviewstars.data import DataSettings
from reviewstars.jobs import train
from reviewstars.models import load_predictor
from reviewstars.models.linear import LinearSettings

from support import run_cli

TEXTS = ["amazing excellent perfect", "awful rude worst", "decent okay average", "good tasty friendly", "bad cold slow"]


@pytest.fixture(scope="module")
def two_linear(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("error_bars")
    data = DataSettings(tiny_data, dev_size=80)
    train("linear", data, root / "a", linear=LinearSettings(min_df=1, C=1.0))
    train("linear", data, root / "b", linear=LinearSettings(min_df=1, C=0.05, ngram_max=1))
    # a partner that `a` needs (weighed 0.40 and 0.60 on this dev slice): `b` beside `a` weighs under 0.01 and is left out
    train("linear", data, root / "c", linear=LinearSettings(min_df=1, C=1.0, ngram_max=1))
    return root


def test_a_trained_model_is_calibrated_on_the_dev_slice_and_keeps_its_argmax(two_linear):
    model = load_predictor(two_linear / "a")
    config = json.loads((two_linear / "a" / "config.json").read_text())["reviewstars"]
    assert model.temperature == config["temperature"] != 1.0
    assert config["training"]["calibration"]["dev_reviews"] == 80  # fitted on the dev slice, not the scored split
    raw, calibrated = model.uncalibrated_proba(TEXTS), model.predict_proba(TEXTS)
    assert (raw.argmax(axis=1) == calibrated.argmax(axis=1)).all() and not np.allclose(raw, calibrated)
    metrics = json.loads((two_linear / "a" / "metrics.json").read_text())
    assert metrics["intervals"]["accuracy"][0] <= metrics["accuracy"] <= metrics["intervals"]["accuracy"][1]
    assert "ece" in metrics and "ece_uncalibrated" in metrics
    assert 0 < metrics["ece_noise_floor"] <= metrics["ece_noise_95"]


def test_the_ensemble_command_writes_a_folder_every_command_opens(two_linear, tiny_data, tmp_path):
    run = run_cli
    folder = tmp_path / "ensemble"
    done = run("ensemble", "--models", f"{two_linear / 'a'},{two_linear / 'c'}", "--data", tiny_data, "--dev-size", 80, "--output", folder)
    assert done.returncode == 0, done.stderr
    config = json.loads((folder / "config.json").read_text())["reviewstars"]
    assert config["kind"] == "ensemble" and len(config["members"]) == 2 and abs(sum(config["weights"]) - 1) < 1e-6
    assert not list(folder.glob("*.safetensors")) and not list(folder.glob("*.npz"))  # only its weights, in JSON

    ensemble = load_predictor(folder)
    members = [load_predictor(two_linear / name) for name in ("a", "c")]
    expected = sum(w * m.predict_proba(TEXTS) for w, m in zip(config["weights"], members))
    np.testing.assert_allclose(ensemble.predict_proba(TEXTS), expected, rtol=1e-5)

    predicted = run("predict", "--model", folder, "--json", *TEXTS)
    assert predicted.returncode == 0, predicted.stderr
    assert [r["stars"] for r in json.loads(predicted.stdout)] == list(ensemble.predict(TEXTS))
    evaluated = run("evaluate", "--model", folder, "--data", tiny_data, "--split", "validation")
    assert evaluated.returncode == 0 and "95% CI" in evaluated.stdout, evaluated.stderr

    from fastapi.testclient import TestClient

    from reviewstars.serving import create_app

    with TestClient(create_app(ensemble, name="ensemble")) as client:
        answer = client.post("/predict", json={"texts": TEXTS})
    assert answer.status_code == 200
    assert [p["stars"] for p in answer.json()["predictions"]] == list(ensemble.predict(TEXTS))


def test_median_decision_minimises_the_star_error(two_linear, tiny_data):
    from reviewstars.jobs import evaluate

    argmax = evaluate(two_linear / "b", tiny_data, split="validation")
    median = evaluate(two_linear / "b", tiny_data, split="validation", decision="median")
    assert median.decision == "median" and median.mae <= argmax.mae + 0.02


def test_an_ensemble_that_holds_itself_is_refused(two_linear, tmp_path):
    from reviewstars.errors import ModelError

    folder = tmp_path / "loop"
    folder.mkdir()
    config = {"reviewstars": {"kind": "ensemble", "labels": [1, 2, 3, 4, 5], "members": [str(two_linear / "a"), "."], "weights": [0.5, 0.5]}}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="cannot hold itself"):
        load_predictor(folder)
