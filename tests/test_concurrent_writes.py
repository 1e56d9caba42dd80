"""Concurrent writes to one note: no lost update, no duplicate version, no resurrected
delete — from threads sharing a memory, from two memories on one store, and from two
processes, on both stores."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from remem import ConflictError, InvalidInputError, Memory, NotFoundError
from remem.testing import HashEmbedder

UPDATER = textwrap.dedent(
    """
    import sys
    from remem import Memory
    from remem.testing import HashEmbedder

    location, note_id, who, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        for i in range(count):
            if who.startswith("text"):
                memory.update(note_id, text=f"{who} says {i}")
            else:
                memory.update(note_id, metadata={"by": who, "i": i})
            print(i, flush=True)
    """
)


def run_together(*workers: Callable[[], None]) -> None:
    """Start the workers at once; re-raise the first error any of them hit."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def run(worker: Callable[[], None]) -> None:
        start.wait()
        try:
            worker()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]


def check_history(memory: Memory, note_id: str, acknowledged: int) -> None:
    """Versions 1..1+acknowledged, each update written from the version before it."""
    note = memory.get(note_id)
    assert note.version == 1 + acknowledged
    updates = [event for event in memory.history(note_id) if event.action.startswith("update")]
    assert len(updates) == acknowledged
    assert [event.after["version"] for event in updates if event.after] == list(
        range(2, acknowledged + 2)
    )
    for previous, event in itertools.pairwise(updates):
        assert event.before == previous.after  # no update was made from a stale read
    assert updates[-1].after is not None
    assert (note.text, note.metadata) == (updates[-1].after["text"], updates[-1].after["metadata"])


def updater(memory: Memory, note_id: str, who: str, count: int) -> Callable[[], None]:
    def work() -> None:
        for i in range(count):
            if who.startswith("text"):
                memory.update(note_id, text=f"{who} says {i}")
            else:
                memory.update(note_id, metadata={"by": who, "i": i})

    return work


def test_racing_updates_in_one_memory_lose_nothing(memory: Memory) -> None:
    note_id = memory.add("the first text", user_id="u").note_ids[0]
    workers = [updater(memory, note_id, who, 12) for who in ("text-a", "text-b", "meta-a")]
    run_together(*workers)
    check_history(memory, note_id, 36)


def test_racing_updates_from_two_memories_lose_nothing(location: str) -> None:
    with (
        Memory(location, embedder=HashEmbedder(), llm=None) as first,
        Memory(location, embedder=HashEmbedder(), llm=None) as second,
    ):
        note_id = first.add("the first text", user_id="u").note_ids[0]
        run_together(updater(first, note_id, "text-a", 15), updater(second, note_id, "meta-b", 15))
        check_history(first, note_id, 30)
        assert second.get(note_id) == first.get(note_id)


@pytest.mark.slow
def test_racing_updates_from_two_processes_lose_nothing(location: str) -> None:
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        note_id = memory.add("the first text", user_id="u").note_ids[0]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", UPDATER, location, note_id, who, "20"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for who in ("text-a", "meta-b")
    ]
    acknowledged = sum(len(process.communicate(timeout=120)[0].split()) for process in processes)
    assert [process.returncode for process in processes] == [0, 0]
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        check_history(memory, note_id, acknowledged)
        assert acknowledged == 40


def test_an_update_racing_a_delete_never_brings_the_note_back(memory: Memory) -> None:
    rng = random.Random(7)
    for trial in range(15):
        note_id = memory.add(f"trial {trial} note", user_id="u", session_id="s").note_ids[0]
        deleted = threading.Event()
        late: list[int] = []

        def keep_updating(
            note_id: str = note_id, deleted: threading.Event = deleted, late: list[int] = late
        ) -> None:
            for i in range(1000):
                deleted.wait(0.002)  # another client's next request, not a busy loop
                was_deleted = deleted.is_set()
                try:
                    memory.update(note_id, metadata={"i": i})
                except NotFoundError:
                    return
                if was_deleted:
                    late.append(i)  # acknowledged after delete() had returned

        def delete(note_id: str = note_id, deleted: threading.Event = deleted) -> None:
            threading.Event().wait(rng.random() * 0.02)
            memory.delete(note_id)
            deleted.set()

        run_together(keep_updating, delete)
        assert late == []
        with pytest.raises(NotFoundError):
            memory.get(note_id)
        assert memory.store.get_notes([note_id])[note_id].deleted_at is not None
        assert all(hit.id != note_id for hit in memory.search(f"trial {trial}", user_id="u"))
        assert memory.history(note_id)[-1].action == "delete"


def test_expected_version_guards_an_update(memory: Memory) -> None:
    note_id = memory.add("version one", user_id="u").note_ids[0]
    assert memory.update(note_id, text="version two", expected_version=1).version == 2
    with pytest.raises(ConflictError, match="at version 2, not 1"):
        memory.update(note_id, text="from a stale read", expected_version=1)
    assert memory.get(note_id).text == "version two"
    for wrong in (0, -1, True, "2", 2**31):
        with pytest.raises(InvalidInputError, match="expected_version"):
            memory.update(note_id, text="x", expected_version=wrong)  # type: ignore[arg-type]


