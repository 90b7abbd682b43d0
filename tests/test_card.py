"""The model card's YAML header is the Hub's card metadata, and carries the measured scores."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from reviewstars.data import DataSettings
from reviewstars.jobs import train
from reviewstars.jobs.card import _dataset, card_data
from reviewstars.kinds import PRETRAINED
from reviewstars.models.linear import LinearSettings
from reviewstars.jobs.result import TrainResult

pytestmark = pytest.mark.trainer  # CI runs these again on the oldest transformers allowed


@pytest.fixture(scope="module")
def linear_folder(tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("card") / "linear"
    train("linear", DataSettings(tiny_data), folder, linear=LinearSettings(min_df=1))
    return folder


def scores(folder) -> dict[str, float]:
    """The model-index's values by metric, read back through the Hub's own parser."""
    card = ModelCard.load(folder / "README.md")
    return {result.metric_type: result.metric_value for result in card.data.eval_results}


# Our own architectures (scratch, bag) need this package to open: "reviewstars", like the linear model.
@pytest.mark.parametrize("folder, library", [("linear_folder", "reviewstars"), ("scratch_model", "reviewstars")])
def test_the_header_carries_the_card_data_and_the_metrics(request, folder, library):
    folder = request.getfixturevalue(folder)
    card = ModelCard.load(folder / "README.md")
    metrics = json.loads((folder / "metrics.json").read_text())
    data = card.data
    # no licence claimed: the weights inherit the terms of the reviews they learned from
    assert (data.library_name, data.license, data.pipeline_tag) == (library, None, "text-classification")
    assert data.datasets is None and "yelp" not in data.tags  # synthetic reviews, not Yelp's
    assert scores(folder) == {"accuracy": metrics["accuracy"], "f1": metrics["macro_f1"]}
    assert {r.dataset_split for r in data.eval_results} == {metrics["split"]}
    for section in ("## Training", f"## Results on `{metrics['split']}`", "## Use"):
        assert section in card.text


def test_the_human_sections_stay(linear_folder):
    text = ModelCard.load(linear_folder / "README.md").text
    assert "## Settings" in text and "Strongest n-grams per rating" in text and "| accuracy | macro-F1 |" in text


def test_fine_tuned_models_name_their_base_and_only_the_hubs_yelp_as_their_data(tmp_path):
    local_copy = tmp_path / "yelp" / "train.parquet"
    local_copy.parent.mkdir()
    local_copy.touch()
    result = TrainResult(model="minilm", kind="pretrained", output=str(tmp_path / "minilm"), data={"data": str(local_copy)},
                         train_examples=10, train_examples_seen=10, train_seconds=1.0, parameters=1, base_model="minilm")
    data = card_data(result, PRETRAINED)
    # a local file named yelp may hold other reviews: the card names the Hub's set only when it was the Hub's set
    assert (data.base_model, data.datasets, data.library_name) == ("sentence-transformers/all-MiniLM-L6-v2", None, "transformers")
    hub = card_data(TrainResult(**{**result.__dict__, "data": {"data": "yelp_review_full"}}), PRETRAINED)
    assert hub.datasets == ["yelp_review_full"]
    assert card_data(TrainResult(**{**result.__dict__, "base_model": "bert-base-cased"}), PRETRAINED).base_model == "bert-base-cased"
    assert card_data(TrainResult(**{**result.__dict__, "base_model": str(tmp_path)}), PRETRAINED).base_model is None
    assert _dataset("yelp_review_full")[2] and not _dataset("amazon_polarity")[2]


def test_an_alias_is_named_by_its_hub_id_even_beside_a_folder_of_its_name(tmp_path, monkeypatch):
    """`train --model minilm` run where a ./minilm folder lay fine-tuned the alias (as train reads
    it) but wrote a card without its base_model."""
    from reviewstars.jobs.card import ALIAS_HUB_IDS, _hub_id

    monkeypatch.chdir(tmp_path)
    (tmp_path / "minilm").mkdir()
    (tmp_path / "my-base").mkdir()
    assert _hub_id("minilm") == ALIAS_HUB_IDS["minilm"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert _hub_id("my-base") is None and _hub_id("org/bert") == "org/bert" and _hub_id(None) is None
