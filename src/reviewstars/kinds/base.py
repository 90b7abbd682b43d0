"""What a model kind declares, and the two ways a kind is trained.

A kind is a row in the registry (`reviewstars.kinds.KINDS`): its settings class (whose
fields become its CLI options), its default learning rate, how it is trained and what
its model card says beyond the common part. Callers look a kind up; none compares
kind names.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError
from ..ledger import spent


@dataclass
class TrainingJob:
    """Everything a kind's training needs, handed over in one piece."""

    model: str              # the name the user gave (a kind, an alias, a Hub id or a folder)
    train: Any              # datasets.Dataset: text, label
    dev: Any                # the dev slice carved from train (balanced), never the scored split
    output: Path
    own: Any                # the kind's own settings object (or None)
    transformer: Any        # TrainSettings, for torch kinds
    device: str | None = None


@dataclass(frozen=True)
class Kind:
    """One model kind. Exactly one of `fit` (a model trained in one call, like
    scikit-learn's) or `new_network` / `learn_tokenizer` / `pretrained` (torch models
    trained by the one Trainer path) is given."""

    name: str
    summary: str
    settings: type | None = None
    learning_rate: float | None = None
    max_passes: float | None = None         # under a budget: passes over the training set worth taking (None: no limit)
    max_length: int = 256                   # tokens kept per review when --max-length is not given
    budget_max_length: int | None = None    # ... and under --time-budget, when that differs
    fit: Callable[[TrainingJob], tuple[Any, dict]] | None = None
    learn_tokenizer: Callable[[list[str], Any], Any] | None = None   # (train texts, own settings) -> tokenizer
    new_network: Callable[[Any, Any, Any], Any] | None = None        # (tokenizer, own settings, TrainSettings) -> network
    pretrained: Callable[[str], tuple[Any, Any]] | None = None       # (name) -> (network, tokenizer)
    card: Callable[[Any], list[str]] | None = None                   # predictor -> extra model-card lines

    @property
    def uses_torch(self) -> bool:
        return self.fit is None

    def own_settings(self, given: Any = None) -> Any:
        return given if given is not None else (self.settings() if self.settings else None)

    def train(self, job: TrainingJob) -> tuple[Any, dict]:
        """(predictor, details of the run) for this kind."""
        if self.fit is not None:
            return self.fit(job)
        return train_torch(self, job)


def train_torch(kind: Kind, job: TrainingJob) -> tuple[Any, dict]:
    """The one Trainer path: a network and its tokenizer (new, pretrained, or from the
    checkpoint a resumed run continues), trained under the run's settings."""
    from dataclasses import replace

    with spent("loading libraries"):
        from ..models.folder import check_max_length
        from ..models.transformer import TransformerPredictor
        from ..tokenization import load_tokenizer
        from ..training import checkpoints_of, kept_tokenizer, last_complete_checkpoint, train_transformer
        from ..training.loop import load_training_libraries

        load_training_libraries()

    started = time.time()  # a time budget covers all of it: a vocabulary learned, reviews tokenized, steps
    settings = job.transformer
    if settings.learning_rate is None:
        settings = replace(settings, learning_rate=kind.learning_rate)
    if settings.max_passes is None:
        settings = replace(settings, max_passes=kind.max_passes)
    if settings.max_length is None:
        budget_length = kind.budget_max_length if settings.time_budget else None
        settings = replace(settings, max_length=budget_length or kind.max_length)
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
            torch.manual_seed(settings.seed)  # the same first weights on every process and every run
            network = kind.new_network(tokenizer, job.own, settings)
    check_max_length(tokenizer, settings.max_length, "--max-length")
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


def _training_device(device: str | None) -> str:
    """The Trainer picks its accelerator itself (CUDA, then MPS); `--device cpu` keeps it on
    the CPU, and a device that is not there is the usual one-line error."""
    from ..devices import resolve_device
    from ..errors import ReviewstarsError

    resolved = resolve_device(device)
    if resolved.startswith("cuda:") and resolved != "cuda:0":
        raise ReviewstarsError(f"--device {resolved}: training uses the first visible GPU; choose it with CUDA_VISIBLE_DEVICES")
    return resolved
