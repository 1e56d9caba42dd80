"""Bulk loads into PostgreSQL (and Citus): new records by COPY, the search indexes built
once after a large load rather than maintained row by row.

A batch of a load is one transaction, as an `apply` is, and leaves what `apply` would have
left: its notes' full-text rows, each new turn of a thread joined to the turn before it and
to its thread's passage, their sources, vectors and sentence vectors. It is meant for new
records (`remem migrate` and `remem import` leave out what the store holds before they hand
a batch over); a batch that meets one already there (written meanwhile) is written by
`apply` instead, since COPY cannot update a row.

A large load (`size` notes, at least LARGE_LOAD and at least what the store holds) drops
the HNSW index and the full-text GIN indexes first, and builds them again when the load
ends, however it ends (a batch that fails included). A load killed outright leaves them
missing until a load runs again (an interrupted `migrate` or `import` is run again anyway);
meanwhile search is still right, by scanning, only slower.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from remem.embedders.base import Vectors
from remem.stores.base import PASSAGE_NOTES, Changes
from remem.stores.citus import owners_of
from remem.stores.postgres_writes import owner_of
from remem.stores.rows import episode_row, event_row, job_row, link_row, optional_blob
from remem.types import Note

log = logging.getLogger("remem")
LARGE_LOAD = 50_000  # notes: from here building the indexes after the load is faster
# Memory for one index build (pgvector builds an HNSW graph in memory when it fits: ~2.5 GB
# for 1M 384-d vectors); taken only while the build runs.
BUILD_MEMORY = "4GB"
# The indexes a large load drops and builds again (the HNSW one is made per embedding size).
DEFERRED = {
    "notes_body_tsv": "CREATE INDEX IF NOT EXISTS notes_body_tsv ON notes USING gin (body_tsv)",
    "notes_context_tsv": (
        "CREATE INDEX IF NOT EXISTS notes_context_tsv ON notes USING gin (context_tsv)"
    ),
    "passages_tsv": "CREATE INDEX IF NOT EXISTS passages_tsv ON passages USING gin (tsv)",
}
HNSW = (
    "CREATE INDEX IF NOT EXISTS notes_embedding ON notes USING hnsw"
    " ((embedding::vector({size})) vector_cosine_ops)"
)
NOTE_COLUMNS = (
    "owner, id, user_id, agent_id, session_id, tenant, text, metadata, keywords, tags,"
    " context, importance, occurred_at, created_at, updated_at, version, valid_from,"
    " valid_to, superseded_by, deleted_at, kind, thread, access_count, last_accessed_at,"
    " pinned, expires_at, archived_at, body, embedding, sentence_embeddings, passage,"
    " previous_body"
)
NOTE_TYPES: list[int | str] = [
    *["text"] * 7, "jsonb", "jsonb", "jsonb", "text", "float4", "timestamptz",
    "timestamptz", "timestamptz", "int4", "timestamptz", "timestamptz", "text",
    "timestamptz", "text", "text", "int4", "timestamptz", "bool", "timestamptz",
    "timestamptz", "text", "vector", "bytea", "int8", "text",
]  # fmt: skip
EPISODE_COLUMNS = (
    "owner, id, user_id, agent_id, session_id, tenant, role, name, text, metadata,"
    " occurred_at, recorded_at, deleted_at"
)
EVENT_COLUMNS = (
    "owner, id, action, target_id, user_id, agent_id, session_id, tenant, at, actor, before, after"
)
JOB_COLUMNS = (
    "owner, id, kind, target_id, status, attempts, last_error, created_at, updated_at,"
    " payload, lease, leased_until"
)
Connection = psycopg.Connection[dict[str, Any]]
# (owner, tenant, user_id, agent_id, thread): one owner's thread, as passages key it
ThreadKey = tuple[str, str, str | None, str | None, str]


def owner_of_note(note: Note) -> str:
    return owner_of(note.scope)


def is_plain(changes: Changes) -> bool:
    """Whether a batch only adds records (what COPY can write): no lease, expectation (of
    notes or meta rows), check of thoughts, purge or model costs, and vectors only for the
    notes it writes."""
    if changes.lease or changes.expect or changes.expect_meta or changes.evidence_changed:
        return False
    if changes.purge or changes.llm_calls:
        return False
    written = {note.id for note in changes.notes}
    return all(note_id in written for note_id in changes.vectors)


def defer_indexes(conn: Connection, size: int) -> bool:
    """Drop the indexes a large load builds after it, if this load of `size` notes is
    large (LARGE_LOAD, and at least as many notes as the store holds)."""
    if size < LARGE_LOAD:
        return False
    row = conn.execute("SELECT count(*) AS n FROM notes").fetchone()
    if row is None or size < int(row["n"]):
        return False
    for name in [*DEFERRED, "notes_embedding"]:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    return True


def write_batch(conn: Connection, changes: Changes) -> None:
    """One batch of new records, in the caller's transaction."""
    named = [ln.source_id for ln in changes.links] + [j.target_id for j in changes.jobs]
    owners: dict[str, str] = {}
    for table in ("episodes", "notes"):  # a later table's answer wins
        owners |= owners_of(conn, table, named)
    BulkWriter(conn).write(changes, owners)
    conn.execute(
        "INSERT INTO meta SELECT * FROM unnest(%s::text[], %s::text[])"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (list(changes.meta), list(changes.meta.values())),
    )


