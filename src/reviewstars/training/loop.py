"""One training path for every torch model: the Hugging Face `Trainer`, made fast.

What the lesson leaves slow is fast here: reviews are tokenized once (and cached),
padded per batch to their own longest review instead of to 512, and batched with
reviews of similar length. With a time budget (see `budget`) the run follows the clock
and keeps the model it ends with.

Why the last model and not the "best" one under a budget: the dev slice is small (500
reviews: a standard error of about 2 points), and the maximum of some forty noisy
evaluations mostly picks noise. Measured on the 30-minute scratch run: the checkpoint
with the best dev score (0.616) scored 0.596 on validation, the final one 0.605.
Without a budget the run keeps the best checkpoint and stops early, as the lesson does.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from transformers import DataCollatorWithPadding, EarlyStoppingCallback, PrinterCallback, TrainingArguments

from ..artifacts import is_main_process, write_json
from ..errors import ReviewstarsError, TrainingInterrupted
from ..ledger import BEFORE_RESUME, STARTING_THE_TRAINER, add_spent, spent
from ..progress import note, warn
from ..tokenization import ShapeBuckets
from .autobatch import DEFAULT_LEARNING_RATE, FIRST, settle_batch_size, training_autocast
from .budget import MIN_EXAMPLES, measure_seconds_per_step, plan_budget, too_small_budget
from .clock import ClockScheduleTrainer, Stopwatch, TrainingClock
from .checkpoints import PLAN_FILE, checkpoints_of, is_checkpoint, last_complete_checkpoint
from .interrupts import StopOnInterrupt, signals_save
from .display import TrainingProgress
from .distributed import from_main_process, main_process_first, several_processes
from .settings import AUTO
from .tokenized import tokenize_dataset
from .trainer import FirstStep, LedgerSteps, StarTrainer, StopOnDivergence, WeightedLoss, class_weights, compute_metrics, seed_everything

DEFAULT_MAX_LENGTH = 256


def load_training_libraries() -> None:
    """Import what the Trainer imports when it starts (accelerate, datasets' writer, TensorBoard's
    logger), so that a time ledger counts it as such and not inside the first step."""
    import accelerate  # noqa: F401
    import datasets  # noqa: F401
    import transformers.trainer  # noqa: F401


def _arguments(settings, checkpoints: Path, under_budget: bool, use_cpu: bool) -> TrainingArguments:
    """The Trainer's arguments. Under a budget the clock (not a step count) asks for
    evaluations and checkpoints, so the step-based strategies are off."""
    use_cuda = torch.cuda.is_available() and not use_cpu
    # Several processes without a GPU (torchrun on CPUs): the Trainer only goes
    # distributed on CPUs when told so, with the gloo backend.
    cpu_processes = several_processes() and not use_cuda
    cadence = "no" if under_budget else "steps"
    return TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size * 4,
        learning_rate=settings.learning_rate or DEFAULT_LEARNING_RATE,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup,
        lr_scheduler_type="linear",
        max_steps=1,  # set from the plan
        eval_strategy=cadence,
        eval_steps=settings.eval_steps,
        save_strategy=cadence,
        save_steps=settings.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=not under_budget,  # see the module's docstring
        metric_for_best_model="accuracy",
        greater_is_better=True,
        logging_steps=settings.logging_steps or settings.eval_steps,
        logging_first_step=True,
        report_to=settings.report_to if settings.report_to in ("none", "all") else settings.report_to.split(","),
        run_name=settings.run_name or checkpoints.parent.name,  # not the Trainer's default, our "checkpoints" folder
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        bf16=use_cuda and torch.cuda.is_bf16_supported(),
        fp16=use_cuda and not torch.cuda.is_bf16_supported(),
        seed=settings.seed,
        data_seed=settings.seed,
        disable_tqdm=True,  # our own progress display follows the run
        dataloader_num_workers=2 if use_cuda else 0,  # a GPU step is short: batches are collated beside it
        dataloader_persistent_workers=use_cuda,  # not forked again for every pass and every evaluation
        dataloader_pin_memory=use_cuda,
        # A GPU step must not wait on the CPU: batches are copied from pinned memory without a sync,
        # and the loss is not read back every step to filter NaNs (only the logged loss is read).
        accelerator_config={"non_blocking": use_cuda},
        logging_nan_inf_filter=False,
        use_cpu=use_cpu or cpu_processes,
        ddp_backend="gloo" if cpu_processes else None,
    )


def train_transformer(model, tokenizer, train_split, dev_split, output: str | Path, settings, callbacks: list | None = None,
                      name: str = "model", use_cpu: bool = False, run_started: float | None = None) -> dict[str, Any]:
    """Fine-tune `model` on `train_split`, evaluating on `dev_split`; returns what happened.

    Checkpoints go under `output/checkpoints`, TensorBoard logs under `output/runs`. At the end `model`
    holds the best checkpoint, or under a time budget the final one (the caller saves it).
    `settings.batch_size` is per process: N processes train on N times larger batches.
    Ctrl-C or SIGTERM saves a checkpoint and raises `TrainingInterrupted`.
    """
    started = run_started or time.time()  # the budget's clock: from the caller's start (a vocabulary learned first counts)
    if settings.max_length is None:  # called directly, not through a kind that chose one
        settings = replace(settings, max_length=DEFAULT_MAX_LENGTH)
    seed_everything(settings.seed)
    checkpoints = checkpoints_of(output)
    with spent("tokenizing"), main_process_first():  # the first process writes the cache the others read
        train_tokens = tokenize_dataset(train_split, tokenizer, settings.max_length, settings.truncation)
        dev_tokens = tokenize_dataset(dev_split, tokenizer, settings.max_length, settings.truncation)
    if settings.dynamic_padding:
        # On CUDA widths in steps of 32 (`tokenization.ShapeBuckets`): a GPU loads kernels for each new shape,
        # and a plain loop on an H200 host stepped at 0.1-0.2 s on shapes it had not met, 0.02 s on those it had.
        on_cuda = torch.cuda.is_available() and not use_cpu
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=ShapeBuckets.width_step if on_cuda else None)
    else:  # the lesson's recipe, kept for comparison
        collator = DataCollatorWithPadding(tokenizer, padding="max_length", max_length=settings.max_length)

    if settings.freeze_embeddings:  # before the speed probe: a frozen matrix makes every step cheaper
        model.get_input_embeddings().weight.requires_grad_(False)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(output) / "runs")
    under_budget = bool(settings.time_budget)
    auto_batch = settings.batch_size == AUTO
    if not auto_batch and settings.batch_size > len(train_tokens) > 0:  # the plan counted 100,000 reviews a step of 240
        if is_main_process():
            warn(f"{name}: --batch-size {settings.batch_size:,} is more than the {len(train_tokens):,} training reviews: "
                 f"batches of {len(train_tokens):,}, one step a pass")
        settings = replace(settings, batch_size=len(train_tokens))
    with spent(STARTING_THE_TRAINER):  # the device's first use (a CUDA context: seconds) and, under torchrun, the process group
        args = _arguments(replace(settings, batch_size=FIRST) if auto_batch else settings, checkpoints, under_budget, use_cpu)
        device = args.device

    plan_path = checkpoints / PLAN_FILE
    resume_from = last_complete_checkpoint(checkpoints, remove_incomplete=is_main_process()) if settings.resume else None
    if settings.resume and resume_from is None and is_main_process():  # stopped before its first checkpoint was whole
        warn(f"{name}: --resume: no complete checkpoint in {checkpoints}: training from the start")
    saved_plan = json.loads(plan_path.read_text()) if resume_from and plan_path.is_file() else None
    if auto_batch:  # the batch it settles on sets the Trainer's batch sizes and learning rate
        with spent("probing speed and batch size"):
            settings, auto_record = settle_batch_size(settings, model, train_tokens, tokenizer, args, saved_plan)
        with spent(STARTING_THE_TRAINER):
            args = _arguments(settings, checkpoints, under_budget, use_cpu)
    global_batch = settings.batch_size * args.world_size
    if saved_plan is not None:
        plan = saved_plan  # the same plan, clock and deadline as the interrupted run
    elif under_budget:
        with spent("probing speed and batch size"), training_autocast(args):  # the Trainer's precision, or a GPU's plan is far too slow
            probe = measure_seconds_per_step(model.to(device), train_tokens, collator, settings.batch_size,
                                             first_token=args.world_size == 1)  # several: DDP's full forward
        # Each process measured its own speed; all follow the first one's plan.
        plan = from_main_process(plan_budget(settings.time_budget, time.time() - started, probe.step_seconds,
                                             probe.eval_example_seconds, settings.batch_size, len(dev_tokens), len(train_tokens),
                                             processes=args.world_size, parameters=sum(p.numel() for p in model.parameters()),
                                             max_passes=settings.max_passes, tokens_per_step=probe.tokens_per_step))
    else:
        steps = math.ceil(len(train_tokens) / global_batch * settings.epochs)
        plan = {"max_steps": steps, "train_examples": len(train_tokens), "passes_over_data": settings.epochs}
    if args.world_size > 1:
        plan = {**plan, "processes": args.world_size, "global_batch": global_batch}
    if auto_batch:
        plan = {**plan, "auto_batch": auto_record}
    if is_main_process():
        write_json(plan_path, plan)
        _announce(name, plan, started, resumed=saved_plan is not None)
    args.max_steps = plan["max_steps"]

    callbacks = list(callbacks or [])
    interrupt = StopOnInterrupt()
    callbacks.append(interrupt)
    trainer_class, extra, clock = StarTrainer, {}, None
    if under_budget:
        warned_too_small = too_small_budget(plan) is not None and saved_plan is None  # (the probe's plan, said by _announce)

        def replanned(new_plan: dict[str, Any]) -> None:
            if is_main_process():
                write_json(plan_path, new_plan)
                warned = warned_too_small and too_small_budget(new_plan) is None
                note(f"{name}: steps take {new_plan['replanned']['measured_seconds_per_step']:.3g} s, not "
                     f"{new_plan['replanned']['probe_seconds_per_step']:.3g} s: re-planned ~{new_plan['expected_steps']:,} steps "
                     f"({new_plan['expected_passes_over_data']:g} passes), {evaluations(new_plan['evaluations'])}"
                     + (": enough to learn from, whatever the warning above said (the probe ran slow)" if warned else ""))

        clock = TrainingClock(plan, settings.warmup, run_started=started, on_replan=replanned)
        trainer_class, extra = ClockScheduleTrainer, {"clock": clock}
        dev_tokens = dev_tokens.select(range(min(plan.get("dev_rows", len(dev_tokens)), len(dev_tokens))))
    elif settings.early_stopping:
        # Not under a time budget: there the clock ends the run, and midway the learning
        # rate is still high, so a noisy dev score would stop it before the decay pays off.
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=settings.early_stopping))
    watch = clock or Stopwatch(run_started=started)  # the run's seconds, resumes included
    callbacks.append(watch)
    callbacks.append(TrainingProgress(name, plan, clock))
    callbacks.append(LedgerSteps())
    callbacks.append(FirstStep(plan))
    divergence = StopOnDivergence()
    callbacks.append(divergence)
    with spent(STARTING_THE_TRAINER):  # the Accelerator, the model onto the device (0.1-0.5 s here: it was "other")
        trainer = trainer_class(
            **extra,
            layer_decay=settings.layer_decay,
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
        trainer.remove_callback(PrinterCallback)  # raw log dicts: TrainingProgress shows them instead
    if clock is not None:
        clock.tokens_seen = lambda: trainer.tokens_seen
    with signals_save(interrupt), spent("trainer bookkeeping"):  # what steps, data, evaluations and checkpoints leave
        trainer.train(resume_from_checkpoint=resume_from)
    state = trainer.state
    if watch.resumed_at:  # the processes before this one, up to the checkpoint it went on from
        add_spent(BEFORE_RESUME, watch.resumed_at)
    if interrupt.stopped_at is not None:
        raise TrainingInterrupted(
            f"training interrupted at step {state.global_step} of ~{plan.get('expected_steps', plan['max_steps']):,}; "
            f"its checkpoint is in {checkpoints / f'checkpoint-{state.global_step}'}: "
            "run the same command with --resume to continue from there",
            interrupt.signal_number,
        )
    diverged = divergence.step
    if diverged is None and not all(bool(parameter.isfinite().all()) for parameter in model.parameters()):
        diverged = state.global_step  # between two logged losses
    if diverged is not None:
        if is_main_process():  # its weights are NaN: nothing to --resume from
            for folder in filter(is_checkpoint, checkpoints.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)
        raise ReviewstarsError(f"{name}: training diverged: the loss became NaN or infinite by step {diverged:,} (learning rate "
                               f"{args.learning_rate:g}): train again with a lower --learning-rate; no model was written")
    ended = (clock.ended if clock else None) or \
        ("steps" if under_budget else "early stopping" if state.global_step < state.max_steps else "epochs")
    if is_main_process() and ended == "early stopping":
        note(f"{name}: stopped early at step {state.global_step:,} of {state.max_steps:,}: the dev accuracy did not rise for "
             f"{settings.early_stopping} evaluation{'' if settings.early_stopping == 1 else 's'}" + (f" (best {state.best_metric:.4f}, kept)" if state.best_metric is not None else ""))
    if is_main_process() and clock is not None and clock.ended == "passes":
        note(f"{name}: {reviews_seen(state.global_step, global_batch, len(train_tokens)) / max(len(train_tokens), 1):.1f} passes in "
             f"{clock.elapsed() - plan['clock_start']:.0f} s; more would overfit {len(train_tokens):,} reviews: stopped "
             f"with {plan['deadline'] - clock.elapsed():.0f} s of the budget left")
    return {
        "plan": plan,
        "settings": asdict(settings),
        "steps": state.global_step,
        "train_examples_seen": reviews_seen(state.global_step, global_batch, len(train_tokens)),
        "train_seconds": round(watch.run_seconds(), 1),
        "budget_share_in_steps": clock.budget_share_in_steps() if clock else None,
        "forward": ", ".join(trainer.steps_by_forward) or None,  # "last layer at [CLS] only", or "full"
        "best_checkpoint": state.best_model_checkpoint,
        "best_dev_accuracy": state.best_metric,
        "final_dev_accuracy": next((e["eval_accuracy"] for e in reversed(state.log_history) if "eval_accuracy" in e), None),
        "kept": "final" if under_budget else "best",
        "ended": ended,
        # The final model's logits on the first dev rows, when its last evaluation was at the last
        # step and that model is the one kept: calibration need not score those reviews again.
        "final_dev_logits": trainer.last_evaluation[1] if under_budget and trainer.last_evaluation
        and trainer.last_evaluation[0] == state.global_step and args.world_size == 1 else None,
        "log_history": state.log_history,
    }


def reviews_seen(steps: int, batch: int, reviews: int) -> int:
    """The reviews `steps` steps of `batch` showed the model: a pass's last batch holds only what
    is left (10 reviews at batch 16 are one step of 10, not 16 seen)."""
    if reviews <= 0 or steps <= 0:
        return 0
    passes, rest = divmod(steps, math.ceil(reviews / batch))
    return passes * reviews + min(rest * batch, reviews)


def _announce(name: str, plan: dict[str, Any], started: float, resumed: bool = False) -> None:
    """Say what the run will do before it does it, and warn when it cannot work. A resumed
    run goes on with the plan it resumes, on its own clock: this process's start says
    nothing of its deadline (a probe's resumed run named one it ended long before)."""
    if resumed and "deadline" in plan:
        goes_to = ("the last of them, or its deadline if sooner" if plan.get("ends") == "passes" else "its deadline")
        note(f"{name}: --resume: the stopped run's plan of ~{plan['expected_steps']:,} steps "
             f"({plan['expected_passes_over_data']:g} passes over {plan['train_examples']:,} reviews) goes on to {goes_to}, "
             "on the run's own clock (the time before --resume counts against the budget)")
        return
    auto = plan.get("auto_batch")
    if auto:
        note(f"{name}: --batch-size auto: {auto['batch_size']} reviews a step, learning rate {auto['learning_rate']:.3g} "
             f"({auto['learning_rate_scaling']})")
    if "deadline" not in plan:
        note(f"{name}: {plan['max_steps']:,} steps, {plan['passes_over_data']:g} pass{'' if plan['passes_over_data'] == 1 else 'es'} "
             f"over {plan['train_examples']:,} reviews")
        return
    ends = time.strftime("%H:%M:%S", time.localtime(started + plan["budget_seconds"]))
    if plan.get("ends") == "passes":
        ends = (f"ends after them, before the budget's {time.strftime('%H:%M:%S', time.localtime(started + plan['budget_seconds']))}: "
                f"more passes would overfit (--max-passes {plan['max_passes']:g})")
    else:
        ends = f"ends at {ends}"
    note(f"{name}: plan ~{plan['expected_steps']:,} steps, ~{plan['expected_examples']:,} reviews "
         f"({plan['expected_passes_over_data']:g} passes over {plan['train_examples']:,}), "
         f"{evaluations(plan['evaluations'])} of {plan['dev_rows']} reviews, {ends}")
    if plan.get("max_passes") and plan["max_passes"] * plan["train_examples"] < MIN_EXAMPLES:  # (a probe's 0.5 ran 16 passes)
        note(f"{name}: --max-passes {plan['max_passes']:g} over {plan['train_examples']:,} reviews is fewer than the "
             f"{MIN_EXAMPLES:,} reviews' worth any run may learn from: up to {MIN_EXAMPLES / plan['train_examples']:.3g} passes")
    problem = too_small_budget(plan)
    if problem:
        warn(f"{name}: {problem}")


def evaluations(count: int) -> str:
    return f"{count} dev evaluation{'' if count == 1 else 's'}"
