"""Erasing records from the PostgreSQL store (`Changes.purge`), inside the batch's
transaction: the same as the SQLite store does (see `sqlite_purge`). The rows are deleted;
PostgreSQL reuses their space after its next (auto)vacuum, and `VACUUM FULL` rewrites the
tables at once. Joins between notes name the owner too (implied by the same tenant, user,
agent and session), so Citus can run them on each shard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from remem.stores.postgres_writes import rebuild_passage

# The turns after a note in its session: a turn's previous_body is the live turn before it
# when it was added, which may be a purged one even with deleted turns between them.
FOLLOWERS = (
    "SELECT f.id FROM notes n JOIN notes f ON f.tenant = n.tenant"
    " AND f.session_id = n.session_id AND f.user_id IS NOT DISTINCT FROM n.user_id"
    " AND f.agent_id IS NOT DISTINCT FROM n.agent_id AND f.kind = 'turn' AND f.seq > n.seq"
    " AND f.owner = n.owner WHERE n.kind = 'turn' AND n.id = ANY(%s)"
)


def purge(conn: psycopg.Connection[dict[str, Any]], ids: Sequence[str]) -> None:
    """Erase the episodes and notes with these ids, and what was derived from them."""
    # notes made from a purged episode since the purge was planned go too
    derived = conn.execute(
        "SELECT note_id FROM note_sources WHERE episode_id = ANY(%s)", (list(ids),)
    ).fetchall()
    ids = list(dict.fromkeys([*ids, *(row["note_id"] for row in derived)]))
    notes = conn.execute("SELECT owner, passage FROM notes WHERE id = ANY(%s)", (ids,)).fetchall()
    followers = [row["id"] for row in conn.execute(FOLLOWERS, (ids,)).fetchall()]
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
    conn.execute(  # a link event is kept under the note it starts from, and names its target
        "UPDATE events SET before = NULL, after = NULL WHERE target_id = ANY(%s)"
        " OR (action = 'link' AND after->>'target_id' = ANY(%s))",
        (ids, ids),
    )
    conn.execute("DELETE FROM notes WHERE id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM episodes WHERE id = ANY(%s)", (ids,))
    for owner, passage in {(r["owner"], r["passage"]) for r in notes if r["passage"] is not None}:
        rebuild_passage(conn, owner, passage)
    followers = [follower for follower in followers if follower not in ids]
    conn.execute(
        "UPDATE notes SET previous_body = (SELECT p.body FROM notes p WHERE"
        " p.tenant = notes.tenant AND p.session_id = notes.session_id"
        " AND p.user_id IS NOT DISTINCT FROM notes.user_id"
        " AND p.agent_id IS NOT DISTINCT FROM notes.agent_id AND p.kind = 'turn'"
        " AND p.deleted_at IS NULL AND p.seq < notes.seq AND p.owner = notes.owner"
        " ORDER BY p.seq DESC LIMIT 1) WHERE id = ANY(%s)",
        (followers,),
    )
