"""Ensemble weights on the simplex, and the ensemble model folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from conftest import synthetic_reviews
from reviewstars.models.probabilities import combine, fit_ensemble_weights
from reviewstars.errors import ModelError
from reviewstars.models.ensemble import EnsemblePredictor
from reviewstars.models.linear import LinearPredictor, LinearSettings


def calibrated_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from softmax(logits)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, 5))
    labels = (rng.random((n, 1)) > np.cumsum(softmax(logits, axis=1), axis=1)).sum(axis=1)
    return logits, np.minimum(labels, 4)


def log_loss(proba: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(len(labels)), labels])))


# ---------------------------------------------------------------------- weights
def test_weights_lie_on_the_simplex():
    logits, labels = calibrated_data(2000, seed=0)
    rng = np.random.default_rng(1)
    probas = [softmax(logits + rng.normal(0, noise, logits.shape), axis=1) for noise in (0.5, 1.0, 2.0)]
    weights = fit_ensemble_weights(probas, labels)
    assert weights.shape == (3,)
    assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[2]  # less noise, more trust


def test_a_useless_member_gets_almost_no_weight():
    logits, labels = calibrated_data(4000, seed=2)
    good, uniform = softmax(logits, axis=1), np.full((4000, 5), 0.2)
    assert fit_ensemble_weights([uniform, good], labels)[0] < 0.01


def test_two_complementary_noisy_models_combined_beat_each_on_held_out_data():
    logits, labels = calibrated_data(4000, seed=3)
    rng = np.random.default_rng(4)
    a, b = (softmax(logits + rng.normal(0, 1.5, logits.shape), axis=1) for _ in range(2))
    fit, held_out = slice(0, 2000), slice(2000, None)
    weights = fit_ensemble_weights([a[fit], b[fit]], labels[fit])
    combined = combine([a[held_out], b[held_out]], weights)
    assert log_loss(combined, labels[held_out]) < min(log_loss(a[held_out], labels[held_out]), log_loss(b[held_out], labels[held_out])) - 0.05


def test_fitting_is_deterministic_and_one_member_gets_everything():
    logits, labels = calibrated_data(500, seed=5)
    probas = [softmax(logits, axis=1), softmax(logits / 2, axis=1)]
    np.testing.assert_array_equal(fit_ensemble_weights(probas, labels), fit_ensemble_weights(probas, labels))
    assert fit_ensemble_weights(probas[:1], labels).tolist() == [1.0]


def test_combine_is_the_weighted_average_and_checks_shapes():
    a, b = np.full((2, 5), 0.2), np.eye(5)[:2]
    np.testing.assert_allclose(combine([a, b], [0.25, 0.75]), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError, match="one weight per member"):
        combine([a, b], [1.0])
    with pytest.raises(ValueError, match="share one shape"):
        combine([a, np.eye(5)], [0.5, 0.5])


# ---------------------------------------------------------------------- model folder
@pytest.fixture(scope="module")
def ensemble_folder(tmp_path_factory):
    """An ensemble folder holding two linear members (different data), weights 0.7 / 0.3."""
    folder = tmp_path_factory.mktemp("ensemble") / "pair"
    for name, seed in (("first", 1), ("second", 3)):
        data = synthetic_reviews(300, seed=seed)
        LinearPredictor(LinearSettings(min_df=1)).fit(data["text"].tolist(), data["label"].tolist()).save(folder / "members" / name)
    return folder


def test_a_member_that_adds_nothing_is_left_out_and_the_others_weighed_again(tiny_data, tmp_path, monkeypatch):
    """compare's ensemble kept scratch at weight 0.00: its whole forward pass on every review, for nothing."""
    from reviewstars.data import DataSettings
    from reviewstars.jobs import train
    from reviewstars.jobs import ensemble as ensemble_module
    from reviewstars.models import load_predictor

    said: list[str] = []
    monkeypatch.setattr(ensemble_module, "note", said.append)
    data = DataSettings(tiny_data, dev_size=80)
    good, wrong = tmp_path / "good", tmp_path / "wrong"
    train("linear", data, good, linear=LinearSettings(min_df=1))
    contrary = LinearPredictor.load(good)
    contrary.coef = -contrary.coef  # sure of the wrong stars: any weight on it costs log-loss
    contrary.save(wrong)
    result = ensemble_module.build_ensemble([str(good), str(wrong)], data, tmp_path / "ensemble")
    assert result["members"] == [str(good)] and result["weights"] == [1.0]
    assert list(result["left_out"]) == [str(wrong)] and result["left_out"][str(wrong)] < 0.01
    assert len(said) == 2 and said[0].startswith("ensemble: wrong left out: weighed 0.0")
    assert said[1] == "ensemble: good alone is kept: the ensemble predicts as it does"  # not passed off as a blend
    config = json.loads((tmp_path / "ensemble" / "config.json").read_text())["reviewstars"]
    assert len(config["members"]) == 1 and config["weights"] == [1.0]
    reviews = synthetic_reviews(40, seed=11)["text"].tolist()
    np.testing.assert_allclose(load_predictor(tmp_path / "ensemble").predict_proba(reviews), load_predictor(good).predict_proba(reviews))


