"""Purge really forgets: no text, vector, index entry or history payload is left, in the
store's files (SQLite) or rows (PostgreSQL), in search, or in later exports."""

from __future__ import annotations

from pathlib import Path

import pytest

from remem import Memory, NotFoundError
from remem.testing import HashEmbedder

SECRET = "zanzibarquokka"  # one word, in no other text


def remember(memory: Memory) -> tuple[list[str], list[str]]:
    """Three turns of a session, the middle one holding the secret, changed once."""
    added = memory.add(
        [
            {"role": "user", "name": "Ana", "content": "I bought a new bike for the commute."},
            {
                "role": "user",
                "name": "Ana",
                "content": f"My bank pin is {SECRET} 4412.",
                "metadata": {"topic": SECRET},
            },
            {"role": "assistant", "content": "Noted, I will remember the bike."},
        ],
        user_id="ana",
        session_id="s1",
    )
    secret_note = added.note_ids[1]
    memory.update(secret_note, text=f"My bank pin is {SECRET} 4413.")
    return list(added.episode_ids), list(added.note_ids)


def test_purge_erases_a_note_and_its_episode(memory: Memory, tmp_path: Path) -> None:
    episodes, notes = remember(memory)
    memory.purge(notes[1])
    for item_id, kind in ((notes[1], "memory"), (episodes[1], "episode")):
        with pytest.raises(NotFoundError, match=kind):
            memory.get(item_id) if kind == "memory" else memory.episode(item_id)
    history = memory.history(notes[1])
    assert history[-1].action == "purge"
    assert all(event.before is None and event.after is None for event in history)
    assert all(SECRET not in hit.text for hit in memory.search(SECRET, user_id="ana"))
    assert memory.search("bank pin", user_id="ana", limit=5)[0].id != notes[1]
    assert memory.get(notes[0]).text.startswith("I bought")  # the rest stays
    exported = tmp_path / "after.jsonl"
    memory.export(exported)
    assert SECRET not in exported.read_text(encoding="utf-8")


def test_no_search_finds_a_purged_word(memory: Memory) -> None:
    """The turn after a purged turn was indexed with it as context: that goes too."""
    _, notes = remember(memory)
    before = memory.search(SECRET, user_id="ana", limit=10)
    assert notes[2] in [hit.id for hit in before[:3]]  # found through its context
    memory.purge(notes[1])
    after = memory.store.search_text([SECRET], memory._scope("ana", None, None), 10)
    assert after.in_context == [] and after.note == []
    assert memory.store.search_passages([SECRET], memory._scope("ana", None, None), 10) == []


def test_purged_bytes_are_gone_from_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with Memory(path, embedder=HashEmbedder(), llm=None) as memory:
        _, notes = remember(memory)
        memory.delete(notes[1])  # a deleted note can be purged too
        memory.purge(notes[1])
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("memory.db"))
    assert SECRET.encode() not in data
    assert b"I bought a new bike" in data  # the check reads what it should


@pytest.mark.parametrize("location", ["postgres"], indirect=True)
def test_purged_rows_are_gone_from_postgresql(location: str) -> None:
    import psycopg

    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        _, notes = remember(memory)
        memory.purge(notes[1])
    with psycopg.connect(location) as conn:
        for table in ("episodes", "notes", "events", "jobs", "passages", "links"):
            row = conn.execute(
                f"SELECT count(*) FROM {table} t WHERE t::text LIKE %s", (f"%{SECRET}%",)
            ).fetchone()
            assert row is not None and row[0] == 0, table
        row = conn.execute("SELECT count(*) FROM notes t WHERE t::text LIKE '%bike%'").fetchone()
        assert row is not None and row[0] > 0  # the check reads what it should


def test_purge_an_episode_takes_the_notes_made_from_it(memory: Memory) -> None:
    episodes, notes = remember(memory)
    memory.purge(episodes[1])
    with pytest.raises(NotFoundError):
        memory.get(notes[1])
    assert memory.get(notes[2]).text.startswith("Noted")


def test_purge_all_erases_a_scope(memory: Memory, tmp_path: Path) -> None:
    remember(memory)
    kept = memory.add("Bo likes tea.", user_id="bo").note_ids[0]
    old_export = tmp_path / "before.jsonl"
    memory.export(old_export)
    assert memory.purge_all(user_id="ana") == 6  # 3 episodes, 3 notes
    assert memory.list(user_id="ana").items == ()
    assert memory.get(kept).text == "Bo likes tea."
    # an export made before the purge cannot bring the records back
    assert memory.import_file(old_export).added == 0
    assert memory.list(user_id="ana").items == ()


def test_purge_respects_tenants_and_ids(memory: Memory) -> None:
    _, notes = remember(memory)
    with pytest.raises(NotFoundError):
        memory.as_tenant("other").purge(notes[1])
    with pytest.raises(NotFoundError):
        memory.purge("nt_nope")
    assert memory.get(notes[1]).version == 2


def test_a_purged_turn_leaves_no_context_behind_a_deleted_one(memory: Memory) -> None:
    """A turn's full-text context is the live turn before it when it was added: with a
    deleted turn in between, that is a turn further back, and purging it must reach it."""
    first = memory.add(f"The {SECRET} plan is ready.", user_id="ana", session_id="s")
    second = memory.add("Something in between.", user_id="ana", session_id="s").note_ids[0]
    memory.delete(second)
    memory.add("The third turn.", user_id="ana", session_id="s")
    memory.purge(first.note_ids[0])
    scope = memory._scope("ana", None, None)
    found = memory.store.search_text([SECRET], scope, 10)
    assert found.in_context == [] and found.note == []


def test_purging_a_link_target_erases_the_link_event(memory: Memory) -> None:
    text = "Ana keeps her bike in the garage next to the car."
    target = memory.add(text, user_id="ana").note_ids[0]
    source = memory.add(text + " Always.", user_id="ana").note_ids[0]
    assert [e.action for e in memory.history(source)] == ["add", "link"]
    memory.purge(target)
    link_event = memory.history(source)[1]
    assert link_event.action == "link" and link_event.after is None


def test_purge_keeps_the_rest_of_a_batch_waiting_to_be_organised(tmp_path: Path) -> None:
    from remem.llms import OpenAICompatibleLLM
    from remem.testing import ScriptedOpenAIServer

    with ScriptedOpenAIServer() as server:
        llm = OpenAICompatibleLLM(server.base_url, "scripted")
        with Memory(tmp_path / "m.db", embedder=HashEmbedder(), llm=llm, jobs="worker") as memory:
            added = memory.add(
                [{"role": "user", "content": f"My pin is {SECRET}."}, {"content": "I like tea."}],
                user_id="ana",
            )
            memory.purge(added.episode_ids[0])
            (job,) = memory.store.jobs("pending")
            assert job.payload["episodes"] == [added.episode_ids[1]]
            assert SECRET not in str(job.payload)
