"""The reads both stores run as the same SQL, written once and rendered for each dialect.

Shared SQL uses `?` for every parameter and `{ids}` (`IDS`) for "is one of a list of ids",
which is always the last parameter. A `Dialect` renders both: SQLite binds the list as
`IN (?,?,...)` in chunks, PostgreSQL as one array (`= ANY(%s)`). Each store supplies how a
statement is run (`_rows`, `_chunks`) and what truly differs: full-text and vector search,
claiming a job, transactions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from remem import clock
from remem.embedders.base import Vectors
from remem.stores.base import Dump, NoteFacts, NoteRecord, Replacement
from remem.stores.rows import (
    Row,
    episode_from_row,
    event_from_row,
    job_from_row,
    key_from_row,
    link_from_row,
    note_from_row,
    read_time,
    scope_sql,
    vectors_from_blob,
)
from remem.types import ApiKey, Episode, Event, Job, Link, Note, Scope

T = TypeVar("T")
IDS = "{ids}"  # where shared SQL tests a column against a bound list of ids

# every record a dump holds: what a copy between stores has to move
RECORD_COUNT = (
    "SELECT (SELECT count(*) FROM episodes) + (SELECT count(*) FROM notes)"
    " + (SELECT count(*) FROM links) + (SELECT count(*) FROM events)"
    " + (SELECT count(*) FROM jobs) AS n"
)
# What `Store.counts` reports: one count `n` each.
COUNT_QUERIES = {
    "records": RECORD_COUNT,
    "episodes": "SELECT count(*) AS n FROM episodes WHERE deleted_at IS NULL",
    "turn notes": "SELECT count(*) AS n FROM notes WHERE deleted_at IS NULL AND kind = 'turn'",
    "fact notes": "SELECT count(*) AS n FROM notes WHERE deleted_at IS NULL AND kind = 'fact'",
    "superseded": "SELECT count(*) AS n FROM notes WHERE superseded_by IS NOT NULL",
    "links": "SELECT count(*) AS n FROM links",
}
JOB_COUNTS = "SELECT status, count(*) AS n FROM jobs GROUP BY status"


# A note readers see (search, context, list, profile): not archived, not expired by the
# time bound after it (the sweep purges expired notes later; until then they are hidden).
def visible(prefix: str = "") -> str:
    """The condition (one `?`: now) that a note of the table alias `prefix` is visible."""
    return f"{prefix}archived_at IS NULL AND ({prefix}expires_at IS NULL OR {prefix}expires_at > ?)"


VISIBLE = visible()


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the shared SQL leaves open."""

    mark: str  # the driver's placeholder
    order: str  # the column numbering episodes and notes in the order they were written
    same: str  # equality that holds between two NULLs
    id_chunk: int | None  # ids bound per `IN` list; None: the whole list as one array
    # Rows are kept by their `owner` (Citus shards, PostgreSQL's partitions of notes):
    # joins between per-owner tables name it, and a scope with a user names its owner, so
    # each query is one Citus can route and PostgreSQL can prune to one partition.
    sharded: bool = False

    def route(self, scope: Scope, prefix: str = "", mark: str = "?") -> tuple[str, list[str]]:
        """A condition (ending in AND) naming the owner a sharded store keeps a scope's rows
        under, when the scope decides it (it has a user), and its parameter; else nothing."""
        if not self.sharded or scope.user_id is None:
            return "", []
        return f"{prefix}owner = {mark} AND ", [f"{scope.tenant}:{scope.user_id}"]

    def scope(self, scope: Scope, prefix: str) -> tuple[str, list[str]]:
        """`scope_sql` in this dialect's placeholders, routed to the owner's shard if sharded."""
        route, owner = self.route(scope, prefix, self.mark)
        where, params = scope_sql(scope, prefix, self.mark)
        return route + where, [*owner, *params]

    def same_owner(self, one: str, other: str) -> str:
        """A join condition between two per-owner tables' aliases, where rows are sharded."""
        return f" AND {one}.owner = {other}.owner" if self.sharded else ""

    def render(self, sql: str) -> str:
        """Shared SQL with the driver's placeholders."""
        return sql if self.mark == "?" else sql.replace("?", self.mark)

    def among(
        self, sql: str, ids: Sequence[Any], params: Sequence[Any] = ()
    ) -> Iterator[tuple[str, list[Any]]]:
        """Statements (with their parameters) that together test `IDS` against every id."""
        sql = self.render(sql)
        if self.id_chunk is None:
            yield sql.replace(IDS, f"= ANY({self.mark})"), [*params, list(ids)]
            return
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), self.id_chunk):
            chunk = unique[start : start + self.id_chunk]
            marks = ",".join([self.mark] * len(chunk))
            yield sql.replace(IDS, f"IN ({marks})"), [*params, *chunk]

    def neighbours(self) -> str:
        """Columns `previous` and `following`: the live turns just before and after a note
        in its thread (its session or the one inferred; for `describe`)."""
        return f"{self._turn('previous', '<', ' DESC')}, {self._turn('following', '>', '')}"

    def _turn(self, name: str, compare: str, direction: str) -> str:
        order, same = self.order, self.same
        return (
            "CASE WHEN n.thread IS NOT NULL AND n.kind = 'turn' THEN (SELECT p.id FROM notes p"
            f" WHERE p.thread = n.thread AND p.user_id {same} n.user_id"
            f" AND p.agent_id {same} n.agent_id AND p.tenant = n.tenant"
            f" AND p.{order} {compare} n.{order} AND p.deleted_at IS NULL AND p.kind = 'turn'"
            " AND p.archived_at IS NULL"  # (an expired one is dropped from the hits)
            f"{self.same_owner('p', 'n')} ORDER BY p.{order}{direction} LIMIT 1) END AS {name}"
        )


