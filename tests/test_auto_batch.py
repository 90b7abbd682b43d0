"""`--batch-size auto`: the probe rule on fake timings, and what auto is without CUDA."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from reviewstars.cli.options import build_settings
from reviewstars.errors import ReviewstarsError
from reviewstars.training import TrainSettings
from reviewstars.training.autobatch import pick_batch_size, scaled_learning_rate, settle_batch_size


def timings(per_example: dict[int, float | None]):
    """A probe that answers from a table, and remembers what it was asked."""
    asked = []

    def probe(batch_size: int) -> float | None:
        asked.append(batch_size)
        return per_example[batch_size]

    return probe, asked


def test_auto_doubles_while_the_time_per_example_falls_by_more_than_a_tenth():
    probe, asked = timings({16: 1.0, 32: 0.5, 64: 0.3, 128: 0.28})
    assert pick_batch_size(probe)[0] == 64  # 0.28 is only 7% under 0.3: not worth 2x the learning rate
    assert asked == [16, 32, 64, 128]


def test_auto_stops_below_the_first_batch_that_does_not_fit():
    probe, _ = timings({16: 1.0, 32: 0.5, 64: None})
    assert pick_batch_size(probe) == (32, {16: 1.0, 32: 0.5, 64: None})
    probe, asked = timings({16: None})
    assert pick_batch_size(probe)[0] == 16 and asked == [16]  # not even 16 fits: the Trainer will say so


def test_auto_never_passes_its_largest_batch():
    probe, asked = timings({16: 1.0, 32: 0.5, 64: 0.25, 128: 0.125, 256: 0.06})
    assert pick_batch_size(probe)[0] == 128 and asked == [16, 32, 64, 128]
    probe, asked = timings({16: 1.0, 32: 0.5, 64: 0.25})
    assert pick_batch_size(probe, largest=40)[0] == 32 and asked == [16, 32]  # e.g. a tiny training set


def test_auto_is_16_without_cuda_and_the_learning_rate_scales_with_the_square_root():
    cpu_args = SimpleNamespace(device=torch.device("cpu"), bf16=False, fp16=False)
    settings, record = settle_batch_size(TrainSettings(batch_size="auto", learning_rate=1e-4), None, None, None, cpu_args)
    assert settings.batch_size == 16 and settings.learning_rate == 1e-4
    assert record["batch_size"] == 16 and record["seconds_per_example"] == {}
    assert scaled_learning_rate(5e-5, 128) == pytest.approx(5e-5 * 8 ** 0.5) and scaled_learning_rate(5e-5, 64) == pytest.approx(1e-4)
    # a resumed run keeps the batch its plan chose, wherever it runs now
    saved = {"auto_batch": {"batch_size": 64, "seconds_per_example": {"16": 1.0, "32": 0.5, "64": 0.3}}}
    settings, _ = settle_batch_size(TrainSettings(batch_size="auto", learning_rate=1e-4), None, None, None, cpu_args, saved)
    assert settings.batch_size == 64 and settings.learning_rate == pytest.approx(2e-4)


def test_batch_size_option_takes_a_number_or_auto():
    values = {name: getattr(TrainSettings(), name) for name in TrainSettings.__dataclass_fields__}
    assert build_settings(TrainSettings, {**values, "batch_size": "auto"}).batch_size == "auto"
    assert build_settings(TrainSettings, {**values, "batch_size": "32"}).batch_size == 32
    assert build_settings(TrainSettings, {**values, "batch_size": 16}).batch_size == 16  # the default, as typer hands it
    with pytest.raises(ReviewstarsError, match="--batch-size: expected a whole number or auto"):
        build_settings(TrainSettings, {**values, "batch_size": "big"})
    with pytest.raises(ReviewstarsError, match="--batch-size must be at least 1"):
        build_settings(TrainSettings, {**values, "batch_size": "0"})


def test_a_run_with_auto_batch_on_the_cpu_trains_at_16_and_says_so(tiny_data, tmp_path):
    from reviewstars.data import DataSettings
    from reviewstars.jobs import train

    from support import tiny_scratch

    tiny = tiny_scratch()
    settings = TrainSettings(batch_size="auto", learning_rate=3e-3, epochs=1, eval_steps=20, max_length=32, early_stopping=None)
    result = train("scratch", DataSettings(tiny_data, dev_size=50), tmp_path / "auto", transformer=settings, scratch=tiny, device="cpu")
    assert result.settings["batch_size"] == 16 and result.settings["learning_rate"] == 3e-3
    assert result.plan["auto_batch"]["batch_size"] == 16 and result.steps == 22  # 350 reviews, batches of 16
