"""Implicit threads: turns added without a session id are grouped by when they were said,
and every step that reads a conversation's structure uses those threads."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remem import Memory
from remem.errors import InvalidInputError
from remem.stores.sqlite import SQLiteStore
from remem.stores.sqlite_schema import migrate
from remem.testing import HashEmbedder
from remem.write.threads import GAP

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _say(memory: Memory, name: str, text: str, when: datetime, **scope: str) -> str:
    message = {"role": "user", "name": name, "content": text}
    scope.setdefault("user_id", "u")
    return memory.add([message], occurred_at=when.isoformat(), **scope).note_ids[0]


def test_turns_said_close_together_share_a_thread(memory: Memory) -> None:
    first = _say(memory, "Bo", "Do you have pets?", NOON)
    second = _say(memory, "Ana", "Two cats.", NOON + timedelta(minutes=2))
    later = _say(memory, "Ana", "Off to work now.", NOON + GAP + timedelta(minutes=10))
    threads = [memory.get(item).thread for item in (first, second, later)]
    assert threads[0] is not None and threads[0].startswith("th_")
    assert threads[0] == threads[1] != threads[2]
    facts = memory.store.describe([first, second, later])
    assert facts[first].following == second and facts[second].previous == first
    assert facts[later].previous is None  # a new conversation, not the next turn


def test_a_turn_added_late_joins_the_thread_it_was_said_in(memory: Memory) -> None:
    morning = _say(memory, "Ana", "Good morning.", NOON)
    evening = _say(memory, "Ana", "Good evening.", NOON + timedelta(hours=8))
    late = _say(memory, "Bo", "Morning! Slept well?", NOON + timedelta(minutes=5))
    assert memory.get(late).thread == memory.get(morning).thread
    assert memory.get(late).thread != memory.get(evening).thread


def test_a_turn_joins_the_nearer_of_two_threads(memory: Memory) -> None:
    early = _say(memory, "Ana", "one", NOON)
    late = _say(memory, "Ana", "two", NOON + GAP + timedelta(minutes=20))
    between = _say(memory, "Ana", "three", NOON + GAP + timedelta(minutes=5))
    assert memory.get(between).thread == memory.get(late).thread != memory.get(early).thread


def test_an_explicit_session_wins(memory: Memory) -> None:
    inferred = _say(memory, "Ana", "no session here", NOON)
    in_session = _say(memory, "Ana", "in a session", NOON, session_id="chat-7")
    assert memory.get(in_session).thread == "chat-7"
    assert memory.get(inferred).thread != "chat-7"
    facts = memory.store.describe([inferred, in_session])
    assert facts[in_session].previous is None and facts[inferred].following is None


def test_threads_never_cross_owners_or_tenants(memory: Memory) -> None:
    ana = _say(memory, "Ana", "hello", NOON)
    bo = _say(memory, "Bo", "hello", NOON, user_id="bo")
    other = memory.as_tenant("acme")
    stranger = _say(other, "Ana", "hello", NOON)
    assert len({memory.get(ana).thread, memory.get(bo).thread, other.get(stranger).thread}) == 3


def test_one_add_of_several_messages_is_one_thread(memory: Memory) -> None:
    result = memory.add(
        [
            {"role": "user", "content": "Where do you live?"},
            {"role": "assistant", "content": "Oslo."},
        ],
        user_id="u",
    )
    threads = {memory.get(item).thread for item in result.note_ids}
    assert len(threads) == 1 and None not in threads


def test_a_deleted_turn_anchors_no_thread(memory: Memory) -> None:
    gone = _say(memory, "Ana", "soon deleted", NOON)
    thread = memory.get(gone).thread
    memory.delete(gone)
    assert memory.get(_say(memory, "Ana", "still here", NOON)).thread != thread


def test_search_hits_name_their_thread(memory: Memory) -> None:
    item = _say(memory, "Ana", "I play the cello.", NOON)
    hit = memory.search("cello", user_id="u", limit=1)[0]
    assert hit.id == item and hit.thread == memory.get(item).thread is not None


def test_an_answer_is_found_through_its_question_without_a_session(memory: Memory) -> None:
    """The reason for threads: the structure steps work when an app sends no session id."""
    turns = [
        ("Bo", "Do you have any pets at home?"),
        ("Ana", "Yes, two cats called Tom and Jerry."),
        ("Bo", "Lovely. How was work today?"),
        ("Ana", "Busy, the quarterly report is due."),
    ]
    ids = [
        _say(memory, name, text, NOON + timedelta(minutes=i))
        for i, (name, text) in enumerate(turns)
    ]
    _say(memory, "Bo", "The weather is nice.", NOON + timedelta(days=3))
    _say(memory, "Ana", "Sunny all week.", NOON + timedelta(days=3, minutes=1))
    scope = memory.get(ids[1]).scope
    matches = memory.store.search_text(["pets"], scope, 5)
    assert ids[1] in {item for item, _ in matches.in_context}  # read with its question
    top = [hit.id for hit in memory.search("Ana pets", user_id="u", limit=2)]
    assert ids[1] in top


def test_racing_adders_keep_every_turn_in_some_thread(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    errors: list[BaseException] = []

    def adder(name: str) -> None:
        try:
            with Memory(str(path), embedder=HashEmbedder()) as memory:
                for i in range(15):
                    _say(memory, name, f"{name} says {i}", NOON + timedelta(seconds=i))
        except BaseException as error:  # reported below
            errors.append(error)

    workers = [threading.Thread(target=adder, args=(name,)) for name in ("Ana", "Bo")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with Memory(str(path), embedder=HashEmbedder()) as memory:
        notes = memory.list(user_id="u", limit=100).items
        assert len(notes) == 30
        assert all(note.thread is not None for note in notes)


def test_export_and_import_keep_threads(memory: Memory, tmp_path: Path) -> None:
    item = _say(memory, "Ana", "exported", NOON)
    thread = memory.get(item).thread
    memory.export(tmp_path / "out.jsonl")
    with Memory(str(tmp_path / "copy.db"), embedder=HashEmbedder()) as copy:
        copy.import_file(tmp_path / "out.jsonl")
        assert copy.get(item).thread == thread


def test_an_export_from_before_threads_puts_session_turns_in_their_session(
    memory: Memory, tmp_path: Path
) -> None:
    item = _say(memory, "Ana", "old export", NOON, session_id="s1")
    memory.export(tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    old = [
        json.dumps({k: v for k, v in json.loads(line).items() if k != "thread"}) for line in lines
    ]
    (tmp_path / "old.jsonl").write_text("\n".join(old) + "\n")
    with Memory(str(tmp_path / "copy.db"), embedder=HashEmbedder()) as copy:
        copy.import_file(tmp_path / "old.jsonl")
        assert copy.get(item).thread == "s1"


@pytest.mark.parametrize("thread", ["", "x" * 10_000, 7])
def test_an_import_refuses_a_bad_thread(memory: Memory, tmp_path: Path, thread: object) -> None:
    item = _say(memory, "Ana", "to be forged", NOON)
    memory.export(tmp_path / "out.jsonl")
    lines = []
    for line in (tmp_path / "out.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("id") == item:
            record["thread"] = thread
        lines.append(json.dumps(record))
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    with (
        Memory(str(tmp_path / "copy.db"), embedder=HashEmbedder()) as copy,
        pytest.raises(InvalidInputError, match="thread"),
    ):
        copy.import_file(tmp_path / "bad.jsonl")


def test_the_migration_puts_session_turns_in_their_session(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with Memory(str(path), embedder=HashEmbedder()) as memory:
        item = _say(memory, "Ana", "before threads", NOON, session_id="s1")
        alone = _say(memory, "Ana", "no session", NOON)
    db = sqlite3.connect(path)
    db.execute("UPDATE notes SET thread = NULL")
    db.execute("DROP INDEX notes_thread")
    db.execute("DROP INDEX notes_owner_time")
    db.execute("ALTER TABLE notes DROP COLUMN thread")
    # and what came after threads (m007_lifecycle, m008), so the file is as m005 left it
    db.execute("DROP INDEX passages_owner")
    db.execute("DROP INDEX notes_expires")
    db.execute("DROP INDEX notes_archived")
    for column in ("access_count", "last_accessed_at", "pinned", "expires_at", "archived_at"):
        db.execute(f"ALTER TABLE notes DROP COLUMN {column}")
    db.execute("DELETE FROM schema_migrations WHERE version >= 6")
    db.commit()
    migrate(db)
    db.close()
    with Memory(store=SQLiteStore(path), embedder=HashEmbedder()) as memory:
        assert memory.get(item).thread == "s1"
        assert memory.get(alone).thread is None  # earlier sessionless turns stay apart
        newer = _say(memory, "Ana", "after threads", NOON + timedelta(minutes=1))
        assert memory.get(newer).thread is not None
