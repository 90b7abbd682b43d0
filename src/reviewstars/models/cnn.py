"""Kim (2014)'s convolutional network for sentence classification, in torch.

    words -> ids (a learned word vocabulary)
          -> Embedding(vocab, d)
          -> parallel Conv1d of widths 3, 4, 5 (`filters` each) -> ReLU
          -> max over time (one value a filter) -> concatenated -> Dropout
          -> Linear(3 x filters, 5)

Padding never changes a review's stars: pad positions embed to zeros, a window is kept
only where it starts on a token of the review (the review is followed by zeros), and a
review with no token pools to zeros. A Hugging Face citizen: importing this module
registers `reviewstars-cnn` with the Auto classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .. import LABEL_NAMES

MODEL_TYPE = "reviewstars-cnn"


class CnnConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, vocab_size: int = 30_000, embedding_width: int = 128, filters: int = 100,
                 kernel_sizes: tuple[int, ...] | list[int] = (3, 4, 5), dropout: float = 0.5, pad_token_id: int = 0, **kwargs):
        kwargs.setdefault("num_labels", len(LABEL_NAMES))
        kwargs.setdefault("id2label", dict(enumerate(LABEL_NAMES)))
        kwargs.setdefault("label2id", {name: i for i, name in enumerate(LABEL_NAMES)})
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size, self.embedding_width, self.filters = vocab_size, embedding_width, filters
        self.kernel_sizes, self.dropout = [int(k) for k in kernel_sizes], dropout


class CnnForStarRating(PreTrainedModel):
    config_class = CnnConfig
    main_input_name = "input_ids"
    accepts_loss_kwargs = False  # forward() computes its own mean loss

    def __init__(self, config: CnnConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_width)
        self.convolutions = nn.ModuleList(nn.Conv1d(config.embedding_width, config.filters, k) for k in config.kernel_sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.filters * len(config.kernel_sizes), config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):  # Kim's random vectors: U(-0.25, 0.25)
            nn.init.uniform_(module.weight, -0.25, 0.25)
        elif isinstance(module, nn.Conv1d):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if input_ids.shape[1] == 0:  # a batch of empty reviews: one pad position, masked
            input_ids = input_ids.new_full((input_ids.shape[0], 1), self.config.pad_token_id)
            attention_mask = torch.zeros_like(input_ids)
        mask = attention_mask.to(torch.float32)
        length = input_ids.shape[1]
        words = (self.embeddings(input_ids) * mask.unsqueeze(-1)).transpose(1, 2)  # (batch, width, time)
        words = F.pad(words, (0, max(self.config.kernel_sizes) - 1))  # every window that starts on a token is whole
        pooled = [(F.relu(conv(words))[:, :, :length] * mask.unsqueeze(1)).amax(dim=2) for conv in self.convolutions]
        logits = self.classifier(self.dropout(torch.cat(pooled, dim=1)))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, CnnConfig, exist_ok=True)
AutoModelForSequenceClassification.register(CnnConfig, CnnForStarRating, exist_ok=True)
