"""How text becomes tokens: the lesson's word tokens, and sub-word tokenizers."""

from __future__ import annotations

import re

#: The lesson's (and scikit-learn's) word pattern: runs of two or more word characters.
WORD_PATTERN = r"(?u)\b\w\w+\b"
_WORD_RE = re.compile(WORD_PATTERN)


def word_tokens(text: str, lowercase: bool = False) -> list[str]:
    return _WORD_RE.findall(text.lower() if lowercase else text)
