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

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .. import LABEL_NAMES

MODEL_TYPE = "reviewstars-bag"
_HASH_MULTIPLIER = 1_000_003


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
        if input_ids.shape[1] == 0:  # reviews of no words (pipeline("")): one padding id each, weighing nothing
            input_ids = input_ids.new_full((input_ids.shape[0], 1), self.config.pad_token_id)
            attention_mask = torch.zeros_like(input_ids)
        ids, weights = ngram_bags(input_ids, attention_mask, self.config.vocab_size, self.config.buckets)
        logits = self.classifier(self.bag(ids, per_sample_weights=weights))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, BagConfig, exist_ok=True)
AutoModelForSequenceClassification.register(BagConfig, BagForStarRating, exist_ok=True)
