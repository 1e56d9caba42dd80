"""Embedding notes on the write path; a failure becomes a pending job, never a lost write."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from remem import clock, ids
from remem.embedders.base import Embedder, Vectors
from remem.errors import EmbedderError
from remem.types import Job

EMBED_JOB = "embed"
log = logging.getLogger("remem")


@dataclass
class EmbedOutcome:
    vectors: dict[str, Vectors] = field(default_factory=dict)
    failed_jobs: list[Job] = field(default_factory=list)


def embed_texts(embedder: Embedder, texts: Mapping[str, str]) -> EmbedOutcome:
    """Vectors for each note's text; on failure, one pending `embed` job per note instead.

    The text is embedded without the speaker's name: the name adds nothing to what a
    note means, and measured on LoCoMo it cost dense recall (R@5 0.729 -> 0.737 without).
    """
    note_ids = list(texts)
    if not note_ids:
        return EmbedOutcome()
    try:
        matrix = embedder.embed_batch([texts[note_id] for note_id in note_ids])
    except EmbedderError as error:
        log.warning("embedding failed, %d note(s) queued for retry: %s", len(note_ids), error)
        return EmbedOutcome(failed_jobs=[failed_job(note_id, str(error)) for note_id in note_ids])
    return EmbedOutcome(vectors=dict(zip(note_ids, matrix, strict=True)))


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
