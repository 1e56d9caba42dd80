"""The `Store` protocol on PostgreSQL: pgvector (HNSW, cosine) and full-text search.

    store = PostgresStore("postgresql://user@host/db")   # or REMEM_DB=postgresql://...

Connections come from a pool; every `apply` is one transaction. Full-text ranking uses
`ts_rank` over English-stemmed tsvectors (BM25 in the SQLite store): the two stores agree
on what matches, not on exact scores. Vector search uses an HNSW index once the memory's
embedding size is known, and scans exactly when the scope is small enough that a filtered
index scan could come back short. Notes are partitioned by owner (one HNSW graph each), and
queries name the owner wherever they know it, so PostgreSQL reads one partition.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

import numpy as np
import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from remem import clock
from remem.embedders.base import Vectors
from remem.errors import StoreError
from remem.stores import citus
from remem.stores.base import (
    Access,
    Changes,
    LeaseLostError,
    NoteRecord,
    ScoredIds,
    StaleWriteError,
    TextMatches,
    no_candidates,
)
from remem.stores.lexical import DEFAULT_BUDGET, Budget
from remem.stores.postgres_bulk import (
    HNSW,
    build_indexes,
    defer_indexes,
    is_duplicate,
    is_plain,
    write_batch,
)
from remem.stores.postgres_lexical import Estimates, LargeScopes, or_query, ranked_rows
from remem.stores.postgres_purge import purge
from remem.stores.postgres_schema import LOCK_KEY, migrate
from remem.stores.postgres_writes import Writer, check_thoughts, owner_of, vector_text
from remem.stores.rows import best_of_notes, job_from_row, key_row
from remem.stores.sql import IDS, VISIBLE, Dialect, SharedReads, note_record
from remem.types import ApiKey, Job, Scope

WRITE_ATTEMPTS = 5  # a transaction chosen as a deadlock victim is run again
FETCH_CHUNK = 1000
# A scope with at most this many notes is searched exactly (a heap scan of ~2k vectors
# costs ~15 ms here); bigger ones by the HNSW index, whose iterative scan goes on until the
# scope has `limit` notes or HNSW_MAX_SCAN tuples were seen: enough for a 2k scope in 1M.
EXACT_SCAN_LIMIT = 2_000
HNSW_MAX_SCAN = 100_000
HNSW_EF_SEARCH = 100  # candidates per HNSW search
POSTGRES = Dialect(mark="%s", order="seq", same="IS NOT DISTINCT FROM", id_chunk=None, sharded=True)
SHOWN = POSTGRES.render(VISIBLE)  # not archived, not expired (one parameter: now)


class PostgresStore(SharedReads):
    """The `Store` protocol on a PostgreSQL database with the pgvector extension. Reads
    that are the same SQL on SQLite come from `SharedReads`."""

    dialect = POSTGRES

    def __init__(self, url: str, *, pool_size: int = 8, budget: Budget = DEFAULT_BUDGET) -> None:
        self.path = _redacted(url)
        self._budget = budget
        self._estimates = Estimates()  # the planner's, of full-text terms
        try:
            # one direct connection first: an unreachable server fails now, with its reason
            with psycopg.connect(url, connect_timeout=10, row_factory=dict_row) as conn:
                self.schema_version = migrate(conn)
                self._citus = citus.has_citus(conn)
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
        self._large_scopes = LargeScopes()
        self._owners = citus.KnownOwners()  # routes lookups by id to their partitions/shards
        self.load_timings: dict[str, float] = {}  # what the last bulk load's index builds took

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
            rows = conn.execute(sql, params).fetchall()
        self._owners.learn_rows(rows)
        return rows

    def _read_among(self, sql: str, ids: Sequence[Any], params: Sequence[Any] = ()) -> list[Any]:
        """A lookup by ids whose owners are all known names them too: one partition (one
        shard on Citus), or a few, answers instead of every one."""
        if not ids:  # as on SQLite: nothing is one of no ids (and no shard is asked)
            return []
        owners = self._owners.of(ids)
        routed = citus.routed_among(sql, owners) if owners else None
        if routed is None:
            return super()._read_among(sql, ids, params)
        rows: list[Any] = []
        for statement, values in self.dialect.among(routed[0], ids, params):
            rows += self._rows(statement, [*values, routed[1]])
        return rows

    def _learn(self, scope: Scope, ids: Iterable[str]) -> None:
        """Found in a search routed to the scope's owner: these ids live under it."""
        owner = self.dialect.route(scope)[1]
        if owner:
            self._owners.learn(owner[0], ids)

    # -- writes ----------------------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        if changes.purge or any(note.deleted_at is not None for note in changes.notes):
            self._large_scopes.forget()  # the scope may be small now
        if changes.vectors and self._embedding_size() is None:
            self._prepare_vectors(len(next(iter(changes.vectors.values()))))
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    self._write(cast(psycopg.Connection[dict[str, Any]], conn), changes)
                self._learn_written(changes)
                return
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt + 1 == WRITE_ATTEMPTS:
                    raise StoreError(f"write to {self.path} kept deadlocking") from None
                time.sleep(0.01 * 2**attempt)  # the other transaction finishes meanwhile
            except psycopg.Error as error:
                raise StoreError(f"write to {self.path} failed: {error}") from error

    def _write(self, conn: psycopg.Connection[dict[str, Any]], changes: Changes) -> None:
        if changes.lease is not None:
            rows = citus.locked_rows(conn, "jobs", [changes.lease[0]], "status, lease")
            row = rows[0] if rows else None
            if row is None or (row["status"], row["lease"]) != ("pending", changes.lease[1]):
                raise LeaseLostError(f"job {changes.lease[0]} is no longer leased to this one")
        if changes.expect:
            known = {note.id: owner_of(note.scope) for note in changes.notes}
            _check_versions(conn, changes.expect, known)
        check_thoughts(conn, changes)
        Writer(conn).write(changes)
        if changes.purge:
            purge(conn, changes.purge)

    def _prepare_vectors(self, size: int, *, index: bool = True) -> None:
        """Record the embedding size and build its HNSW index, once, before any vector
        (a large bulk load builds the index after it instead)."""
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute(
                "INSERT INTO meta VALUES ('dimensions', %s) ON CONFLICT DO NOTHING", (str(size),)
            )
            if index:
                conn.execute(HNSW.format(size=int(size)))
        self._dimensions = None  # read back: another process may have set it first

    def bulk_load(self, batches: Iterable[Changes], size: int) -> None:
        """Batches of new records by COPY (see `postgres_bulk`); a large load builds the
        search indexes after it, and every load builds those found missing."""
        decided = False  # whether to drop the indexes (at the first batch with notes)
        try:
            for changes in batches:
                if not is_plain(changes):
                    self.apply(changes)
                    continue
                if changes.notes and not decided:
                    with self._conn() as conn:
                        decided = defer_indexes(conn, size) or True
                if changes.vectors and self._embedding_size() is None:
                    self._prepare_vectors(len(next(iter(changes.vectors.values()))), index=False)
                self._load(changes)
        finally:
            with self._conn() as conn:
                built = build_indexes(conn, self._embedding_size(), self._citus)
                if built:  # a large load: the planner's statistics of the tables are stale
                    for table in ("notes", "passages", "episodes"):
                        conn.execute(f"ANALYZE {table}")
            self.load_timings = {f"index_{name}_s": seconds for name, seconds in built.items()}

    def _load(self, changes: Changes) -> None:
        try:
            with self._pool.connection() as conn, conn.transaction():
                write_batch(cast(psycopg.Connection[dict[str, Any]], conn), changes)
        except psycopg.Error as error:
            if not is_duplicate(error):
                raise StoreError(f"load into {self.path} failed: {error}") from error
            # a record already there (written meanwhile, or given twice): COPY cannot
            # update it; `apply` writes the batch as it always does (upserts)
            self.apply(changes)
            return
        self._learn_written(changes)

    def _learn_written(self, changes: Changes) -> None:
        for episode in changes.episodes:
            self._owners.learn(owner_of(episode.scope), (episode.id,))
        for note in changes.notes:
            self._owners.learn(owner_of(note.scope), (note.id,))

    def claim_job(self, token: str, until: datetime, job_id: str | None = None) -> Job | None:
        if self._citus:  # no FOR UPDATE SKIP LOCKED across shards
            with self._conn() as conn:
                row = citus.claim_job(conn, token, until, job_id)
            return None if row is None else job_from_row(row)
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

    def search_text(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[str]] = no_candidates,
    ) -> TextMatches:
        query = or_query(terms)
        if not query:
            return TextMatches([], [])
        where, params = self.dialect.scope(scope, "")
        ranked, values = ranked_rows(
            self._rows, ("notes", "context_tsv", "id"), terms, (where, params), candidates,
            self._budget, _owner(scope), (self._estimates, self._large_scopes),
        )  # fmt: skip
        rows = self._rows(
            "SELECT id, ts_rank(context_tsv, q) AS in_context, ts_rank(body_tsv, q) AS own"
            f" FROM notes, to_tsquery('english', %s) q WHERE {where} AND deleted_at IS NULL"
            f" AND {SHOWN} AND {ranked} ORDER BY in_context DESC, seq LIMIT %s",
            (query, *params, clock.now(), *values, limit),
        )
        own = sorted(
            ((r["id"], float(r["own"])) for r in rows if r["own"] > 0), key=lambda item: -item[1]
        )
        self._learn(scope, (r["id"] for r in rows))
        return TextMatches([(r["id"], float(r["in_context"])) for r in rows], own)

    def search_passages(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[int]] = no_candidates,
    ) -> list[tuple[int, float]]:
        query = or_query(terms)
        if not query:
            return []
        where, params = self.dialect.scope(scope, "")
        ranked, values = ranked_rows(
            self._rows, ("passages", "tsv", "pk"), terms, (where, params), candidates,
            self._budget, _owner(scope), (self._estimates, self._large_scopes),
        )  # fmt: skip
        rows = self._rows(
            "SELECT pk, ts_rank(tsv, q) AS score FROM passages, to_tsquery('english', %s) q"
            f" WHERE {where} AND {ranked} ORDER BY score DESC, pk LIMIT %s",
            (query, *params, *values, limit),
        )
        return [(int(r["pk"]), float(r["score"])) for r in rows]

    def speakers_named(self, words: Sequence[str], scope: Scope) -> list[str]:
        words = list(dict.fromkeys(word.lower() for word in words))
        if not words:
            return []
        where, params = self.dialect.scope(scope, "e.")
        # one EXISTS per word, no set-returning function (Citus cannot correlate with one)
        named = "EXISTS (SELECT 1 FROM episodes e WHERE lower(e.name) = %s"
        named += f" AND e.deleted_at IS NULL AND {where})"
        columns = ", ".join(f"{named} AS w{index}" for index in range(len(words)))
        row = self._rows(f"SELECT {columns}", [v for w in words for v in (w, *params)])[0]
        return [word for index, word in enumerate(words) if row[f"w{index}"]]

    def search_vector(self, vector: Vectors, scope: Scope, limit: int) -> ScoredIds:
        dimensions = self._embedding_size()
        if dimensions is None or limit <= 0:
            return []
        where, params = self.dialect.scope(scope, "")
        live = f"{where} AND deleted_at IS NULL AND embedding IS NOT NULL AND {SHOWN}"
        params = [*params, clock.to_text(clock.now())]
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
                _tune_hnsw(conn, max(HNSW_EF_SEARCH, limit), sharded=self._citus)
                cast = f"vector({dimensions})"
                rows = conn.execute(
                    f"SELECT id, 1 - (embedding::{cast} <=> %s::{cast}) AS score FROM notes"
                    f" WHERE {live} ORDER BY embedding::{cast} <=> %s::{cast} LIMIT %s",
                    (literal, *params, literal, limit),
                ).fetchall()
        ranked = [(r["id"], _cosine(r["score"])) for r in rows]
        self._learn(scope, (note_id for note_id, _ in ranked))
        return sorted(ranked, key=lambda item: -item[1])  # relaxed order: sort again

    def _is_small(
        self, conn: psycopg.Connection[dict[str, Any]], scope: Scope, live: str, params: list[str]
    ) -> bool:
        """Whether the scope holds at most EXACT_SCAN_LIMIT live vectors (so: scan it exactly)."""

        def count_is_large() -> bool:
            row = conn.execute(
                f"SELECT count(*) AS n FROM (SELECT 1 FROM notes WHERE {live} LIMIT %s) s",
                (*params, EXACT_SCAN_LIMIT + 1),
            ).fetchone()
            return row is None or int(row["n"]) > EXACT_SCAN_LIMIT

        return not self._large_scopes.is_large(("vectors", scope), count_is_large)

    def sentence_scores(self, vector: Vectors, ids: Sequence[str]) -> dict[str, float]:
        rows = self._read_among(  # the id list bound last, as shared SQL does (routed on Citus)
            "SELECT id, 1 - (embedding <=> ?::vector) AS score, sentence_embeddings FROM notes"
            f" WHERE embedding IS NOT NULL AND id {IDS}",
            ids,
            (vector_text(vector),),
        )
        own = {row["id"]: _cosine(row["score"]) for row in rows}
        split = {
            row["id"]: row["sentence_embeddings"]
            for row in rows
            if row["sentence_embeddings"] is not None
        }
        return best_of_notes(own, split, vector)

    def vectors_of(self, ids: Sequence[str]) -> dict[str, Vectors]:
        rows = self._read_among(
            f"SELECT id, embedding FROM notes WHERE embedding IS NOT NULL AND id {IDS}", ids
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

    def record_access(self, accesses: Mapping[str, Access]) -> None:
        # one routed statement per note (Citus: to its owner's shard), in one transaction,
        # in id order so two flushes lock rows in the same order
        rows = [
            (seen.count, seen.at, owner_of(seen.scope), note_id)
            for note_id, seen in sorted(accesses.items())
        ]
        if not rows:
            return
        with self._conn() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE notes SET access_count = access_count + %s,"
                " last_accessed_at = greatest(last_accessed_at, %s)"
                " WHERE owner = %s AND id = %s",
                rows,
            )

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


