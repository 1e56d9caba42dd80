"""The `Store` protocol on PostgreSQL: pgvector (HNSW, cosine) and full-text search.

    store = PostgresStore("postgresql://user@host/db")   # or REMEM_DB=postgresql://...

Connections come from a pool; every `apply` is one transaction. Full-text ranking uses
`ts_rank` over English-stemmed tsvectors (BM25 in the SQLite store): the two stores agree
on what matches, not on exact scores. Vector search uses an HNSW index once the memory's
embedding size is known, and scans exactly when the scope is small enough that a filtered
index scan could come back short.
"""

from __future__ import annotations

import math
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
    LeaseLostError,
    NoteRecord,
    ScoredIds,
    StaleWriteError,
    TextMatches,
)
from remem.stores.postgres_purge import purge
from remem.stores.postgres_schema import LOCK_KEY, migrate
from remem.stores.postgres_writes import Writer, vector_text
from remem.stores.rows import best_of_notes, job_from_row, key_row, scope_sql
from remem.stores.sql import Dialect, SharedReads, note_record
from remem.types import ApiKey, Job, Scope

WRITE_ATTEMPTS = 5  # a transaction chosen as a deadlock victim is run again
FETCH_CHUNK = 1000
# A scope with at most this many notes is searched exactly (a heap scan of ~2k vectors
# costs ~15 ms here); bigger ones by the HNSW index, whose iterative scan goes on until the
# scope has `limit` notes or HNSW_MAX_SCAN tuples were seen: enough for a 2k scope in 1M.
EXACT_SCAN_LIMIT = 2_000
HNSW_MAX_SCAN = 100_000
HNSW_EF_SEARCH = 100  # candidates per HNSW search
# Counting a big scope's first 2k live notes costs ~5 ms at 1M notes (one heap page each), a
# third of a search; a scope found bigger than EXACT_SCAN_LIMIT is taken to stay big for this
# long (or until this process deletes notes), so a busy user pays the count once a minute.
LARGE_SCOPE_SECONDS = 60.0
POSTGRES = Dialect(mark="%s", order="seq", same="IS NOT DISTINCT FROM", id_chunk=None)


