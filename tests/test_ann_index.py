"""The HNSW graph of big embedded memories: same answers as exact search, scoped searches
that fill their limit, and a saved graph that is reloaded, caught up or rebuilt."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from remem import Memory
from remem.stores.ann_index import ApproximateIndex
from remem.stores.base import Changes
from remem.stores.sqlite import SQLiteStore
from remem.testing import HashEmbedder
from remem.types import Scope

EMBED = HashEmbedder(32)


def _vectors(count: int, seed: int = 3) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, 32)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _filled(count: int, scopes: list[Scope], **options: int) -> ApproximateIndex:
    index = ApproximateIndex(None, threshold=100, **options)
    vectors = _vectors(count)
    ids = [f"nt_{i}" for i in range(count)]
    index.upsert_many(
        ids, vectors, [scopes[i % len(scopes)] for i in range(count)], list(range(count))
    )
    index.grow(1)
    return index


def test_the_graph_finds_what_exact_search_finds() -> None:
    index = _filled(2000, [Scope("ana")])
    assert index.graph is not None
    queries = _vectors(50, seed=9)
    overlap = [
        len(
            {i for i, _ in index.search(q, Scope("ana"), 10)}
            & {i for i, _ in index.exact.search(q, Scope("ana"), 10)}
        )
        for q in queries
    ]
    assert sum(overlap) / (10 * len(queries)) >= 0.95


def test_a_scope_that_is_a_small_part_of_the_graph_still_fills_its_limit() -> None:
    scopes = [Scope("big")] * 49 + [Scope("small")]  # "small" holds 2% of the notes
    index = _filled(5000, scopes, exact_scope_limit=10)
    found = index.search(_vectors(1, seed=5)[0], Scope("small"), 25)
    assert len(found) == 25
    assert all(int(item_id[3:]) % 50 == 49 for item_id, _ in found)
    assert index.search(_vectors(1)[0], Scope("nobody"), 5) == []


def test_updates_and_deletes_reach_the_graph() -> None:
    index = _filled(500, [Scope("ana")])
    target = _vectors(1, seed=42)[0]
    index.upsert_many(["nt_7"], target[None, :], [Scope("ana")], [7])
    assert index.search(target, Scope("ana"), 1)[0][0] == "nt_7"
    index.remove("nt_7")
    assert "nt_7" not in {i for i, _ in index.search(target, Scope("ana"), 20)}


def test_a_freed_row_taken_by_another_note_answers_with_that_note() -> None:
    """Rows are reused after a delete and keys may be far apart: the graph's answers still
    name the note each row holds now, never the one deleted."""
    index = _filled(500, [Scope("ana"), Scope("bo")], exact_scope_limit=10)
    assert index.graph is not None
    target = _vectors(1, seed=42)[0]
    index.remove("nt_8")  # frees a row of ana's, taken by the next new note
    index.upsert_many(["nt_new"], target[None, :], [Scope("ana")], [10**6])
    assert index.search(target, Scope("ana"), 1)[0][0] == "nt_new"
    found = {i for i, _ in index.search(target, Scope("ana"), 100)}
    assert "nt_8" not in found and len(found) == 100
    assert all(int(i[3:]) % 2 == 0 for i in found - {"nt_new"})  # ana's only
    index.remove("nt_new")
    assert "nt_new" not in {i for i, _ in index.search(target, Scope("ana"), 100)}


def test_a_note_added_again_under_a_new_key_leaves_nothing_under_its_old_one() -> None:
    """Another process purged a note and imported it again (a new row key): its old key
    must not answer for whichever note later takes its row."""
    index = _filled(500, [Scope("ana")], exact_scope_limit=10)
    target = _vectors(1, seed=42)[0]
    index.upsert_many(["nt_x"], target[None, :], [Scope("ana")], [1000])
    index.upsert_many(["nt_x"], target[None, :], [Scope("ana")], [2000])
    index.remove("nt_x")
    index.upsert_many(["nt_z"], -target[None, :], [Scope("ana")], [3000])  # takes its row
    found = [i for i, _ in index.search(target, Scope("ana"), 50)]
    assert "nt_x" not in found and "nt_z" not in found
    assert len(found) == len(set(found)) == 50


def test_a_key_far_beyond_the_others_is_still_found() -> None:
    index = _filled(500, [Scope("ana")], exact_scope_limit=10)
    target = _vectors(1, seed=42)[0]
    index.upsert_many(["nt_far"], target[None, :], [Scope("ana")], [2**40])
    assert index.search(target, Scope("ana"), 1)[0][0] == "nt_far"
    index.remove("nt_far")
    assert "nt_far" not in {i for i, _ in index.search(target, Scope("ana"), 20)}


def _fill_store(path: Path, texts: list[str]) -> list[str]:
    with Memory(store=SQLiteStore(path, ann_threshold=50), embedder=EMBED) as memory:
        return [memory.add(text, user_id="ana").note_ids[0] for text in texts]


def _search(path: Path, text: str) -> list[str]:
    with Memory(store=SQLiteStore(path, ann_threshold=50), embedder=EMBED) as memory:
        vector = EMBED.embed(text)
        return [i for i, _ in memory.store.search_vector(vector, Scope("ana"), 3)]


def test_the_graph_is_saved_reloaded_and_caught_up(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    graph = tmp_path / "m.db.hnsw"
    ids = _fill_store(db, [f"note number {i} about topic {i % 7}" for i in range(80)])
    assert graph.exists() and (tmp_path / "m.db.hnsw.json").exists()
    shutil.copy(graph, tmp_path / "old.hnsw")
    shutil.copy(tmp_path / "m.db.hnsw.json", tmp_path / "old.hnsw.json")
    later = _fill_store(db, ["a brand new note about quantum gardening"])[0]
    with Memory(store=SQLiteStore(db, ann_threshold=50), embedder=EMBED) as memory:
        memory.delete(ids[0])
    shutil.copy(tmp_path / "old.hnsw", graph)  # as if the last two saves were lost
    shutil.copy(tmp_path / "old.hnsw.json", tmp_path / "m.db.hnsw.json")
    assert _search(db, "a brand new note about quantum gardening")[0] == later
    assert ids[0] not in _search(db, "note number 0 about topic 0")
    graph.write_bytes(b"not a graph")  # unreadable: rebuilt from the file
    assert _search(db, "a brand new note about quantum gardening")[0] == later


def _two_processes(path: Path) -> tuple[SQLiteStore, Memory, list[str]]:
    """A reader's store and a writer's memory on one file (each its own connection, as
    two processes have), the reader's graph built over the writer's 120 notes."""
    reader = SQLiteStore(path, ann_threshold=50)
    reader._index.exact_scope_limit = 10  # the graph answers, not the exact scan
    writer = Memory(store=SQLiteStore(path, ann_threshold=50), embedder=EMBED)
    ids = [writer.add(f"note number {i} about topic {i * 7 % 13}", user_id="ana").note_ids[0]
           for i in range(120)]  # fmt: skip
    reader.search_vector(EMBED.embed("note number 1"), Scope("ana"), 1)
    assert reader._index.graph is not None
    return reader, writer, ids


def test_a_note_written_after_another_process_purged_the_newest_is_found(
    tmp_path: Path,
) -> None:
    """The purged newest note's revision (and row key) went to the next note: the reader,
    catching up from the revisions it has seen, missed that note until it reopened."""
    reader, writer, ids = _two_processes(tmp_path / "m.db")
    writer.purge(ids[-1])
    new = writer.add("zebra xylophone quantum", user_id="ana").note_ids[0]

    def found(text: str, limit: int) -> set[str]:
        return {i for i, _ in reader.search_vector(EMBED.embed(text), Scope("ana"), limit)}

    assert new in found("zebra xylophone quantum", 5)
    assert ids[-1] not in found("note number 119 about topic 11", 20)


def test_a_note_purged_and_imported_again_by_another_process_stays_findable(
    tmp_path: Path,
) -> None:
    reader, writer, ids = _two_processes(tmp_path / "m.db")
    again = writer.store.get_notes([ids[10]])[ids[10]]
    vector = writer.store.vectors_of([ids[10]])[ids[10]]
    writer.purge(ids[10])
    imported = replace(again, episode_ids=())
    writer.store.apply(
        Changes(notes=[imported], bodies={again.id: again.text}, vectors={again.id: vector})
    )
    reader.search_vector(vector, Scope("ana"), 1)  # catches up: a new row key, one purge
    writer.add("zebra xylophone quantum", user_id="ana")  # may take the note's old row
    found = reader.search_vector(vector, Scope("ana"), 3)
    assert again.id in {i for i, _ in found}
    assert all(score > 0.99 for _, score in found[:1])


def _corrupt(path: Path, how: str) -> None:
    """Break the saved graph of the memory at `path` the way a person or a crash might."""
    graph, sidecar = path.with_name(path.name + ".hnsw"), path.with_name(path.name + ".hnsw.json")
    if how == "graph is a folder":
        graph.unlink()
        graph.mkdir()
    elif how == "sidecar is a folder":
        sidecar.unlink()
        sidecar.mkdir()
    elif how == "graph is empty":
        graph.write_bytes(b"")
    elif how == "no sidecar":
        sidecar.unlink()
    else:
        sidecar.write_text(how)


HOSTILE_SIDECARS = [
    "{}",
    "[]",
    "null",
    "garbage",
    "",
    '{"revision": "7"}',
    '{"revision": null}',
    '{"revision": true}',
    '{"revision": -1}',
    '{"revision": 1e999}',
    '{"revision": 99999999999999999999999}',
    '{"revision": 0, "ndim": "x"}',
    "\xff\xfe",
]
HOSTILE_FILES = ["graph is a folder", "sidecar is a folder", "graph is empty", "no sidecar"]


@pytest.mark.parametrize("how", HOSTILE_SIDECARS + HOSTILE_FILES)
def test_a_broken_saved_graph_is_rebuilt_and_the_memory_opens(tmp_path: Path, how: str) -> None:
    db = tmp_path / "m.db"
    ids = _fill_store(db, [f"note number {i} about topic {i % 7}" for i in range(60)])
    _corrupt(db, how)
    with Memory(store=SQLiteStore(db, ann_threshold=50), embedder=EMBED) as memory:
        assert (
            memory.store.search_vector(EMBED.embed("note number 3 about topic 3"), Scope("ana"), 1)[
                0
            ][0]
            == ids[3]
        )
        memory.add("one more note about topic 2", user_id="ana")  # written and saved again
    assert _search(db, "note number 5 about topic 5")[0] == ids[5]
    if "folder" not in how:  # a folder is the person's: remem keeps the graph in memory
        assert json.loads((tmp_path / "m.db.hnsw.json").read_text())["revision"] > 0
