"""`explain` in the terminal: the review with the words that raised its rating in green and
those that lowered it in red (bold: the strongest), then the strongest of each in words,
so that a terminal without colour (or a log) says the same."""

from __future__ import annotations

from typing import Sequence

from rich.console import Group
from rich.text import Text

from ..models.explanation import MOVED_AT_LEAST
from ..text import shown

#: A word is coloured when its effect is at least this share of the review's strongest...
COLOURED_FROM = 0.25
#: ... and bold from this share; effects under MOVED_AT_LEAST stars are no effect at all.
BOLD_FROM = 0.6


def coloured_review(explanation) -> Text:
    text = Text(shown(explanation.text))  # (one character for one: the words' offsets still hold)
    strongest = max((abs(w.stars_effect) for w in explanation.words), default=0.0)
    for word in explanation.words:
        size = abs(word.stars_effect)
        if size < MOVED_AT_LEAST or size < COLOURED_FROM * strongest:
            continue
        colour = "green" if word.stars_effect > 0 else "red"
        text.stylize(f"bold {colour}" if size >= BOLD_FROM * strongest else colour, word.start, word.end)
    return text


def strongest_line(explanation, top: int, raising: bool) -> Text:
    words = explanation.strongest(top, raising)
    line = Text("raised it: " if raising else "lowered it: ", style="dim")
    if not words:
        return line.append("no word", style="dim italic")
    for i, word in enumerate(words):
        if i:
            line.append(", ")
        line.append(shown(word.word), style="green" if raising else "red").append(f" {word.stars_effect:+.2f}")
    return line


def explanation_lines(explanation, top: int) -> Group:
    stars = "★" * explanation.stars + "☆" * (5 - explanation.stars)
    head = Text.assemble((stars, "bold"), f"  {explanation.stars} star{'s' if explanation.stars > 1 else ''}, "
                                          f"expected {explanation.expected_stars:.2f}")
    if not explanation.words:
        return Group(head, Text(shown(explanation.text)), Text("no words: nothing to explain", style="dim italic"), Text())
    parts = [head, coloured_review(explanation), strongest_line(explanation, top, True), strongest_line(explanation, top, False)]
    if explanation.words_not_rated:
        rated, left = len(explanation.words), explanation.words_not_rated
        parts.append(Text(f"{left:,} word{'s' if left > 1 else ''} after the first {rated:,} not rated (--max-words)", style="dim"))
    return Group(*parts, Text())


def explanations(items: Sequence, top: int) -> Group:
    """Every review explained, with the key to the effects once."""
    key = Text("a word's effect: the expected stars with it minus without it", style="dim")
    return Group(key, Text(), *(explanation_lines(item, top) for item in items))
