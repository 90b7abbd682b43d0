"""One training path for every torch model: the Hugging Face `Trainer`, made fast.

What the lesson leaves slow is fast here: reviews are tokenized once (and cached),
padded per batch to their own longest review instead of to 512, and batched with
reviews of similar length. With `time_budget` the run measures its own speed first,
plans how many examples and steps fit (one pass over more data beats many passes over
little), anneals the learning rate to zero exactly at the deadline, and keeps the
model it ends with.

Why the last model and not the "best" one under a budget: the dev slice is small
(500 reviews: a standard error of about 2 points), and the maximum of some forty noisy
evaluations mostly picks noise. Measured on the 30-minute scratch run: the checkpoint
with the best dev score (0.616) scored 0.596 on validation, the final one 0.605.
Without a budget the run keeps the best checkpoint and stops early, as the lesson does.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from .artifacts import is_main_process, write_json
from .errors import TrainingInterrupted
from .tokenization import tokenize_dataset

CHECKPOINTS = "checkpoints"
PLAN_FILE = "plan.json"


@dataclass
class TrainSettings:
    batch_size: int = 16                 # the lesson's
    learning_rate: float | None = None   # None: 5e-5 (the lesson's) fine-tuning, 5e-4 from scratch
    epochs: float = 3.0                  # without a time budget
    eval_steps: int = 50                 # evaluate (and checkpoint) every N steps, as the lesson does
    logging_steps: int = 50
    max_length: int = 256
    truncation: str = "head+tail"
    dynamic_padding: bool = True         # False: the lesson's padding="max_length"
    group_by_length: bool = True
    time_budget: float | None = None     # seconds of wall-clock for the whole training
    early_stopping: int | None = 10      # evaluations without improvement before stopping
    warmup: float = 0.1                  # share of steps with a rising learning rate
    balanced: bool = True                # weight the loss by inverse class frequency, as the linear model does
    weight_decay: float = 0.01
    seed: int = 42
    resume: bool = False


def parse_duration(text: str | float | None) -> float | None:
    """'30m', '1h30m', '90s', '45' (minutes) -> seconds."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * 60
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"cannot read the duration {text!r}: use e.g. 30m, 1h, 90s")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def compute_metrics(prediction) -> dict[str, float]:
    """Accuracy and macro-F1 in the Trainer's evaluations (no `evaluate.load`: it needs the Hub)."""
    logits, labels = prediction
    predicted = np.asarray(logits).argmax(axis=-1)
    return {"accuracy": float(accuracy_score(labels, predicted)), "macro_f1": float(f1_score(labels, predicted, average="macro"))}


def class_weights(labels, num_classes: int = 5) -> torch.Tensor:
    """n / (k * count): each class contributes equally, like scikit-learn's "balanced"."""
    counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