def is_duplicate(error: psycopg.Error) -> bool:
    """A unique key violated (Citus reports one in a COPY as an internal error)."""
    if isinstance(error, psycopg.errors.UniqueViolation):
        return True
    return error.sqlstate == "XX000" and "duplicate key value" in str(error)


def build_indexes(conn: Connection, dimensions: int | None, sharded: bool) -> dict[str, float]:
    """Create each search index that is missing (all of them after a large load); return
    the seconds each build took."""
    statements = dict(DEFERRED)
    if dimensions is not None:
        statements["notes_embedding"] = HNSW.format(size=int(dimensions))
    present = {
        row["indexname"]
        for row in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            " AND indexname = ANY(%s)",
            (list(statements),),
        ).fetchall()
    }
    took: dict[str, float] = {}
    for name, statement in statements.items():
        if name in present:
            continue
        start = time.perf_counter()
        log.info("building index %s", name)
        build_index(conn, statement, sharded)
        took[name] = time.perf_counter() - start
    return took


def build_index(conn: Connection, statement: str, sharded: bool = False) -> None:
    """One index build with memory to build it in; without parallel workers when the
    server cannot give them shared memory (a small /dev/shm in a container)."""
    for workers in (None, 0):
        try:
            with conn.transaction():
                if sharded:  # SET LOCAL then reaches the workers building the shards
                    conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
                    # one shard at a time on each worker: each build may take BUILD_MEMORY
                    # (pgvector builds its graph in memory); at once, the 16
                    # shards a worker holds ran the machine out of memory (1M notes)
                    conn.execute("SET LOCAL citus.max_adaptive_executor_pool_size = 1")
                conn.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
                if workers is not None:
                    conn.execute(f"SET LOCAL max_parallel_maintenance_workers = {workers}")
                conn.execute(statement)
            return
        except (psycopg.errors.OperationalError, psycopg.errors.InternalError_):
            if workers is not None:
                raise
            log.warning("index build failed with parallel workers; building without them")


@dataclass
class _Threads:
    """Where the batch's new turns go: the turn before each in its thread (whose body is
    its context) and its thread's passage, as `Writer._join_thread` would place them one
    by one."""

    last_body: dict[ThreadKey, str | None] = field(default_factory=dict)
    passage: dict[ThreadKey, list[int]] = field(default_factory=dict)  # [pk, notes in it]
    appended: dict[tuple[str, int], list[str]] = field(default_factory=dict)


