"""Database rows to remem records and back, for both stores.

Writers give times as fixed-width UTC text and dicts as JSON text (SQLite stores them so;
PostgreSQL casts them to timestamptz and jsonb). Readers accept either form.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from remem import clock
from remem.embedders.base import Vectors
from remem.stores.base import LLMCall
from remem.types import ApiKey, Episode, Event, Job, Link, Note, Scope

Row = Any  # sqlite3.Row or a psycopg dict row: both are read by column name


def scope_sql(scope: Scope, prefix: str, mark: str = "?") -> tuple[str, list[str]]:
    """A WHERE condition for the scope (`mark` is the driver's placeholder)."""
    clauses, params = [], []
    for column, value in (
        ("user_id", scope.user_id),
        ("agent_id", scope.agent_id),
        ("session_id", scope.session_id),
    ):
        if value is not None:
            clauses.append(f"{prefix}{column} = {mark}")
            params.append(value)
    clauses.append(f"{prefix}tenant = {mark}")
    params.append(scope.tenant)
    return " AND ".join(clauses), params


def scope_from_row(row: Row) -> Scope:
    return Scope(row["user_id"], row["agent_id"], row["session_id"], row["tenant"])


def time_text(value: Any) -> Any:
    return None if value is None else clock.to_text(value)


def parse_time(value: Any) -> Any:
    return None if value is None else read_time(value)


def read_time(value: Any) -> datetime:
    """A stored time: fixed-width UTC text (SQLite) or an aware datetime (PostgreSQL)."""
    return value.astimezone(UTC) if isinstance(value, datetime) else _time_of_text(value)


# The same notes come back search after search, and each carries up to 12 times (about
# half of reading a note, measured on LoCoMo); a datetime is immutable, so one may be shared.
_time_of_text = functools.lru_cache(maxsize=1 << 14)(clock.from_text)


def read_json(value: Any) -> Any:
    """A stored JSON value: text (SQLite) or already decoded (PostgreSQL jsonb)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def read_words(value: Any) -> tuple[str, ...]:
    """A stored JSON list of words (keywords, tags) as a tuple."""
    return _words_of_text(value) if isinstance(value, str) else tuple(read_json(value))


@functools.lru_cache(maxsize=1 << 12)
def _words_of_text(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))  # (a tuple is immutable: one may be shared)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def vector_blob(vector: Vectors) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def optional_blob(vectors: Vectors | None) -> bytes | None:
    return None if vectors is None else vector_blob(vectors)


def vectors_from_blob(blob: bytes | None, dimensions: int) -> Vectors | None:
    """Rows of float32 vectors stored one after another, or None."""
    if blob is None:
        return None
    return np.frombuffer(blob, dtype="<f4").reshape(-1, dimensions).astype(np.float32)


def best_of_notes(
    own: Mapping[str, float], sentences: Mapping[str, bytes], vector: Vectors
) -> dict[str, float]:
    """Each note's cosine with a unit vector (`own`), or its best sentence's if higher
    (`sentences`: note id -> its sentence vectors as a blob)."""
    best = dict(zip(sentences, best_sentences(list(sentences.values()), vector), strict=True))
    return {note_id: max(float(score), best.get(note_id, -1.0)) for note_id, score in own.items()}


def best_sentences(blobs: Sequence[bytes], vector: Vectors) -> list[float]:
    """For each note's sentence vectors (a blob each), its best cosine with a unit vector."""
    if not blobs:
        return []
    query = np.asarray(vector, dtype=np.float32)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, len(query))
    starts = np.cumsum([0] + [len(blob) // (4 * len(query)) for blob in blobs[:-1]])
    return [float(score) for score in np.maximum.reduceat(matrix @ query, starts)]


def episode_row(e: Episode) -> tuple[Any, ...]:
    return (
        e.id,
        e.scope.user_id,
        e.scope.agent_id,
        e.scope.session_id,
        e.scope.tenant,
        e.role,
        e.name,
        e.text,
        to_json(e.metadata),
        time_text(e.occurred_at),
        time_text(e.recorded_at),
        time_text(e.deleted_at),
    )


def episode_from_row(row: Row) -> Episode:
    return Episode(
        id=row["id"],
        scope=scope_from_row(row),
        text=row["text"],
        role=row["role"],
        name=row["name"],
        metadata=read_json(row["metadata"]),
        occurred_at=read_time(row["occurred_at"]),
        recorded_at=read_time(row["recorded_at"]),
        deleted_at=parse_time(row["deleted_at"]),
    )


def note_row(n: Note) -> tuple[Any, ...]:
    return (
        n.id,
        n.scope.user_id,
        n.scope.agent_id,
        n.scope.session_id,
        n.scope.tenant,
        n.text,
        to_json(n.metadata),
        to_json(list(n.keywords)),
        to_json(list(n.tags)),
        n.context,
        n.importance,
        time_text(n.occurred_at),
        time_text(n.created_at),
        time_text(n.updated_at),
        n.version,
        time_text(n.valid_from),
        time_text(n.valid_to),
        n.superseded_by,
        time_text(n.deleted_at),
        n.kind,
        n.thread,
        n.access_count,
        time_text(n.last_accessed_at),
        bool(n.pinned),
        time_text(n.expires_at),
        time_text(n.archived_at),
    )


def note_from_row(row: Row, episode_ids: tuple[str, ...]) -> Note:
    return Note(
        id=row["id"],
        scope=scope_from_row(row),
        text=row["text"],
        metadata=read_json(row["metadata"]),
        occurred_at=read_time(row["occurred_at"]),
        created_at=read_time(row["created_at"]),
        updated_at=read_time(row["updated_at"]),
        version=row["version"],
        episode_ids=episode_ids,
        keywords=read_words(row["keywords"]),
        tags=read_words(row["tags"]),
        context=row["context"],
        importance=row["importance"],
        valid_from=parse_time(row["valid_from"]),
        valid_to=parse_time(row["valid_to"]),
        superseded_by=row["superseded_by"],
        deleted_at=parse_time(row["deleted_at"]),
        kind=row["kind"],
        thread=row["thread"],
        access_count=int(row["access_count"]),
        last_accessed_at=parse_time(row["last_accessed_at"]),
        pinned=bool(row["pinned"]),
        expires_at=parse_time(row["expires_at"]),
        archived_at=parse_time(row["archived_at"]),
    )


def link_from_row(row: Row) -> Link:
    return Link(
        row["id"],
        row["source_id"],
        row["target_id"],
        row["relation"],
        row["weight"],
        row["reason"],
        read_time(row["created_at"]),
    )


def event_row(e: Event) -> tuple[Any, ...]:
    return (
        e.id,
        e.action,
        e.target_id,
        e.scope.user_id,
        e.scope.agent_id,
        e.scope.session_id,
        e.scope.tenant,
        time_text(e.at),
        e.actor,
        None if e.before is None else to_json(e.before),
        None if e.after is None else to_json(e.after),
    )


def event_from_row(row: Row) -> Event:
    return Event(
        id=row["id"],
        action=row["action"],
        target_id=row["target_id"],
        scope=scope_from_row(row),
        at=read_time(row["at"]),
        actor=row["actor"],
        before=None if row["before"] is None else read_json(row["before"]),
        after=None if row["after"] is None else read_json(row["after"]),
    )


def job_row(j: Job) -> tuple[Any, ...]:
    return (
        j.id,
        j.kind,
        j.target_id,
        j.status,
        j.attempts,
        j.last_error,
        time_text(j.created_at),
        time_text(j.updated_at),
        to_json(j.payload),
        j.lease,
        time_text(j.leased_until),
    )


def job_from_row(row: Row) -> Job:
    return Job(
        row["id"],
        row["kind"],
        row["target_id"],
        row["status"],
        row["attempts"],
        row["last_error"],
        read_time(row["created_at"]),
        read_time(row["updated_at"]),
        read_json(row["payload"]),
        row["lease"],
        parse_time(row["leased_until"]),
    )


def key_row(k: ApiKey) -> tuple[Any, ...]:
    return (k.id, k.tenant, k.name, k.digest, time_text(k.created_at), time_text(k.revoked_at))


def key_from_row(row: Row) -> ApiKey:
    return ApiKey(
        row["id"],
        row["tenant"],
        row["name"],
        row["digest"],
        read_time(row["created_at"]),
        parse_time(row["revoked_at"]),
    )


def link_row(ln: Link) -> tuple[Any, ...]:
    return (
        ln.id,
        ln.source_id,
        ln.target_id,
        ln.relation,
        ln.weight,
        ln.reason,
        time_text(ln.created_at),
    )


def llm_call_row(c: LLMCall) -> tuple[Any, ...]:
    return (
        c.job_id,
        c.step,
        c.model,
        c.calls,
        c.prompt_tokens,
        c.completion_tokens,
        c.latency_ms,
        c.ok,
        time_text(c.at),
    )
