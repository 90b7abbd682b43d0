"""A transformer encoder written from scratch, read top to bottom like the lesson.

    tokens -> token embeddings + position embeddings
           -> N x EncoderBlock(
                  x = LayerNorm(x + SelfAttention(x))     # every token looks at every other
                  x = LayerNorm(x + FeedForward(x))       # then thinks about what it saw
              )
           -> mean of the output embeddings over the real (non-padding) tokens
           -> Linear(d, 5) -> one score per star rating

It is a Hugging Face citizen: `EncoderConfig` + `EncoderForStarRating` are registered
with the Auto classes (importing this module does it), so `save_pretrained`,
`from_pretrained`, `Trainer` and `pipeline("text-classification")` all work with it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .. import LABEL_NAMES

MODEL_TYPE = "reviewstars-encoder"


class EncoderConfig(PretrainedConfig):
    """The encoder's size: vocabulary, width, depth, heads. Saved as `config.json`."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        vocab_size: int = 8000,
        max_position_embeddings: int = 512,
        hidden_size: int = 256,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        intermediate_size: int = 1024,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        pad_token_id: int = 0,
        **kwargs,
    ):
        kwargs.setdefault("num_labels", len(LABEL_NAMES))
        kwargs.setdefault("id2label", dict(enumerate(LABEL_NAMES)))
        kwargs.setdefault("label2id", {name: i for i, name in enumerate(LABEL_NAMES)})
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if hidden_size % num_attention_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range


class Embeddings(nn.Module):
    """What a token is (token embedding) plus where it is (learned position embedding)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.dropout(self.norm(self.tokens(input_ids) + self.positions(positions)))


def attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention: softmax(Q K^T / sqrt(d)) V.

    queries, keys, values: (batch, heads, tokens, d). key_mask: (batch, tokens), True
    for real tokens; padding keys get zero weight, so padding never changes a result.
    """
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    return weights @ values


class SelfAttention(nn.Module):
    """Multi-head self-attention: each head asks its own question of every other token."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        return x.view(batch, tokens, self.heads, width // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.split_heads(self.query(x)), self.split_heads(self.key(x)), self.split_heads(self.value(x))
        context = attention(q, k, v, key_mask)                      # (batch, heads, tokens, d_head)
        context = context.transpose(1, 2).reshape(x.shape)          # heads side by side again
        return self.dropout(self.output(context))


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear, applied to every token on its own."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.expand = nn.Linear(config.hidden_size, config.intermediate_size)
        self.contract = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.contract(F.gelu(self.expand(x))))


class EncoderBlock(nn.Module):
    """Attention then feed-forward, each wrapped in a residual connection and LayerNorm."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.attention_norm(x + self.attention(x, key_mask))
        x = self.feed_forward_norm(x + self.feed_forward(x))
        return x


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token embeddings of each review, ignoring padding."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class EncoderPreTrainedModel(PreTrainedModel):
    config_class = EncoderConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    _no_split_modules = ["EncoderBlock"]
    # forward() computes its own mean loss and ignores `num_items_in_batch`: tell the
    # Trainer, or it would skip dividing by gradient-accumulation steps and scale by
    # the number of processes under DDP.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class EncoderForStarRating(EncoderPreTrainedModel):
    """The whole model: embeddings, encoder blocks, masked mean pooling, Linear(d, 5)."""

    def __init__(self, config: EncoderConfig):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_hidden_layers))
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.tokens = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool()
        x = self.embeddings(input_ids)
        for block in self.blocks:
            x = block(x, mask)
        logits = self.classifier(self.dropout(masked_mean(x, mask)))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, EncoderConfig, exist_ok=True)
AutoModelForSequenceClassification.register(EncoderConfig, EncoderForStarRating, exist_ok=True)
