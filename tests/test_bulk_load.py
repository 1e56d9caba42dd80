"""Bulk loads (`Records.bulk_load`, what `migrate` and `import` use): the same memory as
`apply` batch by batch would make, on every store; a load that fails midway leaves whole
batches and whole indexes, and running it again finishes it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import STORES, server_schema
from remem import Memory
from remem.errors import InvalidInputError
from remem.stores import open_store
from remem.stores.base import Changes, Dump, NoteRecord, Store
from remem.testing import HashEmbedder
from remem.transfer import copy_store

QUESTIONS = ["locker code", "bike garage", "dinner plans", "what did Ana say", "turn 7"]
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=STORES)
def two_locations(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty memories of one store kind: one loaded in bulk, one by `apply`."""
    if request.param == "sqlite":
        yield str(tmp_path / "bulk.db"), str(tmp_path / "normal.db")
        return
    with contextlib.ExitStack() as stack:
        schema = contextlib.contextmanager(server_schema)
        yield stack.enter_context(schema(request.param)), stack.enter_context(schema(request.param))


class NormalPath:
    """A store whose bulk load is `apply`, batch after batch: what the bulk path must equal."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def bulk_load(self, batches: Iterable[Changes], size: int) -> None:
        for changes in batches:
            self.store.apply(changes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class FailingSource:
    """A store whose dump breaks after `notes` notes (a disk error mid-copy)."""

    def __init__(self, store: Store, notes: int) -> None:
        self.store, self.notes = store, notes

    def dump(self) -> Dump:
        dump = self.store.dump()
        return replace(dump, notes=self._notes(dump.notes))

    def _notes(self, notes: Iterator[NoteRecord]) -> Iterator[NoteRecord]:
        for count, stored in enumerate(notes):
            if count == self.notes:
                raise OSError("the source disk went away")
            yield stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _conversation(path: Path, user: str = "ana", turns: int = 90) -> None:
    """Sessions long enough for two passages, sessionless turns (threads inferred), a
    note of several sentences, an update, a deletion, and another tenant."""
    with Memory(path, embedder=HashEmbedder()) as memory:
        for index in range(turns):
            said = START + timedelta(minutes=index)
            memory.add(
                [{"role": "user", "name": "Ana", "content": f"turn {index}: dinner plans"}],
                user_id=user,
                session_id=f"s{index // 70}",
                occurred_at=said,
            )
        for index, text in enumerate(["My locker code is 4812.", "My bike is in the garage."]):
            memory.add(text, user_id=user, occurred_at=START + timedelta(days=1, minutes=index))
        long = memory.add("Ana likes tea. She hates coffee. She cooks on Sundays.", user_id=user)
        kept = memory.add("The locker is by the door.", user_id=user).note_ids[0]
        memory.update(kept, text="The locker is by the front door. It is blue.")
        memory.delete(long.note_ids[0])
        memory.as_tenant("acme").add("A tenant's own locker note.", user_id=user)


def _answers(location: str) -> list[Any]:
    with Memory(location, embedder=HashEmbedder()) as memory:
        found = [
            [(hit.id, round(hit.score, 6)) for hit in memory.search(q, user_id="ana", limit=8)]
            for q in QUESTIONS
        ]
        found.append(memory.store.search_passages(["dinner", "turn"], _scope("ana"), 10))
        return found


def _scope(user: str) -> Any:
    from remem.types import Scope

    return Scope(user_id=user)


def _export(location: str, path: Path) -> list[Any]:
    with Memory(location, embedder=HashEmbedder()) as memory:
        memory.export(path)
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def _copy(source: Path, target: Any, size: int = 10**6, batch: int = 40) -> Any:
    """Copy as `migrate` does, in small batches, as if the source were large (so the
    server stores build their indexes after the load)."""
    origin = open_store(str(source))
    try:
        return copy_store(origin, target, size=size, batch=batch)
    finally:
        origin.close()


def _indexes(store: Any) -> set[str]:
    """The search indexes a server store has (SQLite: none to check)."""
    if not hasattr(store, "_pool"):
        return set()
    rows = store._rows(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        " AND indexname IN ('notes_embedding', 'notes_body_tsv', 'notes_context_tsv',"
        " 'passages_tsv')"
    )
    return {row["indexname"] for row in rows}


def _analysed(store: Any) -> bool:
    """Whether a PostgreSQL store's search tables have the planner's column statistics
    (an index build alone counts the rows, not what is in them)."""
    rows = store._rows(
        "SELECT count(DISTINCT tablename) AS n FROM pg_stats WHERE schemaname = current_schema()"
        " AND tablename IN ('notes', 'passages', 'episodes')"
    )
    return bool(rows[0]["n"] == 3)


def test_a_bulk_copy_searches_like_the_normal_path(
    two_locations: tuple[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    _conversation(source)
    bulk, normal = (open_store(location) for location in two_locations)
    try:
        result = _copy(source, bulk)
        assert _copy(source, NormalPath(normal)) == result
        assert result.added > 200 and result.skipped == 0
        expected = {"notes_embedding", "notes_body_tsv", "notes_context_tsv", "passages_tsv"}
        assert _indexes(bulk) == (expected if hasattr(bulk, "_pool") else set())
        if hasattr(bulk, "_pool") and not bulk._citus:  # PostgreSQL's planner knows the rows
            assert _analysed(bulk)
    finally:
        bulk.close()
        normal.close()
    assert _export(two_locations[0], tmp_path / "a.jsonl") == _export(
        two_locations[1], tmp_path / "b.jsonl"
    )
    answers = _answers(two_locations[0])
    assert answers == _answers(two_locations[1])
    assert answers[0] and answers[-1]  # the questions do find notes and passages


def test_a_bulk_copy_into_a_memory_continues_its_sessions(
    two_locations: tuple[str, str], tmp_path: Path
) -> None:
    """A target that holds turns of the same sessions already: the copied turns join
    their threads and passages as `apply` would join them."""
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    _conversation(first, turns=60)
    with Memory(second, embedder=HashEmbedder()) as memory:
        for index in range(30):
            memory.add(
                [{"role": "user", "content": f"later turn {index} about dinner plans"}],
                user_id="ana",
                session_id="s0",
                occurred_at=START + timedelta(hours=2, minutes=index),
            )
    bulk, normal = (open_store(location) for location in two_locations)
    try:
        _copy(first, NormalPath(bulk))
        _copy(first, NormalPath(normal))
        assert _copy(second, bulk, size=10) == _copy(second, NormalPath(normal), size=10)
    finally:
        bulk.close()
        normal.close()
    assert _answers(two_locations[0]) == _answers(two_locations[1])


def test_a_copy_that_fails_midway_leaves_whole_batches_and_finishes_when_run_again(
    two_locations: tuple[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    _conversation(source)
    bulk, normal = (open_store(location) for location in two_locations)
    origin = open_store(str(source))
    try:
        with pytest.raises(OSError, match="went away"):
            copy_store(FailingSource(origin, 50), bulk, size=10**6, batch=40)  # type: ignore[arg-type]
        expected = {"notes_embedding", "notes_body_tsv", "notes_context_tsv", "passages_tsv"}
        assert _indexes(bulk) == (expected if hasattr(bulk, "_pool") else set())
        # the episodes went first; of the notes, only whole batches (of 40 records)
        copied = bulk.counts()
        assert copied["records"] % 40 == 0 and 0 < copied["records"] < origin.counts()["records"]
        again = copy_store(origin, bulk, size=10**6, batch=40)
        assert again.skipped == copied["records"] and again.added > 0
        copy_store(origin, NormalPath(normal), batch=40)  # type: ignore[arg-type]
    finally:
        origin.close()
        bulk.close()
        normal.close()
    assert _export(two_locations[0], tmp_path / "a.jsonl") == _export(
        two_locations[1], tmp_path / "b.jsonl"
    )
    assert _answers(two_locations[0]) == _answers(two_locations[1])


def test_a_record_already_there_is_written_as_apply_writes_it(location: str) -> None:
    """The bulk path of a store is for new records; one already there (written meanwhile
    by another process) is updated as `apply` would update it, with the batch's new ones."""
    with Memory(location, embedder=HashEmbedder()) as memory:
        note = memory.get(memory.add("My locker code is 4812.", user_id="ana").note_ids[0])
        changed = replace(note, text="My locker code is 9999.", version=2)
        new = replace(changed, id=changed.id[:-4] + "ZZZZ", text="A new note about bikes.")
        batch = Changes(notes=[changed, new], bodies={changed.id: changed.text, new.id: new.text})
        memory.store.bulk_load([batch], 10**6)
        assert memory.get(note.id).text == "My locker code is 9999."
        assert memory.search("locker code 9999", user_id="ana")[0].id == note.id
        assert memory.search("bikes", user_id="ana")[0].id == new.id


