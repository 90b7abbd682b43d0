"""The scratch kind: our encoder (`models/encoder.py`) from random weights, with a
WordPiece vocabulary learned from the training reviews."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings.fields import Settings, setting
from ..progress import status
from .base import Kind


@dataclass
class ScratchSettings(Settings):
    """Size of the from-scratch encoder and its tokenizer."""

    layers: int = setting(4, "Encoder blocks.", at_least=1)
    width: int = setting(256, "Embedding width (a multiple of --heads).", at_least=2)
    heads: int = setting(4, "Attention heads.", at_least=1)
    feed_forward: int | None = setting(None, "Feed-forward width (default 4 x --width).", at_least=1)
    dropout: float = setting(0.1, "Dropout after embeddings, attention, feed-forward and pooling.", at_least=0, at_most=0.9)
    vocab_size: int = setting(8000, "WordPiece vocabulary size.", at_least=50)
    tokenizer: str | None = setting(None, "Use this tokenizer (Hub id or folder) instead of learning WordPiece.")

    def __post_init__(self) -> None:
        super().__post_init__()
        from ..errors import ReviewstarsError

        if self.width % self.heads:
            raise ReviewstarsError(f"--width {self.width} must be a multiple of --heads {self.heads}")
        if self.feed_forward is None:
            self.feed_forward = 4 * self.width
        if self.tokenizer:
            from ..tokenization import check_tokenizer_name

            check_tokenizer_name(self.tokenizer)  # before the data is read

    @classmethod
    def as_given(cls, values: dict) -> dict:
        if values.get("width") is not None and values.get("feed_forward") == 4 * values["width"]:
            return {**values, "feed_forward": None}
        return values


def _learn_tokenizer(texts: list[str], settings: ScratchSettings):
    from ..tokenization import learned_wordpiece, load_tokenizer

    if settings.tokenizer:
        return load_tokenizer(settings.tokenizer)
    with status(f"learning a {settings.vocab_size:,}-piece WordPiece vocabulary from {len(texts):,} reviews"):
        return learned_wordpiece(texts, settings.vocab_size)


def _new_network(tokenizer, settings: ScratchSettings, training):
    from ..models.encoder import EncoderConfig, EncoderForStarRating

    config = EncoderConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=training.max_length,
        hidden_size=settings.width,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        intermediate_size=settings.feed_forward,
        dropout=settings.dropout,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    return EncoderForStarRating(config)


def _names_in(settings: ScratchSettings) -> tuple[str, ...]:
    return (settings.tokenizer,) if settings.tokenizer else ()


def _check_tokenizer(name: str) -> None:
    from ..tokenization import check_tokenizer_loads

    check_tokenizer_loads(name)


SCRATCH = Kind(
    name="scratch",
    summary="a transformer encoder written from scratch, trained from random weights",
    settings=ScratchSettings,
    learning_rate=5e-4,  # a small encoder from random weights wants a larger step than fine-tuning
    max_passes=10,  # it learns everything from this data: more passes than a fine-tuning, fewer than memorising it
    learn_tokenizer=_learn_tokenizer,
    new_network=_new_network,
    names_in=_names_in,
    check_name=_check_tokenizer,
)