class BulkWriter:
    """The COPY statements of one batch of new records, inside its transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def write(self, changes: Changes, owners: dict[str, str]) -> None:
        """`owners`: the owner of each episode and note the batch's links and jobs name
        that the batch does not hold (looked up by the caller)."""
        known = {e.id: owner_of(e.scope) for e in changes.episodes}
        known |= {n.id: owner_of_note(n) for n in changes.notes}
        known |= owners
        self._copy(
            "episodes",
            EPISODE_COLUMNS,
            ((known[e.id], *episode_row(e)) for e in changes.episodes),
        )
        self._notes(changes)
        self._copy(
            "links",
            "owner, id, source_id, target_id, relation, weight, reason, created_at",
            ((known.get(ln.source_id), *link_row(ln)) for ln in changes.links),
        )
        self._copy(
            "events",
            EVENT_COLUMNS,
            ((owner_of(e.scope), *event_row(e)) for e in changes.events),
        )
        self._copy(
            "jobs", JOB_COLUMNS, ((known.get(j.target_id, ""), *job_row(j)) for j in changes.jobs)
        )

    def _copy(self, table: str, columns: str, rows: Iterable[tuple[Any, ...]]) -> None:
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return
        with (
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            copy.write_row(first)
            for row in rows:
                copy.write_row(row)

    def _notes(self, changes: Changes) -> None:
        notes = changes.notes
        if not notes:
            return
        bodies = [None if n.deleted_at is not None else changes.bodies.get(n.id) for n in notes]
        placed = self._threads(notes, bodies)
        types: list[int | str] = [*NOTE_TYPES[:-4], _vector_type(self.conn), *NOTE_TYPES[-3:]]
        with (
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY notes ({NOTE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(types)
            for note, body in zip(notes, bodies, strict=True):
                copy.write_row(
                    (
                        *_note_values(note),
                        body,
                        _vector_binary(changes.vectors.get(note.id)),
                        optional_blob(changes.sentence_vectors.get(note.id)),
                        *placed.get(note.id, (None, None)),
                    )
                )
        self._copy(
            "note_sources",
            "owner, note_id, episode_id, rank",
            (
                (owner_of_note(note), note.id, episode_id, rank)
                for note in notes
                for rank, episode_id in enumerate(note.episode_ids)
            ),
        )

    def _threads(
        self, notes: list[Note], bodies: list[str | None]
    ) -> dict[str, tuple[int, str | None]]:
        """note id -> (its passage, the body of the turn before it) for each new turn that
        joins its thread; the passages are created or extended here."""
        keys = {n.id: _thread_key(n) for n in notes if n.kind == "turn" and n.thread is not None}
        if not keys:
            return {}
        state = self._thread_state(set(keys.values()))
        placed: dict[str, tuple[int, str | None]] = {}
        for note, body in zip(notes, bodies, strict=True):
            key = keys.get(note.id)
            if key is None or note.deleted_at is not None:
                continue  # a deleted turn is nobody's previous turn
            if body is not None:
                placed[note.id] = (self._place(state, key, body), state.last_body.get(key))
            state.last_body[key] = body
        self._extend_passages(state)
        return placed

    def _thread_state(self, keys: set[ThreadKey]) -> _Threads:
        """Each thread's newest live turn and newest passage already in the store."""
        state = _Threads()
        owners = list({key[0] for key in keys})
        threads = list({key[4] for key in keys})
        for row in self.conn.execute(
            "SELECT DISTINCT ON (owner, tenant, user_id, agent_id, thread) owner, tenant,"
            " user_id, agent_id, thread, body FROM notes WHERE owner = ANY(%s)"
            " AND thread = ANY(%s) AND kind = 'turn' AND deleted_at IS NULL"
            " ORDER BY owner, tenant, user_id, agent_id, thread, seq DESC",
            (owners, threads),
        ).fetchall():
            key = _row_key(row, "thread")
            if key in keys:
                state.last_body[key] = row["body"]
        for row in self.conn.execute(
            "SELECT DISTINCT ON (owner, tenant, user_id, agent_id, session_id) owner, tenant,"
            " user_id, agent_id, session_id, pk, notes FROM passages WHERE owner = ANY(%s)"
            " AND session_id = ANY(%s)"
            " ORDER BY owner, tenant, user_id, agent_id, session_id, pk DESC",
            (owners, threads),
        ).fetchall():
            key = _row_key(row, "session_id")
            if key in keys:
                state.passage[key] = [int(row["pk"]), int(row["notes"])]
        return state

    def _place(self, state: _Threads, key: ThreadKey, body: str) -> int:
        current = state.passage.get(key)
        if current is None or current[1] >= PASSAGE_NOTES:
            row = self.conn.execute(
                "INSERT INTO passages (owner, tenant, user_id, agent_id, session_id, notes)"
                " VALUES (%s,%s,%s,%s,%s,0) RETURNING pk",
                key,
            ).fetchone()
            assert row is not None
            current = state.passage[key] = [int(row["pk"]), 0]
        current[1] += 1
        state.appended.setdefault((key[0], current[0]), []).append(body)
        return current[0]

    def _extend_passages(self, state: _Threads) -> None:
        """Each passage's new text once (appending each body in turn, as `apply` does)."""
        rows = []
        for (owner, pk), bodies in state.appended.items():
            from_empty = ""
            for body in bodies:
                from_empty = body if from_empty == "" else from_empty + "\n" + body
            rows.append((len(bodies), from_empty, "\n".join(bodies), owner, pk))
        with self.conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE passages SET notes = notes + %s,"
                " body = CASE WHEN body = '' THEN %s ELSE body || E'\\n' || %s END"
                " WHERE owner = %s AND pk = %s",
                rows,
            )


