"""The bag kind (fastText-style), added through the registry alone: it learns, its folder
round-trips, and Hugging Face's pipeline opens it as it is."""

from __future__ import annotations

import json

import numpy as np

from reviewstars.data import DataSettings
from reviewstars.jobs import evaluate, train
from reviewstars.models import load_predictor
from reviewstars.kinds.bag import BagSettings
from reviewstars.models.bag import ngram_bags
from reviewstars.training import TrainSettings


def test_bigram_bags_average_words_and_hashed_pairs():
    import torch

    ids = torch.tensor([[5, 6, 7, 0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    bag, weights = ngram_bags(ids, mask, vocab_size=10, buckets=100)
    assert bag.shape == (1, 7) and bool((bag[0, 4:6] >= 10).all())  # bigram ids live past the word vocabulary
    assert float(weights.sum()) == 1.0 and float(weights[0, 3]) == 0.0 and float(weights[0, 6]) == 0.0  # padding weighs nothing


def test_bag_learns_and_its_folder_round_trips(tiny_data, tmp_path):
    output = tmp_path / "bag"
    settings = TrainSettings(epochs=8, eval_steps=20, max_length=64, early_stopping=None)
    result = train("bag", DataSettings(tiny_data, dev_size=50), output, transformer=settings, bag=BagSettings(dim=16, words=500, buckets=1000))
    assert result.kind == "bag" and result.metrics.accuracy > 0.5, result.metrics.accuracy  # chance: 0.2
    assert json.loads((output / "config.json").read_text())["model_type"] == "reviewstars-bag"
    again = evaluate(output, tiny_data, split="validation")
    assert again.accuracy == result.metrics.accuracy

    from transformers import pipeline

    texts = ["Amazing food, excellent and perfect!", "Awful, rude, the worst.", ""]
    loaded = load_predictor(output)
    assert loaded.folded and loaded.temperature != 1.0  # the temperature lives in the weights: the pipeline gets it too
    ours = loaded.predict_proba(texts)
    classify = pipeline("text-classification", model=str(output), top_k=None)
    theirs = [*classify(texts[:2]), *classify([""])]  # a review of no words alone: a batch of no ids at all
    for row, scores in zip(ours, theirs):
        by_label = {s["label"]: s["score"] for s in scores}
        np.testing.assert_allclose(row, [by_label[f"{k} star{'s' if k > 1 else ''}"] for k in range(1, 6)], atol=1e-5)