def _tune_hnsw(conn: psycopg.Connection[Any], ef_search: int, *, sharded: bool) -> None:
    """This transaction's HNSW search settings. On Citus they must reach the workers that
    scan the shards: `SET LOCAL`, which Citus then propagates (`set_config` would not)."""
    if sharded:
        conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        conn.execute("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
        conn.execute(f"SET LOCAL hnsw.max_scan_tuples = {int(HNSW_MAX_SCAN)}")
        return
    conn.execute(
        "SELECT set_config('hnsw.ef_search', %s, true),"
        " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
        " set_config('hnsw.max_scan_tuples', %s, true)",
        (str(ef_search), str(HNSW_MAX_SCAN)),
    )


def _cosine(score: Any) -> float:
    """pgvector's cosine similarity; 0 where it is undefined (a zero vector gives NaN, which
    the SQLite store's index scores 0)."""
    value = float(score)
    return value if math.isfinite(value) else 0.0


def _check_versions(
    conn: psycopg.Connection[dict[str, Any]], expected: dict[str, int], owners: dict[str, str]
) -> None:
    """Lock the notes a batch was computed from, and check each is live at that version
    (`owners`: the owners of notes the batch writes, known without asking)."""
    rows = citus.locked_rows(conn, "notes", sorted(expected), "id, version, deleted_at", owners)
    current = {row["id"]: row["version"] for row in rows if row["deleted_at"] is None}
    for note_id, version in expected.items():
        if current.get(note_id) != version:
            raise StaleWriteError(note_id, version, current.get(note_id))


def _owner(scope: Scope) -> str | None:
    """The owner a scope's rows are kept under, when the scope decides it (has a user)."""
    return owner_of(scope) if scope.user_id is not None else None


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