class WeightedLoss:
    """Cross-entropy with class weights, as the Trainer's `compute_loss_func`."""

    def __init__(self, weights: torch.Tensor):
        self.weights = weights

    def __call__(self, outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        per_example = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        weighted = per_example * self.weights.to(logits.device)[labels]
        # Sum over the accumulated batch's examples, as the Trainer expects when it passes a count.
        return weighted.sum() / (num_items_in_batch if num_items_in_batch is not None else len(labels))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- several processes
#
# Under `torchrun` / `accelerate launch` every process runs this same code, one per
# device, and the Trainer averages their gradients (DDP). Whatever ends or shapes a
# run from outside the data (the clock, Ctrl-C, the budget plan) must then be agreed
# on by all processes, or one would stop while the others wait for it forever.


def distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def several_processes() -> bool:
    """Launched as one of several (torchrun / accelerate set WORLD_SIZE), even before the process group exists."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def shared_max(value: float, device: torch.device | str = "cpu") -> float:
    """The largest `value` over all processes (just `value` in one process)."""
    if not distributed():
        return value
    if torch.distributed.get_backend() == "nccl" and torch.device(device).type == "cpu":
        device = torch.device("cuda", torch.cuda.current_device())
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return float(tensor.item())


def main_process_first():
    """A block the first process runs before the others (to make what they then read)."""
    if several_processes():
        from accelerate import PartialState

        return PartialState().main_process_first()
    return nullcontext()


def from_main_process(obj: Any) -> Any:
    """Rank 0's `obj` on every process."""
    if not distributed():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


# --------------------------------------------------------------------------- faults


def checkpoint_is_complete(folder: Path) -> bool:
    """The Trainer writes `trainer_state.json` last: without it (or half of it) the
    checkpoint was cut short by a crash and cannot be resumed from."""
    try:
        json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return any(folder.glob("*.safetensors"))


def last_complete_checkpoint(checkpoints: Path, remove_incomplete: bool = False) -> str | None:
    """The newest checkpoint that was written whole; newer, broken ones are skipped
    (and removed when asked, so that the resumed run can write them again)."""
    if not checkpoints.is_dir():
        return None
    found = []
    for folder in checkpoints.iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
        if match and folder.is_dir():
            found.append((int(match.group(1)), folder))
    for _step, folder in sorted(found, reverse=True):
        if checkpoint_is_complete(folder):
            return str(folder)
        if remove_incomplete:
            shutil.rmtree(folder, ignore_errors=True)
    return None


class StopOnInterrupt(TrainerCallback):
    """Ctrl-C ends the run after the current step, with a checkpoint to resume from.

    A second Ctrl-C interrupts at once (the last periodic checkpoint still stands).
    """

    def __init__(self):
        self.requested = False
        self.stopped_at: int | None = None

    def request(self, _signum=None, _frame=None) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_step_end(self, args, state, control, **kwargs):
        if shared_max(float(self.requested), args.device) > 0:
            self.requested = True
            self.stopped_at = state.global_step
            control.should_training_stop = True
            control.should_save = True
        return control


@contextmanager
def ctrl_c_saves(callback: StopOnInterrupt):
    """Route SIGINT to `callback` while training (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, callback.request)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- time budget


class EpochSeededLengthSampler(LengthGroupedSampler):
    """Groups reviews of similar length; each epoch's order depends on (seed, epoch) alone.

    The stock sampler draws from the global random state, which a resumed run reaches
    by another path, so its batches (and results) would differ from an uninterrupted
    run. Seeding by epoch makes `--resume` land on exactly the same batches.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


class StarTrainer(Trainer):
    """The Trainer with a resumable length-grouped sampler."""

    length_sampler: EpochSeededLengthSampler | None = None

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length":
            # The Trainer has already dropped columns forward() does not take, `length` among them.
            lengths = dataset["length"] if "length" in dataset.column_names else [len(ids) for ids in dataset["input_ids"]]
            # Group by the *global* batch: under DDP each process takes its share of
            # every batch, so N processes see exactly the batches one process would.
            global_batch = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
            self.length_sampler = EpochSeededLengthSampler(global_batch, list(lengths), self.args.data_seed or self.args.seed)
            return self.length_sampler
        return super()._get_train_sampler(train_dataset)

    def _run_epoch(self, model, epoch, *args, **kwargs):
        # On resume the Trainer wraps the loader to skip batches *before* it calls
        # set_epoch, and the wrapper does not pass the epoch on: set it here first.
        if self.length_sampler is not None:
            self.length_sampler.set_epoch(epoch)
        return super()._run_epoch(model, epoch, *args, **kwargs)


class ClockScheduleTrainer(StarTrainer):
    """A Trainer whose learning rate follows the clock, not the step count.

    Under a wall-clock budget the number of steps is only an estimate: a busy machine,
    a slow evaluation or longer reviews change it. So the learning rate warms up over
    the first `warmup` share of the time and then decays linearly to zero exactly at
    the deadline, whatever the throughput turns out to be.
    """

    def __init__(self, *args, clock_start: float, deadline: float, warmup: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock_start, self.deadline, self.warmup_share = clock_start, deadline, warmup

    def time_factor(self, _step: int = 0) -> float:
        # Every process must use the same rate: the furthest clock among them sets it.
        elapsed = shared_max(time.time() - self.clock_start, self.args.device) if hasattr(self, "args") else time.time() - self.clock_start
        done = min(max(elapsed / max(self.deadline - self.clock_start, 1e-9), 0.0), 1.0)
        if done < self.warmup_share:
            return max(done / self.warmup_share, 1e-3)
        return max((1.0 - done) / max(1.0 - self.warmup_share, 1e-9), 0.0)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, self.time_factor)
        return self.lr_scheduler


class StopOnTime(TrainerCallback):
    """Ends training at the deadline, evaluating and saving once more so the best is kept."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def on_step_end(self, args, state, control, **kwargs):
        if shared_max(float(time.time() >= self.deadline), args.device) > 0:
            control.should_training_stop = True
            control.should_evaluate = True
            control.should_save = True
        return control


def _random_batches(tokenized, collator, batch_size: int, count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        rows = [tokenized[rng.randrange(len(tokenized))] for _ in range(batch_size)]
        yield collator([{k: v for k, v in row.items() if k != "length"} for row in rows])


def measure_seconds_per_step(model, tokenized, collator, batch_size: int, steps: int = 4) -> tuple[float, float]:
    """(seconds per training step, seconds per evaluated example), on random batches.

    Random batches are padded more than length-grouped ones, so the estimate errs on
    the slow side. Gradients are computed and dropped: the weights do not change.
    """
    model.train()
    batches = list(_random_batches(tokenized, collator, batch_size, steps + 1, seed=0))
    device = next(model.parameters()).device
    timings = []
    for batch in batches:
        started = time.perf_counter()
        model(**{k: v.to(device) for k, v in batch.items()}).loss.backward()
        timings.append(time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    train_step = float(np.median(timings[1:])) * 1.15  # + optimizer step and bookkeeping
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in batches[:2]:
            model(**{k: v.to(device) for k, v in batch.items()})
    per_eval_example = (time.perf_counter() - started) / (2 * batch_size)
    model.train()
    return train_step, per_eval_example


def plan_budget(budget: float, elapsed: float, step_seconds: float, eval_example_seconds: float, settings: TrainSettings, dev_rows: int, train_rows: int,
                processes: int = 1) -> dict[str, Any]:
    """How many steps should fit: each costs a step plus its share of the periodic evaluations.
    Each step takes a batch of `settings.batch_size` in each of `processes`.

    This is the expectation, reported to the user; the run itself follows the clock
    (`ClockScheduleTrainer`, `StopOnTime`), so `max_steps` is only a generous cap.
    """
    one_eval = eval_example_seconds * dev_rows
    reserve = one_eval + 10.0  # the last evaluation, saving and loading the best checkpoint
    available = max(budget - elapsed - reserve, 0.0)
    steps = max(int(available / (step_seconds + one_eval / settings.eval_steps)), 1)
    examples = steps * settings.batch_size * processes
    return {
        "budget_seconds": budget,
        "seconds_per_step": round(step_seconds, 4),
        "seconds_per_evaluation": round(one_eval, 2),
        "expected_steps": steps,
        "expected_examples": examples,
        "expected_passes_over_data": round(examples / train_rows, 3),
        "max_steps": steps * 10,  # a cap only: the clock ends the run (a GPU's mixed precision may beat the estimate)
        "train_examples": train_rows,  # all of them, shuffled: one pass over as much as time allows
    }


# --------------------------------------------------------------------------- training


def train_transformer(model, tokenizer, train_split, dev_split, output: str | Path, settings: TrainSettings, callbacks: list | None = None) -> dict[str, Any]:
    """Fine-tune `model` on `train_split`, evaluating on `dev_split`; returns what happened.

    Checkpoints and TensorBoard logs go under `output/checkpoints`. At the end `model`
    holds the best checkpoint, or under a time budget the final one (the caller saves it).
    `settings.batch_size` is per process: N processes train on N times larger batches.
    Ctrl-C saves a checkpoint and raises `TrainingInterrupted`.
    """
    started = time.time()
    seed_everything(settings.seed)
    output = Path(output)
    checkpoints = output / CHECKPOINTS
    train_tokens = tokenize_dataset(train_split, tokenizer, settings.max_length, settings.truncation)
    dev_tokens = tokenize_dataset(dev_split, tokenizer, settings.max_length, settings.truncation)
    if settings.dynamic_padding:
        collator = DataCollatorWithPadding(tokenizer)
    else:  # the lesson's recipe, kept for comparison
        collator = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=settings.max_length)

    os.environ["TENSORBOARD_LOGGING_DIR"] = str(output / "runs")
    use_cuda = torch.cuda.is_available()
    under_budget = bool(settings.time_budget)
    # Several processes without a GPU (torchrun on CPUs): the Trainer only goes
    # distributed on CPUs when told so, with the gloo backend.
    cpu_processes = several_processes() and not use_cuda
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size * 4,
        learning_rate=settings.learning_rate or 5e-5,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup,
        lr_scheduler_type="linear",
        max_steps=1,  # set from the plan below
        eval_strategy="steps",
        eval_steps=settings.eval_steps,
        save_strategy="steps",
        save_steps=settings.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=not under_budget,  # see the module's docstring
        metric_for_best_model="accuracy",
        greater_is_better=True,
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        report_to=["tensorboard"],
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        bf16=use_cuda and torch.cuda.is_bf16_supported(),
        fp16=use_cuda and not torch.cuda.is_bf16_supported(),
        seed=settings.seed,
        data_seed=settings.seed,
        disable_tqdm=bool(os.environ.get("REVIEWSTARS_QUIET")),
        dataloader_num_workers=0,
        use_cpu=cpu_processes,
        ddp_backend="gloo" if cpu_processes else None,
    )
    device = args.device  # under torchrun this joins the process group
    global_batch = settings.batch_size * args.world_size

    plan_path = checkpoints / PLAN_FILE
    resume_from = last_complete_checkpoint(checkpoints, remove_incomplete=is_main_process()) if settings.resume else None
    if resume_from and plan_path.is_file():
        plan = json.loads(plan_path.read_text())  # the same plan as the interrupted run
    elif under_budget:
        step_s, eval_s = measure_seconds_per_step(model.to(device), train_tokens, collator, settings.batch_size)
        # Each process measured its own speed; all follow the first one's plan.
        plan = from_main_process(plan_budget(settings.time_budget, time.time() - started, step_s, eval_s, settings,
                                             len(dev_tokens), len(train_tokens), processes=args.world_size))
    else:
        steps = math.ceil(len(train_tokens) / global_batch * settings.epochs)
        plan = {"max_steps": steps, "train_examples": len(train_tokens), "passes_over_data": settings.epochs}
    if args.world_size > 1:
        plan = {**plan, "processes": args.world_size, "global_batch": global_batch}
    if is_main_process():
        write_json(plan_path, plan)
    args.max_steps = plan["max_steps"]

    callbacks = list(callbacks or [])
    interrupt = StopOnInterrupt()
    callbacks.append(interrupt)
    trainer_class, clock = StarTrainer, {}
    if under_budget:
        clock_start = from_main_process(time.time())
        deadline = from_main_process(started + plan["budget_seconds"] - plan["seconds_per_evaluation"] - 5.0)
        callbacks.append(StopOnTime(deadline))
        trainer_class, clock = ClockScheduleTrainer, {"clock_start": clock_start, "deadline": deadline, "warmup": settings.warmup}
    elif settings.early_stopping:
        # Not under a time budget: there the clock ends the run, and midway the learning
        # rate is still high, so a noisy dev score would stop it before the decay pays off.
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=settings.early_stopping))
    trainer = trainer_class(
        **clock,
        model=model,
        args=args,
        train_dataset=train_tokens,
        eval_dataset=dev_tokens,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        compute_loss_func=WeightedLoss(class_weights(train_tokens["label"])) if settings.balanced else None,
        callbacks=callbacks,
    )
    with ctrl_c_saves(interrupt):
        trainer.train(resume_from_checkpoint=resume_from)
    state = trainer.state
    if interrupt.stopped_at is not None:
        raise TrainingInterrupted(
            f"training interrupted at step {state.global_step} of {plan['max_steps']}; "
            f"its checkpoint is in {checkpoints / f'checkpoint-{state.global_step}'}: "
            "run the same command with --resume to continue from there"
        )
    return {
        "plan": plan,
        "settings": asdict(settings),
        "steps": state.global_step,
        "train_examples_seen": state.global_step * global_batch,
        "train_seconds": round(time.time() - started, 1),
        "best_checkpoint": state.best_model_checkpoint,
        "best_dev_accuracy": state.best_metric,
        "final_dev_accuracy": next((e["eval_accuracy"] for e in reversed(state.log_history) if "eval_accuracy" in e), None),
        "kept": "final" if under_budget else "best",
        "log_history": state.log_history,
    }
