"""The PostgreSQL store on a Citus cluster: where its tables live, and the statements that
differ when they are spread over workers.

A database with the `citus` extension gets remem's per-owner tables distributed by their
`owner` column (the tenant and the scope's user, else agent, else session) and co-located,
so one owner's rows sit on one shard and a query naming the owner is routed there. `meta`
(settings, and per-owner profile state written by most adds) is distributed by its key:
as a reference table every upsert of it would lock it cluster-wide until commit. The other
shared tables, rarely written, become reference tables, copied to every node. `distribute`
runs after the migrations each time a store opens, so it also places the tables of a
database that gained Citus after remem first ran there. On plain PostgreSQL it does nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
import psycopg.sql

PER_OWNER = ("episodes", "notes", "note_sources", "links", "events", "jobs", "passages")
BY_KEY = {"meta": "key"}  # distributed by their primary key, co-located with nothing
SHARED = ("schema_migrations", "api_keys", "llm_calls")
CLAIM_CANDIDATES = 16  # pending jobs tried per round when claiming one


def has_citus(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database is a Citus coordinator (has the `citus` extension)."""
    row = conn.execute("SELECT count(*) AS n FROM pg_extension WHERE extname = 'citus'").fetchone()
    return row is not None and int(_first(row)) > 0


def distribute(conn: psycopg.Connection[Any]) -> None:
    """Place each remem table that is still local to the coordinator: per-owner tables
    distributed by owner (co-located with `episodes`), `meta` by key, the other shared
    ones as reference tables."""
    if not has_citus(conn):
        return
    columns = {
        table: ("owner", "none" if table == PER_OWNER[0] else PER_OWNER[0]) for table in PER_OWNER
    }
    columns |= {table: (column, "none") for table, column in BY_KEY.items()}
    for table, (column, colocated) in columns.items():
        if not _placed(conn, table):
            conn.execute(
                "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                (table, column, colocated),
            )
    for table in SHARED:
        if not _placed(conn, table):
            conn.execute("SELECT create_reference_table(%s)", (table,))


def _placed(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_dist_partition WHERE logicalrelid = to_regclass(%s)",
        (table,),
    ).fetchone()
    return row is not None and int(_first(row)) > 0


def _first(row: Any) -> Any:
    return row["n"] if isinstance(row, dict) else row[0]


def owners_of(
    conn: psycopg.Connection[dict[str, Any]], table: str, ids: Sequence[str]
) -> dict[str, str]:
    """The owner of each row of `table` with one of these ids (ids are unique across owners)."""
    if not ids:
        return {}
    rows = conn.execute(
        f"SELECT id, owner FROM {table} WHERE id = ANY(%s)", (list(dict.fromkeys(ids)),)
    ).fetchall()
    return {row["id"]: row["owner"] for row in rows}


