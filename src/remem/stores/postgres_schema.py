"""The PostgreSQL schema, as numbered migrations run under an advisory lock.

Sharding (Citus): every table that holds a user's data has an `owner` column — the
tenant and the scope's first id (user, else agent, else session) — in its primary key, so
`SELECT create_distributed_table('<table>', 'owner')` for episodes, notes, note_sources,
links, events, jobs and passages keeps one user's data on one shard, `meta` is distributed
by its key, and `api_keys`, `llm_calls` and `schema_migrations` become reference tables
(`create_reference_table`). Lookups by id alone (ids are globally unique) are then
multi-shard queries. `migrate` does this itself on a database with the `citus` extension
(`remem.stores.citus.distribute`). On one PostgreSQL server, notes are hash-partitioned by
owner instead (m007), so one user's rows and HNSW graph sit in one partition there too.

Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from remem import clock
from remem.stores.citus import distribute, has_citus
from remem.stores.postgres_bulk import build_index

LOCK_KEY = 0x72656D656D  # "remem": serialises concurrent migrations
log = logging.getLogger("remem")

M001_INITIAL = """
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE episodes (
    owner text NOT NULL,
    id text NOT NULL,
    seq bigserial,
    tenant text NOT NULL, user_id text, agent_id text, session_id text,
    role text, name text,
    text text NOT NULL,
    metadata jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (owner, id)
);
CREATE INDEX episodes_id ON episodes (id);
CREATE INDEX episodes_session ON episodes (tenant, session_id, occurred_at);
CREATE INDEX episodes_user ON episodes (tenant, user_id, occurred_at);
CREATE INDEX episodes_name ON episodes (tenant, lower(name));

CREATE TABLE notes (
    owner text NOT NULL,
    id text NOT NULL,
    seq bigserial,  -- insertion order: listing, cursors, session neighbours
    tenant text NOT NULL, user_id text, agent_id text, session_id text,
    kind text NOT NULL,
    text text NOT NULL,
    metadata jsonb NOT NULL,
    keywords jsonb NOT NULL,
    tags jsonb NOT NULL,
    context text,
    importance real NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL,
    valid_from timestamptz, valid_to timestamptz,
    superseded_by text,
    deleted_at timestamptz,
    passage bigint,
    -- what full-text search reads (NULL once deleted): the note, and the turn before it
    body text,
    previous_body text,
    body_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(body, ''))) STORED,
    context_tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(body, '')), 'A')
        || setweight(to_tsvector('english', coalesce(previous_body, '')), 'B')
    ) STORED,
    embedding vector,
    PRIMARY KEY (owner, id)
);
CREATE INDEX notes_id ON notes (id);
CREATE INDEX notes_seq ON notes (seq);
CREATE INDEX notes_user ON notes (tenant, user_id, seq);
CREATE INDEX notes_agent ON notes (tenant, agent_id, seq);
CREATE INDEX notes_session ON notes (tenant, session_id, seq);
CREATE INDEX notes_passage ON notes (passage);
CREATE INDEX notes_body_tsv ON notes USING gin (body_tsv);
CREATE INDEX notes_context_tsv ON notes USING gin (context_tsv);

CREATE TABLE note_sources (
    owner text NOT NULL,
    note_id text NOT NULL,
    episode_id text NOT NULL,
    rank integer NOT NULL,
    PRIMARY KEY (owner, note_id, episode_id)
);
CREATE INDEX note_sources_episode ON note_sources (episode_id);
CREATE INDEX note_sources_note ON note_sources (note_id, rank);

