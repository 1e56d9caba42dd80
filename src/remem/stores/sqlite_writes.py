"""The writes of the SQLite store: one `apply` batch, inside its transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace

from remem.stores.base import (
    PASSAGE_NOTES,
    RESTING_THOUGHTS,
    Changes,
    LeaseLostError,
    MetaChangedError,
    StaleWriteError,
    unsettled_thought,
)
from remem.stores.rows import (
    episode_row,
    event_row,
    job_row,
    link_row,
    llm_call_row,
    note_row,
    optional_blob,
    vector_blob,
)
from remem.types import Note, Scope

ID_CHUNK = 500  # ids bound to one statement, well under SQLite's limit of variables


@dataclass
class _NoteBatch:
    """What writing one batch's notes learns on the way, so that a note costs a few
    statements rather than one per question (800 LoCoMo turns a session per add: 3.8k
    statements fewer, 13.9k -> 10.1k, reads included)."""

    stored: dict[str, tuple[int, int | None]]  # note id -> (pk, passage) of rows already there
    sources: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    in_threads: list[tuple[Scope, int, str]] = field(default_factory=list)
    last_turn: dict[Scope, str] = field(default_factory=dict)  # thread -> its newest turn's body


# Past every revision ever written, a purged note's too: other processes catch up from the
# last revision they saw, and would never see a new note given a purged note's number. A
# purge records the highest revision before it deletes (KEEP_PURGED_REVISION).
NEXT_REVISION = (
    "SELECT max(coalesce((SELECT max(revision) FROM notes), 0), coalesce((SELECT"
    " CAST(value AS INTEGER) FROM meta WHERE key = 'purged_revision'), 0)) + 1"
)
KEEP_PURGED_REVISION = (
    "INSERT INTO meta (key, value) SELECT 'purged_revision', coalesce(max(revision), 0)"
    " FROM notes WHERE true ON CONFLICT (key) DO UPDATE SET value ="
    " max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))"
)


class Writer:
    """Writes a `Changes` batch: rows, the full-text index, passages, revisions."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def write(self, changes: Changes) -> None:
        if changes.lease is not None:
            self._check_lease(*changes.lease)
        self._check_versions(changes.expect)
        self._check_meta(changes.expect_meta)
        self._check_thoughts(changes)
        self._write(changes)

    def _check_versions(self, expected: dict[str, int]) -> None:
        """Every note the batch was computed from is still live at that version (the
        transaction holds the write lock, so it stays so until commit)."""
        for note_id, version in expected.items():
            row = self.db.execute(
                "SELECT version, deleted_at FROM notes WHERE id = ?", (note_id,)
            ).fetchone()
            current = None if row is None or row[1] is not None else row[0]
            if current != version:
                raise StaleWriteError(note_id, version, current)

    def _check_meta(self, expected: dict[str, str | None]) -> None:
        """Every meta row the batch was computed from still holds what it read."""
        for key, value in expected.items():
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if (row[0] if row else None) != value:
                raise MetaChangedError(key)

    def _check_thoughts(self, changes: Changes) -> None:
        """No live thought rests on a note of `evidence_changed` unless the batch writes it
        (one made since the batch was read would outlive its evidence)."""
        ids = list(changes.evidence_changed)
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            sql = RESTING_THOUGHTS.format(
                same_owner="", route="", ids=f"IN ({','.join('?' * len(chunk))})"
            )
            unsettled_thought(changes, self.db.execute(sql, chunk).fetchall())

    def _check_lease(self, job_id: str, token: str) -> None:
        row = self.db.execute("SELECT status, lease FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row[0] != "pending" or row[1] != token:
            raise LeaseLostError(f"job {job_id} is no longer leased to this worker")

    def _write(self, changes: Changes) -> None:
        db = self.db
        db.executemany(
            "INSERT INTO episodes (id, user_id, agent_id, session_id, tenant, role, name, text,"
            " metadata, occurred_at, recorded_at, deleted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata,"
            " deleted_at = excluded.deleted_at",
            [episode_row(e) for e in changes.episodes],
        )
        (revision,) = db.execute(NEXT_REVISION).fetchone()
        batch = _NoteBatch(self._stored([note.id for note in changes.notes]))
        for note in changes.notes:
            self._write_note(note, changes.bodies.get(note.id), revision, batch)
        db.executemany(
            "INSERT INTO note_sources VALUES (?, ?, ?)",
            [row for rows in batch.sources.values() for row in rows],
        )
        self._append_to_passages(batch.in_threads)
        db.executemany(
            "INSERT INTO vectors (note_id, vector, sentences) VALUES (?, ?, ?)"
            " ON CONFLICT (note_id) DO UPDATE SET vector = excluded.vector,"
            " sentences = excluded.sentences",
            [
                (note_id, vector_blob(v), optional_blob(changes.sentence_vectors.get(note_id)))
                for note_id, v in changes.vectors.items()
            ],
        )
        db.executemany(  # the notes written above have this revision already
            "UPDATE notes SET revision = ? WHERE id = ?",
            [(revision, note_id) for note_id in changes.vectors if note_id not in batch.stored],
        )
        db.executemany(
            "INSERT OR REPLACE INTO links VALUES (?,?,?,?,?,?,?)",
            [link_row(ln) for ln in changes.links],
        )
        db.executemany(
            "INSERT INTO events (id, action, target_id, user_id, agent_id, session_id, tenant, at,"
            " actor, before, after) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [event_row(e) for e in changes.events],
        )
        db.executemany(
            "INSERT OR REPLACE INTO jobs (id, kind, target_id, status, attempts, last_error,"
            " created_at, updated_at, payload, lease, leased_until)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [job_row(j) for j in changes.jobs],
        )
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(changes.meta.items()))
        db.executemany(
            "INSERT INTO llm_calls (job_id, step, model, calls, prompt_tokens, completion_tokens,"
            " latency_ms, ok, at) VALUES (?,?,?,?,?,?,?,?,?)",
            [llm_call_row(c) for c in changes.llm_calls],
        )

    def _stored(self, ids: list[str]) -> dict[str, tuple[int, int | None]]:
        """The pk and passage of each of these notes that has a row, in few queries."""
        found: dict[str, tuple[int, int | None]] = {}
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            rows = self.db.execute(
                f"SELECT id, pk, passage FROM notes WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update((row[0], (row[1], row[2])) for row in rows)
        return found

    def _write_note(self, note: Note, body: str | None, revision: int, batch: _NoteBatch) -> None:
        db = self.db
        existing = batch.stored.get(note.id)
        written = db.execute(
            "INSERT INTO notes (id, user_id, agent_id, session_id, tenant, text, metadata,"
            " keywords, tags, context, importance, occurred_at, created_at, updated_at, version,"
            " valid_from, valid_to, superseded_by, deleted_at, kind, thread, access_count,"
            " last_accessed_at, pinned, expires_at, archived_at, revision)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata,"
            " keywords = excluded.keywords, tags = excluded.tags, context = excluded.context,"
            " importance = excluded.importance, occurred_at = excluded.occurred_at,"
            " updated_at = excluded.updated_at, version = excluded.version,"
            " valid_from = excluded.valid_from, valid_to = excluded.valid_to,"
            " superseded_by = excluded.superseded_by, deleted_at = excluded.deleted_at,"
            " thread = excluded.thread, pinned = excluded.pinned,"
            " expires_at = excluded.expires_at, archived_at = excluded.archived_at,"
            " revision = excluded.revision",  # access counts are bumped, never rewritten
            (*note_row(note), revision),
        )
        # An existing note keeps its pk; a new one gets the row id its insert created.
        pk: int = existing[0] if existing else written.lastrowid or 0
        # a repeat of this note later in the batch updates the row made here
        batch.stored.setdefault(note.id, (pk, None))
        batch.sources[note.id] = [(note.id, e, rank) for rank, e in enumerate(note.episode_ids)]
        if existing is None:
            if note.deleted_at is None and body is not None:
                self._index_new_note(note, pk, body, batch)
            return
        db.execute("DELETE FROM note_sources WHERE note_id = ?", (note.id,))
        batch.last_turn.clear()  # the update may change which turn is a thread's newest
        if note.deleted_at is not None:
            db.execute("DELETE FROM notes_fts WHERE rowid = ?", (pk,))
        elif body is not None:
            row = db.execute("SELECT context FROM notes_fts WHERE rowid = ?", (pk,)).fetchone()
            db.execute("DELETE FROM notes_fts WHERE rowid = ?", (pk,))
            db.execute(
                "INSERT INTO notes_fts (rowid, body, context) VALUES (?, ?, ?)",
                (pk, body, row[0] if row else ""),
            )
        if existing[1] is not None:
            rebuild_passage(db, existing[1])

    def _index_new_note(self, note: Note, pk: int, body: str, batch: _NoteBatch) -> None:
        """The full-text row of a new note; a turn of a thread gets the turn before it as
        context (the batch's own previous turn of the thread, when it wrote one)."""
        db = self.db
        context = ""
        # a passage's `session_id` holds the thread of its turns
        in_thread = note.kind == "turn" and note.thread is not None
        scope = replace(note.scope, session_id=note.thread)
        if in_thread and scope in batch.last_turn:
            context = batch.last_turn[scope]
        elif in_thread:
            row = db.execute(
                "SELECT f.body FROM notes n JOIN notes_fts f ON f.rowid = n.pk"
                " WHERE n.thread = ? AND n.user_id IS ? AND n.agent_id IS ? AND n.tenant = ?"
                " AND n.kind = 'turn' AND n.pk < ? AND n.deleted_at IS NULL"
                " ORDER BY n.pk DESC LIMIT 1",
                (scope.session_id, scope.user_id, scope.agent_id, scope.tenant, pk),
            ).fetchone()
            context = row[0] if row else ""
        db.execute(
            "INSERT INTO notes_fts (rowid, body, context) VALUES (?, ?, ?)", (pk, body, context)
        )
        if in_thread:
            batch.last_turn[scope] = body
            batch.in_threads.append((scope, pk, body))

    def _append_to_passages(self, notes: list[tuple[Scope, int, str]]) -> None:
        """Add new session notes to their sessions' latest passages (or new ones when full),
        rewriting each passage's text once per batch rather than once per note."""
        db = self.db
        latest: dict[Scope, list[int]] = {}  # scope -> [passage pk, notes in it]
        added: dict[int, list[str]] = {}
        placed: list[tuple[int, int]] = []  # (passage pk, note pk)
        for scope, pk, body in notes:
            if scope not in latest:
                row = db.execute(
                    "SELECT pk, notes FROM passages WHERE session_id = ? AND user_id IS ?"
                    " AND agent_id IS ? AND tenant = ? ORDER BY pk DESC LIMIT 1",
                    (scope.session_id, scope.user_id, scope.agent_id, scope.tenant),
                ).fetchone()
                latest[scope] = list(row) if row else [0, PASSAGE_NOTES]
            current = latest[scope]
            if current[1] >= PASSAGE_NOTES:
                cursor = db.execute(
                    "INSERT INTO passages (user_id, agent_id, session_id, tenant, notes)"
                    " VALUES (?,?,?,?,0)",
                    (scope.user_id, scope.agent_id, scope.session_id, scope.tenant),
                )
                current[:] = [cursor.lastrowid or 0, 0]
            current[1] += 1
            added.setdefault(current[0], []).append(body)
            placed.append((current[0], pk))
        db.executemany("UPDATE notes SET passage = ? WHERE pk = ?", placed)
        for passage, bodies in added.items():
            row = db.execute("SELECT body FROM passages_fts WHERE rowid = ?", (passage,)).fetchone()
            db.execute("DELETE FROM passages_fts WHERE rowid = ?", (passage,))
            db.execute(
                "INSERT INTO passages_fts (rowid, body) VALUES (?, ?)",
                (passage, "\n".join(([row[0]] if row else []) + bodies)),
            )
            db.execute("UPDATE passages SET notes = notes + ? WHERE pk = ?", (len(bodies), passage))


def rebuild_passage(db: sqlite3.Connection, passage: int) -> None:
    """Re-derive a passage's text from its live notes, after one changed or went."""
    rows = db.execute(
        "SELECT f.body FROM notes n JOIN notes_fts f ON f.rowid = n.pk"
        " WHERE n.passage = ? AND n.deleted_at IS NULL ORDER BY n.pk",
        (passage,),
    ).fetchall()
    db.execute("DELETE FROM passages_fts WHERE rowid = ?", (passage,))
    if rows:
        db.execute(
            "INSERT INTO passages_fts (rowid, body) VALUES (?, ?)",
            (passage, "\n".join(row[0] for row in rows)),
        )
