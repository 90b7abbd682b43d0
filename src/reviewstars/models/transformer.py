"""Any transformer sequence classifier (ours from scratch, or pretrained) as a StarPredictor."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import STARS
from ..artifacts import atomic_dir
from ..errors import ModelError
from ..tokenization import encode, padded_batches
from .base import StarPredictor, torch_layer_parameters
from .first_token import FirstTokenClassifier
from .folder import SECTION, info_of, section, temperature_of
from .pretrained import hub_error, resolve, stars_of_labels

KIND = "transformer"


class TransformerPredictor(StarPredictor):
    """Wraps a model + tokenizer; predicts in length-sorted, dynamically padded batches.

    BERT classifiers run their last layer at [CLS] only (`FirstTokenClassifier`: same
    logits, less arithmetic).
    """

    kind = KIND

    def __init__(self, model, tokenizer, max_length: int = 256, truncation: str = "head+tail", info: dict | None = None):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_length, self.truncation = max_length, truncation
        self.info = dict(info or {})
        self.column_stars = stars_of_labels(model.config.id2label)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if FirstTokenClassifier.supports(self.model):
            return FirstTokenClassifier(self.model)(input_ids, attention_mask)
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def uncalibrated_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        ids = encode(self.tokenizer, list(texts), self.max_length, self.truncation)
        proba = np.zeros((len(ids), len(STARS)), dtype=np.float32)
        with torch.inference_mode():
            for rows, input_ids, attention_mask in padded_batches(ids, batch_size or self.default_batch_size, self.tokenizer.pad_token_id or 0):
                logits = self.logits(torch.from_numpy(input_ids).to(self.device), torch.from_numpy(attention_mask).to(self.device))
                proba[rows] = logits.float().softmax(dim=-1).cpu().numpy()
        # Put columns in star order, whatever the checkpoint's class order.
        return proba[:, np.argsort(self.column_stars)]

    @property
    def default_batch_size(self) -> int:
        """16 on a CPU (measured: MiniLM 93 reviews/s at 16 and 32, 85 at 64), 64 on an accelerator."""
        return 16 if self.device.type == "cpu" else 64

    @property
    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def layer_parameters(self) -> list[tuple[str, str, int]]:
        return torch_layer_parameters(self.model)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "architecture": type(self.model).__name__, "max_length": self.max_length, "truncation": self.truncation}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        setattr(self.model.config, SECTION, section(KIND, max_length=self.max_length, truncation=self.truncation,
                                                    temperature=self.temperature, **self.info))
        with atomic_dir(path) as stage:
            self.model.save_pretrained(stage)
            self.tokenizer.save_pretrained(stage)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "TransformerPredictor":
        """A reviewstars folder, any fine-tuned checkpoint folder, or a Hub id, on `device` (default: auto)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..devices import resolve_device

        name = resolve(path)
        refuse_pickle_only(name)
        register_our_architecture(name)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(name)
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as error:
            raise hub_error(str(path), error) from None
        settings = dict(getattr(model.config, SECTION, None) or {})
        predictor = cls(
            model.to(resolve_device(device)),
            tokenizer,
            max_length=settings.pop("max_length", min(512, getattr(tokenizer, "model_max_length", 512) or 512)),
            truncation=settings.pop("truncation", "head"),
            info=info_of(settings),
        )
        predictor.temperature = temperature_of(settings, path)
        return predictor


def register_our_architecture(name: str) -> None:
    """Folders of our own architectures (model_type `reviewstars-X`) need module
    `reviewstars.models.X` imported: it registers them with the Auto classes."""
    from importlib import import_module

    from .folder import CONFIG_FILE, read_config

    if not (Path(name) / CONFIG_FILE).is_file():
        return
    model_type = str(read_config(name).get("model_type", ""))
    if model_type.startswith("reviewstars-"):
        try:
            import_module(f"reviewstars.models.{model_type.removeprefix('reviewstars-')}")
        except ImportError:
            raise ModelError(f"{name}: unknown architecture {model_type!r}") from None


def refuse_pickle_only(name: str) -> None:
    """Weights load from safetensors only: a pickle can run code when it is opened."""
    folder = Path(name)
    if not folder.is_dir():
        return
    if not any(folder.glob("*.safetensors")) and any(folder.glob("*.bin")) | any(folder.glob("*.pt")) | any(folder.glob("*.pkl")):
        raise ModelError(
            f"{folder}: weights are only in pickle files (.bin/.pt/.pkl), which can run code when opened; "
            "convert them to safetensors with a tool you trust"
        )
