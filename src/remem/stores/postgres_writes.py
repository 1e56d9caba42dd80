"""The writes of the PostgreSQL store: one `apply` batch, inside its transaction."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from remem.embedders.base import Vectors
from remem.stores.base import (
    PASSAGE_NOTES,
    RESTING_THOUGHTS,
    Changes,
    MetaChangedError,
    unsettled_thought,
)
from remem.stores.citus import owners_of
from remem.stores.rows import (
    episode_row,
    event_row,
    job_row,
    link_row,
    llm_call_row,
    note_row,
    optional_blob,
)
from remem.types import Note, Scope

# A note's row: a new vector replaces the old one and its sentences; none keeps both.
NOTE_UPSERT = (
    "INSERT INTO notes (owner, id, user_id, agent_id, session_id, tenant, text,"
    " metadata, keywords, tags, context, importance, occurred_at, created_at,"
    " updated_at, version, valid_from, valid_to, superseded_by, deleted_at, kind, thread,"
    " access_count, last_accessed_at, pinned, expires_at, archived_at,"
    " body, embedding, sentence_embeddings) VALUES (%s,%s,%s,%s,%s,%s,%s,%s::jsonb,"
    "%s::jsonb,%s::jsonb,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::vector,%s)"
    " ON CONFLICT (owner, id) DO UPDATE SET text = excluded.text,"
    " metadata = excluded.metadata, keywords = excluded.keywords, tags = excluded.tags,"
    " context = excluded.context, importance = excluded.importance,"
    " occurred_at = excluded.occurred_at, updated_at = excluded.updated_at,"
    " version = excluded.version, valid_from = excluded.valid_from,"
    " valid_to = excluded.valid_to, superseded_by = excluded.superseded_by,"
    " deleted_at = excluded.deleted_at, thread = excluded.thread, body = excluded.body,"
    " pinned = excluded.pinned, expires_at = excluded.expires_at,"
    " archived_at = excluded.archived_at,"  # access counts are bumped, never rewritten
    " embedding = coalesce(excluded.embedding, notes.embedding),"
    " sentence_embeddings = CASE WHEN excluded.embedding IS NULL"
    " THEN notes.sentence_embeddings ELSE excluded.sentence_embeddings END"
)


def owner_of(scope: Scope) -> str:
    """The shard key: a tenant and its user (else agent, else session)."""
    return f"{scope.tenant}:{scope.user_id or scope.agent_id or scope.session_id or ''}"


def check_thoughts(conn: psycopg.Connection[dict[str, Any]], changes: Changes) -> None:
    """No live thought rests on a note of `changes.evidence_changed` unless the batch writes
    it; asked of each owner's rows (a thought's links are its evidence's owner's)."""
    by_owner: dict[str, list[str]] = {}
    for note_id, scope in changes.evidence_changed.items():
        by_owner.setdefault(owner_of(scope), []).append(note_id)
    sql = RESTING_THOUGHTS.format(
        same_owner=" AND n.owner = l.owner", route="l.owner = %s AND ", ids="= ANY(%s)"
    )
    for owner, ids in by_owner.items():
        rows = conn.execute(sql, (owner, ids)).fetchall()
        unsettled_thought(changes, [(row["source_id"], row["target_id"]) for row in rows])


def vector_text(vector: Vectors) -> str:
    """pgvector's text form; 9 significant digits carry a float32 through unchanged."""
    return "[" + ",".join(f"{float(x):.9g}" for x in np.asarray(vector).ravel()) + "]"


def _body_of(note: Note, bodies: dict[str, str], existing: dict[str, Any]) -> str | None:
    """What full-text search indexes for a note: nothing once it is deleted; its stored
    body when this change does not touch what search reads."""
    if note.deleted_at is not None:
        return None
    body = bodies.get(note.id)
    if body is None and note.id in existing:
        body = existing[note.id]["body"]
    return body


# Advisory locks of meta rows a batch expects (`pg_advisory_xact_lock(META_LOCKS, hash)`):
# a row not written yet has nothing to lock FOR UPDATE. (Taken on the coordinator on Citus,
# through which every write goes.)
META_LOCKS = 0x52454D4D  # "REMM"


