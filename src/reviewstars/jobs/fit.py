"""How a kind is trained: in one call of its own (`Kind.fit`, scikit-learn's way), or by
the one Trainer path every torch kind shares: a network and its tokenizer (new,
pretrained, or from the checkpoint a resumed run continues), trained under the run's
settings. The registry (`kinds`) only declares; this does."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any

from ..errors import DataError
from ..kinds import Kind, TrainingJob
from ..ledger import spent
from ..progress import note


def fit_kind(kind: Kind, job: TrainingJob) -> tuple[Any, dict]:
    """(predictor, details of the run) for any kind."""
    if kind.fit is not None:
        return kind.fit(job)
    return train_torch(kind, job)


def train_torch(kind: Kind, job: TrainingJob) -> tuple[Any, dict]:
    """The one Trainer path: every torch kind's network trained by `training.train_transformer`."""
    with spent("loading libraries"):
        from ..models.folder import check_max_length, positions_of
        from ..models.transformer import TransformerPredictor
        from ..tokenization import load_tokenizer
        from ..training import checkpoints_of, kept_tokenizer, last_complete_checkpoint, train_transformer
        from ..training.loop import load_training_libraries

        load_training_libraries()

    started = time.time()  # a time budget covers all of it: a vocabulary learned, reviews tokenized, steps
    settings = job.transformer  # the kind's own choices already made (`Kind.trainer_settings`)
    if len(job.train) < 2:
        raise DataError("--data", f"too few training reviews ({len(job.train)}) to train a transformer")
    last = last_complete_checkpoint(checkpoints_of(job.output)) if settings.resume else None
    details: dict[str, Any] = {}
    if kind.pretrained is not None:
        details["base_model"] = job.model
    if job.own is not None:
        details["architecture"] = asdict(job.own)
    if last is not None:
        # Resume with the checkpoint's own vocabulary and architecture, never a new one.
        from transformers import AutoModelForSequenceClassification

        from ..models.transformer import register_our_architecture

        register_our_architecture(last)
        with spent("loading the model"):
            network, tokenizer = AutoModelForSequenceClassification.from_pretrained(last), load_tokenizer(last)
    elif kind.pretrained is not None:
        with spent("loading the model"):
            network, tokenizer = kind.pretrained(job.model)
    else:
        texts = list(job.train["text"])
        with spent("learning the vocabulary"):
            tokenizer = kept_tokenizer(job.output, settings.resume, lambda: kind.learn_tokenizer(texts, job.own), load_tokenizer)
        import torch

        with spent("loading the model"):
            _check_fits_in_memory(kind, tokenizer, job, settings)
            torch.manual_seed(settings.seed)  # the same first weights on every process and every run
            network = kind.new_network(tokenizer, job.own, settings)
    longest = positions_of(network)
    if not job.max_length_given and longest is not None and settings.max_length > longest:  # a folder trained at 64 tokens
        note(f"{job.model}: reads at most {longest} tokens (its position embeddings): --max-length {longest}, "
             f"not the default {settings.max_length}")
        settings = replace(settings, max_length=longest)
    check_max_length(tokenizer, settings.max_length, "--max-length", network)
    outcome = train_transformer(network, tokenizer, job.train, job.dev, job.output, settings, name=job.model,
                                use_cpu=_training_device(job.device) == "cpu", run_started=started)
    details.update({k: outcome[k] for k in ("train_examples_seen", "train_seconds", "steps", "plan", "best_dev_accuracy", "ended",
                                            "final_dev_accuracy", "kept", "budget_share_in_steps", "forward", "settings", "log_history")})
    details.update(train_examples=len(job.train), dev_examples=len(job.dev))
    predictor = TransformerPredictor(network, tokenizer, settings.max_length, settings.truncation)
    if outcome.get("final_dev_logits") is not None:
        from scipy.special import softmax

        details["dev_proba_scored"] = predictor.star_order(softmax(outcome["final_dev_logits"].astype("float64"), axis=1))
    return predictor, details


def _check_fits_in_memory(kind: Kind, tokenizer, job: TrainingJob, settings) -> None:
    """A network too large to train here is one line before it is built: `--width 100000` failed
    allocating 40 GB with a traceback, `--layers 1000` was killed by the kernel at 23 GB."""
    import torch

    from ..errors import ReviewstarsError
    from ..training.autobatch import FIRST
    from ..training.budget import machine_memory_bytes, training_memory_bytes

    with torch.device("meta"):  # the shapes without the memory
        shapes = kind.new_network(tokenizer, job.own, settings)
    batch = settings.batch_size if isinstance(settings.batch_size, int) else FIRST
    needed = training_memory_bytes(shapes, batch, settings.max_length)
    device = _training_device(job.device)
    has = machine_memory_bytes(device)
    if has is not None and needed > has:
        parameters = sum(parameter.numel() for parameter in shapes.parameters())
        raise ReviewstarsError(
            f"{job.model}: a network of {parameters / 1e6:,.1f}M parameters needs about {needed / 2**30:,.0f} GB to train at batch "
            f"{batch} and {settings.max_length} tokens, more than the {has / 2**30:,.0f} GB of "
            f"{'this GPU' if device.startswith('cuda') else 'this machine'}: make it smaller ({', '.join(_size_options(job.own))}) "
            "or the batches (--batch-size, --max-length)")


def _size_options(own) -> list[str]:
    """The options that size a kind's network: its own integer settings (--layers, --width, --dim, ...)."""
    from dataclasses import fields

    return [f"--{item.name.replace('_', '-')}" for item in fields(own) if type(getattr(own, item.name)) is int
            and item.name not in ("vocab_size", "words")] if own is not None else []


def _training_device(device: str | None) -> str:
    """The Trainer picks its accelerator itself (CUDA, then MPS); `--device cpu` keeps it on
    the CPU, and a device that is not there is the usual one-line error."""
    from ..devices import resolve_device
    from ..errors import ReviewstarsError

    resolved = resolve_device(device)
    if resolved.startswith("cuda:") and resolved != "cuda:0":
        raise ReviewstarsError(f"--device {resolved}: training uses the first visible GPU; choose it with CUDA_VISIBLE_DEVICES")
    return resolved
