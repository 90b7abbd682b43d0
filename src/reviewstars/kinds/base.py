"""What a model kind declares: a row of the registry, and what its training is handed.

A kind is a row in the registry (`reviewstars.kinds.KINDS`): its settings class (whose
fields become its CLI options), its default learning rate, what it is built from (its own
`fit`, or a network and tokenizer for the one Trainer path in `jobs.fit`) and what its
model card says beyond the common part. Callers look a kind up; none compares
kind names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


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
    max_length_given: bool = False  # --max-length was given: not lowered to what a folder's model reads


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
    names_in: Callable[[Any], tuple[str, ...]] | None = None         # own settings -> the folders or Hub ids it reads
    check_name: Callable[[str], None] | None = None                  # one of those -> one line if it cannot be used

    @property
    def uses_torch(self) -> bool:
        return self.fit is None

    def inputs(self, own: Any) -> tuple[str, ...]:
        """What this kind reads besides the data (a tokenizer's folder, say): never written over."""
        return self.names_in(own) if self.names_in is not None and own is not None else ()

    def check_names(self, own: Any) -> None:
        """Every name in the kind's own settings checked before any data is read: a Hub id only
        the Hub can check is found now, not after the models before it trained."""
        if self.check_name is not None:
            for name in self.inputs(own):
                self.check_name(name)

    def own_settings(self, given: Any = None) -> Any:
        return given if given is not None else (self.settings() if self.settings else None)

    def trainer_settings(self, given: Any, seed: int) -> Any:
        """The Trainer settings this kind trains with, made once: the given ones (or the
        defaults), the data's seed, and every choice left to the kind (None) filled from it:
        learning rate, passes worth taking, tokens kept per review."""
        from dataclasses import replace

        from ..training.settings import TrainSettings

        given = given or TrainSettings()
        budget_length = self.budget_max_length if given.time_budget else None
        return replace(given, seed=seed,
                       learning_rate=self.learning_rate if given.learning_rate is None else given.learning_rate,
                       max_passes=self.max_passes if given.max_passes is None else given.max_passes,
                       max_length=(budget_length or self.max_length) if given.max_length is None else given.max_length)
