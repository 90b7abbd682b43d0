"""Layer-wise learning rates and a frozen word-embedding matrix: the knobs tried for MiniLM on a CPU budget."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from reviewstars.data import DataSettings
from reviewstars.jobs import train
from reviewstars.models.encoder import EncoderConfig, EncoderForStarRating
from reviewstars.training import TrainSettings
from reviewstars.training.trainer import decay_by_layer, layer_depths

from support import fast, tiny_scratch

pytestmark = pytest.mark.trainer  # CI runs these again on the oldest transformers allowed

TINY_SCRATCH = tiny_scratch(layers=2)


def test_depths_of_a_bert_and_of_our_encoder():
    bert = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2,
                                                    intermediate_size=16, num_labels=5))
    depths = layer_depths([name for name, _ in bert.named_parameters()])
    assert depths["bert.embeddings.word_embeddings.weight"] == 0
    assert depths["bert.encoder.layer.0.attention.self.query.weight"] == 1
    assert depths["bert.encoder.layer.2.output.dense.weight"] == 3
    assert depths["bert.pooler.dense.weight"] == depths["classifier.weight"] == 4
    ours = layer_depths([name for name, _ in EncoderForStarRating(EncoderConfig(vocab_size=50)).named_parameters()])
    assert ours["embeddings.tokens.weight"] == 0 and ours["blocks.0.attention.query.weight"] == 1
    assert ours["classifier.weight"] == max(ours.values())


def test_each_layer_learns_at_decay_times_the_rate_of_the_one_above():
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2,
                                                     intermediate_size=16, num_labels=5))
    names = dict(model.named_parameters())
    decayed = [p for n, p in names.items() if "bias" not in n and "LayerNorm" not in n]
    plain = [p for n, p in names.items() if "bias" in n or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}], lr=1e-3)
    decay_by_layer(optimizer, model, 0.5)
    rate = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert len(rate) == len(names)  # every parameter kept, once
    assert rate[id(names["classifier.weight"])] == (1e-3, 0.01)
    assert rate[id(names["bert.encoder.layer.2.output.dense.weight"])] == (5e-4, 0.01)
    assert rate[id(names["bert.encoder.layer.0.output.dense.bias"])] == (1.25e-4, 0.0)
    assert rate[id(names["bert.embeddings.word_embeddings.weight"])] == (6.25e-5, 0.01)


@pytest.mark.parametrize("overrides", [{"freeze_embeddings": True}, {"layer_decay": 0.8}])
def test_a_scratch_encoder_still_learns_with_each_knob(tiny_data, tmp_path, overrides):
    # 10 passes: with its embeddings frozen at random the encoder learns slower (about 0.4 after 6, 0.6 after 10,
    # whatever WordPiece vocabulary the tie-breaking of the tokenizers' trainer gives it this session)
    settings = fast(epochs=10, **overrides)
    torch.manual_seed(0)
    result = train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "m", transformer=settings, scratch=TINY_SCRATCH)
    assert result.metrics.accuracy > 0.4, result.metrics.accuracy  # chance: 0.2
    from reviewstars.models import load_predictor

    trained = load_predictor(tmp_path / "m").model
    torch.manual_seed(42)  # the seed training starts from: the same first weights
    first = EncoderForStarRating(trained.config)
    unchanged = torch.equal(trained.get_input_embeddings().weight, first.get_input_embeddings().weight)
    assert unchanged == bool(overrides.get("freeze_embeddings"))
    assert not torch.equal(trained.classifier.weight, first.classifier.weight)


def test_layer_decay_is_checked():
    from reviewstars.errors import ReviewstarsError

    with pytest.raises(ReviewstarsError, match="layer"):
        TrainSettings(layer_decay=1.5)
