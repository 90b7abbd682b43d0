"""Fast inference: the vectorised TF-IDF, streamed and sharded file prediction, ONNX export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviewstars.errors import DataError, ModelError
from reviewstars.jobs import merge_predictions, predict_file
from reviewstars.models import load_predictor
from reviewstars.models.tfidf import FastTfidf

from conftest import synthetic_reviews
from support import ODD_TEXTS

def test_fast_tfidf_equals_scikit_learn(linear_model, tiny_data):
    predictor = load_predictor(linear_model)
    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist() + ODD_TEXTS
    expected = predictor.vectorizer.transform(texts)
    fast = FastTfidf.from_vectorizer(predictor.vectorizer).transform(texts)
    assert fast.shape == expected.shape and fast.nnz == expected.nnz
    assert abs(fast - expected).max() < 1e-6
    fast_proba = predictor.predict_proba(texts)  # goes through FastTfidf
    direct = np.asarray(expected @ predictor.coef.T) + predictor.intercept
    assert (fast_proba.argmax(axis=1) == direct.argmax(axis=1)).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["good", "food", "the", "Amazing", "a", "I", "x_", "9", "worst", "rude", "é", "ok"]),
                          st.text(alphabet=st.characters(max_codepoint=127), max_size=3)), max_size=30))
def test_fast_tfidf_equals_scikit_learn_on_random_text(linear_model, words):
    if linear_model not in _FAST:
        vectorizer = load_predictor(linear_model).vectorizer
        _FAST[linear_model] = vectorizer, FastTfidf.from_vectorizer(vectorizer)
    vectorizer, features = _FAST[linear_model]
    text = "".join(word + gap for word, gap in words)
    expected, fast = vectorizer.transform([text]), features.transform([text])
    assert fast.nnz == expected.nnz
    assert fast.nnz == 0 or abs(fast - expected).max() < 1e-6


_FAST = {}


def test_a_warmed_linear_model_has_nothing_left_to_build_for_its_first_request(linear_model):
    """A server warms its model before it opens its port: the first request to a linear model
    trained on 38k reviews waited 0.8 s (on the event loop) for its transform to be built."""
    predictor = load_predictor(linear_model)
    assert predictor._features is None and predictor._coef_rows is None  # loading builds nothing: `predict` starts sooner
    assert predictor.warm_up(64) == 0  # no batch shapes: a CPU model
    assert predictor._features is not None and predictor._coef_rows[0] is predictor.coef


def test_linear_scores_follow_its_weights_when_they_change(linear_model):
    """The row-major copy of the coefficients kept for speed is the one of the weights in use:
    folding the temperature into them keeps the probabilities, new weights change them."""
    predictor = load_predictor(linear_model)
    texts = ["great food, friendly staff", "rude and slow, never again", ""]
    predictor.temperature, predictor.folded = 2.0, False
    calibrated = predictor.predict_proba(texts)
    assert predictor.fold_temperature()
    assert np.allclose(predictor.predict_proba(texts), calibrated, atol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        predictor.coef *= 2  # in place: the copy would be stale, so it is refused
    predictor.coef = -predictor.coef
    assert (predictor.predict_proba(texts).argmax(axis=1) != calibrated.argmax(axis=1)).any()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_predict_file_streams_in_input_order(linear_model, tmp_path, suffix):
    frame = synthetic_reviews(300, seed=5)[["text"]]
    frame.loc[7, "text"] = ""  # empty texts are rated too
    source = tmp_path / f"in{suffix}"
    {".csv": lambda: frame.to_csv(source, index=False), ".parquet": lambda: frame.to_parquet(source),
     ".jsonl": lambda: frame.to_json(source, orient="records", lines=True)}[suffix]()
    output = tmp_path / f"out{suffix}"
    summary = predict_file(linear_model, source, output, chunk_rows=64, batch_size=16)
    assert summary["rows"] == 300
    written = {".csv": lambda: pd.read_csv(output, keep_default_na=False), ".parquet": lambda: pd.read_parquet(output),
               ".jsonl": lambda: pd.read_json(output, lines=True)}[suffix]()
    assert written["text"].tolist() == frame["text"].tolist()
    expected = load_predictor(linear_model).predict_proba(frame["text"].tolist())
    assert written["stars"].tolist() == (expected.argmax(axis=1) + 1).tolist()
    assert np.allclose(written[[f"p_{s}" for s in range(1, 6)]].to_numpy(), expected, atol=1e-6)
    assert np.allclose(written["expected_stars"], expected @ np.arange(1, 6))


def test_shards_merge_back_into_the_unsharded_output(linear_model, tmp_path):
    source = tmp_path / "in.parquet"
    synthetic_reviews(203, seed=6)[["text"]].to_parquet(source)
    whole = tmp_path / "whole.parquet"
    predict_file(linear_model, source, whole, chunk_rows=50)
    parts = [tmp_path / f"part{i}.parquet" for i in range(3)]
    sizes = [predict_file(linear_model, source, part, shard=f"{i}/3", chunk_rows=50)["rows"] for i, part in enumerate(parts)]
    assert sizes == [68, 68, 67]
    merged = tmp_path / "merged.parquet"
    merge_predictions(parts, merged)
    pd.testing.assert_frame_equal(pd.read_parquet(merged), pd.read_parquet(whole))
    with pytest.raises(Exception, match="shard 2/3 missing"):
        merge_predictions(parts[:2], tmp_path / "bad.parquet")


def test_a_bad_row_mid_file_names_it_and_leaves_no_output(linear_model, tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [json.dumps({"text": f"review {i}"}) for i in range(100)]
    lines[70] = json.dumps({"text": 5})
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "out.csv"
    with pytest.raises(DataError, match=r"in.jsonl: row 71: text must be a string, got int"):
        predict_file(linear_model, source, output, chunk_rows=16)
    assert list(tmp_path.iterdir()) == [source]  # no output, no temporary file


def test_onnx_export_predicts_like_torch(scratch_model, tiny_data, tmp_path, request):
    pytest.importorskip("onnxruntime")
    from reviewstars.models.onnx import OnnxPredictor, export_onnx

    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist() + ODD_TEXTS
    torch_proba = load_predictor(scratch_model).predict_proba(texts)

    exported = request.getfixturevalue("scratch_onnx")  # export_onnx(scratch_model, ...), shared with test_contract
    fp32 = load_predictor(exported)
    assert isinstance(fp32, OnnxPredictor)
    assert np.abs(fp32.predict_proba(texts, batch_size=7) - torch_proba).max() < 1e-4
    assert fp32.describe()["quantize"] is None and fp32.num_parameters > 0
    _check_onnx_card(exported, scratch_model, fp32)
    from reviewstars.scoring.evaluation import seen_in_training  # still the same model: it knows what it learned

    train_texts = pd.read_parquet(tiny_data / "train.parquet")["text"].tolist()
    assert seen_in_training(exported, train_texts) == seen_in_training(scratch_model, train_texts) > 0
    from reviewstars.models.folder import read_metrics  # what a server's GET /model shows: the source's scores, said so

    metrics = read_metrics(exported)
    assert metrics["accuracy"] == read_metrics(scratch_model)["accuracy"] and metrics["measured_on"].startswith("the model this")

    shutil.copytree(exported, tmp_path / "int8")  # an export writes over an earlier export of its own
    export_onnx(scratch_model, tmp_path / "int8", quantize="int8")
    int8 = load_predictor(tmp_path / "int8")
    agreement = (int8.predict(texts) == torch_proba.argmax(axis=1) + 1).mean()
    assert agreement > 0.9, agreement
    assert (tmp_path / "int8" / "model.onnx").stat().st_size < (exported / "model.onnx").stat().st_size
    # a review's own answer, whatever reviews share its call (a probe's int8 server answered by its neighbours' traffic)
    together, alone = int8.predict_proba(texts, batch_size=32), np.vstack([int8.predict_proba([text]) for text in texts])
    assert np.array_equal(together, alone)


def _check_onnx_card(folder, source, predictor):
    """The exported folder's card is the Hub's `onnx` library, keeps the source's scores, and its
    ONNX Runtime snippet, run as written, gives reviewstars' stars."""
    import re

    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "onnx" and "onnx" in card.data.tags
    assert card.data.eval_results == ModelCard.load(source / "README.md").data.eval_results  # the source's scores
    assert "## The source model's card" in card.text and "\n## Use" in card.text
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1).replace("THIS_FOLDER", str(folder))
    namespace = {}
    exec(snippet, namespace)  # noqa: S102  (our own card's code, as a user would paste it)
    assert namespace["stars"].tolist() == predictor.predict(["The food was great but the service was slow."]).tolist()


