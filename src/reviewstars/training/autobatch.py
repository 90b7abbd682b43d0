"""`--batch-size auto`: a per-step batch that fills a GPU, and the learning rate to go with it.

A GPU runs a step of 16 reviews in about the time of 64: at the lesson's batch it mostly
waits. Auto doubles the batch from 16 while a probe step's time per example still falls
by more than `MIN_GAIN` and memory fits (`MEMORY_SHARE` of the GPU, probed with batches
as wide as the longest review), up to `LARGEST`. Without CUDA auto is 16: a CPU is busy
at 16 already, and a larger batch there only means fewer steps.

The learning rate (given, or the kind's own) is read as the rate for batch 16 and
scaled with the square root of the batch: the rule for Adam-type optimizers (Malladi et
al. 2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms"), where
SGD's linear rule (Goyal et al. 2017) overshoots. Measured on an H200 (3-minute MiniLM
budgets, before the pass limit): batch 128 at the linear 8x (4e-4) scored 0.593 on
validation, at 2x (1e-4) 0.6005; batch 16 at 5e-5 scored 0.6475. At 128 the square
root gives 2.8x (1.4e-4). The budget's pass limit (`Kind.max_passes`) holds whatever
the batch, so a larger batch means fewer, larger steps over the same passes.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import replace
from typing import Any, Callable

import torch

from .budget import measure_seconds_per_step
from .distributed import from_main_process

FIRST = 16             # the lesson's batch, and auto's answer without CUDA
LARGEST = 128          # 2.8x the learning rate of batch 16 at most
MIN_GAIN = 0.10        # a doubling must cut the time per example by more than this
MEMORY_SHARE = 0.85    # of the GPU's memory, leaving room for the optimizer's state
DEFAULT_LEARNING_RATE = 5e-5


def pick_batch_size(seconds_per_example: Callable[[int], float | None], largest: int = LARGEST) -> tuple[int, dict[int, float | None]]:
    """(batch size, every measurement): double from `FIRST` while the time per example falls
    by more than `MIN_GAIN`; stop at the first doubling that does not, or does not fit
    (None), or would pass `largest`."""
    measured = {FIRST: seconds_per_example(FIRST)}
    chosen = FIRST
    while measured[chosen] is not None and chosen * 2 <= largest:
        size = chosen * 2
        measured[size] = seconds_per_example(size)
        if measured[size] is None or measured[size] > (1 - MIN_GAIN) * measured[chosen]:
            break
        chosen = size
    return chosen, measured


def scaled_learning_rate(rate: float, batch_size: int) -> float:
    return rate * math.sqrt(batch_size / FIRST)


def training_autocast(args):
    """The mixed precision the Trainer trains in (bf16 or fp16 on CUDA), for measurements made outside it."""
    if not (args.bf16 or args.fp16):
        return nullcontext()
    return torch.autocast(args.device.type, dtype=torch.bfloat16 if args.bf16 else torch.float16)


def cuda_probe(model, tokenized, tokenizer, args) -> Callable[[int], float | None]:
    """Seconds per training example at a batch size on the Trainer's GPU, or None when
    the batch does not fit: out of memory, or over `MEMORY_SHARE` of it at its peak."""
    from transformers import DataCollatorWithPadding

    device = args.device
    widest = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max(tokenized["length"]))
    limit = MEMORY_SHARE * torch.cuda.get_device_properties(device).total_memory

    def seconds_per_example(batch_size: int) -> float | None:
        torch.cuda.reset_peak_memory_stats(device)
        step_seconds = None
        try:
            with training_autocast(args):
                step_seconds = measure_seconds_per_step(model, tokenized, widest, batch_size, steps=3,
                                                        first_token=args.world_size == 1).step_seconds  # the peak training will reach
        except torch.cuda.OutOfMemoryError:
            pass
        model.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()  # after the except block: the error no longer holds the tensors
        if step_seconds is None or torch.cuda.max_memory_allocated(device) > limit:
            return None
        return step_seconds / batch_size

    return seconds_per_example


def settle_batch_size(settings, model, tokenized, tokenizer, args, saved_plan: dict | None = None) -> tuple[Any, dict[str, Any]]:
    """`settings` with auto replaced by a batch size and its scaled learning rate, and what
    was measured (kept in the plan). A resumed run keeps the batch its plan chose; several
    processes take the first one's choice."""
    if saved_plan and "auto_batch" in saved_plan:
        chosen, measured = saved_plan["auto_batch"]["batch_size"], saved_plan["auto_batch"]["seconds_per_example"]
    elif args.device.type == "cuda":
        probe = cuda_probe(model.to(args.device), tokenized, tokenizer, args)
        chosen, measured = from_main_process(pick_batch_size(probe, largest=min(LARGEST, len(tokenized))))
    else:
        chosen, measured = FIRST, {}
    rate = scaled_learning_rate(settings.learning_rate or DEFAULT_LEARNING_RATE, chosen)
    record = {"batch_size": chosen, "learning_rate": rate, "learning_rate_scaling": f"square root, x{math.sqrt(chosen / FIRST):.3g} of batch {FIRST}'s",
              "seconds_per_example": {str(size): seconds for size, seconds in measured.items()}}
    return replace(settings, batch_size=chosen, learning_rate=rate), record
