"""CUDA graphs for a server's batch shapes (`models.graphs`), their bookkeeping checked on the
CPU with a stand-in capture that replays as a graph does (the same static inputs and output
tensor, recomputed in place); the real capture where a GPU is present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from reviewstars.models.transformer import Batching, TransformerPredictor
from reviewstars.tokenization import ShapeBuckets

from support import ODD_TEXTS


class ReplayingCapture:
    """A CUDA graph's contract on the CPU: the replay reads the static inputs it was captured on
    and writes the same output tensor; and, as graphs sharing one memory pool may, it spoils
    every other graph's output. Counts replays."""

    def __init__(self) -> None:
        self.replays = 0
        self.outputs: list[torch.Tensor] = []

    def __call__(self, forward, input_ids, attention_mask):
        output = forward(input_ids, attention_mask)
        self.outputs.append(output)

        def replay() -> None:
            self.replays += 1
            for other in self.outputs:
                other.fill_(float("nan"))
            output.copy_(forward(input_ids, attention_mask))
        return output, replay


def bucketed(predictor: TransformerPredictor, monkeypatch) -> Batching:
    """The CUDA path's batches (buckets, padding rows, a token budget that makes many batches of one shape), on the CPU."""
    monkeypatch.setattr(predictor, "_shapes", lambda device=None: ShapeBuckets(width_step=32))
    return Batching(rows=1024, tokens=300, chunk=None)


@pytest.fixture
def reviews(tiny_data):
    return pd.read_parquet(tiny_data / "validation.parquet")["text"].tolist()[:70] + ODD_TEXTS


def test_replayed_batches_predict_what_the_eager_forward_does(tiny_bert, reviews, monkeypatch):
    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)
    expected = predictor.proba_in_batches(reviews, predictor.batching())
    batching = bucketed(predictor, monkeypatch)
    capture = ReplayingCapture()
    graphs = predictor.capture_graphs(ShapeBuckets(width_step=32).all_shapes(64, 64), capture)
    assert len(graphs.replays) == 14 and not graphs.failed  # rows 1..64 x widths 32, 64
    checks = capture.replays
    got = predictor.proba_in_batches(reviews, batching)
    np.testing.assert_allclose(got, expected, atol=1e-5)  # several batches share a shape: each kept its own rows
    assert capture.replays - checks >= 3
    assert predictor.describe()["cuda_graphs"] == {"shapes": 14, "failed": 0}


def test_a_replay_that_ignores_its_inputs_is_refused_and_the_shape_runs_eagerly(tiny_bert, reviews, monkeypatch):
    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)
    expected = predictor.proba_in_batches(reviews, predictor.batching())
    batching = bucketed(predictor, monkeypatch)
    frozen = lambda forward, ids, mask: (forward(ids, mask), lambda: None)  # noqa: E731  replays the capture's answer
    graphs = predictor.capture_graphs([(4, 32), (8, 64)], frozen)
    assert not graphs.replays and all("differs from the eager pass" in why for why in graphs.failed.values())
    np.testing.assert_allclose(predictor.proba_in_batches(reviews, batching), expected, atol=1e-5)


def test_a_capture_that_raises_stops_the_captures_and_says_why(tiny_bert):
    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)

    def failing(forward, ids, mask):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
    graphs = predictor.capture_graphs([(1, 32), (2, 32), (4, 32)], failing)
    assert not graphs.replays
    assert graphs.describe() == {"shapes": 0, "failed": 1,
                                 "first_failure": "capture failed: operation not permitted when stream is capturing"}


def test_out_of_memory_skips_a_shape_and_the_smaller_ones_are_still_captured(tiny_bert):
    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)
    fits = ReplayingCapture()

    def small_only(forward, ids, mask):
        if ids.shape[0] >= 32:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return fits(forward, ids, mask)
    graphs = predictor.capture_graphs([(64, 64), (32, 64), (16, 64), (1, 32)], small_only)
    assert sorted(graphs.replays) == [(1, 32), (16, 64)] and set(graphs.failed) == {(64, 64), (32, 64)}


def test_graphs_are_not_replayed_on_other_weights_nor_at_another_precision(tiny_bert, reviews, monkeypatch):
    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model, tokenizer, max_length=64)
    batching = bucketed(predictor, monkeypatch)
    capture = ReplayingCapture()
    predictor.capture_graphs(ShapeBuckets(width_step=32).all_shapes(64, 64), capture)
    model.to(torch.float64).to(torch.float32)  # the same device, new memory: the graphs read the old
    checks = capture.replays
    expected = predictor.proba_in_batches(reviews, batching)
    assert capture.replays == checks  # eager throughout
    np.testing.assert_allclose(expected, predictor.proba_in_batches(reviews, predictor.batching()), atol=1e-5)
    predictor.mixed_precision = True  # unchanged: the graphs stay
    assert predictor.graphs is not None
    predictor.mixed_precision = False  # captured at the other precision: dropped
    assert predictor.graphs is None
    assert predictor.warm_up(16) == 0 and predictor.graphs is None  # a CPU: no shapes, no graphs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graphs_give_the_eager_probabilities_on_a_gpu(tiny_bert, reviews):
    model, tokenizer = tiny_bert
    predictor = TransformerPredictor(model.to("cuda"), tokenizer, max_length=64)
    eager = predictor.predict_proba(reviews[:40])
    several = Batching(rows=64, tokens=300)  # many batches, their shapes interleaved
    eager_several = predictor.proba_in_batches(reviews, several)
    assert predictor.warm_up(64) == len(ShapeBuckets().all_shapes(64, 64))
    assert predictor.graphs.describe() == {"shapes": len(ShapeBuckets().all_shapes(64, 64)), "failed": 0}
    for size in (1, 5, 16, 40):
        np.testing.assert_allclose(predictor.predict_proba(reviews[:size]), eager[:size], atol=2e-3)
    np.testing.assert_allclose(predictor.proba_in_batches(reviews, several), eager_several, atol=2e-3)
