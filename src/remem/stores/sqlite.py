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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from remem.stores.base import Access, Changes, NoteRecord, Replacement, ScoredIds, TextMatches
from remem.stores.blob_cache import Blobs
from remem.stores.lexical import DEFAULT_BUDGET, Budget
from remem.stores.rows import best_of_notes, job_from_row, key_row, scope_sql
from remem.stores.sql import IDS, VISIBLE, Dialect, SharedReads, note_record, visible
from remem.stores.sqlite_lexicon import EXACT, Lexicon, Plan, match_any, phrase
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
# Full-text search ranks this many times `limit` before filtering by scope (see search_text).
FTS_OVERFETCH = 4
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
        self._budget = budget
        self._lexicons = {
            table: Lexicon(self._rows, table, budget) for table in ("notes_fts", "passages_fts")
        }
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
        self, terms: Sequence[str], scope: Scope, limit: int, candidates: Sequence[str] = ()
    ) -> TextMatches:
        if not terms:
            return TextMatches([], [])
        # (no candidates: the vector search failed, and full ranking is all there is)
        plan = self._lexicons["notes_fts"].plan(terms) if candidates else EXACT
        if not plan.exact:
            return self._text_among(plan, scope, limit, candidates)
        match = match_any(terms)
        # One statement ranks by body and context together and also scores the body alone
        # (context weighted 0). Fast path: rank inside FTS5 alone (joining every match to
        # `notes` costs more than the ranking), then keep the best rows of the scope; when
        # the scope holds too few of them, rank again with the scope joined in (exact).
        wide = limit * FTS_OVERFETCH
        where, params = scope_sql(scope, "n.")
        moment = clock.to_text(clock.now())
        rows: Sequence[Sequence[Any]] = self._rows(
            "WITH ranked AS (SELECT rowid, -bm25(notes_fts, 1.0, 1.0) AS both_,"
            " -bm25(notes_fts, 1.0, 0.0) AS own FROM notes_fts WHERE notes_fts MATCH ?"
            " ORDER BY both_ DESC, rowid LIMIT ?)"
            " SELECT n.id, r.both_, r.own, (SELECT count(*) FROM ranked) FROM ranked r"
            f" JOIN notes n ON n.pk = r.rowid WHERE {where} AND {visible('n.')}"
            " ORDER BY r.both_ DESC, r.rowid LIMIT ?",
            (match, wide, *params, moment, limit),
        )
        if len(rows) < limit and (not rows or rows[0][3] == wide):  # (none: cannot tell)
            rows = self._rows(
                "SELECT n.id, -bm25(notes_fts, 1.0, 1.0), -bm25(notes_fts, 1.0, 0.0)"
                " FROM notes_fts JOIN notes n ON n.pk = notes_fts.rowid"
                f" WHERE notes_fts MATCH ? AND {where} AND {visible('n.')}"
                " ORDER BY bm25(notes_fts, 1.0, 1.0), n.pk LIMIT ?",
                (match, *params, moment, limit),
            )
        return _text_matches([row[:3] for row in rows])

    def _text_among(
        self, plan: Plan, scope: Scope, limit: int, candidates: Sequence[str]
    ) -> TextMatches:
        """`search_text` for a query of common words in a large memory: the rows of its
        rare terms and the `candidates`, of the scope, scored as FTS5 would (see
        `sqlite_lexicon`)."""
        where, params = scope_sql(scope, "")
        live = f"SELECT pk, id FROM notes WHERE {where} AND {VISIBLE}"
        params = [*params, clock.to_text(clock.now())]
        # (by pk: given the ids alone, SQLite walks the owner's whole index instead)
        by_id = f"{live} AND pk IN (SELECT pk FROM notes WHERE id {IDS})"
        rows = self._rows(f"{live} LIMIT ?", (*params, self._budget.small_scope + 1))
        if len(rows) > self._budget.small_scope:  # (else: every note of the scope is one)
            rows = self._read_among(by_id, candidates, params)
        if plan.rare:
            found = self._rows(
                "SELECT rowid FROM notes_fts WHERE notes_fts MATCH ?", (match_any(plan.rare),)
            )
            rows += self._read_among(f"{live} AND pk {IDS}", [row[0] for row in found], params)
        ids = {row[0]: row[1] for row in rows}
        scored = self._lexicons["notes_fts"].score(plan, ids, ((1.0, 1.0), (1.0, 0.0)))
        ranked = sorted(scored.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        return _text_matches([(ids[pk], both, own) for pk, (both, own) in ranked])

    def search_passages(
        self, terms: Sequence[str], scope: Scope, limit: int, candidates: Sequence[int] = ()
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        plan = self._lexicons["passages_fts"].plan(terms) if candidates else EXACT
        if not plan.exact:
            return self._passages_among(plan, scope, limit, candidates)
        where, params = scope_sql(scope, "p.")
        match = match_any(terms)
        rows = self._rows(
            "SELECT p.pk, -bm25(passages_fts) FROM passages_fts"
            " JOIN passages p ON p.pk = passages_fts.rowid"
            f" WHERE passages_fts MATCH ? AND {where} ORDER BY bm25(passages_fts) LIMIT ?",
            (match, *params, limit),
        )
        return [(row[0], float(row[1])) for row in rows]

    def _passages_among(
        self, plan: Plan, scope: Scope, limit: int, candidates: Sequence[int]
    ) -> list[tuple[int, float]]:
        """`search_passages` as `_text_among` ranks notes: the rows of the rare terms and
        the `candidates`, of the scope; every passage of a small scope."""
        where, params = scope_sql(scope, "")
        kept = self._rows(
            f"SELECT pk FROM passages WHERE {where} LIMIT ?",
            (*params, self._budget.small_scope + 1),
        )
        if len(kept) > self._budget.small_scope:
            found = list(candidates)
            if plan.rare:
                found += [
                    row[0]
                    for row in self._rows(
                        "SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?",
                        (match_any(plan.rare),),
                    )
                ]
            kept = self._read_among(
                f"SELECT pk FROM passages WHERE {where} AND pk {IDS}", found, params
            )
        scored = self._lexicons["passages_fts"].score(plan, [row[0] for row in kept], ((1.0,),))
        ranked = sorted(scored.items(), key=lambda item: (-item[1][0], item[0]))[:limit]
        return [(pk, score) for pk, (score,) in ranked]

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


def _text_matches(rows: Sequence[Sequence[Any]]) -> TextMatches:
    """Rows of (note id, bm25 with its context, bm25 of its own text), best first."""
    own = sorted(
        ((item, float(score)) for item, _, score in rows if score > 0), key=lambda item: -item[1]
    )
    return TextMatches(in_context=[(item, float(score)) for item, score, _ in rows], note=own)
