"""The Hugging Face Trainer, fitted to star ratings: balanced loss, metrics, resumable batches."""

from __future__ import annotations

import random
import re
import sys
import time
from collections import Counter

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from safetensors import SafetensorError
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from ..ledger import current as current_ledger, spent
from ..models.first_token import training_forward


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
        if self.weights.device != logits.device:  # once: a copy every step would make a GPU wait for it
            self.weights = self.weights.to(logits.device)
        weighted = per_example * self.weights[labels]
        # Sum over the accumulated batch's examples, as the Trainer expects when it passes a count.
        return weighted.sum() / (num_items_in_batch if num_items_in_batch is not None else len(labels))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


#: `encoder.layer.3.`, `blocks.3.`, `h.3.`: the stacked layers of the encoders we train.
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|blocks|block|h)\.(\d+)\.")


def layer_depths(names: list[str]) -> dict[str, int]:
    """How deep each parameter sits: 0 the embeddings, 1..L the stacked layers, L + 1 the
    head (pooler, classifier) and anything else above the stack."""
    found = {name: _LAYER.search(name) for name in names}
    layers = max((int(m.group(1)) + 1 for m in found.values() if m), default=0)
    return {name: int(m.group(1)) + 1 if m else (0 if "embed" in name else layers + 1) for name, m in found.items()}


def decay_by_layer(optimizer, model, decay: float) -> None:
    """Layer-wise learning-rate decay (Howard & Ruder 2018; Clark et al. 2020): each layer
    learns at `decay` times the rate of the one above it, so the pretrained lower layers,
    which hold general features, move least and the new head most. Splits each of the
    optimizer's groups (weight decay or not) by depth, before any step is taken."""
    names = {id(p): n for n, p in model.named_parameters()}
    depths = layer_depths(list(names.values()))
    top = max(depths.values(), default=0)
    groups = []
    for group in optimizer.param_groups:
        by_depth: dict[int, list] = {}
        for parameter in group["params"]:
            by_depth.setdefault(depths[names[id(parameter)]], []).append(parameter)
        for depth, parameters in sorted(by_depth.items()):
            groups.append({**group, "params": parameters, "lr": group["lr"] * decay ** (top - depth)})
    optimizer.param_groups.clear()
    for group in groups:
        optimizer.add_param_group(group)


class _InOrder(torch.utils.data.Sampler):
    """The given indices, in the given order."""

    def __init__(self, order):
        self.order = [int(i) for i in order]

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)


class LedgerSteps(TrainerCallback):
    """Optimizer steps in the run's time ledger (forward, backward and the update, from the
    Trainer's step start to its step end)."""

    def on_step_begin(self, args, state, control, **kwargs):
        ledger = current_ledger()
        if ledger is not None:
            ledger.begin("optimizer steps")
        return control

    def on_step_end(self, args, state, control, **kwargs):
        ledger = current_ledger()
        if ledger is not None:
            ledger.end("optimizer steps")
        return control


class FirstStep(TrainerCallback):
    """When this process began its first optimizer step, and its peak memory then: what a
    run costs before it learns anything (a large training file above all), kept in the plan
    (`plan["first_step"]`: the model folder's config says it)."""

    def __init__(self, plan: dict):
        self.plan, self.seen = plan, False

    def on_step_begin(self, args, state, control, **kwargs):
        if not self.seen:
            self.seen = True
            self.plan["first_step"] = {"started": round(time.time(), 3), "peak_memory_mb": peak_memory_mb()}
        return control


class StopOnDivergence(TrainerCallback):
    """A loss that turned NaN or infinite never comes back (a learning rate far too high): the
    run stops at the next logged loss rather than spend its budget, and the caller refuses the
    model instead of saving one that rates every review alike."""

    def __init__(self):
        self.step: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        losses = [value for key, value in (logs or {}).items() if key in ("loss", "eval_loss")]
        if self.step is None and any(not np.isfinite(loss) for loss in losses):
            self.step = state.global_step
            control.should_training_stop = True
        return control


