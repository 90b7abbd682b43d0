"""The contract every model kind and every folder format keeps, read from the registries:
a kind added to `kinds.KINDS` (or a format to `models.PREDICTORS`) is tested here with no
new test file.

Each kind is trained small on the synthetic reviews (the pretrained kind fine-tunes a tiny
random BERT saved as a folder); the derived formats are made from those folders (ONNX from a
transformer folder, an ensemble of the first two kinds). Then every folder must: give five
finite probabilities summing to one for any text (empty ones included, and marked), stars
that are their most likely star, the same most likely star before and after calibration,
the same probabilities after a save and load, words that `explain` weighs with the model's own
probabilities, and a card.
"""

from __future__ import annotations

import numpy as np
import pytest

from reviewstars.data import DataSettings
from reviewstars.jobs import train
from reviewstars.models.explanation import explain_one, without_span, word_spans
from reviewstars.kinds import PRETRAINED, trainable_kinds
from reviewstars.models import PREDICTORS, folder_kind, load_predictor
from reviewstars.models.base import prediction_rows
from reviewstars.models.folder import recipe_of
from reviewstars.models.transformer import TransformerPredictor

from support import ODD_TEXTS, fast, tiny_scratch

KIND_NAMES = [kind.name for kind in trainable_kinds()]
DERIVED = ("onnx", "ensemble")  # formats made from trained folders rather than trained
SMALL = fast(epochs=2)
TEXTS = ["Amazing food, excellent service, the best ever!", "Awful, rude staff; never again.", "", "   ", "🍕🍕 !!",
         *ODD_TEXTS[:12]]


@pytest.fixture(scope="module")
def folders(tiny_data, tiny_bert, scratch_model, tmp_path_factory, request):
    """`folders(name)`: the folder of a kind trained here, or of a derived format, made once."""
    root = tmp_path_factory.mktemp("contract")
    made = {"scratch": scratch_model}  # the suite's own, trained by `train` as here

    def folder(name: str):
        if name in made:
            return made[name]
        output = root / name
        if name == "onnx":
            pytest.importorskip("onnxruntime")
            from reviewstars.models.onnx import export_onnx

            source = folder(next(k for k in KIND_NAMES if folder_kind(folder(k)) == "transformer"))
            if source == scratch_model:  # the suite's own export of it
                output = request.getfixturevalue("scratch_onnx")
            else:
                export_onnx(source, output)
        elif name == "ensemble":
            from reviewstars.jobs.ensemble import build_ensemble

            build_ensemble([str(folder(k)) for k in KIND_NAMES[:2]], DataSettings(tiny_data, dev_size=50), output)
        else:
            model = name
            if name == PRETRAINED.name:  # any encoder folder stands for a pretrained one: a tiny random BERT
                network, tokenizer = tiny_bert
                base = root / "tiny-bert"
                TransformerPredictor(network, tokenizer, max_length=32, truncation="head").save(base)
                model = str(base)
            train(model, DataSettings(tiny_data, dev_size=50), output, transformer=SMALL, scratch=tiny_scratch())
        made[name] = output
        return output

    return folder


@pytest.mark.parametrize("name", [*KIND_NAMES, *DERIVED])
def test_every_kind_and_format_keeps_the_contract(folders, name, tmp_path):
    folder = folders(name)
    predictor = load_predictor(folder)
    proba = predictor.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), 5) and np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert predictor.predict(TEXTS).tolist() == (proba.argmax(axis=1) + 1).tolist()
    # calibration rescales confidence; it never changes which star is the most likely
    assert (predictor.uncalibrated_proba(TEXTS).argmax(axis=1) == proba.argmax(axis=1)).all()
    rows = prediction_rows(TEXTS, proba)
    assert [row["empty"] for row in rows[:5]] == [False, False, True, True, True]  # no word in the last three

    # `explain` asks every kind the same question: a word's effect is the expected stars with it minus without it
    explained = explain_one(predictor, TEXTS[0])
    assert explained.stars == rows[0]["stars"] and len(explained.words) == len(word_spans(TEXTS[0]))
    variants = [without_span(TEXTS[0], w.start, w.end) for w in explained.words]
    with_and_without = predictor.predict_proba([TEXTS[0], *variants]) @ np.arange(1, 6)
    np.testing.assert_allclose([w.stars_effect for w in explained.words], with_and_without[0] - with_and_without[1:], atol=2e-3)

    copy = predictor.save(tmp_path / "copy")  # and back: the same probabilities
    np.testing.assert_allclose(load_predictor(copy).predict_proba(TEXTS), proba, atol=1e-6)

    # the recipe that made it, recorded in the folder: the kind, a fine-tuned encoder's base, or the source's for ONNX
    source = {"onnx": next(k for k in KIND_NAMES if folder_kind(folders(k)) == "transformer"), PRETRAINED.name: "tiny-bert"}
    assert recipe_of(folder) == source.get(name, name)

    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "stars" in card and str(folder) not in card  # says what it rates; no path of this machine


def test_the_contract_covers_every_registered_format(folders):
    assert {folder_kind(folders(name)) for name in [*KIND_NAMES, *DERIVED]} == set(PREDICTORS)
