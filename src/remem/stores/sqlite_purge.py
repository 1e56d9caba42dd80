"""Erasing records from the SQLite store (`Changes.purge`), inside the batch's transaction.

Rows go, not only their text: episodes, notes, their sources, vectors, links, the jobs
that name them; the history of each keeps only its actions (payloads erased); passages
and the full-text context of the turn after a purged turn are derived again without it.
The store runs with `secure_delete`, so freed pages are zeroed, and the full-text indexes
are merged afterwards (`optimize`), so no index segment keeps a purged word.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from remem.stores.sqlite_writes import KEEP_PURGED_REVISION, rebuild_passage

IN_CHUNK = 900


def purge(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Erase the episodes and notes with these ids, and what was derived from them."""
    # notes made from a purged episode since the purge was planned go too
    derived = _rows(db, "SELECT note_id FROM note_sources WHERE episode_id IN ({})", ids)
    ids = list(dict.fromkeys([*ids, *(row[0] for row in derived)]))
    notes = _rows(db, "SELECT pk, passage FROM notes WHERE id IN ({})", ids)
    followers = _followers(db, ids)
    db.execute(KEEP_PURGED_REVISION)  # so no later note is given a purged note's revision
    _run(db, "DELETE FROM notes_fts WHERE rowid IN ({})", [row[0] for row in notes])
    for table, column in (
        ("vectors", "note_id"),
        ("note_sources", "note_id"),
        ("note_sources", "episode_id"),
        ("links", "source_id"),
        ("links", "target_id"),
        ("jobs", "target_id"),
    ):
        _run(db, f"DELETE FROM {table} WHERE {column} IN ({{}})", ids)
    _run(
        db,
        "DELETE FROM jobs WHERE kind != 'embed' AND EXISTS (SELECT 1 FROM"
        " json_each(jobs.payload, '$.episodes') WHERE value IN ({}))",
        ids,
    )
    _run(db, "UPDATE events SET before = NULL, after = NULL WHERE target_id IN ({})", ids)
    _run(  # a link event is kept under the note the link starts from, and may describe its target
        db,
        "UPDATE events SET before = NULL, after = NULL WHERE action = 'link'"
        " AND json_extract(after, '$.target_id') IN ({})",
        ids,
    )
    _run(db, "DELETE FROM notes WHERE id IN ({})", ids)
    _run(db, "DELETE FROM episodes WHERE id IN ({})", ids)
    for passage in {row[1] for row in notes if row[1] is not None}:
        rebuild_passage(db, passage)
    for follower in followers:
        _renew_context(db, follower)
    for index in ("notes_fts", "passages_fts"):
        db.execute(f"INSERT INTO {index} ({index}) VALUES ('optimize')")


def _followers(db: sqlite3.Connection, ids: list[str]) -> set[int]:
    """The turns after purged turns in their sessions: a turn's full-text context is the live
    turn before it when it was added, which may be a purged one even with deleted turns
    between them, so every later turn is given its context again."""
    rows = _rows(
        db,
        "SELECT f.pk FROM notes n JOIN notes f ON f.session_id = n.session_id"
        " AND f.user_id IS n.user_id AND f.agent_id IS n.agent_id AND f.tenant = n.tenant"
        " AND f.kind = 'turn' AND f.pk > n.pk"
        " WHERE n.session_id IS NOT NULL AND n.kind = 'turn' AND n.id IN ({})",
        ids,
    )
    purged = {row[0] for row in _rows(db, "SELECT pk FROM notes WHERE id IN ({})", ids)}
    return {row[0] for row in rows if row[0] is not None and row[0] not in purged}


def _renew_context(db: sqlite3.Connection, pk: int) -> None:
    """Give a turn's full-text row the live turn now before it as context."""
    row = db.execute("SELECT body FROM notes_fts WHERE rowid = ?", (pk,)).fetchone()
    if row is None:
        return  # deleted: it has no full-text row
    previous = db.execute(
        "SELECT f.body FROM notes n JOIN notes p ON p.session_id = n.session_id"
        " AND p.user_id IS n.user_id AND p.agent_id IS n.agent_id AND p.tenant = n.tenant"
        " JOIN notes_fts f ON f.rowid = p.pk WHERE n.pk = ? AND p.kind = 'turn'"
        " AND p.pk < n.pk AND p.deleted_at IS NULL ORDER BY p.pk DESC LIMIT 1",
        (pk,),
    ).fetchone()
    db.execute("DELETE FROM notes_fts WHERE rowid = ?", (pk,))
    db.execute(
        "INSERT INTO notes_fts (rowid, body, context) VALUES (?, ?, ?)",
        (pk, row[0], previous[0] if previous else ""),
    )


def _rows(db: sqlite3.Connection, sql: str, keys: Sequence[Any]) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(keys), IN_CHUNK):
        chunk = list(keys[start : start + IN_CHUNK])
        rows += db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
    return rows


def _run(db: sqlite3.Connection, sql: str, keys: Sequence[Any]) -> None:
    for start in range(0, len(keys), IN_CHUNK):
        chunk = list(keys[start : start + IN_CHUNK])
        db.execute(sql.format(",".join("?" * len(chunk))), chunk)