def test_the_ensemble_command_checks_every_members_name_before_it_opens_any(tiny_data, tmp_path, monkeypatch):
    """A typo in the last of --models was found once the members before it had loaded (a MiniLM: seconds each)."""
    from reviewstars.data import DataSettings
    from reviewstars.jobs import ensemble as ensemble_module

    monkeypatch.setattr(ensemble_module, "load_predictor", lambda *a, **k: pytest.fail("a member opened before the names were checked"))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"\./no-such-model: no such model folder"):
        ensemble_module.build_ensemble([str(tmp_path / "model"), "./no-such-model"], DataSettings(tiny_data), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return synthetic_reviews(60, seed=9)["text"].tolist()


def test_save_and_load_predict_the_same(ensemble_folder, texts):
    members = [ensemble_folder / "members" / name for name in ("first", "second")]
    ensemble = EnsemblePredictor.from_folders(members, [0.7, 0.3])
    before = ensemble.predict_proba(texts)
    expected = 0.7 * LinearPredictor.load(members[0]).predict_proba(texts) + 0.3 * LinearPredictor.load(members[1]).predict_proba(texts)
    np.testing.assert_allclose(before, expected)

    ensemble.save(ensemble_folder)
    config = json.loads((ensemble_folder / "config.json").read_text())["reviewstars"]
    digests = config.pop("member_digests")
    assert config == {"kind": "ensemble", "labels": [1, 2, 3, 4, 5], "recipe": "ensemble", "members": ["members/first", "members/second"], "weights": [0.7, 0.3]}
    assert [set(d) for d in digests] == [{"config_sha256", "weights_sha256"}] * 2 and digests[0] != digests[1]
    assert "members/first" in (ensemble_folder / "README.md").read_text()

    loaded = EnsemblePredictor.load(ensemble_folder)
    np.testing.assert_array_equal(loaded.predict_proba(texts), before)
    np.testing.assert_array_equal(loaded.predict(texts), ensemble.predict(texts))
    assert loaded.num_parameters == sum(LinearPredictor.load(m).num_parameters for m in members) > 0
    description = loaded.describe()
    assert description["kind"] == "ensemble" and description["weights"] == [0.7, 0.3]
    assert [m["kind"] for m in description["members"]] == ["linear", "linear"]


def test_a_self_contained_ensemble_folder_can_be_moved(ensemble_folder, texts, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ensemble_folder / "members", bundle / "members")
    EnsemblePredictor.from_folders([bundle / "members" / "first"], [1.0]).save(bundle)
    moved = shutil.move(bundle, tmp_path / "moved")  # the original path is gone: only the move can answer
    loaded = EnsemblePredictor.load(moved)
    assert loaded.member_folders == [(tmp_path / "moved" / "members" / "first").resolve()]
    np.testing.assert_array_equal(loaded.predict_proba(texts), LinearPredictor.load(ensemble_folder / "members" / "first").predict_proba(texts))


def test_an_ensemble_refuses_a_member_retrained_since_it_was_weighed(ensemble_folder, texts, tmp_path):
    shutil.copytree(ensemble_folder / "members", tmp_path / "members")
    members = [tmp_path / "members" / name for name in ("first", "second")]
    EnsemblePredictor.from_folders(members, [0.7, 0.3]).save(tmp_path / "pair")
    EnsemblePredictor.load(tmp_path / "pair")  # as saved
    data = synthetic_reviews(300, seed=5)
    LinearPredictor(LinearSettings(min_df=1, C=0.01)).fit(data["text"].tolist(), data["label"].tolist()).save(members[0])
    with pytest.raises(ModelError, match=r"its member ../members/first has changed since the ensemble was weighed .*reviewstars ensemble"):
        EnsemblePredictor.load(tmp_path / "pair")


def test_members_are_stored_relative_so_a_folder_of_models_moves_whole(ensemble_folder, tmp_path):
    member = (ensemble_folder / "members" / "second").resolve()
    shutil.copytree(member, tmp_path / "runs" / "second")
    EnsemblePredictor.from_folders([tmp_path / "runs" / "second"], [1.0]).save(tmp_path / "runs" / "ensemble")
    assert json.loads((tmp_path / "runs" / "ensemble" / "config.json").read_text())["reviewstars"]["members"] == ["../second"]
    (tmp_path / "runs").rename(tmp_path / "moved")
    moved = EnsemblePredictor.load(tmp_path / "moved" / "ensemble")
    assert moved.member_folders == [(tmp_path / "moved" / "second").resolve()]
    assert moved.predict(["great food"]).shape == (1,)


def write_config(folder, config) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))


