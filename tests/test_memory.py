"""The Python API on a real SQLite file, with the deterministic test embedder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remem import Memory, NotFoundError
from remem.testing import HashEmbedder

CHAT = [
    {"role": "user", "name": "Ana", "content": "I moved to Lisbon in March for a nursing job."},
    {"role": "assistant", "content": "Welcome to Portugal! How is the new hospital?"},
    {"role": "user", "name": "Ana", "content": "My dog Pixel loves the beach near Cascais."},
]


def test_add_messages_makes_one_episode_and_note_each(memory: Memory) -> None:
    result = memory.add(
        CHAT, user_id="ana", occurred_at="2024-03-02T10:00:00Z", metadata={"source": "chat"}
    )
    assert len(result.episode_ids) == len(result.note_ids) == 3
    first = memory.episode(result.episode_ids[0])
    assert (first.text, first.role, first.name) == (CHAT[0]["content"], "user", "Ana")
    assert first.metadata == {"source": "chat"}
    assert first.occurred_at == datetime(2024, 3, 2, 10, tzinfo=UTC)
    assert first.scope.user_id == "ana"
    note = memory.get(result.note_ids[2])
    assert note.text == CHAT[2]["content"]
    assert note.episode_ids == (result.episode_ids[2],)


def test_add_plain_text_defaults_occurred_at_to_now(memory: Memory) -> None:
    before = datetime.now(UTC)
    result = memory.add("I prefer tea to coffee.", user_id="ana")
    episode = memory.episode(result.episode_ids[0])
    assert episode.role is None and episode.name is None
    assert before - timedelta(seconds=1) <= episode.occurred_at <= datetime.now(UTC)


def test_naive_and_offset_times_are_stored_as_utc(memory: Memory) -> None:
    naive = memory.add("naive", user_id="u", occurred_at=datetime(2023, 5, 8, 13, 56))
    offset = memory.add("offset", user_id="u", occurred_at="2023-05-08T15:56:00+02:00")
    for result in (naive, offset):
        when = memory.episode(result.episode_ids[0]).occurred_at
        assert when == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def test_search_finds_the_relevant_note_first(memory: Memory) -> None:
    result = memory.add(CHAT, user_id="ana")
    hits = memory.search("dog at the beach", user_id="ana")
    assert hits[0].id == result.note_ids[2]
    assert hits[0].kind == "note"
    assert hits[0].episode_ids == (result.episode_ids[2],)
    assert hits[0].score >= hits[-1].score


def test_search_respects_limit_and_metadata_filters(memory: Memory) -> None:
    for index in range(12):
        memory.add(
            f"note number {index} about gardening", user_id="u", metadata={"even": index % 2 == 0}
        )
    assert len(memory.search("gardening", user_id="u", limit=5)) == 5
    hits = memory.search("gardening", user_id="u", limit=20, filters={"even": True})
    assert len(hits) == 6
    assert all(hit.metadata["even"] is True for hit in hits)


def test_update_changes_text_reembeds_and_keeps_history(memory: Memory) -> None:
    note_id = memory.add("I live in Lisbon.", user_id="ana").note_ids[0]
    updated = memory.update(note_id, text="I live in Porto now.")
    assert updated.version == 2
    assert memory.get(note_id).text == "I live in Porto now."
    assert memory.search("Porto", user_id="ana")[0].id == note_id
    history = memory.history(note_id)
    assert [event.action for event in history] == ["add", "update_text"]
    assert history[1].before is not None and history[1].after is not None
    assert history[1].before["text"] == "I live in Lisbon."
    assert history[1].after["text"] == "I live in Porto now."


def test_update_metadata_only_replaces_metadata(memory: Memory) -> None:
    note_id = memory.add("Likes jazz.", user_id="u", metadata={"a": 1}).note_ids[0]
    memory.update(note_id, metadata={"b": 2})
    note = memory.get(note_id)
    assert note.metadata == {"b": 2} and note.text == "Likes jazz." and note.version == 2


def test_delete_note_hides_it_and_its_episode_but_keeps_history(memory: Memory) -> None:
    result = memory.add(CHAT, user_id="ana")
    memory.delete(result.note_ids[2])
    assert all(hit.id != result.note_ids[2] for hit in memory.search("dog beach", user_id="ana"))
    with pytest.raises(NotFoundError):
        memory.get(result.note_ids[2])
    with pytest.raises(NotFoundError):
        memory.episode(result.episode_ids[2])
    assert [e.action for e in memory.history(result.note_ids[2])] == ["add", "delete"]
    assert len(memory.list(user_id="ana").items) == 2


def test_delete_episode_removes_its_notes(memory: Memory) -> None:
    result = memory.add(CHAT, user_id="ana")
    memory.delete(result.episode_ids[0])
    with pytest.raises(NotFoundError):
        memory.get(result.note_ids[0])
    assert {n.id for n in memory.list(user_id="ana").items} == set(result.note_ids[1:])


def test_delete_all_forgets_only_the_scope(memory: Memory) -> None:
    memory.add(CHAT, user_id="ana")
    kept = memory.add("Bo likes chess.", user_id="bo")
    assert memory.delete_all(user_id="ana") == 3
    assert memory.list(user_id="ana").items == ()
    assert [n.id for n in memory.list(user_id="bo").items] == list(kept.note_ids)


def test_list_pages_with_a_cursor(memory: Memory) -> None:
    added = [memory.add(f"fact {i}", user_id="u").note_ids[0] for i in range(7)]
    seen, cursor = [], None
    while True:
        page = memory.list(user_id="u", limit=3, cursor=cursor)
        seen += [note.id for note in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == added


def test_reopening_finds_everything_again(location: str) -> None:
    with Memory(location, embedder=HashEmbedder()) as memory:
        note_id = memory.add("The spare key is under the blue flowerpot.", user_id="u").note_ids[0]
    with Memory(location, embedder=HashEmbedder()) as memory:
        assert memory.search("where is the spare key", user_id="u")[0].id == note_id


def test_two_memories_on_one_file_see_each_others_writes(location: str) -> None:
    with (
        Memory(location, embedder=HashEmbedder()) as first,
        Memory(location, embedder=HashEmbedder()) as second,
    ):
        note_id = first.add("Quarterly report is due on Friday.", user_id="u").note_ids[0]
        assert second.search("report due", user_id="u")[0].id == note_id
        second.delete(note_id)
        assert all(hit.id != note_id for hit in first.search("report due", user_id="u"))


def test_memory_path_defaults_to_remem_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "from-env.db"
    monkeypatch.setenv("REMEM_DB", str(target))
    with Memory(embedder=HashEmbedder()) as memory:
        memory.add("hello", user_id="u")
    assert target.exists()


def test_a_message_may_carry_its_own_metadata(memory: Memory) -> None:
    result = memory.add(
        [{"content": "first", "metadata": {"turn": 1}}, {"content": "second"}],
        user_id="u",
        metadata={"source": "import", "turn": 0},
    )
    first, second = (memory.episode(e) for e in result.episode_ids)
    assert first.metadata == {"source": "import", "turn": 1}
    assert second.metadata == {"source": "import", "turn": 0}
    assert memory.get(result.note_ids[0]).metadata == {"source": "import", "turn": 1}


def test_a_note_without_words_scores_a_number(memory: Memory) -> None:
    """The hash embedder gives "?!" a zero vector; its cosine is undefined (NaN in
    pgvector) and must come back as a plain 0, never NaN."""
    import math

    memory.add("?!", user_id="u")
    memory.add("a note with words", user_id="u")
    hits = memory.search("a note", user_id="u", limit=5)
    assert len(hits) == 2
    assert all(math.isfinite(hit.score) for hit in hits)