def test_a_metadata_update_keeps_the_text_written_meanwhile(tmp_path: Path) -> None:
    location = str(tmp_path / "m.db")
    with (
        Memory(location, embedder=HashEmbedder(), llm=None) as first,
        Memory(location, embedder=HashEmbedder(), llm=None) as second,
    ):
        note_id = first.add("old text", user_id="u").note_ids[0]
        first.update(note_id, text="new text")
        second.update(note_id, metadata={"tag": "x"})  # second's caches saw only "old text"
        assert first.get(note_id).text == "new text"
        assert first.get(note_id).metadata == {"tag": "x"}


def test_a_write_built_from_a_stale_read_is_refused_by_the_store(memory: Memory) -> None:
    """The check every store makes under its lock, without timing: a batch built from
    version 1 cannot commit once version 2 is in, nor once the note is deleted."""
    from remem.stores.base import StaleWriteError
    from remem.write import operations

    note_id = memory.add("version one", user_id="u").note_ids[0]
    stale = memory.get(note_id)
    build = operations.update
    from_v1 = build(stale, "from a stale read", None, memory.store, memory.embedder, actor="t")
    memory.update(note_id, text="version two")
    with pytest.raises(StaleWriteError) as raised:
        memory.store.apply(from_v1)
    assert (raised.value.expected, raised.value.current) == (1, 2)
    assert memory.get(note_id).text == "version two"
    current = memory.get(note_id)
    from_v2 = build(current, None, {"k": 1}, memory.store, memory.embedder, actor="t")
    memory.delete(note_id)
    with pytest.raises(StaleWriteError) as raised:
        memory.store.apply(from_v2)
    assert raised.value.current is None  # deleted: the update must not bring it back
    assert memory.store.get_notes([note_id])[note_id].deleted_at is not None


def test_a_batch_expecting_a_meta_row_commits_only_while_it_holds(memory: Memory) -> None:
    """A compare-and-set on meta rows (what an ingest's ledger relies on): a batch built
    from a row's value, or from its absence, commits only while the row still holds it;
    otherwise nothing of the batch is written."""
    from remem.stores.base import Changes, MetaChangedError

    store = memory.store
    store.apply(Changes(meta={"cas": "one"}, expect_meta={"cas": None}))
    with pytest.raises(MetaChangedError):  # it exists now
        store.apply(Changes(meta={"cas": "again"}, expect_meta={"cas": None}))
    store.apply(Changes(meta={"cas": "two"}, expect_meta={"cas": "one"}))
    with pytest.raises(MetaChangedError):
        store.apply(Changes(meta={"cas": "three", "beside": "x"}, expect_meta={"cas": "one"}))
    assert (store.get_meta("cas"), store.get_meta("beside")) == ("two", None)


def test_batches_racing_to_create_one_meta_row_commit_once(location: str) -> None:
    """Two memories (their own connections) both building from "no such row": one wins."""
    from remem.stores.base import Changes, MetaChangedError

    won: list[str] = []
    with (
        Memory(location, embedder=HashEmbedder(), llm=None) as one,
        Memory(location, embedder=HashEmbedder(), llm=None) as two,
    ):

        def create(memory: Memory, who: str) -> Callable[[], None]:
            def attempt() -> None:
                for round_ in range(20):
                    try:
                        memory.store.apply(
                            Changes(meta={f"new{round_}": who}, expect_meta={f"new{round_}": None})
                        )
                        won.append(f"new{round_}")
                    except MetaChangedError:
                        pass

            return attempt

        run_together(create(one, "one"), create(two, "two"))
        assert sorted(won) == sorted(f"new{i}" for i in range(20))  # each row once, no error


@pytest.mark.parametrize("location", ["postgres", "citus"], indirect=True)
def test_a_meta_compare_and_set_waits_for_a_writer_holding_the_row(location: str) -> None:
    """A writer that takes no advisory lock (a plain upsert) and has not committed yet:
    the check must wait for it and then see its value, not read past it and write over."""
    import psycopg

    from remem.stores.base import Changes, MetaChangedError

    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        memory.store.apply(Changes(meta={"ledger": "read"}))
        outcome: list[str] = []

        def compare_and_set() -> None:
            try:
                changes = Changes(meta={"ledger": "mine"}, expect_meta={"ledger": "read"})
                memory.store.apply(changes)
                outcome.append("written")
            except MetaChangedError:
                outcome.append("refused")

        with psycopg.connect(location) as other:
            other.execute(
                "INSERT INTO meta VALUES ('ledger', 'theirs') ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value"
            )
            racer = threading.Thread(target=compare_and_set)
            racer.start()
            racer.join(1.0)  # it waits on the row
            other.commit()
        racer.join(30)
        assert outcome == ["refused"] and memory.store.get_meta("ledger") == "theirs"
