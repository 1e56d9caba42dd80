"""The SQLite store itself: migrations, pragmas, the vector index kept consistent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from remem import ConfigError, Memory, Scope
from remem.stores.sqlite import SQLiteStore
from remem.stores.sqlite_schema import MIGRATIONS, migrate
from remem.stores.vector_index import ExactIndex
from remem.testing import HashEmbedder


def test_blank_database_gets_every_migration(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    assert store.schema_version == len(MIGRATIONS)
    with sqlite3.connect(db_path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM schema_migrations ORDER BY 1")]
        assert names == [m.__name__ for m in MIGRATIONS]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_migrating_from_each_earlier_version_reaches_the_latest(tmp_path: Path) -> None:
    for start in range(len(MIGRATIONS)):
        path = tmp_path / f"from-{start}.db"
        db = sqlite3.connect(path, isolation_level=None)
        assert migrate(db, target=start) == start
        assert migrate(db) == len(MIGRATIONS)
        assert migrate(db) == len(MIGRATIONS)  # idempotent
        db.close()


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (999, 'm999_future', 'now')")
    with pytest.raises(Exception, match="newer than this remem"):
        SQLiteStore(db_path)


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not sqlite " * 100)
    with pytest.raises(Exception, match="cannot open memory database"):
        SQLiteStore(path)


def test_another_embedder_is_refused_on_an_embedded_memory(db_path: Path) -> None:
    with Memory(db_path, embedder=HashEmbedder(64)) as memory:
        memory.add("hello", user_id="u")
    with pytest.raises(ConfigError, match="hash-64"):
        Memory(db_path, embedder=HashEmbedder(32))


def test_index_follows_updates_and_deletes(memory: Memory) -> None:
    note_id = memory.add("alpha beta gamma", user_id="u").note_ids[0]
    memory.update(note_id, text="completely different words")
    vector = memory.embedder.embed("completely different words")
    assert memory.store.search_vector(vector, Scope("u"), 1)[0][0] == note_id
    memory.delete(note_id)
    assert memory.store.search_vector(vector, Scope("u"), 5) == []


def test_exact_index_reuses_slots_and_filters_scopes() -> None:
    index = ExactIndex()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for i, vector in enumerate(vectors):
        index.upsert(f"n{i}", vector, Scope(user_id=f"u{i % 5}"))
    for i in range(0, 50, 2):
        index.remove(f"n{i}")
    assert len(index) == 25
    index.upsert("new", vectors[0], Scope(user_id="u0"))
    hits = index.search(vectors[0], Scope(user_id="u0"), 100)
    assert hits[0][0] == "new"
    assert {item for item, _ in hits} == {"new", "n5", "n15", "n25", "n35", "n45"}
    assert index.search(vectors[0], Scope(user_id="nobody"), 10) == []
    brute = sorted(
        ((float(v @ vectors[3]), f"n{i}") for i, v in enumerate(vectors) if i % 2 and i % 5 == 3),
        reverse=True,
    )
    assert [item for item, _ in index.search(vectors[3], Scope("u3"), 3)] == [
        item for _, item in brute[:3]
    ]


def test_full_text_search_fills_a_small_scope_inside_a_big_one(memory: Memory) -> None:
    memory.add([{"content": f"apple pie recipe {i}"} for i in range(300)], user_id="big")
    small = memory.add([{"content": f"apple tart number {i}"} for i in range(3)], user_id="small")
    found = memory.store.search_text(["apple"], Scope(user_id="small"), 10)
    assert {item for item, _ in found.in_context} == set(small.note_ids)
    assert {item for item, _ in found.note} == set(small.note_ids)
    assert len(memory.search("apple", user_id="small", limit=10)) == 3


def test_full_text_search_finds_a_scope_ranked_below_every_other_match(memory: Memory) -> None:
    # The big scope's notes all outrank the small one's, which are past the rows ranked
    # first (4 x limit): the search ranks again with the scope joined in.
    memory.add([{"content": f"apple apple {i}"} for i in range(300)], user_id="big")
    wordy = "apple, said once among many other words about the orchard and the weather"
    small = memory.add([{"content": f"{wordy} {i}"} for i in range(3)], user_id="small")
    found = memory.store.search_text(["apple"], Scope(user_id="small"), 10)
    assert {item for item, _ in found.in_context} == set(small.note_ids)
    assert memory.store.search_text(["apple"], Scope(user_id="nobody"), 10).in_context == []
    assert memory.store.search_text(["orchard"], Scope(user_id="big"), 10).in_context == []


def test_exact_index_bulk_load_matches_one_by_one() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"n{i}" for i in range(30)]
    scopes = [Scope(user_id=f"u{i % 3}") for i in range(30)]
    bulk, single = ExactIndex(), ExactIndex()
    bulk.reserve(10)
    bulk.upsert_many(ids, vectors, scopes)
    for item_id, vector, scope in zip(ids, vectors, scopes, strict=True):
        single.upsert(item_id, vector, scope)
    bulk.upsert_many(["n0"], vectors[5:6], [Scope(user_id="u0")])  # replaces, not duplicates
    single.upsert("n0", vectors[5], Scope(user_id="u0"))
    assert len(bulk) == len(single) == 30
    for query in vectors[:5]:
        assert bulk.search(query, Scope("u0"), 7) == single.search(query, Scope("u0"), 7)


def test_many_connections_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    """Each migration re-checks, under the write lock, that no one applied it meanwhile."""
    import threading

    path = tmp_path / "new.db"
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            SQLiteStore(path).close()
        except BaseException as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=open_it) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