def peak_memory_mb() -> float | None:
    """The process's peak resident memory so far (ru_maxrss), in MiB; None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


class StarTrainer(Trainer):
    """The Trainer with a resumable length-grouped sampler, layer-wise learning rates, and
    its time in the run's ledger (data waits, dev evaluations, checkpoints)."""

    length_sampler: EpochSeededLengthSampler | None = None
    #: (step, logits) of the latest dev evaluation: under a budget the run keeps the model it
    #: ends with, whose last evaluation has already scored (part of) the dev slice.
    last_evaluation: tuple[int, np.ndarray] | None = None
    _eval_order: np.ndarray | None = None  # the dev rows in the order the evaluation reads them

    def __init__(self, *args, layer_decay: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.layer_decay = layer_decay
        self.steps_by_forward: Counter[str] = Counter()  # training batches (not evaluations) by the forward that ran them

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """BERT classifiers (MiniLM, bert-base) run their last layer at [CLS] only, in training
        and evaluation: the loss reads nothing else, so the gradients are the full forward's,
        for about 14% less arithmetic (`models/first_token.py`). A wrapped model (DDP) keeps
        its own forward. The Trainer's precision applies: it is set on the model's forward,
        which this path does not call, so it is entered here."""
        fast = training_forward(model, inputs, first_token=self.accelerator.mixed_precision != "fp8")  # fp8 wraps the forward
        if model.training:
            self.steps_by_forward["full" if fast is model else "last layer at [CLS] only"] += 1
        if fast is model:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with self.accelerator.autocast():
            return super().compute_loss(fast, inputs, return_outputs, num_items_in_batch)

    tokens_seen = 0  # padded tokens of the training batches fetched so far (their shapes: no device sync)

    def get_batch_samples(self, *args, **kwargs):
        with spent("waiting for data"):
            batches, items = super().get_batch_samples(*args, **kwargs)
        self.tokens_seen += sum(batch["input_ids"].numel() for batch in batches if "input_ids" in batch)
        return batches, items

    def floating_point_ops(self, inputs) -> int:
        """The Trainer's estimate, with the parameter count taken once instead of every step."""
        if not hasattr(self, "_parameters_for_flops"):
            model = self.model
            self._parameters_for_flops = model.num_parameters(exclude_embeddings=True) if hasattr(model, "num_parameters") else 0
        return 6 * inputs["input_ids"].numel() * self._parameters_for_flops if "input_ids" in inputs else 0

    def evaluate(self, *args, **kwargs):
        with spent("dev evaluations"):
            return super().evaluate(*args, **kwargs)

    def _save_checkpoint(self, *args, **kwargs):
        with spent("checkpoints"):
            try:
                return super()._save_checkpoint(*args, **kwargs)
            except (OSError, RuntimeError, SafetensorError) as error:  # a full disk: torch.save says RuntimeError
                import shutil
                from pathlib import Path

                from ..artifacts import is_main_process
                from ..data.formats import first_line
                from ..errors import ReviewstarsError

                folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
                if is_main_process():  # half a checkpoint: nothing resumes from it, and it holds the space
                    shutil.rmtree(folder, ignore_errors=True)
                raise ReviewstarsError(f"{folder}: the checkpoint could not be written ({first_line(error)}); is the disk full? "
                                       "What it had written is removed; earlier checkpoints and the model are as they were") from None

    def _get_eval_sampler(self, eval_dataset):
        """Dev reviews longest first (less padding than the Trainer's random length groups),
        in an order kept so that each evaluation's logits can be put back in row order."""
        if self.args.world_size > 1 or eval_dataset is None or "input_ids" not in eval_dataset.column_names:
            self._eval_order = None
            return super()._get_eval_sampler(eval_dataset)
        lengths = np.asarray([len(ids) for ids in eval_dataset["input_ids"]])
        self._eval_order = np.argsort(-lengths, kind="stable")
        return _InOrder(self._eval_order)

    def evaluation_loop(self, *args, **kwargs):
        output = super().evaluation_loop(*args, **kwargs)
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        order = self._eval_order
        if logits is not None and order is not None and len(order) == len(logits):
            in_rows = np.empty_like(np.asarray(logits, dtype=np.float32))
            in_rows[order] = logits
            self.last_evaluation = (self.state.global_step, in_rows)
        return output

    def create_optimizer(self, *args, **kwargs):  # (self) before transformers 5.x added `model`
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(*args, **kwargs)
        if fresh and self.layer_decay != 1.0:
            decay_by_layer(optimizer, kwargs.get("model") or (args[0] if args else None) or self.model, self.layer_decay)
        return optimizer

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
