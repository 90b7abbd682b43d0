"""Training against the clock: measure the speed, plan what fits, and stop on time
(`clock.py` follows the plan while the run trains).

Under a wall-clock budget the number of steps is only an estimate: a busy machine, a
slow evaluation or longer reviews change it. So the run measures its own speed first
and says what should fit (the plan), then everything that matters follows the clock,
not a step count: the learning rate warms up over the first share of the time and
decays to zero exactly at the deadline; dev evaluations are spaced in time so that
together they cost at most `EVALUATION_SHARE` of the budget; checkpoints are written
every `CHECKPOINT_SECONDS` and at the end. The clock's reading is saved with each
checkpoint, so a resumed run continues the same clock to the same deadline.

A budget is an upper bound, not a target: a fast device fits more passes over the
training set than help. Each kind says how many passes it can use (`Kind.max_passes`:
a pretrained encoder is fine-tuned for a couple of passes, a model from scratch learns
for more), and a small training set still gets `MIN_EXAMPLES` reviews' worth of steps
(a fine-tuning needs enough updates, whatever the size of its data). When the budget
holds more than that, the plan ends at those passes: the learning rate decays to zero at
whichever comes first, the last of those steps or the deadline, and the run stops there
and says so. So a longer budget never trains past what helps.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, NamedTuple

import numpy as np
import torch

from ..models.first_token import training_forward

EVALUATION_SHARE = 0.05      # of the budget, for all dev evaluations together
CHECKPOINT_SECONDS = 300.0   # a crash costs at most this much training
MIN_DEV_ROWS = 50            # a smaller dev slice says nothing
MIN_USEFUL_STEPS = 100       # fewer optimizer steps than this teach a transformer next to nothing
MIN_EXAMPLES = 16_000        # however small the training set: 1,000 steps at the lesson's batch of 16
NO_STEP_CAP = 2**31 - 1      # under a budget the clock, not a count, ends the run
WRITE_BYTES_PER_SECOND = 150e6  # a slow disk: the final checkpoint must fit in its reserve


def final_reserve_seconds(parameters: int) -> float:
    """Time kept after the deadline for the last checkpoint (weights and two Adam moments,
    12 bytes a parameter) and the model folder (4 more): a second for the bookkeeping plus
    the writing. A fixed 5 s left a 3-minute scratch run 3% of its budget idle."""
    return 1.0 + 16 * parameters / WRITE_BYTES_PER_SECOND


def _probe_batches(tokenized, collator, batch_size: int, count: int, seed: int, grouped: bool = True):
    """`count` batches for the speed probe, after a first one to warm up. `grouped`: as
    the length-grouped sampler makes them (reviews of similar length), one from each of
    `count` even slices of the length order, so their mean is the mean batch's cost;
    else random reviews, padded to the longest of each batch."""
    rng = random.Random(seed)
    size = min(batch_size, len(tokenized))
    if grouped and "length" in tokenized.column_names:
        order = np.argsort(np.asarray(tokenized["length"]), kind="stable")
        span = len(order) - size
        starts = [rng.randrange(span + 1)] + [int(span * (i + 0.5) / count) for i in range(count)]
        picks = [order[start : start + size].tolist() for start in starts]
    else:
        picks = [[rng.randrange(len(tokenized)) for _ in range(batch_size)] for _ in range(count + 1)]
    for rows in picks:
        yield collator([{k: v for k, v in tokenized[int(i)].items() if k != "length"} for i in rows])


class Probe(NamedTuple):
    step_seconds: float          # a training step, optimizer and bookkeeping included
    eval_example_seconds: float  # one review in a dev evaluation
    tokens_per_step: float       # padded tokens in a probed step: the pace per token is what the run checks


def measure_seconds_per_step(model, tokenized, collator, batch_size: int, steps: int = 4,
                             first_token: bool = True, grouped: bool = True) -> Probe:
    """How fast the model trains and evaluates here.

    Timed on batches like the training's own (`_probe_batches`), after one to warm up.
    Gradients are computed and dropped: the weights do not change. `first_token=False`
    times the model's full forward: what a model wrapped for several processes runs
    (`StarTrainer.compute_loss`), and what its memory peak is.
    """
    model.train()
    batches = list(_probe_batches(tokenized, collator, batch_size, steps, seed=0, grouped=grouped))
    device = next(model.parameters()).device
    # A GPU's first call of each kernel loads it (and each new shape may pick another):
    # measured on an H200, a first pass read 0.73 s a step where the run took 0.04. So on
    # CUDA every batch runs once untimed first.
    for batch in batches if device.type == "cuda" else batches[:1]:
        inputs = {k: v.to(device) for k, v in batch.items()}
        training_forward(model, inputs, first_token)(**inputs).loss.backward()
    timings = []
    for batch in batches[1:]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        inputs = {k: v.to(device) for k, v in batch.items()}
        training_forward(model, inputs, first_token)(**inputs).loss.backward()  # the forward the Trainer will run
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    train_step = float(np.mean(timings)) * 1.15  # + optimizer step and bookkeeping
    model.eval()
    with torch.inference_mode():
        if device.type == "cuda":  # inference's own kernels, loaded untimed
            for batch in batches[1:]:
                inputs = {k: v.to(device) for k, v in batch.items()}
                training_forward(model, inputs, first_token)(**inputs)
            torch.cuda.synchronize(device)
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in batches[1:]:
            inputs = {k: v.to(device) for k, v in batch.items()}
            training_forward(model, inputs, first_token)(**inputs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    per_eval_example = (time.perf_counter() - started) / sum(len(batch["input_ids"]) for batch in batches[1:])
    model.train()
    return Probe(train_step, per_eval_example, float(np.mean([batch["input_ids"].numel() for batch in batches[1:]])))


def examples_worth_learning(train_rows: int, max_passes: float | None) -> int | None:
    """How many reviews a run can learn from before more passes only overfit: `max_passes`
    over the training set, but at least `MIN_EXAMPLES` (None: no limit)."""
    if max_passes is None:
        return None
    return max(math.ceil(max_passes * train_rows), MIN_EXAMPLES)


#: The fastest a torch kind trains, in reviews a second, before a run has measured itself: on
#: each CPU core twice scratch's 25 (2 cores stepped 16 reviews in 0.31 s), on a GPU about
#: twelve times MiniLM's 410 on an H200 (batches of 16; scratch is 4 times smaller and its
#: batches grow with --batch-size auto). Generous on purpose: see `reviews_a_budget_can_use`.
FASTEST_REVIEWS_PER_SECOND = {"cpu": 50, "cuda": 5000, "mps": 1000}


def reviews_a_budget_can_use(budget: float, device: str = "cpu", cores: int = 1, processes: int = 1) -> int:
    """The most training reviews a run under `budget` seconds can learn from: one pass at the
    fastest pace a kind trains at here, and at least `MIN_EXAMPLES` (what any plan may take).

    Known before the data is read, so that a training file of millions of reviews is sampled
    down to these (`data.training_splits(at_most=...)`): a two-minute scratch run on 2 CPU
    cores sees some 6,000 reviews, and every review more is read, learned a vocabulary from
    and tokenized inside the budget for nothing. Too many costs seconds; too few, repeats."""
    kind = device.split(":")[0]
    pace = FASTEST_REVIEWS_PER_SECOND.get(kind, FASTEST_REVIEWS_PER_SECOND["cuda"]) * (max(cores, 1) if kind == "cpu" else 1)
    return max(MIN_EXAMPLES, math.ceil(budget * pace * max(processes, 1)))


def plan_budget(budget: float, elapsed: float, step_seconds: float, eval_example_seconds: float, batch_size: int,
                dev_rows: int, train_rows: int, processes: int = 1,
                parameters: int = 110_000_000,  # untold: BERT-base's, a generous reserve
                max_passes: float | None = None, rows: int | None = None, tokens_per_step: float | None = None) -> dict[str, Any]:
    """What should fit in the budget, and the cadence that keeps evaluation cheap.

    Dev evaluations together get `EVALUATION_SHARE` of the budget: as many as fit, spaced
    evenly in time, the last at the deadline; when even one is too slow, the dev slice
    shrinks to what one evaluation can afford. `clock_start` and `deadline` are readings
    of the run's clock (seconds since it started, resumes included). When the budget
    holds more than `examples_worth_learning` reviews, the plan stops after those
    (`stop_after_steps`, `ends`: "passes"); otherwise the clock ends the run ("deadline").
    `rows` fixes the dev rows each evaluation scores (a re-plan keeps the slice the run has).
    """
    per_eval_budget = EVALUATION_SHARE * budget
    if rows is None:
        rows = dev_rows if eval_example_seconds * dev_rows <= per_eval_budget else max(
            min(MIN_DEV_ROWS, dev_rows), int(per_eval_budget / max(eval_example_seconds, 1e-9)))
    one_eval = eval_example_seconds * rows
    evaluations = max(1, int(per_eval_budget / max(one_eval, 1e-9)))
    reserve = final_reserve_seconds(parameters)
    # Calibration then scores the dev rows the last evaluation skipped: inside the budget too.
    calibration = eval_example_seconds * (dev_rows - rows)
    deadline = max(budget - one_eval - reserve - calibration, elapsed)
    training_seconds = deadline - elapsed
    in_steps = max(training_seconds - one_eval * (evaluations - 1), 0.0)
    steps = max(int(in_steps / step_seconds), 1)
    while evaluations > steps:  # (a tiny dev slice, slow steps) at most one a step: the time of the rest goes to steps
        evaluations = steps
        steps = max(int((training_seconds - one_eval * (evaluations - 1)) / step_seconds), 1)
    worth = examples_worth_learning(train_rows, max_passes)
    # The run stops after the steps worth taking even when the probe expected fewer (a device faster than measured).
    stop_after = None if worth is None else max(math.ceil(worth / (batch_size * processes)), 1)
    ends = "deadline"
    if stop_after is not None and steps > stop_after:
        steps, ends = stop_after, "passes"
        # Fewer, earlier evaluations: the run ends when those steps are done, well before the deadline.
        evaluations = max(1, min(evaluations, steps, int(EVALUATION_SHARE * steps * step_seconds / max(one_eval, 1e-9))))
        training_seconds = min(training_seconds, steps * step_seconds + one_eval * (evaluations - 1))
    examples = steps * batch_size * processes
    return {
        "budget_seconds": budget,
        # What the plan was made from, so that the run can plan again once it has measured itself.
        "probe": {"step_seconds": step_seconds, "eval_example_seconds": eval_example_seconds, "batch_size": batch_size,
                  "dev_rows": dev_rows, "processes": processes, "parameters": parameters, "tokens_per_step": tokens_per_step},
        "seconds_per_step": round(step_seconds, 4),
        "seconds_per_evaluation": round(one_eval, 2),
        "dev_rows": rows,
        "evaluations": evaluations,
        "evaluation_every_seconds": round(training_seconds / evaluations, 1),
        "checkpoint_every_seconds": CHECKPOINT_SECONDS,
        "final_reserve_seconds": round(reserve, 1),
        "calibration_seconds": round(calibration, 1),
        "clock_start": round(elapsed, 3),
        "deadline": round(deadline, 3),
        "expected_steps": steps,
        "expected_examples": examples,
        "expected_passes_over_data": round(examples / max(train_rows, 1), 3),
        "max_passes": max_passes,
        "stop_after_steps": stop_after,  # the last step worth taking (None: no limit), if the deadline does not come first
        "ends": ends,  # which the plan expects to come first: "passes" or "deadline"
        # What the Trainer needs as a count: the steps worth taking, or no real cap (the clock ends the run).
        "max_steps": stop_after or NO_STEP_CAP,
        "train_examples": train_rows,  # all of them, shuffled: one pass over as much as time allows
    }


def too_small_budget(plan: dict[str, Any]) -> str | None:
    """One line when the plan fits too few steps to learn anything, saying what would."""
    steps = plan["expected_steps"]
    if steps >= MIN_USEFUL_STEPS:
        return None
    overhead = plan["budget_seconds"] - (plan["deadline"] - plan["clock_start"])
    needed = overhead + MIN_USEFUL_STEPS * plan["seconds_per_step"] / (1 - EVALUATION_SHARE)
    return (f"the budget of {plan['budget_seconds']:.0f} s fits only ~{steps} steps ({plan['expected_examples']:,} reviews): "
            f"too few to learn anything; at least {MIN_USEFUL_STEPS} steps need about {_about(needed)} on this machine")


def _about(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def training_memory_bytes(network, batch_size: int, max_length: int) -> int:
    """About what training `network` takes at its peak: fp32 weights, their gradients and
    AdamW's two moments (16 bytes a parameter), and one batch's activations kept for the
    backward pass (each layer's projections, feed-forward and attention maps). A rough
    estimate, on the generous side, read from the config of a network built on the meta device."""
    config = network.config  # (a bag of embeddings has no layers: its weights are the whole of it)
    layers, width = getattr(config, "num_hidden_layers", 0), getattr(config, "hidden_size", 0)
    feed_forward = getattr(config, "intermediate_size", None) or 4 * width
    per_layer = 10 * width + 2 * feed_forward + 2 * getattr(config, "num_attention_heads", 0) * max_length
    activations = 4 * batch_size * max_length * layers * per_layer
    return 16 * sum(parameter.numel() for parameter in network.parameters()) + activations


def machine_memory_bytes(device: str) -> int | None:
    """The memory training on `device` has: the GPU's own, or the machine's RAM (None: unknown)."""
    import os

    if device.startswith("cuda"):
        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # (not on every platform)
        return None
