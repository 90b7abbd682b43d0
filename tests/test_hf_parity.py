"""A fine-tuned folder is a Hugging Face citizen with our answers (issue 25): its calibration
lives in its weights, so `transformers.pipeline` and `from_pretrained` give the very
probabilities `reviewstars predict` gives, and its tokenizer knows the trained length."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reviewstars.data import DataSettings
from reviewstars.jobs import predict_texts, train
from reviewstars.models import load_predictor
from reviewstars.training import TrainSettings

from conftest import BERT_TOKENIZER, needs_bert_tokenizer, synthetic_reviews


@pytest.fixture(scope="module")
def trained(scratch_model, tiny_data, tmp_path_factory):
    """A tiny BERT (MiniLM's shape) saved as a base model, then fine-tuned by `train` like any pretrained one."""
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = load_predictor(scratch_model).tokenizer
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, num_labels=5)
    base = tmp_path_factory.mktemp("base") / "tiny-bert"
    BertForSequenceClassification(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    folder = tmp_path_factory.mktemp("tuned") / "model"
    settings = TrainSettings(epochs=3, eval_steps=20, max_length=48, learning_rate=2e-3, early_stopping=None)
    train(str(base), DataSettings(tiny_data, dev_size=50), folder, transformer=settings)
    return folder


@pytest.fixture(scope="module")
def fine_tuned(trained, tmp_path_factory):
    """The trained folder, sure to carry a temperature in its weights.

    Whether calibration helped this tiny model hangs on the last bits of the machine's
    arithmetic, so a copy is given one when it was kept out: saving it again replaces the
    files `train` wrote (its card among them), which is why the card is read from `trained`."""
    import shutil

    folder = tmp_path_factory.mktemp("calibrated") / "model"
    shutil.copytree(trained, folder)
    predictor = load_predictor(folder)
    if not predictor.folded:
        predictor.temperature = 1.7
        predictor.save(folder)
    assert load_predictor(folder).folded
    return folder


def test_pipeline_and_from_pretrained_give_our_calibrated_probabilities(fine_tuned):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    section = json.loads((fine_tuned / "config.json").read_text())["reviewstars"]
    assert section["temperature_in_weights"] is True and section["temperature"] != 1.0  # there is a calibration to carry
    texts = synthetic_reviews(200, seed=31)["text"].tolist()  # shorter than the trained 48 tokens: every reader sees all of it
    # as some reviews are written: fullwidth letters, a ligature, a zero-width space in a word (a probe: 5 stars ours, 2 theirs)
    fullwidth = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}
    texts += [text.translate(fullwidth) for text in texts[:10]] + [text.replace("fi", "\ufb01") for text in texts[10:20]]
    texts += [text.replace("o", "o\u200b") for text in texts[20:30]]
    ours = np.array([[row["probabilities"][str(k)] for k in range(1, 6)] for row in predict_texts(fine_tuned, texts)])

    theirs = pipeline("text-classification", model=str(fine_tuned), top_k=None)(texts)
    by_label = np.array([[{s["label"]: s["score"] for s in scores}[f"{k} star{'s' if k > 1 else ''}"] for k in range(1, 6)]
                         for scores in theirs])
    np.testing.assert_allclose(by_label, ours, atol=1e-4)

    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(fine_tuned), AutoTokenizer.from_pretrained(fine_tuned)
    with torch.inference_mode():
        plain = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()
    np.testing.assert_allclose(plain, ours, atol=1e-4)


def test_the_card_names_the_recipe_as_the_leaderboard_does(trained, fine_tuned):
    """A probe's MiniLM card said 'Recipe `pretrained`' where leaderboard.json and report.md said minilm."""
    from reviewstars.models.folder import recipe_of

    assert recipe_of(trained) == recipe_of(fine_tuned) == "tiny-bert"
    assert "\nRecipe `tiny-bert`: a pretrained encoder fine-tuned" in (trained / "README.md").read_text()


def test_the_tokenizer_knows_the_trained_length_so_a_pipeline_cuts_there(fine_tuned):
    from transformers import AutoTokenizer, pipeline

    assert AutoTokenizer.from_pretrained(fine_tuned).model_max_length == 48
    classify = pipeline("text-classification", model=str(fine_tuned), top_k=None)
    long = " ".join(["great food but slow service"] * 1000)  # 5,000 words
    (scores,) = classify([long], truncation=True)
    assert len(scores) == 5 and abs(sum(s["score"] for s in scores) - 1) < 1e-5


