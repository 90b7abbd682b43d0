"""Training against the clock: measure the speed, plan, follow the clock, stop on time.

Under a wall-clock budget the number of steps is only an estimate: a busy machine, a
slow evaluation or longer reviews change it. So the run measures its own speed first
and says what should fit (the plan), then everything that matters follows the clock,
not a step count: the learning rate warms up over the first share of the time and
decays to zero exactly at the deadline; dev evaluations are spaced in time so that
together they cost at most `EVALUATION_SHARE` of the budget; checkpoints are written
every `CHECKPOINT_SECONDS` and at the end. The clock's reading is saved with each
checkpoint, so a resumed run continues the same clock to the same deadline.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from ..models.first_token import training_forward
from .distributed import shared_max
from .trainer import StarTrainer

EVALUATION_SHARE = 0.05      # of the budget, for all dev evaluations together
CHECKPOINT_SECONDS = 300.0   # a crash costs at most this much training
MIN_DEV_ROWS = 50            # a smaller dev slice says nothing
MIN_USEFUL_STEPS = 100       # fewer optimizer steps than this teach a transformer next to nothing
WRITE_BYTES_PER_SECOND = 150e6  # a slow disk: the final checkpoint must fit in its reserve


def final_reserve_seconds(parameters: int) -> float:
    """Time kept after the deadline for the last checkpoint (weights and two Adam moments,
    12 bytes a parameter) and the model folder (4 more): a second for the bookkeeping plus
    the writing. A fixed 5 s left a 3-minute scratch run 3% of its budget idle."""
    return 1.0 + 16 * parameters / WRITE_BYTES_PER_SECOND


def _random_batches(tokenized, collator, batch_size: int, count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        rows = [tokenized[rng.randrange(len(tokenized))] for _ in range(batch_size)]
        yield collator([{k: v for k, v in row.items() if k != "length"} for row in rows])


def measure_seconds_per_step(model, tokenized, collator, batch_size: int, steps: int = 4,
                             first_token: bool = True) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluated example), on random batches.

    Random batches are padded more than length-grouped ones, so the estimate errs on
    the slow side. Gradients are computed and dropped: the weights do not change.
    `first_token=False` times the model's full forward: what a model wrapped for several
    processes runs (`StarTrainer.compute_loss`), and what its memory peak is.
    """
    model.train()
    batches = list(_random_batches(tokenized, collator, batch_size, steps + 1, seed=0))
    device = next(model.parameters()).device
    timings = []
    for batch in batches:
        started = time.perf_counter()
        inputs = {k: v.to(device) for k, v in batch.items()}
        training_forward(model, inputs, first_token)(**inputs).loss.backward()  # the forward the Trainer will run
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    train_step = float(np.median(timings[1:])) * 1.15  # + optimizer step and bookkeeping
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in batches[:2]:
            inputs = {k: v.to(device) for k, v in batch.items()}
            training_forward(model, inputs, first_token)(**inputs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    per_eval_example = (time.perf_counter() - started) / (2 * batch_size)
    model.train()
    return train_step, per_eval_example


def plan_budget(budget: float, elapsed: float, step_seconds: float, eval_example_seconds: float, batch_size: int,
                dev_rows: int, train_rows: int, processes: int = 1,
                parameters: int = 110_000_000) -> dict[str, Any]:  # untold: BERT-base's, a generous reserve
    """What should fit in the budget, and the cadence that keeps evaluation cheap.

    Dev evaluations together get `EVALUATION_SHARE` of the budget: as many as fit, spaced
    evenly in time, the last at the deadline; when even one is too slow, the dev slice
    shrinks to what one evaluation can afford. `clock_start` and `deadline` are readings
    of the run's clock (seconds since it started, resumes included). The run follows the
    clock, so `max_steps` is only a generous cap.
    """
    per_eval_budget = EVALUATION_SHARE * budget
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
    examples = steps * batch_size * processes
    return {
        "budget_seconds": budget,
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
        "max_steps": steps * 10,  # a cap only: the clock ends the run (a GPU's mixed precision may beat the estimate)
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
            f"too few to learn anything; at least {MIN_USEFUL_STEPS} steps need about {needed / 60:.0f} min on this machine")


class TrainingClock(TrainerCallback, ExportableState):
    """The run's clock, its cadence, and where the time went.

    Reads seconds since the run started; a resumed run starts from the reading saved in
    its checkpoint, so warm-up is not repeated and the deadline stays where it was. Every
    process uses the furthest clock among them, so all stop on the same step.
    """

    def __init__(self, plan: dict[str, Any], warmup: float, run_started: float | None = None):
        self.plan, self.warmup_share = plan, warmup
        self.run_started = time.time() if run_started is None else run_started
        self.offset = 0.0              # the clock's reading when this process's run began (resume)
        self.step_seconds = 0.0        # time inside optimizer steps, resumes included
        self.last_evaluation = self.last_checkpoint = plan["clock_start"]
        self._step_began: float | None = None
        self.device = "cpu"

    # ------------------------------------------------------------------ reading
    def elapsed(self) -> float:
        return shared_max(self.offset + time.time() - self.run_started, self.device)

    def learning_rate_factor(self, _step: int = 0) -> float:
        start, deadline = self.plan["clock_start"], self.plan["deadline"]
        done = min(max((self.elapsed() - start) / max(deadline - start, 1e-9), 0.0), 1.0)
        if done < self.warmup_share:
            return max(done / self.warmup_share, 1e-3)
        return max((1.0 - done) / max(1.0 - self.warmup_share, 1e-9), 0.0)

    def budget_share_in_steps(self) -> float:
        return round(self.step_seconds / self.plan["budget_seconds"], 4)

    # ------------------------------------------------------------------ saved with each checkpoint
    def state(self) -> dict:
        return {"args": {}, "attributes": {"elapsed": self.offset + time.time() - self.run_started,
                                           "step_seconds": self.step_seconds}}

    def on_train_begin(self, args, state, control, **kwargs):
        self.device = args.device
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, dict) and state.global_step > 0:
            attributes = saved.get("attributes", {})
            self.offset = float(attributes.get("elapsed", 0.0)) - (time.time() - self.run_started)
            self.step_seconds = float(attributes.get("step_seconds", 0.0))
            self.last_evaluation = self.last_checkpoint = self.elapsed()
        return control

    # ------------------------------------------------------------------ cadence
    def on_step_begin(self, args, state, control, **kwargs):
        self._step_began = time.perf_counter()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_began is not None:
            self.step_seconds += time.perf_counter() - self._step_began
        now = self.elapsed()
        if now >= self.plan["deadline"]:
            control.should_training_stop = control.should_evaluate = control.should_save = True
            return control
        if now - self.last_evaluation >= self.plan["evaluation_every_seconds"]:
            control.should_evaluate = True
        if now - self.last_checkpoint >= self.plan["checkpoint_every_seconds"]:
            control.should_save = True
        return control

    def on_evaluate(self, args, state, control, **kwargs):
        self.last_evaluation = self.elapsed()
        return control

    def on_save(self, args, state, control, **kwargs):
        self.last_checkpoint = self.elapsed()
        return control


class ClockScheduleTrainer(StarTrainer):
    """A Trainer whose learning rate follows the clock, not the step count."""

    def __init__(self, *args, clock: TrainingClock, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = clock

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, self.clock.learning_rate_factor)
        return self.lr_scheduler