def _thread_key(note: Note) -> ThreadKey:
    scope = note.scope
    assert note.thread is not None
    return (owner_of_note(note), scope.tenant, scope.user_id, scope.agent_id, note.thread)


def _row_key(row: dict[str, Any], thread: str) -> ThreadKey:
    return (row["owner"], row["tenant"], row["user_id"], row["agent_id"], row[thread])


def _note_values(note: Note) -> tuple[Any, ...]:
    """A note's columns as `note_row` orders them, as values binary COPY sends (times as
    datetimes, JSON as objects)."""
    scope = note.scope
    return (
        owner_of(scope), note.id, scope.user_id, scope.agent_id, scope.session_id,
        scope.tenant, note.text, note.metadata, list(note.keywords), list(note.tags),
        note.context, float(note.importance), note.occurred_at, note.created_at,
        note.updated_at, note.version, note.valid_from, note.valid_to, note.superseded_by,
        note.deleted_at, note.kind, note.thread, note.access_count, note.last_accessed_at,
        bool(note.pinned), note.expires_at, note.archived_at,
    )  # fmt: skip


def _vector_binary(vector: Vectors | None) -> bytes | None:
    """pgvector's binary form: the size, a reserved zero, then big-endian float32 values
    (formatting them as text costs ~300 us a 384-d vector here; this, ~2)."""
    if vector is None:
        return None
    values = np.asarray(vector, dtype=">f4").ravel()
    return struct.pack(">HH", len(values), 0) + values.tobytes()


class _VectorDumper(Dumper):
    """Sends bytes already in pgvector's binary form (made by `_vector_binary`)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)


def _vector_type(conn: Connection) -> int:
    """The oid of pgvector's `vector` type, with a binary dumper for it on this connection
    (the oid differs between databases)."""
    row = conn.execute("SELECT 'vector'::regtype::oid AS oid").fetchone()
    assert row is not None
    oid = int(row["oid"])
    conn.adapters.register_dumper(None, type("VectorDumper", (_VectorDumper,), {"oid": oid}))
    return oid
