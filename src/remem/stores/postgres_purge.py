"""Erasing records from the PostgreSQL store (`Changes.purge`), inside the batch's
transaction: the same as the SQLite store does (see `sqlite_purge`). The rows are deleted;
PostgreSQL reuses their space after its next (auto)vacuum, and `VACUUM FULL` rewrites the
tables at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from remem.stores.postgres_writes import rebuild_passage

# The turn just after a note in its session (any state): its previous_body may quote it.
FOLLOWER = (
    "SELECT f.id FROM notes f WHERE f.tenant = n.tenant AND f.session_id = n.session_id"
    " AND f.user_id IS NOT DISTINCT FROM n.user_id AND f.agent_id IS NOT DISTINCT FROM"
    " n.agent_id AND f.kind = 'turn' AND f.seq > n.seq ORDER BY f.seq LIMIT 1"
)


def purge(conn: psycopg.Connection[dict[str, Any]], ids: Sequence[str]) -> None:
    """Erase the episodes and notes with these ids, and what was derived from them."""
    ids = list(dict.fromkeys(ids))
    notes = conn.execute(
        f"SELECT n.passage, ({FOLLOWER}) AS follower FROM notes n WHERE n.id = ANY(%s)", (ids,)
    ).fetchall()
    for table, column in (
        ("note_sources", "note_id"),
        ("note_sources", "episode_id"),
        ("links", "source_id"),
        ("links", "target_id"),
        ("jobs", "target_id"),
    ):
        conn.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", (ids,))
    conn.execute(
        "DELETE FROM jobs WHERE kind != 'embed' AND payload->'episodes' ?| %s::text[]", (ids,)
    )
    conn.execute("UPDATE events SET before = NULL, after = NULL WHERE target_id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM notes WHERE id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM episodes WHERE id = ANY(%s)", (ids,))
    for passage in {row["passage"] for row in notes if row["passage"] is not None}:
        rebuild_passage(conn, passage)
    followers = [row["follower"] for row in notes if row["follower"] not in (None, *ids)]
    conn.execute(
        "UPDATE notes SET previous_body = (SELECT p.body FROM notes p WHERE"
        " p.tenant = notes.tenant AND p.session_id = notes.session_id"
        " AND p.user_id IS NOT DISTINCT FROM notes.user_id"
        " AND p.agent_id IS NOT DISTINCT FROM notes.agent_id AND p.kind = 'turn'"
        " AND p.deleted_at IS NULL AND p.seq < notes.seq ORDER BY p.seq DESC LIMIT 1)"
        " WHERE id = ANY(%s)",
        (followers,),
    )