CREATE TABLE links (
    owner text NOT NULL,
    id text NOT NULL,
    source_id text NOT NULL,
    target_id text NOT NULL,
    relation text NOT NULL,
    weight real NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE INDEX links_source ON links (source_id);
CREATE INDEX links_target ON links (target_id);

CREATE TABLE events (
    owner text NOT NULL,
    id text NOT NULL,
    seq bigserial,
    action text NOT NULL,
    target_id text NOT NULL,
    tenant text NOT NULL, user_id text, agent_id text, session_id text,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    before jsonb,
    after jsonb,
    PRIMARY KEY (owner, id)
);
CREATE INDEX events_target ON events (target_id, seq);

CREATE TABLE jobs (
    owner text NOT NULL,
    id text NOT NULL,
    kind text NOT NULL,
    target_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    attempts integer NOT NULL,
    last_error text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    payload jsonb NOT NULL,
    lease text,
    leased_until timestamptz,
    PRIMARY KEY (owner, id)
);
CREATE INDEX jobs_id ON jobs (id);
CREATE INDEX jobs_status ON jobs (status, created_at);

-- consecutive turns of one session, searched as one text (coarse-to-fine recall)
CREATE TABLE passages (
    owner text NOT NULL,
    pk bigserial,
    tenant text NOT NULL, user_id text, agent_id text, session_id text NOT NULL,
    notes integer NOT NULL,
    body text NOT NULL DEFAULT '',
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED,
    PRIMARY KEY (owner, pk)
);
CREATE INDEX passages_session ON passages (tenant, session_id, pk);
CREATE INDEX passages_tsv ON passages USING gin (tsv);

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    name text NOT NULL,
    digest text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE TABLE llm_calls (
    pk bigserial PRIMARY KEY,
    job_id text NOT NULL,
    step text NOT NULL,
    model text NOT NULL,
    calls integer NOT NULL,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    latency_ms real NOT NULL,
    ok boolean NOT NULL,
    at timestamptz NOT NULL
);
"""

# one float32 vector per sentence of a note of two or more sentences, row after row
M002_SENTENCE_VECTORS = "ALTER TABLE notes ADD COLUMN sentence_embeddings bytea;"

# `list` pages notes by when they were said (occurred_at), ties in the order added
M003_NOTES_BY_TIME = "CREATE INDEX notes_time ON notes (occurred_at, seq);"

# the conversation a turn belongs to: its session, or the thread inferred when the app gave
# none (a passage's session_id holds that thread, as it always held the session). Earlier
# turns without a session stay without a thread.
M004_THREADS = """
ALTER TABLE notes ADD COLUMN thread text;
UPDATE notes SET thread = session_id WHERE kind = 'turn';
CREATE INDEX notes_thread ON notes (tenant, thread, seq);
CREATE INDEX notes_owner_time ON notes (tenant, user_id, occurred_at)
    WHERE session_id IS NULL AND thread IS NOT NULL;
"""

# how often and when a note was last returned to a caller (bumped in batches); pinned:
# never decays, always eligible for context; expired and archived notes leave search and
# context (an expired one is purged by the sweep). The sweep reads by expiry across owners.
M005_LIFECYCLE = """
ALTER TABLE notes ADD COLUMN access_count integer NOT NULL DEFAULT 0;
ALTER TABLE notes ADD COLUMN last_accessed_at timestamptz;
ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
ALTER TABLE notes ADD COLUMN expires_at timestamptz;
ALTER TABLE notes ADD COLUMN archived_at timestamptz;
CREATE INDEX notes_expires ON notes (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX notes_archived ON notes (tenant, user_id, archived_at)
    WHERE archived_at IS NOT NULL;
"""

# room on each page of notes for a new version of a row: counting a read (access_count,
# last_accessed_at; neither indexed) then updates the row in place (a HOT update) instead
# of adding an entry to each of the notes' 15 indexes, its HNSW graph included. Measured
# on 100k notes (~10 rows a page) after 60 searches: 7% of those updates in place at the
# default 100, 71% at 80. Pages written from now on keep the room.
M006_ROOM_FOR_UPDATES = "ALTER TABLE notes SET (fillfactor = 80);"

NOTE_PARTITIONS = 16


def m007_notes_by_owner(conn: psycopg.Connection[Any]) -> None:
    """Notes hash-partitioned by owner, as Citus shards them (there, nothing to do), so a
    user's vector search walks the HNSW graph of the user's partition, not one graph of
    every user's notes filtered afterwards: in a 1M-note table, a user holding a tenth of
    it made the search visit ten times the graph to find its neighbours. Existing notes
    move into the partitions, keeping their indexes (under the same names) and their
    order (`seq` keeps its sequence)."""
    if has_citus(conn):
        return
    _refuse_views(conn)
    indexes = _tuples(
        conn,
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = 'notes' AND indexname != 'notes_pkey' ORDER BY indexname",
    )
    columns = ", ".join(
        name
        for (name,) in _tuples(
            conn,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'notes'"
            " AND table_schema = current_schema() AND is_generated = 'NEVER'"
            " ORDER BY ordinal_position",
        )
    )
    [(count,)] = _tuples(conn, "SELECT count(*) FROM notes")
    if count >= 100_000:  # minutes of work, once: say why opening the memory waits
        log.warning("moving %s notes into partitions by owner (once; ~5 min a million)", count)
    conn.execute("ALTER TABLE notes RENAME TO notes_unpartitioned")
    conn.execute("ALTER TABLE notes_unpartitioned DROP CONSTRAINT notes_pkey")
    for name, _ in indexes:  # the new table's take their names
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute(
        "CREATE TABLE notes (LIKE notes_unpartitioned INCLUDING DEFAULTS INCLUDING GENERATED"
        " INCLUDING CONSTRAINTS, PRIMARY KEY (owner, id)) PARTITION BY HASH (owner)"
    )
    for remainder in range(NOTE_PARTITIONS):
        conn.execute(
            f"CREATE TABLE notes_{remainder} PARTITION OF notes FOR VALUES WITH"
            f" (MODULUS {NOTE_PARTITIONS}, REMAINDER {remainder}) WITH (fillfactor = 80)"
        )
    conn.execute(f"INSERT INTO notes ({columns}) SELECT {columns} FROM notes_unpartitioned")
    [(sequence,)] = _tuples(conn, "SELECT pg_get_serial_sequence('notes_unpartitioned', 'seq')")
    conn.execute(f"ALTER SEQUENCE {sequence} OWNED BY notes.seq")
    _grant_again(conn)
    conn.execute("DROP TABLE notes_unpartitioned")
    for _, definition in indexes:
        build_index(conn, definition)  # in memory, HNSW graphs included; retried if need be
    if count:  # the full-text budget asks the planner's statistics
        conn.execute("ANALYZE notes")


def _refuse_views(conn: psycopg.Connection[Any]) -> None:
    """Views on notes would hold on to the old table: the move asks for them to go first."""
    views = [
        name
        for (name,) in _tuples(
            conn,
            "SELECT DISTINCT v.oid::regclass::text FROM pg_depend d"
            " JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class"
            " WHERE d.refobjid = 'notes'::regclass AND v.oid != 'notes'::regclass",
        )
    ]
    if views:
        raise RuntimeError(
            f"views rest on the notes table ({', '.join(sorted(views))}): this remem moves"
            " notes into partitions by owner; drop the views, open the memory once, then"
            " create them again"
        )


def _grant_again(conn: psycopg.Connection[Any]) -> None:
    """The privileges other roles held on the old notes table, on the new one."""
    granted = _tuples(
        conn,
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,"
        " a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
        " LEFT JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE c.oid = 'notes_unpartitioned'::regclass AND a.grantee != c.relowner",
    )
    for who, what in granted:
        conn.execute(f"GRANT {what} ON notes TO {who}")


def _tuples(conn: psycopg.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    """A query's rows as tuples, whatever rows the migrating connection makes."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        return cursor.execute(sql).fetchall()


MIGRATIONS: list[tuple[str, str | Callable[[psycopg.Connection[Any]], None]]] = [
    ("m001_initial", M001_INITIAL),
    ("m002_sentence_vectors", M002_SENTENCE_VECTORS),
    ("m003_notes_by_time", M003_NOTES_BY_TIME),
    ("m004_threads", M004_THREADS),
    ("m005_lifecycle", M005_LIFECYCLE),
    ("m006_room_for_updates", M006_ROOM_FOR_UPDATES),
    ("m007_notes_by_owner", m007_notes_by_owner),
]


def migrate(conn: psycopg.Connection[Any], target: int | None = None) -> int:
    """Apply every migration not yet applied (up to `target`, for tests of upgrades);
    return the schema version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
        )
        row: Any = conn.execute(
            "SELECT coalesce(max(version), 0) AS version FROM schema_migrations"
        ).fetchone()
        current = int(row["version"])
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"this database has schema version {current}, newer than this remem "
                f"({len(MIGRATIONS)}); upgrade remem"
            )
        last = len(MIGRATIONS) if target is None else target
        for version in range(current + 1, last + 1):
            name, script = MIGRATIONS[version - 1]
            if callable(script):
                script(conn)
            else:
                conn.execute(script)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                (version, name, clock.now()),
            )
        distribute(conn)  # on a Citus cluster: tables still local to the coordinator
    return max(current, last)
