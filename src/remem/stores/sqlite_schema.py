"""The SQLite schema, as numbered migrations. Each runs in the transaction that records it.

Never edit a migration that has shipped: add the next one. `MIGRATIONS` is the only list.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from remem import clock


def m001_initial(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

        CREATE TABLE episodes (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            user_id TEXT, agent_id TEXT, session_id TEXT,
            role TEXT, name TEXT,
            text TEXT NOT NULL,
            metadata TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            deleted_at TEXT
        );
        CREATE INDEX episodes_user ON episodes (user_id, occurred_at);
        CREATE INDEX episodes_agent ON episodes (agent_id, occurred_at);
        CREATE INDEX episodes_session ON episodes (session_id, occurred_at);
        -- finds the speakers a query names
        CREATE INDEX episodes_name ON episodes (lower(name));

        CREATE TABLE notes (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            user_id TEXT, agent_id TEXT, session_id TEXT,
            text TEXT NOT NULL,
            metadata TEXT NOT NULL,
            keywords TEXT NOT NULL,
            tags TEXT NOT NULL,
            context TEXT,
            importance REAL NOT NULL,
            occurred_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL,
            valid_from TEXT, valid_to TEXT,
            superseded_by TEXT,
            deleted_at TEXT,
            -- bumped on every write to the note or its vector: readers sync their index from it
            revision INTEGER NOT NULL,
            -- the passage (a run of consecutive notes of one session) the note belongs to
            passage INTEGER REFERENCES passages (pk)
        );
        CREATE INDEX notes_passage ON notes (passage);
        CREATE INDEX notes_revision ON notes (revision);
        CREATE INDEX notes_user ON notes (user_id, pk);
        CREATE INDEX notes_agent ON notes (agent_id, pk);
        CREATE INDEX notes_session ON notes (session_id, pk);

        -- provenance: which episodes a note came from, most relevant first
        CREATE TABLE note_sources (
            note_id TEXT NOT NULL REFERENCES notes (id),
            episode_id TEXT NOT NULL REFERENCES episodes (id),
            rank INTEGER NOT NULL,
            PRIMARY KEY (note_id, episode_id)
        );
        CREATE INDEX note_sources_episode ON note_sources (episode_id);

        CREATE TABLE links (
            id TEXT PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES notes (id),
            target_id TEXT NOT NULL REFERENCES notes (id),
            relation TEXT NOT NULL,
            weight REAL NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX links_source ON links (source_id);
        CREATE INDEX links_target ON links (target_id);

        -- float32 vectors, little-endian, in the space meta.embedder names
        CREATE TABLE vectors (
            note_id TEXT PRIMARY KEY REFERENCES notes (id),
            vector BLOB NOT NULL
        );

        -- append-only: seq orders the log and lets other readers catch up
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            action TEXT NOT NULL,
            target_id TEXT NOT NULL,
            user_id TEXT, agent_id TEXT, session_id TEXT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            before TEXT,
            after TEXT
        );
        CREATE INDEX events_target ON events (target_id, seq);

        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            target_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
            attempts INTEGER NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX jobs_status ON jobs (status, created_at);

        -- rowid = notes.pk; holds only live notes. `context` is the note before it in its
        -- session: a reply is often found through the words of what it replies to.
        CREATE VIRTUAL TABLE notes_fts USING fts5 (
            body, context, tokenize = 'porter unicode61 remove_diacritics 2'
        );

        -- consecutive notes of one session, searched as one text (coarse-to-fine recall)
        CREATE TABLE passages (
            pk INTEGER PRIMARY KEY,
            user_id TEXT, agent_id TEXT, session_id TEXT NOT NULL,
            notes INTEGER NOT NULL
        );
        CREATE INDEX passages_session ON passages (session_id, pk);
        -- rowid = passages.pk
        CREATE VIRTUAL TABLE passages_fts USING fts5 (
            body, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        """,
    )


