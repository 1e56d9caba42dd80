"""A cache for what the read path computes from a note's text, search after search."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
SHORT_TEXT = 2_000  # characters: a longer text is computed again each time
KEPT = 1 << 12  # texts kept per function


def per_short_text(function: Callable[[str], T]) -> Callable[[str], T]:
    """`function` of a text, kept for short texts: the same notes come back search after
    search, and their answers need not be computed again. Long texts (notes may hold up
    to 100k characters) are not kept, so the cache stays a few MB."""
    kept = functools.lru_cache(maxsize=KEPT)(function)

    @functools.wraps(function)
    def answer(text: str) -> T:
        return kept(text) if len(text) <= SHORT_TEXT else function(text)

    return answer
