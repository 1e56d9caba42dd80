"""Bounded pieces of a document's text that do not cut a sentence: paragraphs are kept
together up to the bound; a longer paragraph is cut between sentences, and only a single
sentence longer than the bound is cut (between words, when it has any)."""

from __future__ import annotations

import re
from collections.abc import Iterator

CHUNK_CHARS = 1500  # about 300 words: a passage a reader (and an embedder) takes in at once
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026\u3002\uff01\uff1f])[\"')\]]*\s+")


def chunk_text(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """`text` in pieces of at most `limit` characters (stripped, none empty)."""
    pieces: list[str] = []
    current, current_whole = "", False
    for unit, whole in _units(text, limit):
        joiner = "\n\n" if whole or current_whole else " "
        if current and len(current) + len(joiner) + len(unit) <= limit:
            current = f"{current}{joiner}{unit}"
        else:
            pieces += [current] if current else []
            current = unit
        current_whole = whole
    return [*pieces, current] if current else pieces


def _units(text: str, limit: int) -> Iterator[tuple[str, bool]]:
    """Whole paragraphs (True), or, for a paragraph over `limit`, its sentences (False),
    cut between words when a sentence is over `limit` itself."""
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            yield paragraph, True
            continue
        for sentence in split_sentences(paragraph):
            for piece in _cut(sentence, limit) if len(sentence) > limit else [sentence]:
                yield piece, False


def split_sentences(text: str) -> list[str]:
    """The sentences of a paragraph, stripped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _cut(sentence: str, limit: int) -> Iterator[str]:
    """A sentence longer than `limit` in runs of whole words (a word longer than `limit`
    is cut where the limit falls)."""
    run = ""
    for word in sentence.split():
        while len(word) > limit:
            if run:
                yield run
                run = ""
            yield word[:limit]
            word = word[limit:]
        if run and len(run) + 1 + len(word) > limit:
            yield run
            run = ""
        run = f"{run} {word}" if run else word
    if run:
        yield run