class Writer:
    """The statements of one `apply`, inside its transaction."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn

    def write(self, changes: Changes) -> None:
        conn = self.conn
        self._check_meta(changes.expect_meta)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO episodes (owner, id, user_id, agent_id, session_id, tenant, role,"
                " name, text, metadata, occurred_at, recorded_at, deleted_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s,%s,%s)"
                " ON CONFLICT (owner, id) DO UPDATE SET text = excluded.text,"
                " metadata = excluded.metadata, deleted_at = excluded.deleted_at",
                [(owner_of(e.scope), *episode_row(e)) for e in changes.episodes],
            )
        self._notes(changes.notes, changes.bodies, changes.vectors, changes.sentence_vectors)
        written = {note.id for note in changes.notes}
        self._vectors(
            {i: v for i, v in changes.vectors.items() if i not in written}, changes.sentence_vectors
        )
        owners = self._owners(changes, [ln.source_id for ln in changes.links], ("notes",))
        with conn.cursor() as cursor:
            cursor.executemany(  # a link lives with the note it starts from
                "INSERT INTO links VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                [(owners.get(ln.source_id), *link_row(ln)) for ln in changes.links],
            )
            cursor.executemany(
                "INSERT INTO events (owner, id, action, target_id, user_id, agent_id, session_id,"
                " tenant, at, actor, before, after)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s::jsonb)"
                " ON CONFLICT DO NOTHING",
                [(owner_of(e.scope), *event_row(e)) for e in changes.events],
            )
            targets = self._owners(
                changes, [j.target_id for j in changes.jobs], ("notes", "episodes")
            )
            cursor.executemany(  # a job lives with its target episode or note
                "INSERT INTO jobs (owner, id, kind, target_id, status, attempts, last_error,"
                " created_at, updated_at, payload, lease, leased_until)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s,%s)"
                " ON CONFLICT (owner, id) DO UPDATE SET status = excluded.status,"
                " attempts = excluded.attempts, last_error = excluded.last_error,"
                " updated_at = excluded.updated_at, payload = excluded.payload,"
                " lease = excluded.lease, leased_until = excluded.leased_until",
                [(targets.get(j.target_id, ""), *job_row(j)) for j in changes.jobs],
            )
            cursor.executemany(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value",
                list(changes.meta.items()),
            )
            cursor.executemany(
                "INSERT INTO llm_calls (job_id, step, model, calls, prompt_tokens,"
                " completion_tokens, latency_ms, ok, at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [llm_call_row(c) for c in changes.llm_calls],
            )

    def _check_meta(self, expected: dict[str, str | None]) -> None:
        """Every meta row the batch was computed from still holds what it read, and keeps
        it until this transaction ends (locked in key order)."""
        for key in sorted(expected):
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (META_LOCKS, key))
            # (FOR UPDATE: a writer that took no advisory lock may hold the row)
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = %s FOR UPDATE", (key,)
            ).fetchone()
            if (row["value"] if row else None) != expected[key]:
                raise MetaChangedError(key)

    def _notes(
        self,
        notes: list[Note],
        bodies: dict[str, str],
        vectors: dict[str, Vectors],
        sentences: dict[str, Vectors],
    ) -> None:
        """Insert or update notes in a few batched statements (psycopg pipelines them)."""
        if not notes:
            return
        existing = {
            row["id"]: row
            for row in self.conn.execute(
                "SELECT id, owner, passage, body FROM notes WHERE owner = ANY(%s) AND id = ANY(%s)",
                (list({owner_of(n.scope) for n in notes}), [n.id for n in notes]),
            ).fetchall()
        }
        stored_bodies = [_body_of(note, bodies, existing) for note in notes]
        self._upsert_notes(notes, stored_bodies, vectors, sentences)
        for note, body in zip(notes, stored_bodies, strict=True):
            before = existing.get(note.id)
            if before is None:
                if body is not None and note.kind == "turn" and note.thread is not None:
                    self._join_thread(note, body)
            elif before["passage"] is not None:
                rebuild_passage(self.conn, before["owner"], before["passage"])

    def _upsert_notes(
        self,
        notes: list[Note],
        bodies: list[str | None],
        vectors: dict[str, Vectors],
        sentences: dict[str, Vectors],
    ) -> None:
        """The notes' rows (with their bodies and vectors) and the episodes they came from."""
        rows = [
            (
                owner_of(note.scope),
                *note_row(note),
                body,
                None if (vector := vectors.get(note.id)) is None else vector_text(vector),
                optional_blob(sentences.get(note.id)),
            )
            for note, body in zip(notes, bodies, strict=True)
        ]
        with self.conn.cursor() as cursor:
            cursor.executemany(NOTE_UPSERT, rows)
            self.conn.execute(
                "DELETE FROM note_sources WHERE owner = ANY(%s) AND note_id = ANY(%s)",
                (list({owner_of(n.scope) for n in notes}), [n.id for n in notes]),
            )
            cursor.executemany(
                "INSERT INTO note_sources VALUES (%s, %s, %s, %s)",
                [
                    (owner_of(note.scope), note.id, episode_id, rank)
                    for note in notes
                    for rank, episode_id in enumerate(note.episode_ids)
                ],
            )

    def _join_thread(self, note: Note, body: str) -> None:
        """Give a new turn the turn before it in its thread as context, and add it to its
        thread's passage (a passage's `session_id` holds the thread)."""
        scope = note.scope
        owner = (
            "tenant = %s AND user_id IS NOT DISTINCT FROM %s AND agent_id IS NOT DISTINCT FROM %s"
        )
        same_session = f"{owner} AND session_id = %s"
        keys = (scope.tenant, scope.user_id, scope.agent_id, note.thread)
        self.conn.execute(
            "UPDATE notes SET previous_body = (SELECT p.body FROM notes p WHERE"
            f" {owner} AND p.thread = %s AND p.kind = 'turn' AND p.id != %s"
            " AND p.deleted_at IS NULL AND p.seq < notes.seq AND p.owner = notes.owner"
            " ORDER BY p.seq DESC LIMIT 1) WHERE owner = %s AND id = %s",
            (*keys, note.id, owner_of(scope), note.id),
        )
        latest = self.conn.execute(
            f"SELECT pk, notes FROM passages WHERE owner = %s AND {same_session}"
            " ORDER BY pk DESC LIMIT 1",
            (owner_of(scope), *keys),
        ).fetchone()
        if latest is None or latest["notes"] >= PASSAGE_NOTES:
            latest = self.conn.execute(
                "INSERT INTO passages (owner, tenant, user_id, agent_id, session_id, notes)"
                " VALUES (%s,%s,%s,%s,%s,0) RETURNING pk, notes",
                (owner_of(scope), *keys),
            ).fetchone()
        assert latest is not None
        self.conn.execute(
            "UPDATE passages SET notes = notes + 1,"
            " body = CASE WHEN body = '' THEN %s ELSE body || E'\\n' || %s END"
            " WHERE owner = %s AND pk = %s",
            (body, body, owner_of(scope), latest["pk"]),
        )
        self.conn.execute(
            "UPDATE notes SET passage = %s WHERE owner = %s AND id = %s",
            (latest["pk"], owner_of(scope), note.id),
        )

    def _vectors(self, vectors: dict[str, Vectors], sentences: dict[str, Vectors]) -> None:
        """New vectors of notes this batch does not otherwise write (embedding retries)."""
        owners = owners_of(self.conn, "notes", list(vectors))
        with self.conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE notes SET embedding = %s::vector, sentence_embeddings = %s"
                " WHERE owner = %s AND id = %s",
                [
                    (vector_text(v), optional_blob(sentences.get(note_id)), owner, note_id)
                    for note_id, v in vectors.items()
                    if (owner := owners.get(note_id)) is not None
                ],
            )

    def _owners(self, changes: Changes, ids: list[str], tables: tuple[str, ...]) -> dict[str, str]:
        """The owner of each id: from this batch's episodes and notes, else from `tables`
        (a later table's answer wins)."""
        known = {e.id: owner_of(e.scope) for e in changes.episodes}
        known |= {n.id: owner_of(n.scope) for n in changes.notes}
        missing = [i for i in ids if i not in known]
        for table in tables:
            known |= owners_of(self.conn, table, missing)
        return known


def rebuild_passage(conn: psycopg.Connection[dict[str, Any]], owner: str, passage: int) -> None:
    """Re-derive a passage's text from its live notes, after one changed or went (a
    passage and its notes have one owner: the statement goes to one shard)."""
    conn.execute(
        "UPDATE passages SET body = coalesce((SELECT string_agg(body, E'\\n' ORDER BY seq)"
        " FROM notes WHERE owner = %s AND passage = %s AND deleted_at IS NULL), '')"
        " WHERE owner = %s AND pk = %s",
        (owner, passage, owner, passage),
    )
