"""The pretrained kind: any encoder `AutoModelForSequenceClassification` can load (an
alias such as `minilm`, a Hub id, a folder), fine-tuned with its own tokenizer."""

from __future__ import annotations

from ..models.pretrained import load_for_fine_tuning
from .base import Kind

PRETRAINED = Kind(
    name="pretrained",
    summary="a pretrained encoder fine-tuned: an alias (minilm), a Hub id (bert-base-cased) or a folder",
    learning_rate=5e-5,  # the lesson's
    # BERT's recipe is 2-4 epochs. On an H200, 3-minute budgets on our 38k reviews: 1.3 passes at batch 16
    # scored 0.6475, more at batch 32 0.635, 11.9 at batch 128 0.593: past a couple of passes a pretrained
    # encoder memorises its training set instead of learning more.
    max_passes=2,
    # On a CPU budget more steps beat longer reviews: MiniLM for 30 minutes scored 0.6345 on
    # validation at 128 tokens; at 256 it sees half the reviews (benchmarks/time_budget.py).
    budget_max_length=128,
    pretrained=load_for_fine_tuning,
)