def locked_rows(
    conn: psycopg.Connection[dict[str, Any]],
    table: str,
    ids: Sequence[str],
    columns: str,
    known: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """`columns` of the rows with these ids, locked FOR UPDATE in (owner, id) order: one
    statement per owner, since Citus locks rows only in a query routed to one shard.
    `known` gives owners already known (the rest are looked up, across shards)."""
    owners = {row_id: known[row_id] for row_id in ids if known and row_id in known}
    owners |= owners_of(conn, table, [row_id for row_id in ids if row_id not in owners])
    by_owner: dict[str, list[str]] = {}
    for row_id, owner in owners.items():
        by_owner.setdefault(owner, []).append(row_id)
    rows: list[dict[str, Any]] = []
    for owner in sorted(by_owner):
        rows += conn.execute(
            f"SELECT {columns} FROM {table} WHERE owner = %s AND id = ANY(%s)"
            " ORDER BY id FOR UPDATE",
            (owner, sorted(by_owner[owner])),
        ).fetchall()
    return rows


def claim_job(
    conn: psycopg.Connection[dict[str, Any]], token: str, until: datetime, job_id: str | None
) -> dict[str, Any] | None:
    """Lease the oldest claimable job, without `FOR UPDATE SKIP LOCKED` across shards (which
    Citus cannot run): read the oldest candidates, then take one with a routed
    compare-and-set. A round whose every candidate another worker took reads again."""
    which, params = ("AND id = %s", [job_id]) if job_id else ("", [])
    claimable = (
        "status = 'pending' AND kind != 'embed' AND (leased_until IS NULL OR leased_until < now())"
    )
    while True:
        candidates = conn.execute(
            f"SELECT owner, id FROM jobs WHERE {claimable} {which}"
            " ORDER BY created_at, id LIMIT %s",
            [*params, CLAIM_CANDIDATES],
        ).fetchall()
        if not candidates:
            return None
        for candidate in candidates:
            row = conn.execute(
                "UPDATE jobs SET lease = %s, leased_until = %s"
                f" WHERE owner = %s AND id = %s AND {claimable} RETURNING *",
                (token, until, candidate["owner"], candidate["id"]),
            ).fetchone()
            if row is not None:
                return row


class KnownOwners:
    """Which owner each id's rows live under, as far as this process has seen: filled from
    rows read or written and from the results of a search routed to one owner. An id's
    owner never changes and ids are never reused, so an entry is never wrong; it lets a
    lookup by ids name their owners, and Citus then asks one shard instead of all."""

    LIMIT = 200_000  # entries kept; past it, start again (the cost of forgetting is speed)

    def __init__(self) -> None:
        self._owner: dict[str, str] = {}

    def learn(self, owner: str, ids: Iterable[str]) -> None:
        if len(self._owner) >= self.LIMIT:
            self._owner.clear()
        self._owner.update(dict.fromkeys(ids, owner))

    def learn_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Owners from rows read: a row's own, and its neighbours' in the thread (`describe`
        joins them on the owner, so they share the row's)."""
        for row in rows:
            if "id" not in row:
                continue
            owner = row["owner"] if "owner" in row else self._owner.get(row["id"])
            if owner is not None:
                near = [row.get("previous"), row.get("following")]
                self.learn(owner, [row["id"], *(other for other in near if other)])

    def of(self, ids: Sequence[str]) -> list[str] | None:
        """The owners of these ids, when every one is known."""
        owners = set()
        for row_id in ids:
            owner = self._owner.get(row_id)
            if owner is None:
                return None
            owners.add(owner)
        return sorted(owners)


# `<alias.>id {ids}` or `<alias.>note_id {ids}`: a lookup of rows by their own id or their
# note's, whose owner is that id's owner
ROUTABLE = re.compile(r"\b(?:(\w+)\.)?(?:id|note_id) \{ids\}")
SAME_OWNER = re.compile(r"\b(\w+)\.owner = \w+\.owner\b")  # a join of two per-owner tables
PLAIN = re.compile(r"[\w:.@+-]*")  # owners written into SQL as literals


def routed_among(sql: str, owners: Sequence[str]) -> tuple[str, Any] | None:
    """Shared SQL whose id lookup also names the owners, and the parameter to bind right
    after the ids; None when the lookup is not one by a row's own id or its note's. One
    owner is named by `=`: Citus routes that to one shard, not `= ANY` beside a join."""
    match = ROUTABLE.search(sql)
    if match is None or sql.count("{ids}") != 1:
        return None
    alias = f"{match.group(1)}." if match.group(1) else ""
    test, value = ("= ?", owners[0]) if len(owners) == 1 else ("= ANY(?)", list(owners))
    routed = sql[: match.end()] + f" AND {alias}owner {test}" + sql[match.end() :]
    if len(owners) == 1 and PLAIN.fullmatch(owners[0]):
        # joins name the owner too (a correlated subquery is routed only so), as a literal:
        # one without `?` or `%`, which the placeholders' rendering would take for its own
        literal = psycopg.sql.Literal(owners[0]).as_string(None)
        routed = SAME_OWNER.sub(lambda join: f"{join[1]}.owner = {literal}", routed)
    return routed, value
