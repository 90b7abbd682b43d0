"""The cnn kind: Kim (2014)'s text CNN (`models/cnn.py`), trained by the one Trainer path,
on the bag kind's learned word vocabulary.

Its settings live here, torch-free, so that the command line starts without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings.fields import Settings, setting
from .base import Kind


@dataclass
class CnnSettings(Settings):
    embedding_width: int = setting(128, "Word embedding width of the text CNN.", at_least=2)
    filters: int = setting(100, "Convolution filters of each width (3, 4 and 5 words).", at_least=1)
    dropout: float = setting(0.5, "Dropout on the text CNN's max-pooled features.", at_least=0, at_most=0.9)
    words: int = setting(30_000, "The text CNN's word vocabulary size (the most frequent words).", at_least=10)


def _learn_tokenizer(texts: list[str], settings: CnnSettings):
    from .bag import BagSettings, learn_tokenizer

    return learn_tokenizer(texts, BagSettings(words=settings.words))


def _new_network(tokenizer, settings: CnnSettings, _training):
    from ..models.cnn import CnnConfig, CnnForStarRating

    return CnnForStarRating(CnnConfig(vocab_size=len(tokenizer), embedding_width=settings.embedding_width, filters=settings.filters,
                                      dropout=settings.dropout, pad_token_id=tokenizer.pad_token_id or 0))


CNN = Kind(
    name="cnn",
    summary="Kim (2014)'s text CNN: word embeddings -> convolutions of widths 3/4/5 -> max over time -> Linear(3 x filters, 5)",
    settings=CnnSettings,
    learning_rate=1e-3,  # Adam's usual step for a shallow network from random weights
    max_passes=10,
    learn_tokenizer=_learn_tokenizer,
    new_network=_new_network,
)