class SharedReads(ABC):
    """The `Store` reads that are the same SQL on every database (a store's base class)."""

    dialect: Dialect  # a class's own, or (PostgreSQL) chosen when the store opens

    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of one statement in the store's own dialect, read by column name."""

    @abstractmethod
    def _chunks(self, sql: str) -> Iterator[list[Row]]:
        """The rows of one statement in chunks, so a large table never sits in memory."""

    @abstractmethod
    def _note_records(self) -> Iterator[NoteRecord]:
        """Every note with its vectors, oldest first (for `dump`)."""

    # -- records ---------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def get_episodes(self, ids: Sequence[str]) -> dict[str, Episode]:
        rows = self._read_among(f"SELECT * FROM episodes WHERE id {IDS}", ids)
        return {row["id"]: episode_from_row(row) for row in rows}

    def get_notes(self, ids: Sequence[str]) -> dict[str, Note]:
        rows = self._read_among(f"SELECT * FROM notes WHERE id {IDS}", ids)
        return {note.id: note for note in self._notes(rows)}

    def list_notes(
        self,
        scope: Scope,
        limit: int,
        cursor: str | None,
        order: str = "oldest",
        archived: bool = False,
    ) -> tuple[list[Note], str | None]:
        where, params = self._scope(scope)
        if archived:
            where += " AND archived_at IS NOT NULL"
        else:
            where, params = f"{where} AND {VISIBLE}", [*params, clock.to_text(clock.now())]
        number = self.dialect.order
        moment, row = _read_cursor(cursor, order)
        bound: tuple[Any, ...]
        if order == "added":
            after, bound, sort = f"{number} > ?", (row,), number
        else:
            compare, direction = (">", "") if order == "oldest" else ("<", " DESC")
            after = f"(occurred_at {compare} ? OR (occurred_at = ? AND {number} {compare} ?))"
            bound = (moment, moment, row)
            sort = f"occurred_at{direction}, {number}{direction}"
        rows = self._read(
            f"SELECT * FROM notes WHERE deleted_at IS NULL AND {where} AND {after}"
            f" ORDER BY {sort} LIMIT ?",
            (*params, *bound, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return self._notes(rows), (_cursor_of(rows[-1], number) if more else None)

    def live_ids(
        self, scope: Scope, *, include_deleted: bool = False, visible: bool = False
    ) -> tuple[list[str], list[str]]:
        where, params = self._scope(scope)
        live = "" if include_deleted else "deleted_at IS NULL AND "
        episodes = self._read(f"SELECT id FROM episodes WHERE {live}{where}", params)
        shown, moment = (f" AND {VISIBLE}", [clock.to_text(clock.now())]) if visible else ("", [])
        notes = self._read(f"SELECT id FROM notes WHERE {live}{where}{shown}", [*params, *moment])
        return [row["id"] for row in episodes], [row["id"] for row in notes]

    def notes_of_episodes(
        self, episode_ids: Sequence[str], *, include_deleted: bool = False
    ) -> list[Note]:
        live = "" if include_deleted else "deleted_at IS NULL AND "
        rows = self._read_among(
            f"SELECT * FROM notes WHERE {live}id IN"
            f" (SELECT note_id FROM note_sources WHERE episode_id {IDS})",
            episode_ids,
        )
        return self._notes(rows)

    def events(self, target_id: str) -> list[Event]:
        rows = self._read("SELECT * FROM events WHERE target_id = ? ORDER BY seq", (target_id,))
        return [event_from_row(row) for row in rows]

    def links_of(self, note_id: str) -> list[Link]:
        rows = self._read(
            "SELECT * FROM links WHERE source_id = ? UNION SELECT * FROM links WHERE target_id = ?"
            " ORDER BY created_at, id",
            (note_id, note_id),
        )
        return [link_from_row(row) for row in rows]

    def links_to(
        self, note_ids: Sequence[str], relation: str, owner: Scope | None = None
    ) -> list[Link]:
        route, routed = self.dialect.route(owner) if owner is not None else ("", [])
        rows = self._read_among(
            f"SELECT * FROM links WHERE {route}relation = ? AND target_id {IDS}",
            note_ids,
            (*routed, relation),
        )
        return [link_from_row(row) for row in rows]

    def note_ids_ending(self, suffix: str, tenant: str, limit: int) -> list[str]:
        if not suffix.isascii() or not suffix.isalnum():
            return []  # ids end in letters and digits; nothing else reaches LIKE
        rows = self._read(
            "SELECT id FROM notes WHERE deleted_at IS NULL AND tenant = ? AND id LIKE ? LIMIT ?",
            (tenant, "%" + suffix, limit),
        )
        return [row["id"] for row in rows]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for table in ("episodes", "notes", "links", "events", "jobs"):
            rows = self._read_among(f"SELECT id FROM {table} WHERE id {IDS}", ids)
            found.update(row["id"] for row in rows)
        purged = self._read_among(
            f"SELECT target_id AS id FROM events WHERE action = 'purge' AND target_id {IDS}", ids
        )
        return found | {row["id"] for row in purged}

    def dump(self) -> Dump:
        return Dump(
            episodes=self._records(
                f"SELECT * FROM episodes ORDER BY {self.dialect.order}", episode_from_row
            ),
            notes=self._note_records(),
            links=self._records("SELECT * FROM links ORDER BY id", link_from_row),
            events=self._records("SELECT * FROM events ORDER BY seq", event_from_row),
            jobs=self._records("SELECT * FROM jobs ORDER BY id", job_from_row),
        )

    # -- retrieval -------------------------------------------------------------------------

    def describe(self, ids: Sequence[str], *, neighbours: bool = True) -> dict[str, NoteFacts]:
        around = self.dialect.neighbours() if neighbours else "NULL AS previous, NULL AS following"
        rows = self._read_among(
            f"SELECT n.id, n.passage, n.occurred_at, n.text, e.name, {around}"
            " FROM notes n LEFT JOIN note_sources s ON s.note_id = n.id AND s.rank = 0"
            f"{self.dialect.same_owner('s', 'n')}"
            f" LEFT JOIN episodes e ON e.id = s.episode_id{self.dialect.same_owner('e', 's')}"
            f" WHERE n.deleted_at IS NULL AND n.id {IDS}",
            ids,
        )
        return {
            row["id"]: NoteFacts(
                id=row["id"],
                text=row["text"],
                speaker=row["name"],
                occurred_at=read_time(row["occurred_at"]),
                passage=row["passage"],
                previous=row["previous"],
                following=row["following"],
            )
            for row in rows
        }

    def recent_episodes(self, scope: Scope, limit: int) -> list[Episode]:
        where, params = self._scope(scope)
        rows = self._read(
            f"SELECT * FROM episodes WHERE deleted_at IS NULL AND {where}"
            f" ORDER BY occurred_at DESC, {self.dialect.order} DESC LIMIT ?",
            (*params, limit),
        )
        hidden = self._hidden_turns(scope, [row["id"] for row in rows])
        return [episode_from_row(row) for row in rows if row["id"] not in hidden]

    def _hidden_turns(self, scope: Scope, episode_ids: Sequence[str]) -> set[str]:
        """Which of these episodes of the scope are the turn of an archived or expired note
        (routed to the scope's owner where sharded)."""
        route, owner = self.dialect.route(scope, "n.")
        rows = self._read_among(
            "SELECT s.episode_id FROM note_sources s JOIN notes n ON n.id = s.note_id"
            f"{self.dialect.same_owner('n', 's')} WHERE {route}n.kind = 'turn'"
            f" AND (n.archived_at IS NOT NULL OR n.expires_at <= ?) AND s.episode_id {IDS}",
            episode_ids,
            [*owner, clock.to_text(clock.now())],
        )
        return {row["episode_id"] for row in rows}

    def expired_notes(self, tenant: str | None, moment: datetime, limit: int) -> list[Note]:
        rows = self._read(
            "SELECT * FROM notes WHERE expires_at IS NOT NULL AND expires_at <= ?"
            f"{'' if tenant is None else ' AND tenant = ?'} ORDER BY expires_at LIMIT ?",
            (clock.to_text(moment), *([] if tenant is None else [tenant]), limit),
        )
        return self._notes(rows)

    def replaced_turns(self, ids: Sequence[str]) -> dict[str, Replacement]:
        turns = self._read_among(
            "SELECT s.note_id, s.episode_id FROM note_sources s JOIN notes n ON n.id = s.note_id"
            f"{self.dialect.same_owner('n', 's')} WHERE n.kind = 'turn' AND s.note_id {IDS}",
            ids,
        )
        episode_of = {row["note_id"]: row["episode_id"] for row in turns}
        outdated = self._read_among(
            "SELECT s.episode_id, f.superseded_by FROM note_sources s"
            f" JOIN notes f ON f.id = s.note_id{self.dialect.same_owner('f', 's')}"
            " WHERE f.kind = 'fact' AND f.superseded_by IS NOT NULL"
            f" AND f.valid_to IS NOT NULL AND s.episode_id {IDS}",
            list(episode_of.values()),
        )
        if not outdated:  # the common case: two cheap reads
            return {}
        latest = self._latest_facts({row["superseded_by"] for row in outdated})
        said_by = self._turns_saying(list(set(latest.values())))
        replaced_in = {
            row["episode_id"]: said_by.get(latest[row["superseded_by"]]) for row in outdated
        }
        return {
            turn: replacement
            for turn, episode in episode_of.items()
            if (replacement := replaced_in.get(episode)) is not None and replacement.turn_id != turn
        }

    def _latest_facts(self, facts: set[str]) -> dict[str, str]:
        """fact id -> the live fact at the end of its chain of supersessions."""
        latest = {fact: fact for fact in facts}
        for _ in range(8):  # chains are short; a cycle (never written) cannot loop forever
            rows = self._read_among(
                f"SELECT id, superseded_by FROM notes WHERE superseded_by IS NOT NULL AND id {IDS}",
                list(set(latest.values())),
            )
            if not rows:
                break
            newer = {row["id"]: row["superseded_by"] for row in rows}
            latest = {fact: newer.get(now, now) for fact, now in latest.items()}
        return latest

    def _turns_saying(self, facts: list[str]) -> dict[str, Replacement]:
        """fact id -> the live turn its first source episode is."""
        rows = self._read_among(
            "SELECT f.note_id AS fact, n.id, n.occurred_at, n.text FROM note_sources f"
            " JOIN note_sources t ON t.episode_id = f.episode_id"
            f"{self.dialect.same_owner('t', 'f')}"
            f" JOIN notes n ON n.id = t.note_id{self.dialect.same_owner('n', 't')}"
            f" WHERE f.rank = 0 AND n.kind = 'turn' AND n.deleted_at IS NULL AND f.note_id {IDS}",
            facts,
        )
        return {
            row["fact"]: Replacement(row["id"], read_time(row["occurred_at"]), row["text"])
            for row in rows
        }

    def thread_near(self, scope: Scope, moment: datetime, gap: timedelta) -> str | None:
        same, order = self.dialect.same, self.dialect.order
        route, routed = self.dialect.route(scope)
        owner = (
            f"{route}tenant = ? AND user_id {same} ? AND agent_id {same} ? AND session_id IS NULL"
            " AND thread IS NOT NULL AND kind = 'turn' AND deleted_at IS NULL"
        )
        keys = (*routed, scope.tenant, scope.user_id, scope.agent_id)
        nearest: list[Row] = []
        for compare, low, high, direction in (
            ("<=", moment - gap, moment, " DESC"),
            (">", moment, moment + gap, ""),
        ):
            nearest += self._read(
                f"SELECT thread, occurred_at FROM notes WHERE {owner} AND occurred_at {compare} ?"
                f" AND occurred_at >= ? AND occurred_at <= ?"
                f" ORDER BY occurred_at{direction}, {order}{direction} LIMIT 1",
                (*keys, clock.to_text(moment), clock.to_text(low), clock.to_text(high)),
            )
        if not nearest:
            return None
        closest = min(nearest, key=lambda row: abs(read_time(row["occurred_at"]) - moment))
        return str(closest["thread"])

    # -- the job queue, keys and accounting ------------------------------------------------

    def jobs(self, status: str | None = None) -> list[Job]:
        if status is None:
            rows = self._read("SELECT * FROM jobs ORDER BY created_at, id")
        else:
            rows = self._read(
                "SELECT * FROM jobs WHERE status = ? ORDER BY created_at, id", (status,)
            )
        return [job_from_row(row) for row in rows]

    def find_key(self, digest: str) -> ApiKey | None:
        rows = self._read("SELECT * FROM api_keys WHERE digest = ?", (digest,))
        return key_from_row(rows[0]) if rows else None

    def list_keys(self) -> list[ApiKey]:
        rows = self._read("SELECT * FROM api_keys ORDER BY created_at, id")
        return [key_from_row(row) for row in rows]

    def llm_totals(self) -> list[tuple[str, int, int, int, float]]:
        rows = self._read(
            "SELECT step, sum(calls) AS c, sum(prompt_tokens) AS p, sum(completion_tokens) AS o,"
            " sum(latency_ms) AS ms FROM llm_calls GROUP BY step ORDER BY min(pk)"
        )
        return [(r["step"], int(r["c"]), int(r["p"]), int(r["o"]), float(r["ms"])) for r in rows]

    def counts(self) -> dict[str, int]:
        counts = {name: int(self._read(sql)[0]["n"]) for name, sql in COUNT_QUERIES.items()}
        for row in self._read(JOB_COUNTS):
            counts[f"jobs {row['status']}"] = int(row["n"])
        return counts

    # -- helpers ---------------------------------------------------------------------------

    def _scope(self, scope: Scope) -> tuple[str, list[str]]:
        """The shared SQL condition (with `?`) for a scope, routed by owner where sharded."""
        route, owner = self.dialect.route(scope)
        where, params = scope_sql(scope, "")
        return route + where, [*owner, *params]

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of one shared statement."""
        return self._rows(self.dialect.render(sql), params)

    def _read_among(self, sql: str, ids: Sequence[Any], params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a shared statement whose `IDS` is one of `ids` (bound after `params`)."""
        rows: list[Row] = []
        for statement, values in self.dialect.among(sql, ids, params):
            rows += self._rows(statement, values)
        return rows

    def _records(self, sql: str, convert: Callable[[Row], T]) -> Iterator[T]:
        for rows in self._chunks(self.dialect.render(sql)):
            yield from (convert(row) for row in rows)

    def _notes(self, rows: Sequence[Row]) -> list[Note]:
        """Notes of their rows, with the ids of the episodes each was made from."""
        sources: dict[str, list[str]] = {}
        for row in self._read_among(
            f"SELECT note_id, episode_id FROM note_sources WHERE note_id {IDS} ORDER BY rank",
            [row["id"] for row in rows],
        ):
            sources.setdefault(row["note_id"], []).append(row["episode_id"])
        return [note_from_row(row, tuple(sources.get(row["id"], ()))) for row in rows]


def note_record(note: Note, vector: Vectors | None, sentences: bytes | None) -> NoteRecord:
    """A note with its vector and, if it has several sentences, their vectors."""
    if vector is None:
        return NoteRecord(note)
    return NoteRecord(note, vector, vectors_from_blob(sentences, len(vector)))


# paging: where a page ended, as fixed-width microseconds since the first day and row number
FIRST_DAY = datetime(1, 1, 1, tzinfo=UTC)
LAST_MICROSECOND = 315_537_897_599_999_999  # 9999-12-31 23:59:59.999999, after every time


def _cursor_of(row: Row, number: str) -> str:
    """The cursor after `row` (`check_cursor` in inputs.py checks its shape)."""
    elapsed = (read_time(row["occurred_at"]) - FIRST_DAY) // timedelta(microseconds=1)
    return f"{elapsed:018d}.{row[number]}"


def _read_cursor(cursor: str | None, order: str) -> tuple[str, int]:
    """The stored time and row number a cursor names; without one, a position before
    every row in this order."""
    if cursor is None:
        elapsed, row = (LAST_MICROSECOND, 2**63 - 1) if order == "newest" else (0, 0)
    else:
        digits, _, number = cursor.partition(".")
        # a forged time past the last day reads as the last moment, not an overflow
        elapsed, row = min(int(digits), LAST_MICROSECOND), int(number)
    return clock.to_text(FIRST_DAY + timedelta(microseconds=elapsed)), row
