"""Following the clock under a budget: the learning rate warms up over the first share of
the time and decays to zero at the deadline (or at the last step worth taking); dev
evaluations and checkpoints are spaced in time; the pace is measured again early in the
run and the plan redone when the probe (`budget.measure_seconds_per_step`) was off. The
clock's reading is saved with each checkpoint, so a resumed run keeps its deadline."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from .budget import EVALUATION_SHARE, plan_budget
from .distributed import shared_max
from .trainer import StarTrainer

REPLAN_FROM_STEP = 5   # the first steps load kernels and grow the allocator: not the run's pace
REPLAN_AT_STEP = 25    # ... the steps between these two are
REPLAN_OFF_BY = 0.2    # plan again when the run's pace is off the probe's by more than this


def typical_step(readings: list[tuple[int, float, int]], tokens_per_step: float) -> float:
    """Seconds an average step takes, from (step, clock, tokens seen) readings at step ends.

    Steps differ in length (batches are grouped by review length, so twenty in a row may
    all be short ones): the pace is read per token and scaled to the probe's average step.
    A GPU's first batch of a new shape can take ten times the others (its kernels loaded
    on first use): steps over three times the median pace per token are left out."""
    clocks, tokens = np.asarray([r[1] for r in readings]), np.asarray([r[2] for r in readings], dtype=float)
    seconds, counted = np.diff(clocks), np.maximum(np.diff(tokens), 1.0)
    per_token = seconds / counted
    usual = per_token <= 3 * np.median(per_token)
    return float(seconds[usual].sum() / counted[usual].sum() * tokens_per_step)


def replan(plan: dict[str, Any], step_seconds: float) -> dict[str, Any]:
    """The plan made again with the pace the run has measured (seconds a step, everything
    between steps included): the evaluations' cadence, the reserve for calibration and
    the deadline follow. Evaluations are assumed off by the same factor as steps; the
    dev rows, the passes worth taking and where the clock started stay as they were."""
    probe = plan["probe"]
    factor = step_seconds / max(plan["seconds_per_step"], 1e-9)
    new = plan_budget(plan["budget_seconds"], plan["clock_start"], step_seconds, probe["eval_example_seconds"] * factor,
                      probe["batch_size"], probe["dev_rows"], plan["train_examples"], probe["processes"], probe["parameters"],
                      plan.get("max_passes"), rows=plan["dev_rows"], tokens_per_step=probe.get("tokens_per_step"))
    return {**plan, **{k: v for k, v in new.items() if k != "probe"},
            "replanned": {"after_steps": REPLAN_AT_STEP, "probe_seconds_per_step": plan["seconds_per_step"],
                          "measured_seconds_per_step": round(step_seconds, 4)}}


class Stopwatch(TrainerCallback, ExportableState):
    """Seconds since the run started, resumes included: the reading is saved with each
    checkpoint and a resumed run goes on from it, so the time a run reports (its
    `train_seconds`, the leaderboard's "train s") is the whole run's, not its last process's."""

    def __init__(self, run_started: float | None = None):
        self.run_started = time.time() if run_started is None else run_started
        self.offset = 0.0                     # the clock's reading when this process's run began (resume)
        self.resumed_at: float | None = None  # the reading saved in the checkpoint resumed from
        self.device = "cpu"

    def elapsed(self) -> float:
        return shared_max(self.offset + time.time() - self.run_started, self.device)

    def run_seconds(self) -> float:
        """The whole run: the processes before the checkpoint resumed from (their start-up
        included), and all of this one."""
        return (self.resumed_at or 0.0) + time.time() - self.run_started

    def state(self) -> dict:
        # `elapsed`: the clock a deadline is read on (a resumed run's starts again where it was saved);
        # `run_seconds`: the wall time of the whole run so far, every process's start-up included.
        return {"args": {}, "attributes": {"elapsed": self.offset + time.time() - self.run_started,
                                           "run_seconds": self.run_seconds()}}

    def _restored(self, state) -> dict[str, Any] | None:
        """The attributes saved in the checkpoint a resumed run starts from (None for a new run)."""
        name = type(self).__name__
        saved = (state.stateful_callbacks or {}).get(name)
        if state.global_step > 0 and not isinstance(saved, dict) and isinstance(state.stateful_callbacks, dict):
            # A checkpoint written before this callback was: the Trainer looks each callback's
            # entry up by name when it saves the next one, and a missing one is a KeyError.
            state.stateful_callbacks[name] = self.state()
            return None
        if not (isinstance(saved, dict) and state.global_step > 0):
            return None
        attributes = saved.get("attributes", {})
        elapsed = float(attributes.get("elapsed", 0.0))
        self.resumed_at = float(attributes.get("run_seconds", elapsed))
        self.offset = elapsed - (time.time() - self.run_started)
        return attributes

    def on_train_begin(self, args, state, control, **kwargs):
        self.device = args.device
        self._restored(state)
        return control


class TrainingClock(Stopwatch):
    """The run's clock, its cadence, and where the time went.

    Reads seconds since the run started; a resumed run starts from the reading saved in
    its checkpoint, so warm-up is not repeated and the deadline stays where it was. Every
    process uses the furthest clock among them, so all stop on the same step.
    """

    def __init__(self, plan: dict[str, Any], warmup: float, run_started: float | None = None,
                 on_replan: Callable[[dict[str, Any]], None] | None = None):
        super().__init__(run_started)
        self.plan, self.warmup_share, self.on_replan = plan, warmup, on_replan
        self._pace: list[tuple[int, float, int]] = []  # (step, clock, tokens seen) at each step end while the pace is read
        self.tokens_seen: Callable[[], int] | None = None  # the Trainer's count of padded tokens (set by the run)
        self.step_seconds = 0.0        # time inside optimizer steps, resumes included
        self.last_evaluation = self.last_checkpoint = plan["clock_start"]
        self._step_began: float | None = None
        self._evaluation_began: float | None = None
        self.evaluation_seconds: list[float] = []  # each dev evaluation's length, as measured in this run
        self.ended: str | None = None  # "deadline" or "passes", once the run has stopped

    # ------------------------------------------------------------------ reading
    def done(self, step: int) -> float:
        """How far the run is, 0 to 1: by the clock towards the deadline, or by steps towards
        the last step worth taking (`stop_after_steps`), whichever is further."""
        start, deadline = self.plan["clock_start"], self.plan["deadline"]
        done = min(max((self.elapsed() - start) / max(deadline - start, 1e-9), 0.0), 1.0)
        if self.plan.get("stop_after_steps"):
            done = max(done, min(step / self.plan["stop_after_steps"], 1.0))
        return done

    def learning_rate_factor(self, step: int = 0) -> float:
        """Warm up, then decay to zero when the run is done (`done`)."""
        done = self.done(step)
        if done < self.warmup_share:
            return max(done / self.warmup_share, 1e-3)
        return max((1.0 - done) / max(1.0 - self.warmup_share, 1e-9), 0.0)

    def budget_share_in_steps(self) -> float:
        """Of the budget, or of the time the run took when that was longer (a share of a budget
        the run overran read 23% where the steps had 15% of its time)."""
        return round(self.step_seconds / max(self.plan["budget_seconds"], self.run_seconds()), 4)

    # ------------------------------------------------------------------ saved with each checkpoint
    def state(self) -> dict:
        saved = super().state()
        saved["attributes"]["step_seconds"] = self.step_seconds
        return saved

    def on_train_begin(self, args, state, control, **kwargs):
        self.device = args.device
        attributes = self._restored(state)
        if attributes is not None:
            self.step_seconds = float(attributes.get("step_seconds", 0.0))
            self.last_evaluation = self.last_checkpoint = self.elapsed()
            self.plan.setdefault("replanned", None)  # a resumed run keeps the plan it resumes: it measures its pace no more
        return control

    # ------------------------------------------------------------------ cadence
    def on_step_begin(self, args, state, control, **kwargs):
        self._step_began = time.perf_counter()
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_began is not None:
            self.step_seconds += time.perf_counter() - self._step_began
        now = self.elapsed()
        self._check_pace(state.global_step, now)
        if now >= self.plan["deadline"] or state.global_step >= (self.plan.get("stop_after_steps") or math.inf):
            self.ended = "deadline" if now >= self.plan["deadline"] else "passes"
            control.should_training_stop = control.should_evaluate = control.should_save = True
            self._evaluation_began = now
            return control
        if now - self.last_evaluation >= self.evaluation_every_seconds():
            control.should_evaluate = True
            self._evaluation_began = now
        if now - self.last_checkpoint >= self.plan["checkpoint_every_seconds"]:
            control.should_save = True
        return control

    def evaluation_every_seconds(self) -> float:
        """The plan's spacing, or wider once evaluations have been measured slower than the
        probe judged (a small model's evaluation is mostly the Trainer's fixed cost: a 20 s
        bag run planned 70 of 0.01 s and each took 0.055 s): they keep to their share."""
        planned = self.plan["evaluation_every_seconds"]
        if not self.evaluation_seconds:
            return planned
        typical = sum(self.evaluation_seconds) / len(self.evaluation_seconds)
        return max(planned, typical * (1 - EVALUATION_SHARE) / EVALUATION_SHARE)

    def on_evaluate(self, args, state, control, **kwargs):
        self.last_evaluation = self.elapsed()
        if self._evaluation_began is not None:
            self.evaluation_seconds.append(self.last_evaluation - self._evaluation_began)
            self._evaluation_began = None
        self._pace = []  # an evaluation inside the window would read as a slow step: start again after it
        return control

    def _check_pace(self, step: int, now: float) -> None:
        """Once, early in the run: plan again if the probe misjudged the pace (a busy CPU, a
        GPU whose first steps were slow while its kernels loaded). Every process reads the
        same furthest clock, so all agree on the new plan."""
        tokens_per_step = (self.plan.get("probe") or {}).get("tokens_per_step")
        if not tokens_per_step or self.tokens_seen is None or "replanned" in self.plan or step < REPLAN_FROM_STEP:
            return
        self._pace.append((step, now, self.tokens_seen()))
        if len(self._pace) <= REPLAN_AT_STEP - REPLAN_FROM_STEP:
            return
        pace = typical_step(self._pace, tokens_per_step)
        self._pace = []
        if abs(pace - self.plan["seconds_per_step"]) > REPLAN_OFF_BY * self.plan["seconds_per_step"]:
            self.plan.update(replan(self.plan, pace))
            if self.on_replan is not None:
                self.on_replan(self.plan)
        else:
            self.plan["replanned"] = None  # measured, and the plan holds

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