class PostgresStore(SharedReads):
    """The `Store` protocol on a PostgreSQL database with the pgvector extension. Reads
    that are the same SQL on SQLite come from `SharedReads`."""

    dialect = POSTGRES

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
        self._large_scopes: dict[Scope, float] = {}  # scope -> until when it counts as large

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
        if any(note.deleted_at is not None for note in changes.notes):
            self._large_scopes.clear()  # a deletion may have made a large scope small
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
        if changes.expect:
            _check_versions(conn, changes.expect)
        Writer(conn).write(changes)
        if changes.purge:
            purge(conn, changes.purge)

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

    def search_vector(self, vector: Vectors, scope: Scope, limit: int) -> ScoredIds:
        dimensions = self._embedding_size()
        if dimensions is None or limit <= 0:
            return []
        where, params = scope_sql(scope, "", "%s")
        live = f"{where} AND deleted_at IS NULL AND embedding IS NOT NULL"
        literal = vector_text(vector)
        with self._conn() as conn, conn.transaction():
            if self._is_small(conn, scope, live, params):
                # exact: the cast differs from the index expression, so the index is not used
                rows = conn.execute(
                    f"SELECT id, 1 - (embedding <=> %s::vector) AS score FROM notes WHERE {live}"
                    " ORDER BY embedding <=> %s::vector LIMIT %s",
                    (literal, *params, literal, limit),
                ).fetchall()
            else:
                conn.execute(
                    "SELECT set_config('hnsw.ef_search', %s, true),"
                    " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
                    " set_config('hnsw.max_scan_tuples', %s, true)",
                    (str(max(HNSW_EF_SEARCH, limit)), str(HNSW_MAX_SCAN)),
                )
                cast = f"vector({dimensions})"
                rows = conn.execute(
                    f"SELECT id, 1 - (embedding::{cast} <=> %s::{cast}) AS score FROM notes"
                    f" WHERE {live} ORDER BY embedding::{cast} <=> %s::{cast} LIMIT %s",
                    (literal, *params, literal, limit),
                ).fetchall()
        ranked = [(r["id"], _cosine(r["score"])) for r in rows]
        return sorted(ranked, key=lambda item: -item[1])  # relaxed order: sort again

    def _is_small(
        self, conn: psycopg.Connection[dict[str, Any]], scope: Scope, live: str, params: list[str]
    ) -> bool:
        """Whether the scope holds at most EXACT_SCAN_LIMIT live vectors (so: scan it exactly)."""
        if self._large_scopes.get(scope, 0.0) > time.monotonic():
            return False
        row = conn.execute(
            f"SELECT count(*) AS n FROM (SELECT 1 FROM notes WHERE {live} LIMIT %s) s",
            (*params, EXACT_SCAN_LIMIT + 1),
        ).fetchone()
        if row is not None and row["n"] <= EXACT_SCAN_LIMIT:
            return True
        if len(self._large_scopes) >= 10_000:  # bounded: forget the verdicts, not the data
            self._large_scopes.clear()
        self._large_scopes[scope] = time.monotonic() + LARGE_SCOPE_SECONDS
        return False

    def sentence_scores(self, vector: Vectors, ids: Sequence[str]) -> dict[str, float]:
        rows = self._rows(
            "SELECT id, 1 - (embedding <=> %s::vector) AS score, sentence_embeddings FROM notes"
            " WHERE embedding IS NOT NULL AND id = ANY(%s)",
            (vector_text(vector), list(ids)),
        )
        own = {row["id"]: _cosine(row["score"]) for row in rows}
        split = {
            row["id"]: row["sentence_embeddings"]
            for row in rows
            if row["sentence_embeddings"] is not None
        }
        return best_of_notes(own, split, vector)

    def vectors_of(self, ids: Sequence[str]) -> dict[str, Vectors]:
        rows = self._rows(
            "SELECT id, embedding FROM notes WHERE embedding IS NOT NULL AND id = ANY(%s)",
            (list(ids),),
        )
        vectors = {row["id"]: _vector_of(row["embedding"]) for row in rows}
        return {note_id: vector for note_id, vector in vectors.items() if vector is not None}

    def term_counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        counts = {}
        for term in dict.fromkeys(terms):
            rows = self._rows(
                "SELECT count(*) AS n FROM (SELECT 1 FROM notes"
                " WHERE body_tsv @@ plainto_tsquery('english', %s) LIMIT %s) s",
                (term, cap),
            )
            counts[term] = int(rows[0]["n"])
        return counts

    def close(self) -> None:
        self._pool.close()

    # -- helpers ---------------------------------------------------------------------------

    def _note_records(self) -> Iterator[NoteRecord]:
        for rows in self._chunks("SELECT * FROM notes ORDER BY seq"):
            for note, row in zip(self._notes(rows), rows, strict=True):
                vector = _vector_of(row["embedding"])
                yield note_record(note, vector, row["sentence_embeddings"])

    def _chunks(self, sql: str) -> Iterator[list[dict[str, Any]]]:
        """Rows of one query in chunks, through a server-side cursor."""
        with self._conn() as conn, conn.transaction(), conn.cursor(name="remem_dump") as cursor:
            cursor.execute(sql)
            while chunk := cursor.fetchmany(FETCH_CHUNK):
                yield chunk

    def _embedding_size(self) -> int | None:
        if self._dimensions is None:
            value = self.get_meta("dimensions")
            self._dimensions = int(value) if value else None
        return self._dimensions


def _cosine(score: Any) -> float:
    """pgvector's cosine similarity; 0 where it is undefined (a zero vector gives NaN, which
    the SQLite store's index scores 0)."""
    value = float(score)
    return value if math.isfinite(value) else 0.0


def _check_versions(conn: psycopg.Connection[dict[str, Any]], expected: dict[str, int]) -> None:
    """Lock the notes a batch was computed from, and check each is live at that version."""
    rows = conn.execute(
        "SELECT id, version, deleted_at FROM notes WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        (sorted(expected),),
    ).fetchall()
    current = {row["id"]: row["version"] for row in rows if row["deleted_at"] is None}
    for note_id, version in expected.items():
        if current.get(note_id) != version:
            raise StaleWriteError(note_id, version, current.get(note_id))


def _or_query(terms: Sequence[str]) -> str:
    """A tsquery matching any of the terms (each quoted, so nothing in it is syntax)."""
    quoted = ["'" + t.replace("\\", "").replace("'", "") + "'" for t in terms if t.strip("'\\")]
    return " | ".join(quoted)


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