def test_export_refuses_what_it_cannot_export(linear_model, scratch_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from reviewstars.models.onnx import export_onnx

    with pytest.raises(ModelError, match="only transformer models export to ONNX"):
        export_onnx(linear_model, tmp_path / "x")
    with pytest.raises(ModelError, match="unknown quantization 'int4'"):
        export_onnx(scratch_model, tmp_path / "x", quantize="int4")
    assert not (tmp_path / "x").exists()
    trained = tmp_path / "trained"  # a trained model is ours, but export never writes over one
    shutil.copytree(linear_model, trained)
    before = {path.name: path.read_bytes() for path in trained.iterdir() if path.is_file()}
    with pytest.raises(ModelError, match=f"^--output {trained}: holds a trained linear model, and export writes over "
                                         "an earlier ONNX export only: give another folder$"):
        export_onnx(scratch_model, trained)
    assert {path.name: path.read_bytes() for path in trained.iterdir() if path.is_file()} == before


def test_first_token_classifier_gives_the_full_models_logits(tiny_bert, scratch_model):
    import torch

    from reviewstars.models.first_token import FirstTokenClassifier

    model, _ = tiny_bert
    ids = torch.randint(5, 100, (4, 19), generator=torch.Generator().manual_seed(1))
    padded = torch.ones_like(ids)
    padded[1, 7:], padded[3, 1:] = 0, 0  # one short review, one that is [CLS] alone
    fast = FirstTokenClassifier(model)
    with torch.inference_mode():
        for mask in (padded, torch.ones_like(ids)):  # with padding, and without (no mask at all inside)
            expected = model(input_ids=ids, attention_mask=mask).logits
            assert torch.allclose(fast(ids, mask), expected, atol=1e-5), (fast(ids, mask) - expected).abs().max()
    assert not FirstTokenClassifier.supports(load_predictor(scratch_model).model)  # ours pools otherwise: full forward


def test_transformer_predictor_on_a_bert_equals_the_model_text_by_text(tiny_bert, tiny_data):
    import torch

    from reviewstars.models.transformer import TransformerPredictor

    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64, truncation="head")
    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist()[:60] + ODD_TEXTS
    ids = [tokenizer(t, truncation=True, max_length=64)["input_ids"] for t in texts]
    with torch.inference_mode():  # unpadded, full forward pass
        expected = np.concatenate([model(input_ids=torch.tensor([row])).logits.softmax(-1).numpy() for row in ids])
    assert np.abs(predictor.predict_proba(texts, batch_size=8) - expected).max() < 1e-5


