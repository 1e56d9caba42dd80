"""PostgreSQL keeps notes hash-partitioned by owner (migration m007): each user's notes in
one partition, whose HNSW graph a search of that user walks. An older database's notes move
into the partitions when a newer remem opens it; nothing is lost or reordered."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from conftest import server_schema
from remem import Memory, clock, ids
from remem.embedders.hashing import HashEmbedder
from remem.stores.base import Changes
from remem.stores.postgres import PostgresStore
from remem.stores.postgres_bulk import HNSW
from remem.stores.postgres_schema import MIGRATIONS, NOTE_PARTITIONS, migrate
from remem.stores.postgres_writes import Writer
from remem.types import Episode, Note, Scope
from remem.write.ingest import index_text

DIMENSIONS = 8
OWNERS = [Scope(user_id=f"user_{n}") for n in range(5)]


@pytest.fixture
def url() -> Iterator[str]:
    yield from server_schema("postgres")


def _changes(count: int) -> tuple[Changes, dict[str, np.ndarray]]:
    """Notes of several users, each with a vector, as an older remem wrote them."""
    rng = np.random.default_rng(3)
    moment = clock.now()
    episodes, notes, bodies, vectors = [], [], {}, {}
    for n in range(count):
        scope = OWNERS[n % len(OWNERS)]
        text = f"note {n} of {scope.user_id} about the garden"
        episode = Episode(ids.new_id(ids.EPISODE), scope, text, "user", None, {}, moment, moment)
        note = Note(
            ids.new_id(ids.NOTE), scope, text, {}, moment, moment, moment, 1, (episode.id,),
            valid_from=moment, thread=f"session_{n % 3}",
        )  # fmt: skip
        episodes.append(episode)
        notes.append(note)
        bodies[note.id] = index_text(note, {})
        vector = rng.standard_normal(DIMENSIONS).astype(np.float32)
        vectors[note.id] = vector / np.linalg.norm(vector)
    return Changes(episodes=episodes, notes=notes, bodies=bodies, vectors=vectors), vectors


def _older_database(url: str, changes: Changes) -> list[tuple[str, str]]:
    """A database at the schema before m007, with notes, their HNSW index and a deleted
    note; returns its notes' (id, seq) in order, and leaves its index names to compare."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        assert migrate(conn, target=6) == 6
        conn.execute("INSERT INTO meta VALUES ('dimensions', %s)", (str(DIMENSIONS),))
        conn.execute(HNSW.format(size=DIMENSIONS))
        with conn.transaction():
            Writer(conn).write(changes)
        conn.execute("UPDATE notes SET deleted_at = now() WHERE id = %s", (changes.notes[0].id,))
        rows = conn.execute("SELECT id, seq FROM notes ORDER BY seq").fetchall()
    return [(row["id"], row["seq"]) for row in rows]


def _index_names(conn: psycopg.Connection[dict[str, object]]) -> set[str]:
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = 'notes'"
    ).fetchall()
    return {str(row["indexname"]) for row in rows}


def test_a_new_database_keeps_notes_partitioned_by_owner(url: str) -> None:
    with Memory(url, embedder=HashEmbedder()) as memory:
        for scope in OWNERS:
            memory.add(f"{scope.user_id} likes tomatoes", user_id=scope.user_id)
        assert len(memory.search("tomatoes", user_id="user_3")) == 1
    with psycopg.connect(url, row_factory=dict_row) as conn:
        parts = conn.execute(
            "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'notes'::regclass"
        ).fetchone()
        assert parts is not None and parts["n"] == NOTE_PARTITIONS
        # every note of one owner lies in one partition
        placed = conn.execute(
            "SELECT owner, count(DISTINCT tableoid) AS n FROM notes GROUP BY owner"
        ).fetchall()
        assert len(placed) == len(OWNERS) and {row["n"] for row in placed} == {1}


