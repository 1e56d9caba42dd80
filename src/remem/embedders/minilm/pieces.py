"""A note and its sentences from one pass over the sentences (issue #14 §2).

Embedding a note and then each of its sentences runs the model over every token twice.
Instead each sentence runs once, alone, which gives its exact vector, and the note's vector
is the mean of the token states of all its pieces: its sentences and the text between and
after them (a date context, the rest of a long note). That is the model's own mean pooling
over the note's tokens, without attention across sentence boundaries.

Measured on LoCoMo against embedding the note whole (R@5 0.7712, R@10 0.8508): this gives
R@5 0.7787, R@10 0.8478, at about the cost of embedding the note once. Pooling sentences
from the whole note's pass instead ("late chunking", free as well) blurred them into their
note: R@5 0.7623, R@10 0.8394.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from remem.embedders.base import Span, Vectors, normalise

# Per piece: summed token states (pieces x dimensions), or numbers of tokens.
Sums = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Piece:
    """A piece of text `text` run through the model alone: its span `span` (None: text
    between or after the spans, which counts only towards the text's own vector)."""

    text: int
    span: int | None
    content: str


def pieces_of(texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[Piece]:
    """Each text cut at its spans; a text without spans is one piece; blank gaps are left out."""
    pieces: list[Piece] = []
    for number, (text, ranges) in enumerate(zip(texts, spans, strict=True)):
        check_spans(text, ranges)
        if not ranges:
            pieces.append(Piece(number, None, text))
            continue
        position = 0
        for index, (begin, end) in enumerate(ranges):
            if text[position:begin].strip():
                pieces.append(Piece(number, None, text[position:begin]))
            pieces.append(Piece(number, index, text[begin:end]))
            position = end
        if text[position:].strip():
            pieces.append(Piece(number, None, text[position:]))
    return pieces


def compose(
    count: int, pieces: Sequence[Piece], sums: Sums, tokens: Sums
) -> tuple[Vectors, list[Vectors]]:
    """Each text's vector (the mean of all its pieces' token states) and its spans' vectors
    (each the mean of its own piece's token states), all of unit length; `sums` and
    `tokens` are each piece's summed token states and number of tokens."""
    owners = np.array([piece.text for piece in pieces], dtype=np.intp)
    totals = np.zeros((count, sums.shape[1]), dtype=np.float64)
    np.add.at(totals, owners, sums)
    text_tokens = np.bincount(owners, weights=tokens, minlength=count)
    vectors = normalise(totals / np.maximum(text_tokens, 1.0)[:, None], expected_rows=count)
    spanned = np.array([i for i, piece in enumerate(pieces) if piece.span is not None], np.intp)
    rows = normalise(sums[spanned] / tokens[spanned, None], expected_rows=len(spanned))
    # pieces come text by text, spans in order: cut the rows where each text's end
    ends = np.cumsum(np.bincount(owners[spanned], minlength=count))
    return vectors, np.split(rows, ends[:-1]) if count else []


def check_spans(text: str, spans: Sequence[Span]) -> None:
    """Spans are ordered, non-empty character ranges of the text that do not overlap."""
    previous_end = 0
    for begin, end in spans:
        if not previous_end <= begin < end <= len(text):
            raise ValueError(f"span {(begin, end)} is not inside a text of {len(text)} characters")
        previous_end = end