def test_onnx_export_of_a_bert_predicts_like_torch(tiny_bert, tmp_path):
    pytest.importorskip("onnxruntime")
    from reviewstars.models.onnx import export_onnx
    from reviewstars.models.transformer import TransformerPredictor

    model, tokenizer = tiny_bert
    TransformerPredictor(model, tokenizer, max_length=64, truncation="head").save(tmp_path / "bert")
    export_onnx(tmp_path / "bert", tmp_path / "onnx")
    texts = ["Amazing food, excellent service!", "Awful.", "", "ok " * 80]
    torch_proba = load_predictor(tmp_path / "bert").predict_proba(texts)
    assert np.abs(load_predictor(tmp_path / "onnx").predict_proba(texts) - torch_proba).max() < 1e-4


# --------------------------------------------------------------------------- batching by a token budget


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 300), max_size=80), batch_size=st.integers(1, 40),
       max_tokens=st.none() | st.integers(1, 2000))
def test_token_budget_batches_cover_every_row_once_within_the_budget(lengths, batch_size, max_tokens):
    from reviewstars.tokenization import padded_batches

    ids = [[7 + r] * n for r, n in enumerate(lengths)]
    batches = list(padded_batches(ids, batch_size, pad_id=0, max_tokens=max_tokens))
    rows = np.concatenate([b[0] for b in batches]) if batches else np.array([], dtype=int)
    assert sorted(rows.tolist()) == list(range(len(ids)))  # each row exactly once
    assert rows.tolist() == np.argsort(lengths, kind="stable").tolist()  # length-sorted: `rows` puts results back
    for batch_rows, input_ids, mask in batches:
        assert 1 <= len(batch_rows) <= batch_size
        assert input_ids.shape == mask.shape == (len(batch_rows), max(lengths[i] for i in batch_rows))
        if max_tokens is not None and len(batch_rows) > 1:
            assert input_ids.size <= max_tokens
        for r, i in enumerate(batch_rows):
            assert mask[r].sum() == lengths[i] and input_ids[r, : lengths[i]].tolist() == ids[i]
            assert not input_ids[r, lengths[i] :].any()
    if max_tokens is None:  # no budget: the fixed-size batches of before
        assert [len(b[0]) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)


def test_a_token_budget_fills_each_batch_as_far_as_it_goes():
    from reviewstars.tokenization import padded_batches

    ids = [[1] * n for n in (10, 10, 10, 10, 50, 50, 200)]
    shapes = [b[1].shape for b in padded_batches(ids, 16, max_tokens=100)]
    assert shapes == [(4, 10), (2, 50), (1, 200)]  # the 200-token review is over budget: it goes alone