def test_an_older_database_moves_its_notes_into_partitions(url: str) -> None:
    changes, vectors = _changes(60)
    before = _older_database(url, changes)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        names_before = _index_names(conn)
    store = PostgresStore(url)
    try:
        assert store.schema_version == len(MIGRATIONS)
        with psycopg.connect(url, row_factory=dict_row) as conn:
            after = conn.execute("SELECT id, seq FROM notes ORDER BY seq").fetchall()
            assert [(row["id"], row["seq"]) for row in after] == before
            assert _index_names(conn) == names_before  # notes_embedding among them
            kind = conn.execute(
                "SELECT relkind FROM pg_class WHERE oid = 'notes'::regclass"
            ).fetchone()
            assert kind is not None and kind["relkind"] == "p"
            assert conn.execute("SELECT to_regclass('notes_unpartitioned') AS t").fetchone() == {
                "t": None
            }
        kept = store.get_notes([note.id for note in changes.notes])
        assert {i: note.text for i, note in kept.items()} == {
            note.id: note.text for note in changes.notes
        }
        deleted = [i for i, note in kept.items() if note.deleted_at is not None]
        assert deleted == [changes.notes[0].id]
        assert store.vectors_of([changes.notes[5].id])[changes.notes[5].id] == pytest.approx(
            vectors[changes.notes[5].id], abs=1e-6
        )
        # the vector search of one user finds that user's nearest note
        target = changes.notes[7]
        found = store.search_vector(vectors[target.id], target.scope, 3)
        assert found[0][0] == target.id
        # `seq` goes on from where it was: a note written now comes after the old ones
        with Memory(store=store, embedder=HashEmbedder(DIMENSIONS)) as memory:
            memory.add("a later note", user_id="user_1")
        with psycopg.connect(url, row_factory=dict_row) as conn:
            last = conn.execute("SELECT text, seq FROM notes ORDER BY seq DESC LIMIT 1").fetchone()
        assert last is not None and last["text"] == "a later note"
        assert last["seq"] > before[-1][1]
    finally:
        store.close()


def test_migrating_twice_and_opening_twice_change_nothing(url: str) -> None:
    changes, _ = _changes(10)
    before = _older_database(url, changes)
    for _ in range(2):
        PostgresStore(url).close()
    with psycopg.connect(url, row_factory=dict_row) as conn:
        assert migrate(conn) == len(MIGRATIONS)
        after = conn.execute("SELECT id, seq FROM notes ORDER BY seq").fetchall()
    assert [(row["id"], row["seq"]) for row in after] == before


def test_privileges_other_roles_held_on_notes_are_kept(url: str) -> None:
    _older_database(url, _changes(5)[0])
    role = f"remem_reader_{ids.new_id('r').lower()[-8:]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role}")
        conn.execute(f"GRANT SELECT, UPDATE ON notes TO {role}")
    try:
        PostgresStore(url).close()
        with psycopg.connect(url) as conn:
            granted = conn.execute(
                "SELECT has_table_privilege(%s, 'notes', 'SELECT'),"
                " has_table_privilege(%s, 'notes', 'UPDATE'),"
                " has_table_privilege(%s, 'notes', 'DELETE')",
                (role, role, role),
            ).fetchone()
        assert granted == (True, True, False)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_a_view_on_notes_stops_the_move_with_what_to_do_and_loses_nothing(url: str) -> None:
    from remem.errors import StoreError

    before = _older_database(url, _changes(5)[0])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE VIEW note_report AS SELECT id, text FROM notes")
    with pytest.raises(StoreError, match="note_report.*drop the views"):
        PostgresStore(url)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        assert conn.execute("SELECT max(version) AS v FROM schema_migrations").fetchone() == {
            "v": 6
        }
        rows = conn.execute("SELECT id, seq FROM notes ORDER BY seq").fetchall()
        assert [(row["id"], row["seq"]) for row in rows] == before
        conn.execute("DROP VIEW note_report")
        conn.commit()
    PostgresStore(url).close()  # once the view is gone, the move happens


def test_two_processes_opening_an_older_database_at_once_move_it_once(url: str) -> None:
    before = _older_database(url, _changes(30)[0])
    opened: list[int] = []
    failed: list[BaseException] = []

    def open_store() -> None:
        try:
            store = PostgresStore(url)
            opened.append(store.schema_version)
            store.close()
        except BaseException as error:  # reported below, not lost in the thread
            failed.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == [] and opened == [len(MIGRATIONS)] * 3
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT id, seq FROM notes ORDER BY seq").fetchall()
        moves = conn.execute(
            "SELECT count(*) AS n FROM schema_migrations WHERE name = 'm007_notes_by_owner'"
        ).fetchone()
    assert [(row["id"], row["seq"]) for row in rows] == before
    assert moves == {"n": 1}
