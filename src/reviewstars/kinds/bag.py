"""The bag kind: fastText's idea (`models/bag.py`), trained by the one Trainer path.

Its settings live here, torch-free, so that the command line (built from every kind's
settings) starts without importing torch; the network is built only when one trains.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings.fields import Settings, setting
from ..progress import library_bars
from .base import Kind


@dataclass
class BagSettings(Settings):
    dim: int = setting(64, "Embedding width.", at_least=2)
    words: int = setting(30_000, "Word vocabulary size (the most frequent words).", at_least=10)
    buckets: int = setting(200_000, "Hash buckets for word bigrams (0: words only).", at_least=0)


def learn_tokenizer(texts: list[str], settings: BagSettings):
    """A lower-cased word vocabulary of the `settings.words` most frequent words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordLevelTrainer(vocab_size=settings.words, min_frequency=2, special_tokens=specials, show_progress=library_bars())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    words = specials + sorted(set(tokenizer.get_vocab()) - set(specials))  # numbered canonically, not in hash order
    tokenizer.model = models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="[UNK]")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", model_max_length=100_000)


def new_network(tokenizer, settings: BagSettings, _training):
    from ..models.bag import BagConfig, BagForStarRating

    return BagForStarRating(BagConfig(vocab_size=len(tokenizer), buckets=settings.buckets, dim=settings.dim,
                                      pad_token_id=tokenizer.pad_token_id or 0))


BAG = Kind(
    name="bag",
    summary="fastText-style: the mean of word and hashed word-bigram embeddings -> Linear(dim, 5)",
    settings=BagSettings,
    learning_rate=5e-3,  # a shallow model with sparse rows: a larger step than an encoder's
    max_passes=10,  # fastText's recipe: 5-25 epochs
    learn_tokenizer=learn_tokenizer,
    new_network=new_network,
)