def test_an_id_twice_in_a_file_is_refused_before_anything_loads(
    memory: Memory, tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    _conversation(source, turns=10)
    export = tmp_path / "export.jsonl"
    with Memory(source, embedder=HashEmbedder()) as original:
        original.export(export)
    lines = export.read_text().splitlines()
    export.write_text("\n".join([*lines, lines[5]]) + "\n")
    with pytest.raises(InvalidInputError, match="in the file twice"):
        memory.import_file(export)
    assert memory.store.counts()["records"] == 0


def test_a_bad_record_midway_through_an_import_loads_nothing(
    memory: Memory, tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    _conversation(source, turns=30)
    export = tmp_path / "export.jsonl"
    with Memory(source, embedder=HashEmbedder()) as original:
        original.export(export)
    lines = export.read_text().splitlines()
    lines.insert(len(lines) // 2, json.dumps({"type": "note", "id": "nt_bad"}))
    export.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInputError, match=f"export.jsonl:{len(lines) // 2 + 1}"):
        memory.import_file(export)
    assert memory.store.counts()["records"] == 0
    assert _indexes(memory.store) in (
        set(),
        {"notes_body_tsv", "notes_context_tsv", "passages_tsv"},  # no vectors yet: no HNSW
    )


def test_migrate_shows_progress_and_keeps_its_json(location: str, tmp_path: Path) -> None:
    from remem.cli.main import cli

    source = tmp_path / "source.db"
    _conversation(source, turns=20)
    env = {"REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}
    arguments = ["migrate", "--from", str(source), "--to", location]
    result = CliRunner().invoke(cli, [*arguments, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] > 40
    assert "records/s" in result.stderr
    again = CliRunner().invoke(cli, arguments, env=env)
    assert again.exit_code == 0 and "copied 0 records" in again.stdout


def test_a_sqlite_load_gives_back_the_page_cache_it_took_even_when_it_fails(
    tmp_path: Path,
) -> None:
    """A large load reads with a big page cache; afterwards the store holds only its own."""
    from remem.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "m.db")
    (before,) = store._db.execute("PRAGMA cache_size").fetchone()

    def breaking() -> Iterator[Changes]:
        (during,) = store._db.execute("PRAGMA cache_size").fetchone()
        assert during < 0 and -during > abs(before)  # KiB, larger than SQLite's default
        yield Changes(meta={"k": "v"})
        raise OSError("the source broke")

    with pytest.raises(OSError, match="the source broke"):
        store.bulk_load(breaking(), 100_000)
    assert store._db.execute("PRAGMA cache_size").fetchone() == (before,)
    assert store.get_meta("k") == "v"  # the batch before the failure is kept
    store.close()
