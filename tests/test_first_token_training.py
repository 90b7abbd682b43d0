"""Fine-tuning a BERT classifier with its last layer at [CLS] only: the same loss, the same
gradients and the same trained model as the full forward, for less arithmetic."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

import reviewstars.training.trainer as trainer_module
from reviewstars.data import load_data
from reviewstars.models.first_token import FirstTokenTraining, training_forward
from reviewstars.tokenization import train_wordpiece
from reviewstars.training import TrainSettings, train_transformer

pytestmark = pytest.mark.trainer  # CI runs these again on the oldest transformers allowed


def tiny_bert(vocab_size: int = 120, dropout: float = 0.1) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64, num_labels=5, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config)


@pytest.fixture(scope="module")
def reviews(tiny_data):
    """(300 training and 60 dev reviews, a WordPiece tokenizer learned on the training file): what every run here trains on."""
    data = load_data(tiny_data)
    tokenizer = train_wordpiece(data["train"]["text"], vocab_size=120)
    return data["train"].select(range(300)), data["validation"].select(range(60)), tokenizer


def a_batch():
    ids = torch.randint(5, 100, (6, 23), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 9:], mask[4, 1:] = 0, 0  # a short review, and one that is [CLS] alone
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 3, 4, 2])}


def loss_and_gradients(model, forward, batch):
    model.zero_grad(set_to_none=True)
    loss = forward(**batch).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mode", ["eval", "train without dropout"])
def test_the_cls_only_path_gives_the_models_loss_and_every_gradient(mode):
    model = tiny_bert(dropout=0.0 if mode != "eval" else 0.1)
    model.train(mode != "eval")
    batch = a_batch()
    assert training_forward(model, batch).__class__ is FirstTokenTraining
    full_loss, full = loss_and_gradients(model, model, batch)
    assert model.config.problem_type == "single_label_classification"
    model.config.problem_type = None
    fast_loss, fast = loss_and_gradients(model, FirstTokenTraining(model), batch)
    assert model.config.problem_type == "single_label_classification"  # recorded as BERT's own forward does
    assert torch.allclose(fast_loss, full_loss, atol=1e-6), (fast_loss, full_loss)
    # The last layer's query, output and feed-forward weights get gradients from [CLS] alone either way.
    assert fast.keys() == full.keys() and len(full) == len(list(model.parameters()))
    for name in full:
        assert torch.allclose(fast[name], full[name], atol=1e-6, rtol=1e-4), (name, (fast[name] - full[name]).abs().max())


@pytest.mark.parametrize("dropout", ["attention_probs_dropout_prob", "classifier_dropout"])
def test_each_dropout_of_the_last_layer_and_head_is_drawn_as_the_models_own(dropout):
    """One layer and one dropout on: any randomness comes from that dropout, on the [CLS]-only path."""
    torch.manual_seed(0)
    settings = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "classifier_dropout": 0.0, dropout: 0.3}
    model = BertForSequenceClassification(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                                     intermediate_size=64, max_position_embeddings=64, num_labels=5,
                                                     initializer_range=0.5, **settings))  # weights large enough to show it
    batch = {k: v for k, v in a_batch().items() if k != "labels"}
    fast = FirstTokenTraining(model)
    model.eval()
    assert torch.allclose(fast(**batch).logits, model(**batch).logits, atol=1e-5)  # no dropout in eval mode
    model.train()
    with torch.no_grad():
        draws = {name: torch.stack([forward(**batch).logits for _ in range(400)]) for name, forward in
                 (("fast", fast), ("full", model))}
    assert draws["fast"].std(0).mean() > 0.01  # this dropout is applied on the fast path
    # ... with the model's rate, where the model has it: the same spread and mean over the draws
    spread = draws["fast"].std(0).mean() / draws["full"].std(0).mean()
    assert 0.85 < spread < 1.15, spread
    assert torch.allclose(draws["fast"].mean(0), draws["full"].mean(0), atol=0.25 * draws["full"].std(0).mean().item())


def test_other_models_and_other_inputs_keep_the_full_forward():
    model = tiny_bert()
    batch = a_batch()
    assert training_forward(model, batch, first_token=False) is model  # the probe, for several processes
    assert training_forward(model, {**batch, "token_type_ids": torch.zeros_like(batch["input_ids"])}) is model
    assert training_forward(model, {k: v for k, v in batch.items() if k != "attention_mask"}) is model
    assert training_forward(model, {**batch, "labels": torch.nn.functional.one_hot(batch["labels"], 5).float()}) is model
    model.config.output_hidden_states = True  # the caller wants more than logits
    assert training_forward(model, batch) is model
    model.config.output_hidden_states = False
    model.hf_device_map = {"bert.embeddings": 0, "bert.encoder": 1, "classifier": 1}  # spread by accelerate
    assert training_forward(model, batch) is model
    del model.hf_device_map
    model.config.problem_type = "multi_label_classification"
    assert training_forward(model, batch) is model
    wrapped = torch.nn.Sequential(tiny_bert())  # as DDP wraps a model: its own forward, which syncs gradients
    assert training_forward(wrapped, batch) is wrapped


@pytest.mark.parametrize("balanced", [True, False], ids=["class-weighted loss", "the model's own loss"])
def test_the_trainer_fine_tunes_through_the_cls_only_path_to_the_model_the_full_forward_gives(reviews, tmp_path, monkeypatch,
                                                                                              balanced):
    train_split, dev_split, tokenizer = reviews
    settings = TrainSettings(learning_rate=1e-3, epochs=4, batch_size=16, eval_steps=20, logging_steps=20, max_length=32,
                             early_stopping=None, seed=0, balanced=balanced)

    training_calls = []
    counted = FirstTokenTraining.forward
    monkeypatch.setattr(FirstTokenTraining, "forward", lambda self, *a, **k: (
        training_calls.append(1) if self.classifier.model.training else None) or counted(self, *a, **k))
    fast = tiny_bert(len(tokenizer), dropout=0.0)
    fast_outcome = train_transformer(fast, tokenizer, train_split, dev_split, tmp_path / "fast", settings)
    assert len(training_calls) == fast_outcome["steps"] > 0  # every training step took it
    assert fast_outcome["forward"] == "last layer at [CLS] only"

    monkeypatch.setattr(trainer_module, "training_forward", lambda model, inputs, first_token=True: model)
    full = tiny_bert(len(tokenizer), dropout=0.0)
    full_outcome = train_transformer(full, tokenizer, train_split, dev_split, tmp_path / "full", settings)
    assert full_outcome["forward"] == "full"

    assert fast_outcome["steps"] == full_outcome["steps"]
    assert fast_outcome["best_dev_accuracy"] == full_outcome["best_dev_accuracy"]
    assert fast.config.problem_type == full.config.problem_type == (None if balanced else "single_label_classification")
    fast_weights, full_weights = dict(fast.named_parameters()), dict(full.named_parameters())
    worst = max((fast_weights[name] - full_weights[name]).abs().max().item() for name in full_weights)
    assert worst < 1e-5, worst  # float rounding (8e-7 measured), not another model; a longer run at a higher rate
    # amplifies rounding as any two runs on different kernels would (1e-3 after 113 steps at 3e-3)
    batch = {k: v for k, v in a_batch().items() if k != "labels"}
    with torch.no_grad():
        assert torch.equal(fast.eval()(**batch).logits.argmax(-1), full.eval()(**batch).logits.argmax(-1))


def test_a_bert_fine_tuned_through_the_cls_only_path_learns(reviews, tmp_path):
    train_split, dev_split, tokenizer = reviews
    settings = TrainSettings(learning_rate=3e-3, epochs=6, batch_size=16, eval_steps=20, logging_steps=20, max_length=32,
                             early_stopping=None, seed=0)
    outcome = train_transformer(tiny_bert(len(tokenizer)), tokenizer, train_split, dev_split, tmp_path / "model", settings)
    assert outcome["forward"] == "last layer at [CLS] only"
    losses = [entry["loss"] for entry in outcome["log_history"] if "loss" in entry]
    assert len(losses) >= 5 and losses[-1] < 0.85 * losses[0], losses  # 1.60 -> 1.23 measured
    assert outcome["best_dev_accuracy"] > 0.35, outcome["best_dev_accuracy"]  # chance: 0.2


@pytest.mark.parametrize("bf16", [True, False])
def test_the_cls_only_path_runs_in_the_trainers_precision_and_returns_fp32_logits(tmp_path, monkeypatch, bf16):
    from transformers import TrainingArguments

    from reviewstars.models.first_token import FirstTokenClassifier
    from reviewstars.training.trainer import StarTrainer

    seen = []
    inner = FirstTokenClassifier.forward
    monkeypatch.setattr(FirstTokenClassifier, "forward", lambda self, *a: seen.append(torch.is_autocast_enabled("cpu")) or inner(self, *a))
    model = tiny_bert(dropout=0.0)
    trainer = StarTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, bf16=bf16, report_to=[]))
    loss, outputs = trainer.compute_loss(model, a_batch(), return_outputs=True)
    assert seen == [bf16]  # accelerate sets the precision on the model's forward, which this path does not call
    assert outputs["logits"].dtype == torch.float32 and loss.dtype == torch.float32
    expected = model(**a_batch()).loss
    assert torch.allclose(loss, expected, atol=0.05 if bf16 else 1e-6), (loss, expected)
