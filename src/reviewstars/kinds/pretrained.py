"""The pretrained kind: any encoder `AutoModelForSequenceClassification` can load (an
alias such as `minilm`, a Hub id, a folder), fine-tuned with its own tokenizer."""

from __future__ import annotations

from ..models.pretrained import load_for_fine_tuning
from .base import Kind

PRETRAINED = Kind(
    name="pretrained",
    summary="a pretrained encoder fine-tuned: an alias (minilm), a Hub id (bert-base-cased) or a folder",
    learning_rate=5e-5,  # the lesson's
    pretrained=load_for_fine_tuning,
)
