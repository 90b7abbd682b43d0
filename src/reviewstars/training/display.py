"""One progress display per training run: the model's name, a bar, the loss, dev accuracy, time left."""

from __future__ import annotations

from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from transformers import TrainerCallback

from ..artifacts import is_main_process
from ..progress import console, quiet


class TrainingProgress(TrainerCallback):
    """Replaces the Trainer's tqdm bar and raw log dicts with one line that updates.

    Under a time budget the bar measures the clock (it ends at the deadline, whatever
    the speed); otherwise it counts steps.
    """

    def __init__(self, name: str, plan: dict, clock=None):
        self.name, self.plan, self.clock = name, plan, clock
        self.loss: float | None = None
        self.dev_accuracy: float | None = None
        self.progress: Progress | None = None
        self.task = None

    def _fields(self) -> str:
        loss = "-" if self.loss is None else f"{self.loss:.3f}"
        dev = "-" if self.dev_accuracy is None else f"{self.dev_accuracy:.3f}"
        return f"loss {loss}  dev acc {dev}"

    def on_train_begin(self, args, state, control, **kwargs):
        if quiet() or not is_main_process():
            return control
        columns = [SpinnerColumn(), TextColumn(f"training {escape(self.name)}"), BarColumn(),
                   TextColumn("step {task.fields[step]}"), TextColumn("{task.fields[numbers]}"), TimeRemainingColumn()]
        self.progress = Progress(*columns, console=console, transient=False)
        total = 1000 if self.clock else self.plan["max_steps"]  # under a budget: per mille of the run (`TrainingClock.done`)
        self.task = self.progress.add_task("", total=total, step=state.global_step, numbers=self._fields())
        self.progress.start()
        return control

    def _update(self, state) -> None:
        if self.progress is None:
            return
        done = 1000 * self.clock.done(state.global_step) if self.clock else state.global_step
        self.progress.update(self.task, completed=done, step=state.global_step, numbers=self._fields())

    def on_step_end(self, args, state, control, **kwargs):
        self._update(state)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss = float(logs["loss"])
        if "eval_accuracy" in logs:
            self.dev_accuracy = float(logs["eval_accuracy"])
        self._update(state)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=1000 if self.clock else self.plan["max_steps"])
            self.progress.stop()
            self.progress = None
        return control
