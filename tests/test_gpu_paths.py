"""What the GPU paths do, checked on the CPU: batch shapes from a few buckets, a tokenizing
thread ahead of the model, a serving fast path that gives the same answers, a re-plan read
per token, and a device that is not there refused for every kind."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pandas as pd
import pytest

from reviewstars.errors import ReviewstarsError
from reviewstars.models import load_predictor
from reviewstars.models.base import PredictStages, ahead, prediction_rows
from reviewstars.tokenization import BatchPacker, ShapeBuckets, encode_pieces, pieces_tokenizer
from reviewstars.training.budget import plan_budget
from reviewstars.training.clock import TrainingClock, replan, typical_step

from support import ODD_TEXTS


def test_buckets_give_a_few_shapes_and_the_same_rows(scratch_model, tiny_data):
    tokenizer = load_predictor(scratch_model).tokenizer
    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist() + ODD_TEXTS
    pieces = encode_pieces(tokenizer, texts, pieces_tokenizer(tokenizer))
    plain = {int(r): (ids, mask) for rows, ids, mask in BatchPacker(tokenizer, 64).batches(pieces, 50, 600)
             for r, ids, mask in zip(rows, ids, mask)}
    shapes, seen = set(), []
    for rows, ids, mask in BatchPacker(tokenizer, 64, shapes=ShapeBuckets(width_step=16)).batches(pieces, 50, 600):
        shapes.add(ids.shape)
        seen += rows.tolist()
        assert ids.shape[0] & (ids.shape[0] - 1) == 0 and (ids.shape[1] % 16 == 0 or ids.shape[1] == 64)  # power of two, step of 16
        for k, row in enumerate(rows):
            want_ids, want_mask = plain[int(row)]
            n = int(want_mask.sum())
            assert (ids[k, :n] == want_ids[:n]).all() and mask[k].sum() == n
        assert (mask[len(rows):, 0] == 1).all() and (mask[len(rows):, 1:] == 0).all()  # padding rows: never all masked
    assert sorted(seen) == list(range(len(texts)))
    assert shapes <= set(ShapeBuckets(width_step=16).all_shapes(64, 64))


def test_bucketed_batches_predict_what_plain_ones_do(tiny_bert, tiny_data, monkeypatch):  # noqa: F811
    """The CUDA path (buckets, padding rows, a tokenizing thread, chunks), forced on the CPU."""
    from reviewstars.models.transformer import Batching, TransformerPredictor

    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)
    texts = pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist()[:70] + ODD_TEXTS
    expected = predictor.proba_in_batches(texts, predictor.batching())
    monkeypatch.setattr(predictor, "_shapes", lambda device=None: ShapeBuckets(width_step=32))
    bucketed = predictor.proba_in_batches(texts, Batching(rows=1024, tokens=700, chunk=24))
    np.testing.assert_allclose(bucketed, expected, atol=1e-5)
    assert predictor.last_stages["reviews"] == len(texts) and predictor.last_stages["tokenize"] > 0
    assert "waiting for batches" in predictor.last_stages  # several chunks: made on the thread
    assert predictor.warm_up(16) == 0  # off CUDA: nothing to warm (the forced buckets are for prediction only)


def test_the_thread_ahead_hands_over_every_item_an_error_and_stops_when_the_caller_does():
    stages = PredictStages()
    assert list(ahead(iter(range(100)), 3, stages)) == list(range(100)) and "waiting for batches" in stages.seconds

    def failing():
        yield 1
        raise ValueError("broken batch")
    with pytest.raises(ValueError, match="broken batch"):
        list(ahead(failing(), 2))
    made = []

    def endless():
        while True:
            made.append(1)
            yield len(made)
    before = threading.active_count()
    for item in ahead(endless(), 2):
        if item == 5:
            break
    time.sleep(0.3)
    assert threading.active_count() == before and len(made) < 20  # the worker stopped with the caller


def test_the_fast_json_of_predictions_is_the_rows_the_rest_of_the_product_writes():
    from reviewstars.serving.bodies import Refusal
    from reviewstars.serving.endpoint import predictions_json

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5), size=7)
    proba[0] = [1e-9, 0.2, 0.3, 0.25, 0.25 - 1e-9]
    texts = ["good", "", "  ", "bad food", "ok", "fine", "\ud800 x"]
    assert json.loads(predictions_json(texts, proba)) == {"predictions": prediction_rows(texts, proba)}
    proba[3, 2] = np.nan
    with pytest.raises(Refusal, match="not numbers"):
        predictions_json(texts, proba)


def test_a_lone_request_is_answered_without_waiting_for_company(linear_model):
    """The batcher runs at once when the model is idle: no `max_wait_ms` is added to a request."""
    from support import running

    from reviewstars.serving import create_app

    import httpx

    with running(create_app(load_predictor(linear_model))) as url, httpx.Client() as client:
        client.post(f"{url}/predict", json={"texts": ["warm up"]})
        started = time.perf_counter()
        for _ in range(20):
            assert client.post(f"{url}/predict", json={"texts": ["great food"]}).status_code == 200
        assert (time.perf_counter() - started) / 20 < 0.05  # a 5 ms wait would show in every one of them


def test_the_pace_is_read_per_token_and_a_slow_first_shape_does_not_set_it():
    # 20 steps of alternating short and long batches at 1 ms a token, and one cold-shape stall
    readings, clock, tokens = [(5, 0.0, 0)], 0.0, 0
    for step in range(6, 26):
        batch_tokens = 100 if step % 2 else 400
        clock += batch_tokens * 1e-3 + (2.0 if step == 7 else 0.0)
        tokens += batch_tokens
        readings.append((step, clock, tokens))
    assert typical_step(readings, tokens_per_step=250) == pytest.approx(0.25, rel=0.01)


def test_a_plan_made_from_a_slow_probe_is_made_again_from_the_runs_pace():
    plan = plan_budget(budget=180, elapsed=5, step_seconds=0.7, eval_example_seconds=0.02, batch_size=16, dev_rows=500,
                       train_rows=38_248, max_passes=2, tokens_per_step=1600)
    assert plan["evaluations"] == 1 and plan["expected_steps"] < 250
    again = replan(plan, 0.04)
    assert again["replanned"]["measured_seconds_per_step"] == 0.04 and again["expected_steps"] > 3000
    assert again["evaluations"] > plan["evaluations"] and again["deadline"] > plan["deadline"]
    assert again["dev_rows"] == plan["dev_rows"] and again["stop_after_steps"] == plan["stop_after_steps"]
    from reviewstars.training.budget import too_small_budget

    # a probe's plan that is warned of; the re-plan's line takes that back (a probe saw the warning stay on screen, wrong)
    slow = plan_budget(budget=60, elapsed=5, step_seconds=0.7, eval_example_seconds=0.02, batch_size=16, dev_rows=500,
                       train_rows=38_248, max_passes=2, tokens_per_step=1600)
    assert too_small_budget(slow) is not None and too_small_budget(replan(slow, 0.04)) is None
    clock = TrainingClock(dict(plan), warmup=0.1)
    assert clock.plan.get("replanned") is None and "probe" in clock.plan


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "cudaX", "mps", "tpu"])
def test_a_device_that_is_not_here_is_one_line_for_every_kind(linear_model, device):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ReviewstarsError, match=f"--device {device!r}|--device {device}"):  # as given: 'cudaX', not 'cudax'
        load_predictor(linear_model, device=device)
