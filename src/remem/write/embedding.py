"""Embedding notes on the write path; a failure becomes a pending job, never a lost write."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from remem import clock, ids
from remem.embedders.base import Embedder, Span, Vectors
from remem.errors import EmbedderError
from remem.types import Job, Note
from remem.write.ingest import embedding_text

EMBED_JOB = "embed"
# A turn often says several things, and one vector of a small model blurs them; search also
# scores a note by its best sentence. Sentences past the first MAX_SENTENCES of a long note
# are left to the note's own vector, so a pasted document costs a bounded number of vectors.
# (With the bundled model the sentences cost no second pass: see embedders/minilm/pieces.)
MAX_SENTENCES = 16
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
log = logging.getLogger("remem")


@dataclass
class NoteVectors:
    """What the embedder made of some notes: a vector each, and sentence vectors."""

    vectors: dict[str, Vectors] = field(default_factory=dict)
    sentence_vectors: dict[str, Vectors] = field(default_factory=dict)


@dataclass
class EmbedOutcome(NoteVectors):
    failed_jobs: list[Job] = field(default_factory=list)


def sentence_spans(text: str) -> list[Span]:
    """Where the sentences of a note's text are (split after . ! ? and at line breaks,
    surrounding spaces left out), if it has two or more."""
    spans: list[Span] = []
    start = 0
    for match in [*_SENTENCE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if piece.strip():
            begin = start + len(piece) - len(piece.lstrip())
            spans.append((begin, begin + len(piece.strip())))
        start = match.end() if match else len(text)
    spans = spans[:MAX_SENTENCES]
    return spans if len(spans) > 1 else []


def sentences_of(text: str) -> list[str]:
    """The sentences of a note's text, if two or more."""
    return [text[begin:end] for begin, end in sentence_spans(text)]


def embed_notes(embedder: Embedder, notes: Sequence[Note]) -> NoteVectors:
    """Vectors of each note's text and of its sentences, in one call; raises EmbedderError.

    The text is embedded without the speaker's name: the name adds nothing to what a
    note means, and measured on LoCoMo it cost dense recall (R@5 0.729 -> 0.737 without).
    The sentences are spans of the embedded text (it starts with the note's text), so an
    embedder may pool them from the note's own forward pass.
    """
    if not notes:
        return NoteVectors()
    spans = [sentence_spans(note.text) for note in notes]
    matrix, per_note = embedder.embed_with_spans([embedding_text(note) for note in notes], spans)
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.shape[0] != len(notes) or len(per_note) != len(notes):
        raise EmbedderError(f"embedder returned {matrix.shape[0]} vectors for {len(notes)} notes")
    vectors = dict(zip([note.id for note in notes], matrix, strict=True))
    sentence_vectors = {
        note.id: np.asarray(rows, dtype=np.float32)
        for note, rows, ranges in zip(notes, per_note, spans, strict=True)
        if ranges
    }
    return NoteVectors(vectors, sentence_vectors)


def embed_or_queue(embedder: Embedder, notes: Sequence[Note]) -> EmbedOutcome:
    """`embed_notes`; on failure, one pending `embed` job per note instead."""
    try:
        made = embed_notes(embedder, notes)
    except EmbedderError as error:
        log.warning("embedding failed, %d note(s) queued for retry: %s", len(notes), error)
        return EmbedOutcome(failed_jobs=[failed_job(note.id, str(error)) for note in notes])
    return EmbedOutcome(made.vectors, made.sentence_vectors)


def failed_job(note_id: str, error: str, previous: Job | None = None) -> Job:
    moment = clock.now()
    return Job(
        id=previous.id if previous else ids.new_id(ids.JOB),
        kind=EMBED_JOB,
        target_id=note_id,
        status="pending",
        attempts=(previous.attempts if previous else 0) + 1,
        last_error=error,
        created_at=previous.created_at if previous else moment,
        updated_at=moment,
    )


def finished(job: Job) -> Job:
    return Job(
        job.id, job.kind, job.target_id, "done", job.attempts + 1, None, job.created_at, clock.now()
    )
