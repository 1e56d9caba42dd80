"""The embedded store: one SQLite file (WAL, FTS5) with an in-memory vector index beside it.

Durability: WAL with synchronous=FULL, so a write that `apply` returned from survives a
crash or power loss. Other processes may write the same file; before each vector search
the index catches up with their commits through the notes' `revision` column.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from remem import clock
from remem.embedders.base import Vectors
from remem.errors import StoreError
from remem.stores.ann_index import ANN_THRESHOLD, ApproximateIndex
from remem.stores.base import (
    Changes,
    Dump,
    NoteFacts,
    NoteRecord,
    ScoredIds,
    TextMatches,
)
from remem.stores.rows import (
    COUNT_QUERIES,
    JOB_COUNTS,
    best_of_notes,
    episode_from_row,
    event_from_row,
    job_from_row,
    key_from_row,
    key_row,
    link_from_row,
    note_from_row,
    scope_sql,
    vectors_from_blob,
)
from remem.stores.sqlite_schema import migrate
from remem.stores.sqlite_writes import Writer
from remem.types import ApiKey, Episode, Event, Job, Note, Scope

T = TypeVar("T")
BUSY_TIMEOUT_MS = 10_000
FETCH_CHUNK = 1000
# Sentence vectors kept in memory between searches (reading them costs ~1 ms a search).
SENTENCE_CACHE_BYTES = 64 * 2**20
# SQLite's default limit on bound parameters is 32766; stay well under it.
IN_CHUNK = 900
# Full-text search ranks this many times `limit` before filtering by scope (see search_text).
FTS_OVERFETCH = 4


class SQLiteStore:
    """The `Store` protocol on one SQLite file (or ":memory:"). Vector search is exact up
    to `ann_threshold` notes, then through an HNSW graph saved beside the file."""

    def __init__(self, path: str | Path, *, ann_threshold: int = ANN_THRESHOLD) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self.schema_version = migrate(self._db)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open memory database {self.path}: {error}") from error
        self._lock = threading.RLock()
        # note id -> its sentence vectors (None: one sentence), read once, dropped on change
        self._sentences: dict[str, bytes | None] = {}
        self._sentence_bytes = 0
        graph = None if self.path == ":memory:" else Path(self.path + ".hnsw").expanduser()
        self._index = ApproximateIndex(graph, ann_threshold)
        self._revision = 0
        self._data_version = -1
        self._sync_index()

    # -- writes ----------------------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        with self._lock:
            with self._transaction("write to"):
                Writer(self._db).write(changes)
            self._sync_index()

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[None]:
        """One write transaction: committed, or rolled back on any error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as error:
                raise StoreError(f"{doing} {self.path} failed: {error}") from error

    # -- the vector index ------------------------------------------------------------------

    def _sync_index(self) -> None:
        """Bring the index up to date with every committed note (ours or another process's)."""
        with self._lock:
            (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
            opening = self._revision == 0
            if opening:
                (count,) = self._db.execute("SELECT count(*) FROM vectors").fetchone()
                self._index.reserve(count)
            rows = self._db.execute(
                "SELECT n.id, n.user_id, n.agent_id, n.session_id, n.deleted_at, v.vector,"
                " n.revision, n.tenant, n.pk FROM notes n LEFT JOIN vectors v ON v.note_id = n.id"
                " WHERE n.revision > ? ORDER BY n.revision",
                (self._revision,),
            )
            while chunk := rows.fetchmany(FETCH_CHUNK):
                for row in chunk:
                    self._sentences.pop(row[0], None)
                live = [row for row in chunk if row[4] is None and row[5] is not None]
                for row in chunk:
                    if row[4] is not None or row[5] is None:
                        self._index.remove(row[0])
                if live:
                    matrix = np.frombuffer(b"".join(row[5] for row in live), dtype="<f4")
                    self._index.upsert_many(
                        [row[0] for row in live],
                        matrix.reshape(len(live), -1).astype(np.float32),
                        [Scope(row[1], row[2], row[3], row[7]) for row in live],
                        [row[8] for row in live],
                    )
                self._revision = max(self._revision, chunk[-1][6])
            self._data_version = data_version
            if opening:
                self._index.open_graph(self._revision, self._changed_since)
            else:
                self._index.grow(self._revision)

    def _changed_since(self, revision: int) -> list[tuple[str, bool]]:
        rows = self._db.execute(
            "SELECT n.id, n.deleted_at IS NULL AND v.note_id IS NOT NULL FROM notes n"
            " LEFT JOIN vectors v ON v.note_id = n.id WHERE n.revision > ?",
            (revision,),
        ).fetchall()
        return [(row[0], bool(row[1])) for row in rows]

    def _catch_up(self) -> None:
        (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
        if data_version != self._data_version:
            self._sync_index()

    # -- reads -----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0][0] if row else None

    def get_episodes(self, ids: Sequence[str]) -> dict[str, Episode]:
        rows = self._in_query("SELECT * FROM episodes WHERE id IN ({})", ids)
        return {row["id"]: episode_from_row(row) for row in rows}

    def get_notes(self, ids: Sequence[str]) -> dict[str, Note]:
        return {
            note.id: note
            for note in self._notes(self._in_query("SELECT * FROM notes WHERE id IN ({})", ids))
        }

    def list_notes(
        self, scope: Scope, limit: int, cursor: str | None
    ) -> tuple[list[Note], str | None]:
        where, params = scope_sql(scope, "")
        after = int(cursor) if cursor else 0
        rows = self._query(
            f"SELECT * FROM notes WHERE deleted_at IS NULL AND {where} AND pk > ?"
            " ORDER BY pk LIMIT ?",
            (*params, after, limit + 1),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return self._notes(rows), (str(rows[-1]["pk"]) if more else None)

    def live_ids(self, scope: Scope) -> tuple[list[str], list[str]]:
        where, params = scope_sql(scope, "")
        episodes = self._query(
            f"SELECT id FROM episodes WHERE deleted_at IS NULL AND {where}", params
        )
        notes = self._query(f"SELECT id FROM notes WHERE deleted_at IS NULL AND {where}", params)
        return [r[0] for r in episodes], [r[0] for r in notes]

    def notes_of_episodes(self, episode_ids: Sequence[str]) -> list[Note]:
        rows = self._in_query(
            "SELECT * FROM notes WHERE deleted_at IS NULL AND id IN"
            " (SELECT note_id FROM note_sources WHERE episode_id IN ({}))",
            episode_ids,
        )
        return self._notes(rows)

    def events(self, target_id: str) -> list[Event]:
        rows = self._query("SELECT * FROM events WHERE target_id = ? ORDER BY seq", (target_id,))
        return [event_from_row(row) for row in rows]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for table in ("episodes", "notes", "links", "events", "jobs"):
            rows = self._in_query(f"SELECT id FROM {table} WHERE id IN ({{}})", ids)
            found.update(row[0] for row in rows)
        return found

    def jobs(self, status: str | None = None) -> list[Job]:
        if status is None:
            rows = self._query("SELECT * FROM jobs ORDER BY created_at, id", ())
        else:
            rows = self._query(
                "SELECT * FROM jobs WHERE status = ? ORDER BY created_at, id", (status,)
            )
        return [job_from_row(row) for row in rows]

    def search_text(self, terms: Sequence[str], scope: Scope, limit: int) -> TextMatches:
        if not terms:
            return TextMatches([], [])
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        # One query ranks by body and context together and also scores the body alone
        # (context weighted 0). Fast path: rank inside FTS5 alone (joining every match to
        # `notes` costs more than the ranking), then keep the best rows of the scope; when
        # the scope holds too few of them, rank again with the scope joined in (exact).
        wide = limit * FTS_OVERFETCH
        ranked = self._query(
            "SELECT rowid, -bm25(notes_fts, 1.0, 1.0), -bm25(notes_fts, 1.0, 0.0)"
            " FROM notes_fts WHERE notes_fts MATCH ? ORDER BY bm25(notes_fts, 1.0, 1.0) LIMIT ?",
            (match, wide),
        )
        where, params = scope_sql(scope, "")
        in_scope = {
            row[0]: row[1]
            for row in self._in_query(
                f"SELECT pk, id FROM notes WHERE {where} AND pk IN ({{}})",
                [row[0] for row in ranked],
                params,
            )
        }
        rows: Sequence[Sequence[Any]] = [
            (in_scope[pk], both, own) for pk, both, own in ranked if pk in in_scope
        ]
        if len(rows) < limit and len(ranked) == wide:
            where, params = scope_sql(scope, "n.")
            rows = self._query(
                "SELECT n.id, -bm25(notes_fts, 1.0, 1.0), -bm25(notes_fts, 1.0, 0.0)"
                " FROM notes_fts JOIN notes n ON n.pk = notes_fts.rowid"
                f" WHERE notes_fts MATCH ? AND {where} ORDER BY bm25(notes_fts, 1.0, 1.0) LIMIT ?",
                (match, *params, limit),
            )
        rows = rows[:limit]
        own = sorted(
            ((item, float(score)) for item, _, score in rows if score > 0),
            key=lambda item: -item[1],
        )
        return TextMatches(in_context=[(item, float(score)) for item, score, _ in rows], note=own)

    def search_passages(
        self, terms: Sequence[str], scope: Scope, limit: int
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        where, params = scope_sql(scope, "p.")
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        rows = self._query(
            "SELECT p.pk, -bm25(passages_fts) FROM passages_fts"
            " JOIN passages p ON p.pk = passages_fts.rowid"
            f" WHERE passages_fts MATCH ? AND {where} ORDER BY bm25(passages_fts) LIMIT ?",
            (match, *params, limit),
        )
        return [(row[0], float(row[1])) for row in rows]

    def speakers_named(self, words: Sequence[str], scope: Scope) -> list[str]:
        words = list(dict.fromkeys(word.lower() for word in words))
        if not words:
            return []
        where, params = scope_sql(scope, "e.")
        candidates = " UNION ALL ".join("SELECT ? AS word" for _ in words)
        rows = self._query(
            f"SELECT t.word FROM ({candidates}) t WHERE EXISTS (SELECT 1 FROM episodes e"
            f" WHERE lower(e.name) = t.word AND e.deleted_at IS NULL AND {where} LIMIT 1)",
            (*words, *params),
        )
        return [row[0] for row in rows]

    def describe(self, ids: Sequence[str], *, neighbours: bool = True) -> dict[str, NoteFacts]:
        around = _SQLITE_NEIGHBOURS if neighbours else "NULL AS previous, NULL AS following"
        rows = self._in_query(
            f"SELECT n.id, n.session_id, n.passage, n.occurred_at, n.text, e.name, {around}"
            " FROM notes n LEFT JOIN note_sources s ON s.note_id = n.id AND s.rank = 0"
            " LEFT JOIN episodes e ON e.id = s.episode_id"
            " WHERE n.deleted_at IS NULL AND n.id IN ({})",
            ids,
        )
        return {
            row["id"]: NoteFacts(
                id=row["id"],
                text=row["text"],
                speaker=row["name"],
                occurred_at=clock.from_text(row["occurred_at"]),
                passage=row["passage"],
                previous=row["previous"],
                following=row["following"],
            )
            for row in rows
        }

    def search_vector(self, vector: Vectors, scope: Scope, limit: int) -> ScoredIds:
        with self._lock:
            self._catch_up()
            return self._index.search(vector, scope, limit)

    def claim_job(self, token: str, until: datetime, job_id: str | None = None) -> Job | None:
        now = clock.to_text(clock.now())
        which, params = ("AND id = ?", [job_id]) if job_id else ("", [])
        with self._transaction("claiming a job in"):
            cursor = self._db.execute(
                "SELECT * FROM jobs WHERE status = 'pending' AND kind != 'embed'"
                f" AND (leased_until IS NULL OR leased_until < ?) {which}"
                " ORDER BY created_at, id LIMIT 1",
                [now, *params],
            )
            cursor.row_factory = sqlite3.Row
            row = cursor.fetchone()
            if row is not None:
                self._db.execute(
                    "UPDATE jobs SET lease = ?, leased_until = ? WHERE id = ?",
                    (token, clock.to_text(until), row["id"]),
                )
        if row is None:
            return None
        return replace(job_from_row(row), lease=token, leased_until=until)

    def term_counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        counts = {}
        for term in dict.fromkeys(terms):
            (count,) = self._query(
                "SELECT count(*) FROM (SELECT 1 FROM notes_fts WHERE notes_fts MATCH ? LIMIT ?)",
                ('body : "' + term.replace('"', '""') + '"', cap),
            )[0]
            counts[term] = int(count)
        return counts

    def llm_totals(self) -> list[tuple[str, int, int, int, float]]:
        rows = self._query(
            "SELECT step, sum(calls), sum(prompt_tokens), sum(completion_tokens),"
            " sum(latency_ms) FROM llm_calls GROUP BY step ORDER BY min(pk)",
            (),
        )
        return [(r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4])) for r in rows]

    def counts(self) -> dict[str, int]:
        counts = {name: int(self._query(sql, ())[0][0]) for name, sql in COUNT_QUERIES.items()}
        for status, count in self._query(JOB_COUNTS, ()):
            counts[f"jobs {status}"] = int(count)
        return counts

    def recent_episodes(self, scope: Scope, limit: int) -> list[Episode]:
        where, params = scope_sql(scope, "")
        rows = self._query(
            f"SELECT * FROM episodes WHERE deleted_at IS NULL AND {where}"
            " ORDER BY occurred_at DESC, pk DESC LIMIT ?",
            (*params, limit),
        )
        return [episode_from_row(row) for row in rows]

    def save_key(self, key: ApiKey) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO api_keys VALUES (?,?,?,?,?,?)", key_row(key)
                )
            except sqlite3.DatabaseError as error:
                raise StoreError(f"write to {self.path} failed: {error}") from error

    def find_key(self, digest: str) -> ApiKey | None:
        rows = self._query("SELECT * FROM api_keys WHERE digest = ?", (digest,))
        return key_from_row(rows[0]) if rows else None

    def list_keys(self) -> list[ApiKey]:
        rows = self._query("SELECT * FROM api_keys ORDER BY created_at, id", ())
        return [key_from_row(row) for row in rows]

    def sentence_scores(self, vector: Vectors, ids: Sequence[str]) -> dict[str, float]:
        with self._lock:
            self._catch_up()
            own = self._index.scores(vector, ids)
            missing = [item_id for item_id in own if item_id not in self._sentences]
            rows = self._in_query(
                "SELECT note_id, sentences FROM vectors WHERE note_id IN ({})", missing
            )
            self._remember_sentences({row["note_id"]: row["sentences"] for row in rows})
            split = {i: blob for i in own if (blob := self._sentences.get(i)) is not None}
        return best_of_notes(own, split, vector)

    def _remember_sentences(self, blobs: dict[str, bytes | None]) -> None:
        size = sum(len(blob or b"") + 100 for blob in blobs.values())  # + the entry itself
        if self._sentence_bytes + size > SENTENCE_CACHE_BYTES:
            self._sentences.clear()  # bounded: forget all, read again as needed
            self._sentence_bytes = 0
        self._sentences.update(blobs)
        self._sentence_bytes += size

    def dump(self) -> Dump:
        def notes() -> Iterator[NoteRecord]:
            for rows in self._chunks(
                "SELECT n.*, v.vector, v.sentences FROM notes n"
                " LEFT JOIN vectors v ON v.note_id = n.id ORDER BY n.pk"
            ):
                for note, row in zip(self._notes(rows), rows, strict=True):
                    if row["vector"] is None:
                        yield NoteRecord(note)
                        continue
                    vector = np.frombuffer(row["vector"], dtype="<f4").copy()
                    sentences = vectors_from_blob(row["sentences"], len(vector))
                    yield NoteRecord(note, vector, sentences)

        return Dump(
            episodes=self._records("SELECT * FROM episodes ORDER BY pk", episode_from_row),
            notes=notes(),
            links=self._records("SELECT * FROM links ORDER BY id", link_from_row),
            events=self._records("SELECT * FROM events ORDER BY seq", event_from_row),
            jobs=self._records("SELECT * FROM jobs ORDER BY id", job_from_row),
        )

    def _records(self, sql: str, convert: Callable[[sqlite3.Row], T]) -> Iterator[T]:
        for rows in self._chunks(sql):
            yield from (convert(row) for row in rows)

    def close(self) -> None:
        with self._lock:
            self._index.save()
            self._db.close()

    # -- helpers ---------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._db.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.DatabaseError as error:
                raise StoreError(f"read from {self.path} failed: {error}") from error

    def _in_query(
        self, sql: str, keys: Sequence[Any], params: Sequence[Any] = ()
    ) -> list[sqlite3.Row]:
        """Run `sql` with `params`, then its `IN ({})` filled by `keys`, in chunks."""
        rows: list[sqlite3.Row] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), IN_CHUNK):
            chunk = unique[start : start + IN_CHUNK]
            rows += self._query(sql.format(",".join("?" * len(chunk))), [*params, *chunk])
        return rows

    def _chunks(self, sql: str) -> Iterator[list[sqlite3.Row]]:
        """Rows of one query in chunks, so a large table never sits in memory at once."""
        with self._lock:
            cursor = self._db.execute(sql)
            cursor.row_factory = sqlite3.Row
            chunk = cursor.fetchmany(FETCH_CHUNK)
        while chunk:
            yield chunk
            with self._lock:
                chunk = cursor.fetchmany(FETCH_CHUNK)

    def _notes(self, rows: Sequence[sqlite3.Row]) -> list[Note]:
        sources: dict[str, list[str]] = {}
        for note_id, episode_id in self._in_query(
            "SELECT note_id, episode_id FROM note_sources WHERE note_id IN ({}) ORDER BY rank",
            [row["id"] for row in rows],
        ):
            sources.setdefault(note_id, []).append(episode_id)
        return [note_from_row(row, tuple(sources.get(row["id"], ()))) for row in rows]


# The live turns just before and after a note in its session (for `describe`).
_SQLITE_NEIGHBOURS = (
    "CASE WHEN n.session_id IS NOT NULL AND n.kind = 'turn' THEN (SELECT p.id FROM notes p"
    "  WHERE p.session_id = n.session_id AND p.user_id IS n.user_id"
    "  AND p.agent_id IS n.agent_id AND p.tenant = n.tenant AND p.pk < n.pk"
    "  AND p.deleted_at IS NULL AND p.kind = 'turn'"
    "  ORDER BY p.pk DESC LIMIT 1) END AS previous,"
    " CASE WHEN n.session_id IS NOT NULL AND n.kind = 'turn' THEN (SELECT p.id FROM notes p"
    "  WHERE p.session_id = n.session_id AND p.user_id IS n.user_id"
    "  AND p.agent_id IS n.agent_id AND p.tenant = n.tenant AND p.pk > n.pk"
    "  AND p.deleted_at IS NULL AND p.kind = 'turn'"
    "  ORDER BY p.pk LIMIT 1) END AS following"
)