def ensemble_config(members, weights) -> dict:
    return {"reviewstars": {"kind": "ensemble", "labels": [1, 2, 3, 4, 5], "members": members, "weights": weights}}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ensemble_config(["first", "missing"], [0.5, 0.5]), r"member 2: no model folder at .*missing"),
        (ensemble_config(["first", "second"], [1.0]), r"2 members but 1 weights"),
        (ensemble_config(["first", "second"], [1.2, -0.2]), r"non-negative"),
        (ensemble_config(["first", "second"], [0.5, 0.6]), r"sum to 1, not 1\.1"),
        (ensemble_config(["first", "second"], ["half", "half"]), r"list of numbers"),
        (ensemble_config([], []), r"non-empty list of folder paths"),
        ([1, 2, 3], r"must hold a JSON object"),
        ({"reviewstars": "ensemble"}, r"'reviewstars' entry must be an object"),
        ({"reviewstars": {"kind": "linear"}}, r"kind is 'linear', not 'ensemble'"),
    ],
)
def test_broken_configs_are_one_line_model_errors(ensemble_folder, tmp_path, config, message):
    folder = tmp_path / "broken"
    shutil.copytree(ensemble_folder / "members", folder)  # members at folder/first, folder/second
    write_config(folder, config)
    with pytest.raises(ModelError, match=message) as caught:
        EnsemblePredictor.load(folder)
    assert "\n" not in str(caught.value) and str(folder / "config.json") in str(caught.value)


def test_unreadable_folders_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not a model folder"):
        EnsemblePredictor.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        EnsemblePredictor.load(tmp_path)


def test_an_ensembles_parameters_are_its_members_layer_by_layer(ensemble_folder):
    """`basics params --model ENSEMBLE` said a total of 0 where the leaderboard said the members' sum."""
    ensemble = EnsemblePredictor.from_folders([ensemble_folder / "members" / name for name in ("first", "second")], [0.7, 0.3])
    rows = ensemble.layer_parameters()
    assert rows and sum(count for _, _, count in rows) == ensemble.num_parameters > 0
    assert {name.split(":")[0] for name, _, _ in rows} == {Path(folder).name for folder in ensemble.member_folders}