@pytest.mark.parametrize("strategy", ["head", "tail", "head+tail"])
@pytest.mark.parametrize("max_length", [4, 12, 32])
def test_batches_packed_in_numpy_equal_encode_and_padded_batches(scratch_model, strategy, max_length):
    """The inference path cuts, frames and pads whole batches in numpy: the very rows the
    per-review path (`encode` + `padded_batches`) makes, for every truncation."""
    from reviewstars.tokenization import BatchPacker, encode, encode_pieces, padded_batches, pieces_tokenizer

    tokenizer = load_predictor(scratch_model).tokenizer
    texts = ODD_TEXTS * 3 + ["word " * 40, ""]
    expected = list(padded_batches(encode(tokenizer, texts, max_length, strategy), 5, tokenizer.pad_token_id, 60))
    # training's path (`tokenize_dataset`) takes the Rust batch call too: the same ids
    assert encode(tokenizer, texts, max_length, strategy, backend=pieces_tokenizer(tokenizer)) == encode(tokenizer, texts, max_length, strategy)
    for backend in (pieces_tokenizer(tokenizer), None):  # the Rust batch call, and the tokenizer's own
        packed = list(BatchPacker(tokenizer, max_length, strategy).batches(encode_pieces(tokenizer, texts, backend), 5, 60))
        assert len(packed) == len(expected)
        for (rows, ids, mask), (want_rows, want_ids, want_mask) in zip(packed, expected):
            np.testing.assert_array_equal(rows, want_rows)
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_array_equal(mask, want_mask)
    assert list(BatchPacker(tokenizer, max_length, strategy).batches(encode_pieces(tokenizer, []), 5)) == []


def test_the_tokenizer_copy_ignores_truncation_and_padding_saved_with_it(scratch_model):
    """A tokenizer.json may carry a fixed truncation and padding (MiniLM's: 128): the pieces
    path must see every token, as `encode` does."""
    from reviewstars.tokenization import encode_pieces, pieces_tokenizer

    tokenizer = load_predictor(scratch_model).tokenizer
    tokenizer.backend_tokenizer.enable_truncation(max_length=3)
    tokenizer.backend_tokenizer.enable_padding(length=50)
    try:
        pieces = encode_pieces(tokenizer, ["great food and friendly staff, we will come back"], pieces_tokenizer(tokenizer))
    finally:
        tokenizer.backend_tokenizer.no_truncation()
        tokenizer.backend_tokenizer.no_padding()
    assert pieces.lengths.tolist() == [len(tokenizer("great food and friendly staff, we will come back", add_special_tokens=False)["input_ids"])]
    assert pieces.lengths[0] > 3


def test_the_gpu_batching_gives_the_cpu_predictions(tiny_bert, tiny_data):
    """What CUDA does (token-budget batches, chunks tokenized ahead on a thread), run on the CPU."""
    from reviewstars.models.transformer import Batching, TransformerPredictor

    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)
    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist()[:60] + ODD_TEXTS
    assert predictor.batching() == Batching(rows=16) and predictor.batching(8) == Batching(rows=8)  # the CPU's: as before
    expected = predictor.proba_in_batches(texts, predictor.batching())
    gpu_like = predictor.proba_in_batches(texts, Batching(rows=1024, tokens=300, chunk=16))
    assert np.abs(gpu_like - expected).max() < 1e-5
    assert predictor.predict_proba([]).shape == (0, 5)


def test_mixed_precision_is_for_cuda_only(tiny_bert):
    """On a CPU bf16 is never switched on: predictions stay the fp32 ones, bit for bit."""
    import torch

    from reviewstars.models.transformer import TransformerPredictor

    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)
    with predictor._precision():
        assert not torch.is_autocast_enabled("cpu") and not torch.is_autocast_enabled("cuda")
    fp32 = predictor.predict_proba(ODD_TEXTS)
    predictor.mixed_precision = False
    assert np.array_equal(predictor.predict_proba(ODD_TEXTS), fp32)


def test_device_cpu_predicts_as_auto_does_on_a_cpu_machine(scratch_model, tiny_data):
    import torch

    if torch.cuda.is_available():
        pytest.skip("auto is a GPU here")
    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist()[:40] + ODD_TEXTS
    forced, auto = load_predictor(scratch_model, device="cpu"), load_predictor(scratch_model)
    assert forced.device.type == auto.device.type == "cpu"
    assert np.array_equal(forced.predict_proba(texts), auto.predict_proba(texts))


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_on_cuda_bf16_batches_by_tokens_and_agrees_with_fp32(scratch_model, tiny_data):
    from reviewstars.models.transformer import CUDA_TOKENS_PER_BATCH

    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist() + ODD_TEXTS
    on_cpu = load_predictor(scratch_model, device="cpu").predict_proba(texts)
    predictor = load_predictor(scratch_model, device="cuda")
    assert predictor.batching().tokens == CUDA_TOKENS_PER_BATCH
    bf16 = predictor.predict_proba(texts)
    predictor.mixed_precision = False
    assert np.abs(predictor.predict_proba(texts) - on_cpu).max() < 1e-4
    assert np.abs(bf16 - on_cpu).max() < 0.05
    assert (bf16.argmax(1) == on_cpu.argmax(1)).mean() >= 0.95
