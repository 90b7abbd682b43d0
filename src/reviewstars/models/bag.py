"""fastText's idea in torch: a review is the average of its word and word-bigram vectors.

    words -> ids (a learned word vocabulary)  +  bigrams -> hashed bucket ids
          -> EmbeddingBag: the mean of their vectors (one bag per review)
          -> Linear(dim, 5)

No attention, no order beyond bigrams: a bag of n-grams like the linear baseline, but
with dense vectors learned end to end by the same Trainer path as the transformers.
Bigrams are hashed into a fixed number of buckets (Joulin et al., 2017), so the model
stays small whatever the data. A Hugging Face citizen: importing this module registers
`reviewstars-bag` with the Auto classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .. import LABEL_NAMES
from ..options import Settings, setting
from ..progress import library_bars

MODEL_TYPE = "reviewstars-bag"
SUMMARY = "fastText-style: the mean of word and hashed word-bigram embeddings -> Linear(dim, 5)"
LEARNING_RATE = 5e-3  # a shallow model with sparse rows: a larger step than an encoder's
_HASH_MULTIPLIER = 1_000_003


@dataclass
class BagSettings(Settings):
    dim: int = setting(64, "Embedding width.", at_least=2)
    words: int = setting(30_000, "Word vocabulary size (the most frequent words).", at_least=10)
    buckets: int = setting(200_000, "Hash buckets for word bigrams (0: words only).", at_least=0)


class BagConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, vocab_size: int = 30_000, buckets: int = 200_000, dim: int = 64, pad_token_id: int = 0, **kwargs):
        kwargs.setdefault("num_labels", len(LABEL_NAMES))
        kwargs.setdefault("id2label", dict(enumerate(LABEL_NAMES)))
        kwargs.setdefault("label2id", {name: i for i, name in enumerate(LABEL_NAMES)})
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size, self.buckets, self.dim = vocab_size, buckets, dim


def ngram_bags(input_ids: torch.Tensor, attention_mask: torch.Tensor, vocab_size: int, buckets: int):
    """Each review's word ids and hashed bigram ids, with weights that average them."""
    mask = attention_mask.to(torch.float32)
    ids, weights = [input_ids], [mask]
    if buckets and input_ids.shape[1] > 1:
        pairs = (input_ids[:, :-1] * _HASH_MULTIPLIER + input_ids[:, 1:]) % buckets
        ids.append(vocab_size + pairs)
        weights.append(mask[:, :-1] * mask[:, 1:])
    ids, weights = torch.cat(ids, dim=1), torch.cat(weights, dim=1)
    return ids, weights / weights.sum(dim=1, keepdim=True).clamp(min=1.0)


class BagForStarRating(PreTrainedModel):
    config_class = BagConfig
    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # forward() computes its own mean loss

    def __init__(self, config: BagConfig):
        super().__init__(config)
        self.bag = nn.EmbeddingBag(config.vocab_size + config.buckets, config.dim, mode="sum")
        self.classifier = nn.Linear(config.dim, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.EmbeddingBag):  # fastText's start: small uniform vectors
            nn.init.uniform_(module.weight, -1.0 / self.config.dim, 1.0 / self.config.dim)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        ids, weights = ngram_bags(input_ids, attention_mask, self.config.vocab_size, self.config.buckets)
        logits = self.classifier(self.bag(ids, per_sample_weights=weights))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


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


def new_network(tokenizer, settings: BagSettings, _training) -> BagForStarRating:
    return BagForStarRating(BagConfig(vocab_size=len(tokenizer), buckets=settings.buckets, dim=settings.dim,
                                      pad_token_id=tokenizer.pad_token_id or 0))


AutoConfig.register(MODEL_TYPE, BagConfig, exist_ok=True)
AutoModelForSequenceClassification.register(BagConfig, BagForStarRating, exist_ok=True)
