"""The `Store` protocol on PostgreSQL: pgvector (HNSW, cosine) and full-text search.

    store = PostgresStore("postgresql://user@host/db")   # or REMEM_DB=postgresql://...

Connections come from a pool; every `apply` is one transaction. Full-text ranking uses
`ts_rank` over English-stemmed tsvectors (BM25 in the SQLite store): the two stores agree
on what matches, not on exact scores. Vector search uses an HNSW index once the memory's
embedding size is known, and scans exactly when the scope is small enough that a filtered
index scan could come back short.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

import numpy as np
import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from remem.embedders.base import Vectors
from remem.errors import StoreError
from remem.stores.base import (
    Changes,
    Dump,
    LeaseLostError,
    NoteFacts,
    ScoredIds,
    TextMatches,
)
from remem.stores.postgres_schema import LOCK_KEY, migrate
from remem.stores.rows import (
    COUNT_QUERIES,
    JOB_COUNTS,
    episode_from_row,
    episode_row,
    event_from_row,
    event_row,
    job_from_row,
    job_row,
    key_from_row,
    key_row,
    link_from_row,
    note_from_row,
    note_row,
    read_time,
    scope_sql,
)
from remem.types import ApiKey, Episode, Event, Job, Note, Scope

PASSAGE_NOTES = 64  # as in the SQLite store
WRITE_ATTEMPTS = 5  # a transaction chosen as a deadlock victim is run again
FETCH_CHUNK = 1000
# A scope with at most this many notes is searched exactly: a filtered HNSW scan stops
# after a bounded number of index tuples and could return fewer than `limit`.
EXACT_SCAN_LIMIT = 20_000
HNSW_EF_SEARCH = 100  # candidates per HNSW search: recall@10 > 0.95 at 1M in our runs


def owner_of(scope: Scope) -> str:
    """The shard key: a tenant and its user (else agent, else session)."""
    return f"{scope.tenant}:{scope.user_id or scope.agent_id or scope.session_id or ''}"


class PostgresStore:
    """The `Store` protocol on a PostgreSQL database with the pgvector extension."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.path = _redacted(url)
        try:
            # one direct connection first: an unreachable server fails now, with its reason
            with psycopg.connect(url, connect_timeout=10, row_factory=dict_row) as conn:
                self.schema_version = migrate(conn)
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                kwargs={"row_factory": dict_row, "autocommit": True},
                open=True,
                timeout=30,
            )
        except (psycopg.Error, RuntimeError) as error:
            raise StoreError(f"cannot open memory database {self.path}: {error}") from error
        self._dimensions: int | None = None

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with self._pool.connection() as conn:
                yield cast(psycopg.Connection[dict[str, Any]], conn)
        except psycopg.Error as error:
            raise StoreError(f"database {self.path} failed: {error}") from error

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return conn.execute(sql, params).fetchall()

    # -- writes ----------------------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        if changes.vectors and self._embedding_size() is None:
            self._prepare_vectors(len(next(iter(changes.vectors.values()))))
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    self._write(cast(psycopg.Connection[dict[str, Any]], conn), changes)
                return
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt + 1 == WRITE_ATTEMPTS:
                    raise StoreError(f"write to {self.path} kept deadlocking") from None
                time.sleep(0.01 * 2**attempt)  # the other transaction finishes meanwhile
            except psycopg.Error as error:
                raise StoreError(f"write to {self.path} failed: {error}") from error

    def _write(self, conn: psycopg.Connection[dict[str, Any]], changes: Changes) -> None:
        if changes.lease is not None:
            row = conn.execute(
                "SELECT status, lease FROM jobs WHERE id = %s FOR UPDATE", (changes.lease[0],)
            ).fetchone()
            if row is None or (row["status"], row["lease"]) != ("pending", changes.lease[1]):
                raise LeaseLostError(f"job {changes.lease[0]} is no longer leased to this one")
        _Writer(conn).write(changes)

    def _prepare_vectors(self, size: int) -> None:
        """Record the embedding size and build its HNSW index, once, before any vector."""
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute(
                "INSERT INTO meta VALUES ('dimensions', %s) ON CONFLICT DO NOTHING", (str(size),)
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS notes_embedding ON notes USING hnsw"
                f" ((embedding::vector({size})) vector_cosine_ops)"
            )
        self._dimensions = None  # read back: another process may have set it first

    def claim_job(self, token: str, until: datetime, job_id: str | None = None) -> Job | None:
        which, params = ("AND id = %s", [job_id]) if job_id else ("", [])
        rows = self._rows(
            "UPDATE jobs SET lease = %s, leased_until = %s WHERE (owner, id) = ("
            " SELECT owner, id FROM jobs WHERE status = 'pending' AND kind != 'embed'"
            f" AND (leased_until IS NULL OR leased_until < now()) {which}"
            " ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
            [token, until, *params],
        )
        return job_from_row(rows[0]) if rows else None

    def save_key(self, key: ApiKey) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO api_keys VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (id) DO UPDATE"
                " SET name = excluded.name, revoked_at = excluded.revoked_at",
                key_row(key),
            )

    # -- reads -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = %s", (key,))
        return rows[0]["value"] if rows else None

    def get_episodes(self, ids: Sequence[str]) -> dict[str, Episode]:
        rows = self._rows("SELECT * FROM episodes WHERE id = ANY(%s)", (list(ids),))
        return {row["id"]: episode_from_row(row) for row in rows}

    def get_notes(self, ids: Sequence[str]) -> dict[str, Note]:
        rows = self._rows("SELECT * FROM notes WHERE id = ANY(%s)", (list(ids),))
        return {note.id: note for note in self._notes(rows)}

    def list_notes(
        self, scope: Scope, limit: int, cursor: str | None
    ) -> tuple[list[Note], str | None]:
        where, params = scope_sql(scope, "", "%s")
        rows = self._rows(
            f"SELECT * FROM notes WHERE deleted_at IS NULL AND {where} AND seq > %s"
            " ORDER BY seq LIMIT %s",
            (*params, int(cursor or 0), limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return self._notes(rows), (str(rows[-1]["seq"]) if more else None)

    def live_ids(self, scope: Scope) -> tuple[list[str], list[str]]:
        where, params = scope_sql(scope, "", "%s")
        episodes = self._rows(
            f"SELECT id FROM episodes WHERE deleted_at IS NULL AND {where}", params
        )
        notes = self._rows(f"SELECT id FROM notes WHERE deleted_at IS NULL AND {where}", params)
        return [r["id"] for r in episodes], [r["id"] for r in notes]

    def notes_of_episodes(self, episode_ids: Sequence[str]) -> list[Note]:
        rows = self._rows(
            "SELECT * FROM notes WHERE deleted_at IS NULL AND id IN"
            " (SELECT note_id FROM note_sources WHERE episode_id = ANY(%s))",
            (list(episode_ids),),
        )
        return self._notes(rows)

    def events(self, target_id: str) -> list[Event]:
        rows = self._rows("SELECT * FROM events WHERE target_id = %s ORDER BY seq", (target_id,))
        return [event_from_row(row) for row in rows]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for table in ("episodes", "notes", "links", "events", "jobs"):
            rows = self._rows(f"SELECT id FROM {table} WHERE id = ANY(%s)", (list(ids),))
            found.update(row["id"] for row in rows)
        return found

    def jobs(self, status: str | None = None) -> list[Job]:
        if status is None:
            rows = self._rows("SELECT * FROM jobs ORDER BY created_at, id")
        else:
            rows = self._rows(
                "SELECT * FROM jobs WHERE status = %s ORDER BY created_at, id", (status,)
            )
        return [job_from_row(row) for row in rows]

    def term_counts(self, terms: Sequence[str], tenant: str) -> tuple[int, dict[str, int]]:
        total = self._rows(
            "SELECT count(*) AS n FROM notes WHERE deleted_at IS NULL AND tenant = %s", (tenant,)
        )[0]["n"]
        counts = {}
        for term in dict.fromkeys(terms):
            rows = self._rows(
                "SELECT count(*) AS n FROM notes WHERE tenant = %s"
                " AND body_tsv @@ plainto_tsquery('english', %s)",
                (tenant, term),
            )
            counts[term] = int(rows[0]["n"])
        return int(total), counts

    def llm_totals(self) -> list[tuple[str, int, int, int, float]]:
        rows = self._rows(
            "SELECT step, sum(calls) AS c, sum(prompt_tokens) AS p, sum(completion_tokens) AS o,"
            " sum(latency_ms) AS ms FROM llm_calls GROUP BY step ORDER BY min(pk)"
        )
        return [(r["step"], int(r["c"]), int(r["p"]), int(r["o"]), float(r["ms"])) for r in rows]

    def counts(self) -> dict[str, int]:
        counts = {
            name: int(next(iter(self._rows(sql)[0].values())))  # one unnamed column
            for name, sql in COUNT_QUERIES.items()
        }
        for row in self._rows(JOB_COUNTS):
            counts[f"jobs {row['status']}"] = int(row["count"])
        return counts

    def recent_episodes(self, scope: Scope, limit: int) -> list[Episode]:
        where, params = scope_sql(scope, "", "%s")
        rows = self._rows(
            f"SELECT * FROM episodes WHERE deleted_at IS NULL AND {where}"
            " ORDER BY occurred_at DESC, seq DESC LIMIT %s",
            (*params, limit),
        )
        return [episode_from_row(row) for row in rows]

    def find_key(self, digest: str) -> ApiKey | None:
        rows = self._rows("SELECT * FROM api_keys WHERE digest = %s", (digest,))
        return key_from_row(rows[0]) if rows else None

    def list_keys(self) -> list[ApiKey]:
        return [
            key_from_row(r) for r in self._rows("SELECT * FROM api_keys ORDER BY created_at, id")
        ]

    # -- retrieval -------------------------------------------------------------------------

    def search_text(self, terms: Sequence[str], scope: Scope, limit: int) -> TextMatches:
        query = _or_query(terms)
        if not query:
            return TextMatches([], [])
        where, params = scope_sql(scope, "", "%s")
        rows = self._rows(
            "SELECT id, ts_rank(context_tsv, q) AS in_context, ts_rank(body_tsv, q) AS own"
            f" FROM notes, to_tsquery('english', %s) q WHERE context_tsv @@ q AND {where}"
            " AND deleted_at IS NULL ORDER BY in_context DESC, seq LIMIT %s",
            (query, *params, limit),
        )
        own = sorted(
            ((r["id"], float(r["own"])) for r in rows if r["own"] > 0), key=lambda item: -item[1]
        )
        return TextMatches([(r["id"], float(r["in_context"])) for r in rows], own)

    def search_passages(
        self, terms: Sequence[str], scope: Scope, limit: int
    ) -> list[tuple[int, float]]:
        query = _or_query(terms)
        if not query:
            return []
        where, params = scope_sql(scope, "", "%s")
        rows = self._rows(
            "SELECT pk, ts_rank(tsv, q) AS score FROM passages, to_tsquery('english', %s) q"
            f" WHERE tsv @@ q AND {where} ORDER BY score DESC, pk LIMIT %s",
            (query, *params, limit),
        )
        return [(int(r["pk"]), float(r["score"])) for r in rows]

    def speakers_named(self, words: Sequence[str], scope: Scope) -> list[str]:
        words = list(dict.fromkeys(word.lower() for word in words))
        if not words:
            return []
        where, params = scope_sql(scope, "e.", "%s")
        rows = self._rows(
            "SELECT w FROM unnest(%s::text[]) AS w WHERE EXISTS (SELECT 1 FROM episodes e"
            f" WHERE lower(e.name) = w AND e.deleted_at IS NULL AND {where})",
            (words, *params),
        )
        return [row["w"] for row in rows]

    def describe(self, ids: Sequence[str]) -> dict[str, NoteFacts]:
        rows = self._rows(
            "SELECT n.id, n.passage, n.occurred_at, n.text, e.name,"
            " CASE WHEN n.session_id IS NOT NULL AND n.kind = 'turn' THEN (SELECT p.id FROM notes p"
            "  WHERE p.tenant = n.tenant AND p.session_id = n.session_id"
            "  AND p.user_id IS NOT DISTINCT FROM n.user_id"
            "  AND p.agent_id IS NOT DISTINCT FROM n.agent_id AND p.seq < n.seq"
            "  AND p.deleted_at IS NULL AND p.kind = 'turn' ORDER BY p.seq DESC LIMIT 1) END"
            "  AS previous,"
            " CASE WHEN n.session_id IS NOT NULL AND n.kind = 'turn' THEN (SELECT p.id FROM notes p"
            "  WHERE p.tenant = n.tenant AND p.session_id = n.session_id"
            "  AND p.user_id IS NOT DISTINCT FROM n.user_id"
            "  AND p.agent_id IS NOT DISTINCT FROM n.agent_id AND p.seq > n.seq"
            "  AND p.deleted_at IS NULL AND p.kind = 'turn' ORDER BY p.seq LIMIT 1) END"
            "  AS following"
            " FROM notes n LEFT JOIN note_sources s ON s.note_id = n.id AND s.rank = 0"
            " LEFT JOIN episodes e ON e.id = s.episode_id"
            " WHERE n.deleted_at IS NULL AND n.id = ANY(%s)",
            (list(ids),),
        )
        return {
            r["id"]: NoteFacts(
                id=r["id"],
                text=r["text"],
                speaker=r["name"],
                occurred_at=read_time(r["occurred_at"]),
                passage=r["passage"],
                previous=r["previous"],
                following=r["following"],
            )
            for r in rows
        }

    def search_vector(self, vector: Vectors, scope: Scope, limit: int) -> ScoredIds:
        dimensions = self._embedding_size()
        if dimensions is None or limit <= 0:
            return []
        where, params = scope_sql(scope, "", "%s")
        live = f"{where} AND deleted_at IS NULL AND embedding IS NOT NULL"
        literal = _vector_text(vector)
        with self._conn() as conn, conn.transaction():
            small = conn.execute(
                f"SELECT count(*) AS n FROM (SELECT 1 FROM notes WHERE {live} LIMIT %s) s",
                (*params, EXACT_SCAN_LIMIT + 1),
            ).fetchone()
            if small is not None and small["n"] <= EXACT_SCAN_LIMIT:
                # exact: the cast differs from the index expression, so the index is not used
                rows = conn.execute(
                    f"SELECT id, 1 - (embedding <=> %s::vector) AS score FROM notes WHERE {live}"
                    " ORDER BY embedding <=> %s::vector LIMIT %s",
                    (literal, *params, literal, limit),
                ).fetchall()
            else:
                conn.execute(f"SET LOCAL hnsw.ef_search = {max(HNSW_EF_SEARCH, limit)}")
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                cast = f"vector({dimensions})"
                rows = conn.execute(
                    f"SELECT id, 1 - (embedding::{cast} <=> %s::{cast}) AS score FROM notes"
                    f" WHERE {live} ORDER BY embedding::{cast} <=> %s::{cast} LIMIT %s",
                    (literal, *params, literal, limit),
                ).fetchall()
        ranked = [(r["id"], float(r["score"])) for r in rows]
        return sorted(ranked, key=lambda item: -item[1])  # relaxed order: sort again

    def dump(self) -> Dump:
        def notes() -> Iterator[tuple[Note, Vectors | None]]:
            for rows in self._chunks("SELECT * FROM notes ORDER BY seq"):
                for note, row in zip(self._notes(rows), rows, strict=True):
                    yield note, _vector_of(row["embedding"])

        return Dump(
            episodes=self._records("SELECT * FROM episodes ORDER BY seq", episode_from_row),
            notes=notes(),
            links=self._records("SELECT * FROM links ORDER BY id", link_from_row),
            events=self._records("SELECT * FROM events ORDER BY seq", event_from_row),
            jobs=self._records("SELECT * FROM jobs ORDER BY id", job_from_row),
        )

    def close(self) -> None:
        self._pool.close()

    # -- helpers ---------------------------------------------------------------------------

    def _records(self, sql: str, convert: Any) -> Iterator[Any]:
        for rows in self._chunks(sql):
            yield from (convert(row) for row in rows)

    def _chunks(self, sql: str) -> Iterator[list[dict[str, Any]]]:
        """Rows of one query in chunks, through a server-side cursor."""
        with self._conn() as conn, conn.transaction(), conn.cursor(name="remem_dump") as cursor:
            cursor.execute(sql)
            while chunk := cursor.fetchmany(FETCH_CHUNK):
                yield chunk

    def _notes(self, rows: Sequence[dict[str, Any]]) -> list[Note]:
        sources: dict[str, list[str]] = {}
        for row in self._rows(
            "SELECT note_id, episode_id FROM note_sources WHERE note_id = ANY(%s) ORDER BY rank",
            ([row["id"] for row in rows],),
        ):
            sources.setdefault(row["note_id"], []).append(row["episode_id"])
        return [note_from_row(row, tuple(sources.get(row["id"], ()))) for row in rows]

    def _embedding_size(self) -> int | None:
        if self._dimensions is None:
            value = self.get_meta("dimensions")
            self._dimensions = int(value) if value else None
        return self._dimensions


class _Writer:
    """The statements of one `apply`, inside its transaction."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn

    def write(self, changes: Changes) -> None:
        conn = self.conn
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO episodes (owner, id, user_id, agent_id, session_id, tenant, role,"
                " name, text, metadata, occurred_at, recorded_at, deleted_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s,%s,%s)"
                " ON CONFLICT (owner, id) DO UPDATE SET text = excluded.text,"
                " metadata = excluded.metadata, deleted_at = excluded.deleted_at",
                [(owner_of(e.scope), *episode_row(e)) for e in changes.episodes],
            )
        self._notes(changes.notes, changes.bodies, changes.vectors)
        written = {note.id for note in changes.notes}
        self._vectors({i: v for i, v in changes.vectors.items() if i not in written})
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO links SELECT (SELECT owner FROM notes WHERE id = %s),"
                " %s,%s,%s,%s,%s,%s,%s ON CONFLICT DO NOTHING",
                [
                    (
                        ln.source_id,
                        ln.id,
                        ln.source_id,
                        ln.target_id,
                        ln.relation,
                        ln.weight,
                        ln.reason,
                        ln.created_at,
                    )
                    for ln in changes.links
                ],
            )
            cursor.executemany(
                "INSERT INTO events (owner, id, action, target_id, user_id, agent_id, session_id,"
                " tenant, at, actor, before, after)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s::jsonb)"
                " ON CONFLICT DO NOTHING",
                [(owner_of(e.scope), *event_row(e)) for e in changes.events],
            )
            cursor.executemany(
                "INSERT INTO jobs (owner, id, kind, target_id, status, attempts, last_error,"
                " created_at, updated_at, payload, lease, leased_until)"
                " SELECT coalesce((SELECT owner FROM episodes WHERE id = %s),"
                " (SELECT owner FROM notes WHERE id = %s), ''),"
                " %s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s,%s"
                " ON CONFLICT (owner, id) DO UPDATE SET status = excluded.status,"
                " attempts = excluded.attempts, last_error = excluded.last_error,"
                " updated_at = excluded.updated_at, payload = excluded.payload,"
                " lease = excluded.lease, leased_until = excluded.leased_until",
                [(j.target_id, j.target_id, *job_row(j)) for j in changes.jobs],
            )
            cursor.executemany(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value",
                list(changes.meta.items()),
            )
            cursor.executemany(
                "INSERT INTO llm_calls (job_id, step, model, calls, prompt_tokens,"
                " completion_tokens, latency_ms, ok, at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [
                    (
                        c.job_id,
                        c.step,
                        c.model,
                        c.calls,
                        c.prompt_tokens,
                        c.completion_tokens,
                        c.latency_ms,
                        c.ok,
                        c.at,
                    )
                    for c in changes.llm_calls
                ],
            )

    def _notes(
        self, notes: list[Note], bodies: dict[str, str], vectors: dict[str, Vectors]
    ) -> None:
        """Insert or update notes in a few batched statements (psycopg pipelines them)."""
        if not notes:
            return
        conn = self.conn
        existing = {
            row["id"]: row
            for row in conn.execute(
                "SELECT id, passage, body FROM notes WHERE id = ANY(%s)", ([n.id for n in notes],)
            ).fetchall()
        }
        rows = []
        for note in notes:
            body = None if note.deleted_at is not None else bodies.get(note.id)
            if body is None and note.deleted_at is None and note.id in existing:
                body = existing[note.id]["body"]  # a change that does not touch what search reads
            vector = vectors.get(note.id)
            text = None if vector is None else _vector_text(vector)
            rows.append((owner_of(note.scope), *note_row(note), body, text))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO notes (owner, id, user_id, agent_id, session_id, tenant, text,"
                " metadata, keywords, tags, context, importance, occurred_at, created_at,"
                " updated_at, version, valid_from, valid_to, superseded_by, deleted_at, kind,"
                " body, embedding) VALUES (%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s::jsonb,%s::jsonb,"
                "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::vector)"
                " ON CONFLICT (owner, id) DO UPDATE SET text = excluded.text,"
                " metadata = excluded.metadata, keywords = excluded.keywords, tags = excluded.tags,"
                " context = excluded.context, importance = excluded.importance,"
                " occurred_at = excluded.occurred_at, updated_at = excluded.updated_at,"
                " version = excluded.version, valid_from = excluded.valid_from,"
                " valid_to = excluded.valid_to, superseded_by = excluded.superseded_by,"
                " deleted_at = excluded.deleted_at, body = excluded.body,"
                " embedding = coalesce(excluded.embedding, notes.embedding)",
                rows,
            )
            conn.execute(
                "DELETE FROM note_sources WHERE note_id = ANY(%s)", ([n.id for n in notes],)
            )
            cursor.executemany(
                "INSERT INTO note_sources VALUES (%s, %s, %s, %s)",
                [
                    (owner_of(note.scope), note.id, episode_id, rank)
                    for note in notes
                    for rank, episode_id in enumerate(note.episode_ids)
                ],
            )
        for note, row in zip(notes, rows, strict=True):
            before = existing.get(note.id)
            if before is None:
                if row[-2] is not None and note.kind == "turn" and note.scope.session_id:
                    self._join_session(note, row[-2])
            elif before["passage"] is not None:
                self._rebuild_passage(before["passage"])

    def _join_session(self, note: Note, body: str) -> None:
        """Give a new turn the turn before it as context, and add it to its passage."""
        scope = note.scope
        same_session = (
            "tenant = %s AND session_id = %s AND user_id IS NOT DISTINCT FROM %s"
            " AND agent_id IS NOT DISTINCT FROM %s"
        )
        keys = (scope.tenant, scope.session_id, scope.user_id, scope.agent_id)
        self.conn.execute(
            "UPDATE notes SET previous_body = (SELECT p.body FROM notes p WHERE"
            f" {same_session} AND p.kind = 'turn' AND p.id != %s"
            " AND p.deleted_at IS NULL AND p.seq < notes.seq ORDER BY p.seq DESC LIMIT 1)"
            " WHERE id = %s",
            (*keys, note.id, note.id),
        )
        latest = self.conn.execute(
            f"SELECT pk, notes FROM passages WHERE {same_session} ORDER BY pk DESC LIMIT 1",
            keys,
        ).fetchone()
        if latest is None or latest["notes"] >= PASSAGE_NOTES:
            latest = self.conn.execute(
                "INSERT INTO passages (owner, tenant, session_id, user_id, agent_id, notes)"
                " VALUES (%s,%s,%s,%s,%s,0) RETURNING pk, notes",
                (owner_of(scope), *keys),
            ).fetchone()
        assert latest is not None
        self.conn.execute(
            "UPDATE passages SET notes = notes + 1,"
            " body = CASE WHEN body = '' THEN %s ELSE body || E'\\n' || %s END WHERE pk = %s",
            (body, body, latest["pk"]),
        )
        self.conn.execute("UPDATE notes SET passage = %s WHERE id = %s", (latest["pk"], note.id))

    def _rebuild_passage(self, passage: int) -> None:
        self.conn.execute(
            "UPDATE passages SET body = coalesce((SELECT string_agg(body, E'\\n' ORDER BY seq)"
            " FROM notes WHERE passage = %s AND deleted_at IS NULL), '') WHERE pk = %s",
            (passage, passage),
        )

    def _vectors(self, vectors: dict[str, Vectors]) -> None:
        """New vectors of notes this batch does not otherwise write (embedding retries)."""
        with self.conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE notes SET embedding = %s::vector WHERE id = %s",
                [(_vector_text(v), note_id) for note_id, v in vectors.items()],
            )


def _or_query(terms: Sequence[str]) -> str:
    """A tsquery matching any of the terms (each quoted, so nothing in it is syntax)."""
    quoted = ["'" + t.replace("\\", "").replace("'", "") + "'" for t in terms if t.strip("'\\")]
    return " | ".join(quoted)


def _vector_text(vector: Vectors) -> str:
    # 9 significant digits carry a float32 through text and back unchanged
    return "[" + ",".join(f"{float(x):.9g}" for x in np.asarray(vector).ravel()) + "]"


def _vector_of(value: Any) -> Vectors | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return np.array([float(x) for x in text.strip("[]").split(",")], dtype=np.float32)


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        rest = f"{credentials.split(':')[0]}:***@{host}" if ":" in credentials else rest
    return scheme + sep + rest
