"""The reads both stores share (`stores/sql.py`): the same answers on SQLite and PostgreSQL,
id lists longer than one SQLite chunk, and what each dialect renders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from remem import Memory
from remem.stores.base import Changes, LLMCall
from remem.stores.sql import IDS
from remem.stores.sqlite import IN_CHUNK, SQLITE
from remem.types import ApiKey, Job, Scope

CHAT = [
    {"role": "user", "name": "Ana", "content": "I moved to Lisbon in March."},
    {"role": "assistant", "content": "How is the new hospital?"},
    {"role": "user", "name": "Ana", "content": "My dog Pixel loves the beach."},
]
WHEN = datetime(2024, 3, 2, 10, tzinfo=UTC)
# more ids than one SQLite IN list binds, so the real ones fall in a later chunk
PADDING = [f"missing-{i}" for i in range(IN_CHUNK + 50)]


def _job(job_id: str, status: Literal["pending", "failed"], minutes: int) -> Job:
    at = WHEN + timedelta(minutes=minutes)
    return Job(job_id, "organise", "nothing", status, 0, None, at, at)


def _call(step: str, prompt_tokens: int) -> LLMCall:
    return LLMCall("job", step, "model", 1, prompt_tokens, 5, 10.0, True, WHEN)


def test_records_are_read_alike_on_every_store(memory: Memory) -> None:
    added = memory.add(CHAT, user_id="ana", session_id="s1", occurred_at=WHEN)
    other = memory.add("Bob likes tea.", user_id="bob", occurred_at=WHEN)
    store = memory.store
    notes, episodes = list(added.note_ids), list(added.episode_ids)

    assert sorted(store.get_episodes([*PADDING, *episodes, episodes[0]])) == sorted(episodes)
    found = store.get_notes([*PADDING, *notes, *notes])
    assert sorted(found) == sorted(notes)
    assert [found[n].episode_ids for n in notes] == [(e,) for e in episodes]
    assert store.existing_ids([*PADDING, *notes, other.episode_ids[0]]) == {
        *notes,
        other.episode_ids[0],
    }
    assert [n.id for n in store.notes_of_episodes([*PADDING, episodes[1]])] == [notes[1]]
    live_episodes, live_notes = store.live_ids(Scope("ana"))
    assert (sorted(live_episodes), sorted(live_notes)) == (sorted(episodes), sorted(notes))
    assert store.get_meta("no such key") is None
    assert store.get_meta("embedder") == memory.embedder.model_id


def test_notes_are_listed_page_by_page_in_the_order_written(memory: Memory) -> None:
    added = memory.add(CHAT, user_id="ana", occurred_at=WHEN)
    first, cursor = memory.store.list_notes(Scope("ana"), 2, None)
    assert cursor is not None
    rest, end = memory.store.list_notes(Scope("ana"), 2, cursor)
    assert [n.id for n in first + rest] == list(added.note_ids) and end is None


def test_neighbours_recent_turns_and_history(memory: Memory) -> None:
    added = memory.add(CHAT, user_id="ana", session_id="s1", occurred_at=WHEN)
    store, notes = memory.store, added.note_ids

    facts = store.describe([notes[1], "missing"])
    assert list(facts) == [notes[1]]
    assert (facts[notes[1]].previous, facts[notes[1]].following) == (notes[0], notes[2])
    assert facts[notes[1]].occurred_at == WHEN and facts[notes[1]].speaker is None
    alone = store.describe([notes[0]], neighbours=False)[notes[0]]
    assert (alone.speaker, alone.previous, alone.following) == ("Ana", None, None)
    # said at the same moment: the one written last counts as the most recent
    recent = store.recent_episodes(Scope("ana", session_id="s1"), 2)
    assert [e.id for e in recent] == list(reversed(added.episode_ids[1:]))

    memory.update(notes[0], text="I moved to Porto in March.")
    history = store.events(notes[0])
    assert len(history) == 2 and history[0].at <= history[1].at


def test_jobs_keys_and_accounting(memory: Memory) -> None:
    store = memory.store
    before = store.counts()
    store.apply(
        Changes(
            jobs=[_job("job-b", "failed", 2), _job("job-a", "pending", 1)],
            llm_calls=[_call("extract", 100), _call("link", 7), _call("extract", 20)],
        )
    )
    assert [j.id for j in store.jobs()] == ["job-a", "job-b"]
    assert [j.id for j in store.jobs("failed")] == ["job-b"]
    assert store.llm_totals() == [("extract", 2, 120, 10, 20.0), ("link", 1, 7, 5, 10.0)]
    counts = store.counts()
    assert counts["jobs pending"] == before.get("jobs pending", 0) + 1
    assert counts["jobs failed"] == before.get("jobs failed", 0) + 1
    assert counts["records"] == before["records"] + 2

    later = ApiKey("key-2", "acme", "second", "digest-2", WHEN + timedelta(days=1))
    store.save_key(later)
    store.save_key(ApiKey("key-1", "acme", "first", "digest-1", WHEN))
    assert [k.id for k in store.list_keys()] == ["key-1", "key-2"]
    assert store.find_key("digest-2") == later
    assert store.find_key("no such digest") is None


def test_a_dump_holds_every_record_in_the_order_written(memory: Memory) -> None:
    added = memory.add(CHAT, user_id="ana", occurred_at=WHEN)
    dump = memory.store.dump()
    assert [e.id for e in dump.episodes] == list(added.episode_ids)
    notes = list(dump.notes)
    assert [n.note.id for n in notes] == list(added.note_ids)
    assert all(n.vector is not None for n in notes)


def test_sqlite_binds_id_lists_in_chunks_of_distinct_ids() -> None:
    ids = [str(i) for i in range(2 * IN_CHUNK + 1)]
    statements = list(SQLITE.among(f"SELECT id FROM notes WHERE x = ? AND id {IDS}", ids * 2, [7]))
    assert [len(values) for _, values in statements] == [IN_CHUNK + 1, IN_CHUNK + 1, 2]
    sql, values = statements[-1]
    assert sql == "SELECT id FROM notes WHERE x = ? AND id IN (?)" and values == [7, ids[-1]]
    assert list(SQLITE.among(f"SELECT id FROM notes WHERE id {IDS}", [])) == []


def test_postgres_binds_an_id_list_as_one_array() -> None:
    pytest.importorskip("psycopg")
    from remem.stores.postgres import POSTGRES

    statements = list(POSTGRES.among(f"SELECT id FROM notes WHERE x = ? AND id {IDS}", ["a"], [7]))
    assert statements == [("SELECT id FROM notes WHERE x = %s AND id = ANY(%s)", [7, ["a"]])]


def test_note_ids_ending_finds_live_notes_of_one_tenant(memory: Memory) -> None:
    first, second = memory.add([{"content": "one"}, {"content": "two"}], user_id="u").note_ids
    memory.delete(second)
    assert memory.store.note_ids_ending(first[-8:], "", 2) == [first]
    assert memory.store.note_ids_ending(second[-8:], "", 2) == []  # deleted
    assert memory.store.note_ids_ending(first[-8:], "other", 2) == []
    assert memory.store.note_ids_ending("%", "", 2) == []  # not a LIKE pattern
    assert len(memory.store.note_ids_ending(first[-1:], "", 1)) <= 1