def test_folders_saved_before_the_fold_still_apply_their_temperature(fine_tuned, tmp_path):
    """An older folder: the same weights unfolded, the temperature in its config alone."""
    import shutil

    from safetensors.torch import load_file, save_file

    old = tmp_path / "old"
    shutil.copytree(fine_tuned, old)
    config = json.loads((old / "config.json").read_text())
    temperature = config["reviewstars"]["temperature"]
    del config["reviewstars"]["temperature_in_weights"]
    (old / "config.json").write_text(json.dumps(config))
    weights = load_file(old / "model.safetensors")
    weights = {name: (tensor * temperature if name.startswith("classifier.") else tensor) for name, tensor in weights.items()}
    save_file(weights, old / "model.safetensors", metadata={"format": "pt"})
    texts = synthetic_reviews(30, seed=32)["text"].tolist()
    np.testing.assert_allclose(load_predictor(old).predict_proba(texts), load_predictor(fine_tuned).predict_proba(texts), atol=1e-5)
    assert not load_predictor(old).folded


def test_our_own_tokenizing_skips_the_steps_readable_has_done(fine_tuned):
    """The saved tokenizer normalizes as `text.readable` does; our own path, which has already
    applied `readable`, reads with a copy without those steps (they cost 18% of its time) and the same ids."""
    from reviewstars.text import readable
    from reviewstars.tokenization import pieces_tokenizer

    tokenizer = load_predictor(fine_tuned).tokenizer
    saved = json.loads(tokenizer.backend_tokenizer.to_str())["normalizer"]
    assert [step["type"] for step in saved["normalizers"][:2]] == ["Replace", "NFKC"]
    copy = pieces_tokenizer(tokenizer)
    assert "NFKC" not in json.dumps(json.loads(copy.to_str())["normalizer"])
    texts = [readable(text) for text in ["ＧＲＥＡＴ ｆｏｏｄ", "\ufb01ne dining", "gr\u200beat", "Plain tacos."]]
    assert [e.ids for e in copy.encode_batch(texts, add_special_tokens=False)] == \
        [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


@needs_bert_tokenizer
def test_a_bert_tokenizer_class_folder_reads_reviews_as_we_do_in_pipeline(tmp_path):
    """A newcomer's MiniLM folder (tokenizer_class BertTokenizer): transformers 5 built that class's
    normalizer again from its settings, dropping our NFKC step, so "ＧＲＥＡＴ ﬁne food" read as
    [UNK] in `pipeline` and its stars differed from `reviewstars predict`."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, pipeline

    from reviewstars.models.transformer import TransformerPredictor

    tokenizer = AutoTokenizer.from_pretrained(BERT_TOKENIZER)
    assert type(tokenizer).__name__ == "BertTokenizer"  # the case: a class of its own
    torch.manual_seed(0)
    network = BertForSequenceClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                                       num_attention_heads=4, intermediate_size=64, num_labels=5,
                                                       id2label={i: f"{i + 1} star{'s' if i else ''}" for i in range(5)}))
    folder = tmp_path / "bert"
    TransformerPredictor(network, tokenizer, max_length=64).save(folder)
    texts = ["ＧＲＥＡＴ ﬁne food", "GREAT fine food", "caf\u00e9 ok", "great\u200b service", "ｔｅｒｒｉｂｌｅ"]
    reread = AutoTokenizer.from_pretrained(folder)
    assert reread.tokenize(texts[0]) == reread.tokenize(texts[1]) and "[UNK]" not in reread.tokenize(texts[0])
    ours = np.array([[row["probabilities"][str(k)] for k in range(1, 6)] for row in predict_texts(folder, texts)])
    theirs = pipeline("text-classification", model=str(folder), top_k=None, truncation=True)(texts)
    by_label = np.array([[{s["label"]: s["score"] for s in scores}[f"{k} star{'s' if k > 1 else ''}"] for k in range(1, 6)]
                         for scores in theirs])
    np.testing.assert_allclose(by_label, ours, atol=1e-4)
