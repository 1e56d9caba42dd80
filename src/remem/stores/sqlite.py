"""The embedded store: one SQLite file (WAL, FTS5) with an in-memory vector index beside it.

Durability: WAL with synchronous=FULL, so a write that `apply` returned from survives a
crash or power loss. Other processes may write the same file; before each vector search
the index catches up with their commits through the notes' `revision` column.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from remem import clock
from remem.embedders.base import Vectors
from remem.errors import StoreError
from remem.stores.ann_index import ANN_THRESHOLD, ApproximateIndex
from remem.stores.base import (
    Access,
    Changes,
    NoteRecord,
    Replacement,
    ScoredIds,
    TextMatches,
    no_candidates,
)
from remem.stores.blob_cache import Blobs
from remem.stores.lexical import DEFAULT_BUDGET, Budget
from remem.stores.rows import best_of_notes, job_from_row, key_row, scope_sql
from remem.stores.sql import IDS, Dialect, SharedReads, note_record
from remem.stores.sqlite_fulltext import FullText
from remem.stores.sqlite_lexicon import phrase
from remem.stores.sqlite_purge import purge
from remem.stores.sqlite_schema import enter_wal, migrate
from remem.stores.sqlite_writes import Writer
from remem.types import ApiKey, Job, Scope

log = logging.getLogger("remem")
BUSY_TIMEOUT_MS = 10_000
BULK_CACHE_KIB = 256 * 1024  # SQLite's page cache during a bulk load
FETCH_CHUNK = 1000
# Sentence vectors kept in memory between searches (reading them costs ~1 ms a search).
SENTENCE_CACHE_BYTES = 64 * 2**20
# SQLite's default limit on bound parameters is 32766; stay well under it.
IN_CHUNK = 900
EXPIRED_ANY = "SELECT 1 FROM notes WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1"
# Whether each of the first superseded notes is an outdated fact (`> ''` reads the index).
OUTDATED_FIRST = "SELECT kind = 'fact' AND valid_to IS NOT NULL FROM notes WHERE superseded_by > ''"
OUTDATED_LOOKED_AT = 64
SQLITE = Dialect(mark="?", order="pk", same="IS", id_chunk=IN_CHUNK)


class SQLiteStore(SharedReads):
    """The `Store` protocol on one SQLite file (or ":memory:"). Vector search is exact up
    to `ann_threshold` notes, then through an HNSW graph saved beside the file. Reads that
    are the same SQL on PostgreSQL come from `SharedReads`."""

    dialect = SQLITE

    def __init__(
        self,
        path: str | Path,
        *,
        ann_threshold: int = ANN_THRESHOLD,
        budget: Budget = DEFAULT_BUDGET,
    ) -> None:
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
            enter_wal(self._db, BUSY_TIMEOUT_MS / 1000)
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            # freed space is zeroed: a purged text (and earlier versions of any text) leaves
            # no bytes behind in the file
            self._db.execute("PRAGMA secure_delete = ON")
            self.schema_version = migrate(self._db)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open memory database {self.path}: {error}") from error
        self._lock = threading.RLock()
        # note id -> its sentence vectors (None: one sentence), read once, dropped on change
        self._sentences = Blobs(SENTENCE_CACHE_BYTES)
        graph = None if self.path == ":memory:" else Path(self.path + ".hnsw").expanduser()
        self._index = ApproximateIndex(graph, ann_threshold)
        self._full_text = FullText(self._rows, self._read_among, budget)
        self._revision = 0
        self._purge_seq = 0  # the last event seen that may be a purge (see `_forget_purged`)
        self._data_version = -1
        self.load_timings: dict[str, float] = {}  # what the last bulk load's index took
        self._sync_index()

    # -- writes ----------------------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        with self._lock:
            with self._transaction("write to"):
                Writer(self._db).write(changes)
                if changes.purge:
                    purge(self._db, changes.purge)
            self._sync_index()
            if changes.purge:
                self._forget_vectors(changes.purge)

    def bulk_load(self, batches: Iterable[Changes], size: int) -> None:
        """Each batch in its own transaction, the vector index caught up once at the end
        (its graph built once, when the memory has grown big enough for one) rather than
        after every batch. Searches in this process meanwhile see the notes' text at once
        and their vectors when the load ends, or fails."""
        (cache,) = self._db.execute("PRAGMA cache_size").fetchone()
        # random ids land all over the tables' indexes: with SQLite's 2 MB page cache a
        # large load rereads pages for every row
        self._db.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        try:
            for changes in batches:
                if changes.purge:
                    self.apply(changes)
                    continue
                with self._transaction("load into"):
                    Writer(self._db).write(changes)
        finally:
            self._db.execute(f"PRAGMA cache_size = {int(cache)}")
            start = time.perf_counter()
            self._sync_index()
            self._index.save()
            self.load_timings = {"index_s": time.perf_counter() - start}

    def _forget_vectors(self, ids: Sequence[str]) -> None:
        """After a purge: drop the vectors from the index, and the old pages from the WAL."""
        for item_id in ids:
            self._index.remove(item_id)
            self._sentences.forget(item_id)
        (busy, _, _) = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:  # a reader in another process holds old pages; they go at its next checkpoint
            log.warning("purge: %s is in use; its write-ahead log is emptied later", self.path)

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

    def save_key(self, key: ApiKey) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO api_keys VALUES (?,?,?,?,?,?)", key_row(key)
                )
            except sqlite3.DatabaseError as error:
                raise StoreError(f"write to {self.path} failed: {error}") from error

    # -- the vector index ------------------------------------------------------------------

    def _sync_index(self) -> None:
        """Bring the index up to date with every committed note (ours or another process's)."""
        with self._lock:
            (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
            (last_event,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
            opening = self._revision == 0
            if opening:
                (count,) = self._db.execute("SELECT count(*) FROM vectors").fetchone()
                self._index.reserve(count)
            rows = self._db.execute(
                "SELECT n.id, n.user_id, n.agent_id, n.session_id, n.deleted_at, v.vector,"
                " n.revision, n.tenant, n.pk, n.archived_at FROM notes n"
                " LEFT JOIN vectors v ON v.note_id = n.id"
                " WHERE n.revision > ? ORDER BY n.revision",
                (self._revision,),
            )
            while chunk := rows.fetchmany(FETCH_CHUNK):
                for row in chunk:
                    self._sentences.forget(row[0])
                # an archived note leaves the index as a deleted one does, until unarchived
                live = [row for row in chunk if row[4] is None and row[9] is None and row[5]]
                for row in chunk:
                    if row[4] is not None or row[9] is not None or row[5] is None:
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
            self._forget_purged(last_event, opening)
            if opening:
                self._index.open_graph(self._revision, self._changed_since)
            else:
                self._index.grow(self._revision)

    def _forget_purged(self, last: int, opening: bool) -> None:
        """Drop from the index the notes another process purged (their rows are gone, so
        no revision says so; their purge events do) up to event `last`, read before the
        notes were. A stale entry would be found by a search and linked to by a new note,
        which the store then refuses."""
        if not opening and last > self._purge_seq:
            for (item_id,) in self._db.execute(
                # not one written again since (imported anew): the catch-up has its new row
                "SELECT target_id FROM events e WHERE seq > ? AND seq <= ? AND action = 'purge'"
                " AND NOT EXISTS (SELECT 1 FROM notes n WHERE n.id = e.target_id)",
                (self._purge_seq, last),
            ).fetchall():
                self._index.remove(item_id)
                self._sentences.forget(item_id)
        self._purge_seq = last

    def _changed_since(self, revision: int) -> list[tuple[str, bool]]:
        rows = self._db.execute(
            "SELECT n.id, n.deleted_at IS NULL AND n.archived_at IS NULL"
            " AND v.note_id IS NOT NULL FROM notes n"
            " LEFT JOIN vectors v ON v.note_id = n.id WHERE n.revision > ?",
            (revision,),
        ).fetchall()
        return [(row[0], bool(row[1])) for row in rows]

    def _catch_up(self) -> None:
        (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
        if data_version != self._data_version:
            self._sync_index()

    # -- retrieval -------------------------------------------------------------------------

    def search_text(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[str]] = no_candidates,
    ) -> TextMatches:
        return self._full_text.notes(terms, scope, limit, candidates)

    def search_passages(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[int]] = no_candidates,
    ) -> list[tuple[int, float]]:
        return self._full_text.passages(terms, scope, limit, candidates)

    def speakers_named(self, words: Sequence[str], scope: Scope) -> list[str]:
        words = list(dict.fromkeys(word.lower() for word in words))
        if not words:
            return []
        where, params = scope_sql(scope, "e.")
        candidates = " UNION ALL ".join("SELECT ? AS word" for _ in words)
        rows = self._rows(
            f"SELECT t.word FROM ({candidates}) t WHERE EXISTS (SELECT 1 FROM episodes e"
            f" WHERE lower(e.name) = t.word AND e.deleted_at IS NULL AND {where} LIMIT 1)",
            (*words, *params),
        )
        return [row[0] for row in rows]

    def replaced_turns(self, ids: Sequence[str]) -> dict[str, Replacement]:
        # Without a model no fact is outdated, and finding that out from the turns took
        # ~1.5 ms a present-tense LoCoMo search; the index of superseded notes tells at once
        # (unless consolidation merged many notes: then the turns are read as before).
        first = self._rows(f"{OUTDATED_FIRST} LIMIT ?", (OUTDATED_LOOKED_AT,))
        if len(first) < OUTDATED_LOOKED_AT and not any(row[0] for row in first):
            return {}
        return super().replaced_turns(ids)

    def search_vector(self, vector: Vectors, scope: Scope, limit: int) -> ScoredIds:
        with self._lock:
            self._catch_up()
            found = self._index.search(vector, scope, limit)
        # archived notes are not in the index; expired ones are until the sweep purges them
        moment = clock.to_text(clock.now())
        if not self._rows(EXPIRED_ANY, (moment,)):  # (the partial index answers at once)
            return found
        expired = self._read_among(
            f"SELECT id FROM notes WHERE expires_at <= ? AND id {IDS}",
            [item_id for item_id, _ in found],
            [moment],
        )
        gone = {row["id"] for row in expired}
        return [item for item in found if item[0] not in gone]

    def record_access(self, accesses: Mapping[str, Access]) -> None:
        rows = [
            (seen.count, clock.to_text(seen.at), clock.to_text(seen.at), note_id, seen.scope.tenant)
            for note_id, seen in accesses.items()
        ]
        with self._transaction("recording reads in"):
            self._db.executemany(
                "UPDATE notes SET access_count = access_count + ?, last_accessed_at ="
                " CASE WHEN last_accessed_at >= ? THEN last_accessed_at ELSE ? END"
                " WHERE id = ? AND tenant = ?",
                rows,
            )

    def term_counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        counts = {}
        for term in dict.fromkeys(terms):
            (count,) = self._rows(
                "SELECT count(*) FROM (SELECT 1 FROM notes_fts WHERE notes_fts MATCH ? LIMIT ?)",
                ("body : " + phrase(term), cap),
            )[0]
            counts[term] = int(count)
        return counts

    def sentence_scores(self, vector: Vectors, ids: Sequence[str]) -> dict[str, float]:
        with self._lock:
            self._catch_up()
            own = self._index.scores(vector, ids)
            missing = [item_id for item_id in own if item_id not in self._sentences]
            rows = self._read_among(
                f"SELECT note_id, sentences FROM vectors WHERE note_id {IDS}", missing
            )
            self._sentences.remember({row["note_id"]: row["sentences"] for row in rows})
            split = {i: blob for i in own if (blob := self._sentences.get(i)) is not None}
        return best_of_notes(own, split, vector)

    def vectors_of(self, ids: Sequence[str]) -> dict[str, Vectors]:
        rows = self._read_among(f"SELECT note_id, vector FROM vectors WHERE note_id {IDS}", ids)
        return {row["note_id"]: np.frombuffer(row["vector"], dtype="<f4").copy() for row in rows}

    def close(self) -> None:
        with self._lock:
            self._index.save()
            self._db.close()

    # -- helpers ---------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                cursor = self._db.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
            except sqlite3.DatabaseError as error:
                raise StoreError(f"read from {self.path} failed: {error}") from error

    def _note_records(self) -> Iterator[NoteRecord]:
        for rows in self._chunks(
            "SELECT n.*, v.vector, v.sentences FROM notes n"
            " LEFT JOIN vectors v ON v.note_id = n.id ORDER BY n.pk"
        ):
            for note, row in zip(self._notes(rows), rows, strict=True):
                blob = row["vector"]
                vector = None if blob is None else np.frombuffer(blob, dtype="<f4").copy()
                yield note_record(note, vector, row["sentences"])

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
