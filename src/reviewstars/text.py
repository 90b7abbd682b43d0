"""Text as the rest of the chain can take it."""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(text: str) -> str:
    """JSON may carry half a UTF-16 pair ("\\ud800"), which no UTF-8 writer and no Rust
    tokenizer accepts: it reads as U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)
