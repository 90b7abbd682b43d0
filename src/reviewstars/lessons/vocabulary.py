"""The tokens lesson on real reviews: how a sub-word tokenizer cuts words, which words
it keeps whole, and how its vocabulary grows against the words' (Heaps' law)."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..text import word_tokens


def subword_pieces(tokenizer, text: str, special_tokens: bool = True) -> list[dict]:
    """Each sub-word token with whether it continues a word (##) or is special ([CLS])."""
    ids = tokenizer(text, add_special_tokens=special_tokens)["input_ids"]
    special = set(tokenizer.all_special_ids)
    pieces = []
    for token_id, token in zip(ids, tokenizer.convert_ids_to_tokens(ids)):
        pieces.append({"token": token, "id": int(token_id), "special": token_id in special, "continuation": token.startswith("##")})
    return pieces


def word_splits(tokenizer, words: Sequence[str]) -> dict[str, list[str]]:
    """How the tokenizer cuts each word (no special tokens), in one batched call."""
    ids = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    return {word: tokenizer.convert_ids_to_tokens(piece_ids) for word, piece_ids in zip(words, ids)}


def frequent_words(texts: Iterable[str], top: int = 2000, lowercase: bool = False) -> list[tuple[str, int]]:
    from collections import Counter

    counts = Counter()
    for text in texts:
        counts.update(word_tokens(text, lowercase))
    return counts.most_common(top)


def explore_words(tokenizer, texts: Iterable[str], top: int = 2000, examples: int = 15) -> dict:
    """The lesson's exercises on the data's own frequent words.

    Which words stay whole and which are split; and pieces that several words share
    as their first part (a common stem) or their last part (a common ending).
    """
    from collections import defaultdict

    lowercase = bool(getattr(tokenizer, "do_lower_case", False)) or tokenizer("A", add_special_tokens=False)["input_ids"] == tokenizer("a", add_special_tokens=False)["input_ids"]
    counted = frequent_words(texts, top, lowercase)
    splits = word_splits(tokenizer, [w for w, _ in counted])
    whole = [w for w, _ in counted if len(splits[w]) == 1]
    split = [w for w, _ in counted if len(splits[w]) > 1]
    firsts, lasts = defaultdict(list), defaultdict(list)
    for word in split:
        firsts[splits[word][0]].append(word)
        lasts[splits[word][-1]].append(word)
    shared = lambda groups: sorted(  # noqa: E731
        ({"piece": p, "words": ws} for p, ws in groups.items() if len(ws) > 1), key=lambda g: (-len(g["words"]), g["piece"])
    )
    return {
        "words_considered": len(counted),
        "kept_whole": len(whole),
        "split": len(split),
        "whole_examples": whole[:examples],
        "split_examples": [{"word": w, "pieces": splits[w]} for w in split[:examples]],
        "shared_first_pieces": shared(firsts)[:examples],
        "shared_last_pieces": shared(lasts)[:examples],
    }


def log_grid(total: int, start: int = 10, per_decade: int = 4) -> list[int]:
    """Subset sizes 10, 18, 32, 56, 100, ... up to and including `total`."""
    sizes, exponent = [], np.log10(start)
    while True:
        size = int(round(10 ** exponent))
        if size >= total:
            break
        if not sizes or size > sizes[-1]:
            sizes.append(size)
        exponent += 1 / per_decade
    return sizes + [total]


#: A review longer than this is counted a part at a time: a 30 MB review tokenized whole
#: held 2.8 GB (a token's ids, offsets and words, as Python objects).
LONG_TEXT = 100_000


def whitespace_parts(text: str, size: int) -> Iterable[str]:
    """`text` in parts of about `size` characters, each cut at a whitespace: words and
    sub-words never cross one, so the parts hold the same tokens as the whole. (A run of
    `size` characters without one is cut where it is: the tokenizer calls such a word [UNK].)"""
    start = 0
    while start < len(text):
        end = start + size
        if end < len(text):
            cut = max(text.rfind(space, start, end) for space in " \n\t\r")
            end = cut if cut > start else end  # the space begins the next part (a byte-level BPE's "Ġword")
        yield text[start:end]
        start = end


def vocabulary_growth(tokenizer, texts: Sequence[str], grid: Sequence[int] | None = None, batch_size: int = 2000, progress=None) -> dict:
    """Distinct word tokens vs distinct sub-word tokens among the first n reviews.

    Words keep coming (names, typos, numbers: Heaps' law); a sub-word vocabulary is
    closed, so past some n it uses fewer distinct tokens than the words do.
    """
    texts = list(texts)
    grid = sorted(set(grid or log_grid(len(texts))))
    lowercase = bool(getattr(tokenizer, "do_lower_case", False))
    words, pieces = set(), set()
    result = {"reviews": [], "word_vocabulary": [], "subword_vocabulary": []}
    next_point = 0
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        encoded = tokenizer([text if len(text) <= LONG_TEXT else "" for text in batch], add_special_tokens=False, verbose=False)["input_ids"]
        for offset, (text, ids) in enumerate(zip(batch, encoded)):
            if len(text) <= LONG_TEXT:
                words.update(word_tokens(text, lowercase))
                pieces.update(ids)
            else:  # tokenized alone, a part at a time (it was left out of the batch call)
                for part in whitespace_parts(text, LONG_TEXT):
                    words.update(word_tokens(part, lowercase))
                    pieces.update(tokenizer(part, add_special_tokens=False, verbose=False)["input_ids"])
            seen = start + offset + 1
            while next_point < len(grid) and seen == grid[next_point]:
                result["reviews"].append(seen)
                result["word_vocabulary"].append(len(words))
                result["subword_vocabulary"].append(len(pieces))
                next_point += 1
        if progress is not None:
            progress(len(batch))
    crossover = next((n for n, w, s in zip(result["reviews"], result["word_vocabulary"], result["subword_vocabulary"]) if s < w), None)
    result["subword_smaller_from_reviews"] = crossover
    result["tokenizer_vocabulary"] = len(tokenizer)
    return result