def m002_tenants_and_keys(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        -- the account a served memory belongs to; '' is local use
        ALTER TABLE episodes ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
        ALTER TABLE notes ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
        ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
        ALTER TABLE passages ADD COLUMN tenant TEXT NOT NULL DEFAULT '';

        -- API keys of the server; only a digest of each secret is kept
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        """,
    )


def m003_organised_memory(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        -- 'turn': one episode, verbatim; 'fact': a statement a model extracted from episodes
        ALTER TABLE notes ADD COLUMN kind TEXT NOT NULL DEFAULT 'turn';
        CREATE INDEX notes_superseded ON notes (superseded_by);

        -- a job's input and the results of the steps it has finished (resumable), and the
        -- lease of the worker running it (a random token, and until when it holds)
        ALTER TABLE jobs ADD COLUMN payload TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE jobs ADD COLUMN lease TEXT;
        ALTER TABLE jobs ADD COLUMN leased_until TEXT;

        -- one row per model step: what the organising pipeline spent
        CREATE TABLE llm_calls (
            pk INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL,
            step TEXT NOT NULL,
            model TEXT NOT NULL,
            calls INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            latency_ms REAL NOT NULL,
            ok INTEGER NOT NULL,
            at TEXT NOT NULL
        );
        """,
    )


def _execute_script(db: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: `executescript` would commit the migration's transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


Migration = Callable[[sqlite3.Connection], None]


def m004_sentence_vectors(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        -- one float32 vector per sentence of a note of two or more sentences, row after row
        ALTER TABLE vectors ADD COLUMN sentences BLOB;
        """,
    )


def m005_notes_by_time(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        -- `list` pages notes by when they were said (occurred_at), ties in the order added
        CREATE INDEX notes_time ON notes (occurred_at, pk);
        """,
    )


def m006_threads(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        -- the conversation a turn belongs to: its session, or the thread inferred when the
        -- app gave none (a passage's session_id holds that thread, as it always held the
        -- session). Earlier turns without a session stay without a thread.
        ALTER TABLE notes ADD COLUMN thread TEXT;
        UPDATE notes SET thread = session_id WHERE kind = 'turn';
        CREATE INDEX notes_thread ON notes (thread, pk);
        CREATE INDEX notes_owner_time ON notes (tenant, user_id, occurred_at)
            WHERE session_id IS NULL AND thread IS NOT NULL;
        """,
    )


def m007_lifecycle(db: sqlite3.Connection) -> None:
    _execute_script(
        db,
        """
        -- how often and when a note was last returned to a caller (bumped in batches)
        ALTER TABLE notes ADD COLUMN access_count INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE notes ADD COLUMN last_accessed_at TEXT;
        -- pinned: never decays, always eligible for context; expired and archived notes
        -- leave search and context (an expired one is purged by the sweep)
        ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE notes ADD COLUMN expires_at TEXT;
        ALTER TABLE notes ADD COLUMN archived_at TEXT;
        CREATE INDEX notes_expires ON notes (expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX notes_archived ON notes (tenant, user_id, archived_at)
            WHERE archived_at IS NOT NULL;
        """,
    )


def m008_passages_by_owner(db: sqlite3.Connection) -> None:
    # a search asks how many passages a scope holds (a small one is ranked in full): an
    # index answers that without scanning every owner's passages
    db.execute("CREATE INDEX passages_owner ON passages (tenant, user_id, pk)")


MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_tenants_and_keys,
    m003_organised_memory,
    m004_sentence_vectors,
    m005_notes_by_time,
    m006_threads,
    m007_lifecycle,
    m008_passages_by_owner,
]


def enter_wal(db: sqlite3.Connection, patience: float) -> None:
    """Switch to write-ahead logging, waiting out other connections doing the same.

    Switching needs an exclusive lock, and SQLite reports "locked" at once, without its busy
    handler, when another connection is opening the same new file: so wait here instead
    (up to `patience` seconds)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def migrate(db: sqlite3.Connection, target: int | None = None) -> int:
    """Apply every migration not yet applied (up to `target`); return the schema version."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    (current,) = db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"this database has schema version {current}, newer than this remem "
            f"({len(MIGRATIONS)}); upgrade remem"
        )
    last = len(MIGRATIONS) if target is None else target
    for version in range(current + 1, last + 1):
        migration = MIGRATIONS[version - 1]
        db.execute("BEGIN IMMEDIATE")
        try:
            # another connection may have applied it since we looked (two opening a new file)
            if db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                db.execute("COMMIT")
                continue
            migration(db)
            db.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version, migration.__name__, clock.to_text(clock.now())),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return int(max(current, last))
