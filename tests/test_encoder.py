"""The from-scratch encoder: attention is the textbook's, padding is invisible, folders round-trip."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForSequenceClassification, pipeline

from reviewstars.models.encoder import EncoderConfig, EncoderForStarRating, attention, masked_mean
from reviewstars.tokenization import train_wordpiece

TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)


def tiny_model(seed: int = 0) -> EncoderForStarRating:
    torch.manual_seed(seed)
    return EncoderForStarRating(EncoderConfig(**TINY)).eval()


def test_attention_matches_pytorch_scaled_dot_product_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 7, 8) for _ in range(3))
    key_mask = torch.ones(3, 7, dtype=torch.bool)
    key_mask[1, 5:] = False
    key_mask[2, 2:] = False
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
    torch.testing.assert_close(attention(q, k, v, key_mask), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attention(q, k, v), F.scaled_dot_product_attention(q, k, v), rtol=1e-5, atol=1e-6)


def test_padding_does_not_change_a_prediction():
    model = tiny_model()
    ids = torch.tensor([[5, 17, 33, 8, 91]])
    alone = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    padded_ids = torch.tensor([[5, 17, 33, 8, 91, 0, 0, 0, 0]])
    padded_mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0, 0]])
    padded = model(input_ids=padded_ids, attention_mask=padded_mask).logits
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-6)
    # and in a batch beside a longer review
    batch = torch.tensor([[5, 17, 33, 8, 91, 0, 0], [4, 4, 4, 4, 4, 4, 4]])
    mask = (batch != 0).long()
    torch.testing.assert_close(model(input_ids=batch, attention_mask=mask).logits[:1], alone, rtol=1e-5, atol=1e-6)


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert masked_mean(x, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_loss_is_cross_entropy():
    model = tiny_model()
    ids, labels = torch.tensor([[5, 6, 7], [8, 9, 10]]), torch.tensor([0, 4])
    out = model(input_ids=ids, labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))


def test_save_pretrained_round_trips_exactly_through_the_auto_classes(tmp_path):
    model = tiny_model(seed=3)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "reviewstars-encoder"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is EncoderForStarRating
    # The weights come back bit for bit ...
    assert model.state_dict().keys() == loaded.state_dict().keys()
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    # ... and so do predictions, up to float rounding: memory-mapped tensors may take another SIMD path.
    ids = torch.tensor([[5, 17, 33, 8, 91, 2, 0]])
    mask = (ids != 0).long()
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, loaded(input_ids=ids, attention_mask=mask).logits, rtol=0, atol=1e-6)


def test_pipeline_opens_the_folder(tmp_path):
    tokenizer = train_wordpiece(["the food was great", "awful service and cold food"] * 20, vocab_size=120)
    model = EncoderForStarRating(EncoderConfig(**{**TINY, "vocab_size": len(tokenizer)}))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    classify = pipeline("text-classification", model=str(tmp_path))
    result = classify(["the food was great", "awful service"])
    assert len(result) == 2 and all(r["label"] in {"1 star", "2 stars", "3 stars", "4 stars", "5 stars"} for r in result)
    assert 0.0 < result[0]["score"] <= 1.0


def test_wordpiece_ids_are_canonical_on_real_reviews():
    """Pieces are numbered in a fixed order, so the same reviews give the same ids.

    (On tiny artificial texts merge-frequency ties can still change which pieces the
    Rust trainer picks; that is why --resume reuses the checkpoint's tokenizer.)
    """
    import pytest

    from conftest import YELP
    from reviewstars.data import load_data

    if not (YELP / "train.parquet").is_file():
        pytest.skip(f"shared Yelp data not found at {YELP}")
    texts = list(load_data(YELP / "train.parquet", train_size=2000)["train"]["text"])
    first, second = train_wordpiece(texts, vocab_size=3000), train_wordpiece(texts, vocab_size=3000)
    assert first.get_vocab() == second.get_vocab()
    assert first.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert first(texts[0])["input_ids"] == second(texts[0])["input_ids"]
