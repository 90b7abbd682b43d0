"""Text as the rest of the chain can take it: what a model reads of a review, and the lesson's word tokens."""

from __future__ import annotations

import re
import unicodedata

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Characters that are in a word without being seen: a soft hyphen, the zero-width space,
#: (non-)joiners, the word joiner, a byte-order mark. Left in, "gr\u200beat" is not "great".
INVISIBLE = "[\u00ad\u200b\u200c\u200d\u2060\ufeff]"
_INVISIBLE = re.compile(INVISIBLE)
#: A text longer than this is read as its first and last halves of it: a 60 MB "review" in a
#: file made `predict` hold 1.8 GB while tokenizing it, for a model that reads 256 tokens
#: from its two ends (a few thousand characters). The server refuses texts over 20,000.
MAX_TEXT_CHARS = 100_000


#: Control characters as their visible pictures (U+2400...), one for one so offsets still hold:
#: a review printed raw could set the terminal's title or clear it (ESC sequences). The
#: direction controls (U+202E...) have no picture: shown as U+FFFD, they cannot reorder the
#: words printed after them ("Trojan Source").
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_PICTURES = {**{code: 0x2400 + code for code in range(32) if chr(code) not in "\t\n"}, 0x7F: 0x2421,
             **{code: 0xFFFD for code in range(0x80, 0xA0)}, **{ord(control): 0xFFFD for control in BIDI_CONTROLS}}


def shown(text: str) -> str:
    """`text` safe to print on a terminal: every control character but tab and newline as its
    picture, a direction control as U+FFFD."""
    return text.translate(_PICTURES)


def with_article(word: str) -> str:
    """"an ensemble", "an ONNX", "a linear": a kind's name in a sentence."""
    return f"{'an' if word[:1].lower() in 'aeio' else 'a'} {word}"


def without_lone_surrogates(text: str) -> str:
    """JSON may carry half a UTF-16 pair ("\\ud800"), which no UTF-8 writer and no Rust
    tokenizer accepts: it reads as U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def readable(text: str) -> str:
    """The text every model reads, in training and in prediction alike: Unicode in one form
    (NFKC: fullwidth "ｇｏｏｄ" is "good", a ligature its letters, e + a combining accent
    the accented letter), invisible characters removed, half a UTF-16 pair replaced, and
    an overlong text cut to its first and last `MAX_TEXT_CHARS / 2` characters (a model
    keeps the head and the tail of a long review)."""
    text = _ends(text)
    if text.isascii():
        return text
    # cut again after NFKC, which lengthens some characters 18 times (U+FDFA)
    return _ends(unicodedata.normalize("NFKC", _INVISIBLE.sub("", without_lone_surrogates(text))))


def _ends(text: str) -> str:
    """`text`, or its first and last `MAX_TEXT_CHARS / 2` characters when it is longer."""
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS // 2] + "\n" + text[-(MAX_TEXT_CHARS // 2):]


def read_length(text: str) -> int:
    """How many characters a model reads of `text` before any cut: its length in NFKC, which
    turns one "ﷺ" into 18 (a server's limit on characters bounds the model's work by this)."""
    return len(text) if text.isascii() else len(unicodedata.normalize("NFKC", text))


#: The lesson's (and scikit-learn's) word pattern: runs of two or more word characters.
WORD_PATTERN = r"(?u)\b\w\w+\b"
_WORD_RE = re.compile(WORD_PATTERN)


def word_tokens(text: str, lowercase: bool = False) -> list[str]:
    return _WORD_RE.findall(text.lower() if lowercase else text)


def folded(text: str) -> str:
    """A review as its words read: Unicode's compatibility form, case folded, runs of white
    space as one space. Two reviews that differ only so are one review (an upper-cased copy of
    a training review in the scored split read as new: 93% right on those against 47%)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_hashes(texts, fold: bool = True):
    """An 8-byte BLAKE2b hash of each text (uint64), of its `folded` form unless `fold` is off
    (how records written before folding were hashed): how a review is recognised as one seen
    before (trained on, held out) without keeping the review."""
    import hashlib

    import numpy as np

    form = folded if fold else (lambda text: text)
    return np.fromiter((int.from_bytes(hashlib.blake2b(form(text).encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
                        for text in texts), dtype=np.uint64, count=len(texts))
