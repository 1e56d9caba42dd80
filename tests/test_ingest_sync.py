"""Ingesting again: idempotent, a changed file changes only its changed chunks (new versions,
history kept), gone chunks are forgotten, an interrupted ingest resumes without duplicates,
broken files are skipped with the reason, and tenants never share what they ingested."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from remem import Memory
from remem.errors import InvalidInputError, NotFoundError
from remem.ingest.detect import MAX_FILE_BYTES
from remem.stores.base import Changes
from remem.stores.sqlite import SQLiteStore
from remem.testing import HashEmbedder
from remem.types import Note

USER = "ada"


def notes(memory: Memory, user: str = USER) -> list[Note]:
    return list(memory.list(user_id=user, limit=1000).items)


def write_vault(root: Path, sections: dict[str, str], name: str = "Diary.md") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text("".join(f"# {title}\n\n{text}\n\n" for title, text in sections.items()))
    return path


def test_a_second_ingest_adds_nothing(memory: Memory, tmp_path: Path) -> None:
    path = write_vault(tmp_path / "v", {"Monday": "Ran 5 km.", "Tuesday": "Read a book."})
    first = memory.ingest(path, user_id=USER)
    assert (first.files, first.added, first.unchanged) == (1, 2, 0)
    before = {(n.id, n.version) for n in notes(memory)}
    again = memory.ingest(path, user_id=USER)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 2)
    assert {(n.id, n.version) for n in notes(memory)} == before


def test_a_changed_file_changes_only_its_changed_chunks(memory: Memory, tmp_path: Path) -> None:
    sections = {"Monday": "Ran 5 km.", "Tuesday": "Read a book.", "Wednesday": "Cooked."}
    path = write_vault(tmp_path / "v", sections)
    memory.ingest(path, user_id=USER)
    old = {n.metadata["section"]: n for n in notes(memory)}
    sections = {"Monday": "Ran 5 km.", "Tuesday": "Read two books.", "Friday": "Swam."}
    write_vault(tmp_path / "v", sections)
    result = memory.ingest(path, user_id=USER)
    assert (result.added, result.updated, result.unchanged, result.removed) == (1, 1, 1, 1)
    now = {n.metadata["section"]: n for n in notes(memory)}
    assert set(now) == {"Monday", "Tuesday", "Friday"}
    assert now["Monday"] == old["Monday"]  # untouched: same id, same version
    tuesday = now["Tuesday"]
    assert tuesday.id == old["Tuesday"].id and tuesday.version == 2
    assert tuesday.text == "Read two books."
    assert memory.episode(tuesday.episode_ids[0]).text == "Read two books."
    with pytest.raises(NotFoundError):  # the old episode is deleted, kept in history
        memory.episode(old["Tuesday"].episode_ids[0])
    actions = [e.action for e in memory.history(tuesday.id)]
    assert actions[0] == "add" and actions[-1].startswith("update")
    assert memory.history(tuesday.id)[-1].before["text"] == "Read a book."  # type: ignore[index]
    with pytest.raises(NotFoundError):
        memory.get(old["Wednesday"].id)
    assert memory.history(old["Wednesday"].id)[-1].action == "delete"
    hits = memory.search("books", user_id=USER)
    assert hits and hits[0].id == tuesday.id


def test_a_paragraph_inserted_above_moves_nothing_else(memory: Memory, tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i} says something long enough. " * 20 for i in range(6)]
    path = tmp_path / "essay.txt"
    path.write_text("\n\n".join(paragraphs))
    first = memory.ingest(path, user_id=USER)
    path.write_text("\n\n".join(["A new opening paragraph. " * 30, *paragraphs]))
    second = memory.ingest(path, user_id=USER)
    assert second.unchanged + second.updated >= first.added - 1
    assert second.removed == 0 and second.added + second.updated <= 2


def test_a_purged_chunk_comes_back_on_the_next_ingest(memory: Memory, tmp_path: Path) -> None:
    path = write_vault(tmp_path / "v", {"A": "One.", "B": "Two."})
    memory.ingest(path, user_id=USER)
    memory.purge(notes(memory)[0].id)
    result = memory.ingest(path, user_id=USER)
    assert (result.added, result.unchanged) == (1, 1)
    assert sorted(n.text for n in notes(memory)) == ["One.", "Two."]


def test_wikilinks_link_the_notes_in_either_order(memory: Memory, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "Alpha.md").write_text("Hiking with [[Beta|my friend]] and [[Nowhere]].\n")
    (vault / "sub").mkdir()
    (vault / "sub" / "Beta.md").write_text("# Beta\n\nBeta likes [[alpha#Intro]].\n")
    for user, order in (("one", ["Alpha.md", "sub/Beta.md"]), ("two", ["sub/Beta.md", "Alpha.md"])):
        for name in order:
            memory.ingest(vault / name, user_id=user)
        memory.ingest(vault, user_id=user)  # again, as a folder: no new link
        by_text = {n.text.split()[0]: n.id for n in notes(memory, user)}
        links = {
            (link.source_id, link.target_id)
            for note_id in by_text.values()
            for link in memory.links(note_id)
            if link.relation == "links_to"
        }
        assert links == {(by_text["Hiking"], by_text["Beta"]), (by_text["Beta"], by_text["Hiking"])}


def test_another_tenant_gets_its_own_copy(memory: Memory, tmp_path: Path) -> None:
    path = write_vault(tmp_path / "v", {"Secret": "The safe code is 4711."})
    acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
    assert acme.ingest(path, user_id=USER).added == 1
    assert umbrella.ingest(path, user_id=USER).added == 1  # not "unchanged": not theirs
    assert acme.ingest(path, user_id=USER).added == 0
    mine, theirs = notes(acme), notes(umbrella)
    assert len(mine) == len(theirs) == 1 and mine[0].id != theirs[0].id
    with pytest.raises(NotFoundError):
        umbrella.get(mine[0].id)
    assert [hit.id for hit in umbrella.search("safe code", user_id=USER)] == [theirs[0].id]
    assert notes(memory) == []  # the local user sees neither


def test_broken_files_are_skipped_with_the_reason(memory: Memory, tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    root.mkdir()
    (root / "conversations.json").write_text('[{"id": "c", "mapping": {"a": {"message":')
    (root / "paper.pdf").write_text("this is not a PDF")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    (root / "latin.txt").write_bytes("café au lait".encode("latin-1"))
    (root / "empty.md").write_bytes(b"")
    (root / "huge.txt").write_text("x" * 300_000)
    (root / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (root / "data.json").write_text('{"rows": [1, 2, 3]}')
    (root / "script.py").write_text("print('hi')")
    (root / "good.md").write_text("This one is fine.")
    result = memory.ingest(root, user_id=USER)
    reasons = dict(result.skipped)
    assert set(reasons) == {
        "conversations.json", "paper.pdf", "broken.pdf", "latin.txt", "empty.md", "huge.txt",
        "blob.txt", "data.json", "script.py",
    }  # fmt: skip
    assert reasons["conversations.json"].startswith("not valid JSON")
    assert reasons["paper.pdf"] == "named .pdf but not a PDF file"
    assert reasons["broken.pdf"].startswith("not a readable PDF")
    assert reasons["latin.txt"].startswith("not valid UTF-8")
    assert reasons["empty.md"] == "empty file"
    assert "a line of 300000 characters" in reasons["huge.txt"]
    assert reasons["blob.txt"] == "a binary file"
    assert "not a ChatGPT, Claude or Telegram export" in reasons["data.json"]
    assert reasons["script.py"].startswith("unknown format")
    assert result.files == 1 and [n.text for n in notes(memory)] == ["This one is fine."]


def test_hostile_text_is_stored_safely(memory: Memory, tmp_path: Path) -> None:
    """NUL characters and lone surrogates (JSON escapes) cannot reach the store."""
    export = [{"uuid": "c", "chat_messages": [
        {"sender": "human", "text": "bad \u0000 nul and \ud800 surrogate", "created_at": "x"},
        {"sender": "assistant", "text": "fine", "created_at": "99999-01-01"},
    ]}]  # fmt: skip
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(export))
    result = memory.ingest(path, user_id=USER)
    assert result.added == 2 and result.skipped == ()
    texts = sorted(n.text for n in notes(memory))
    assert texts == ["bad  nul and ? surrogate", "fine"]


def test_hostile_sender_names_are_stored_safely_and_survive_export(
    memory: Memory, tmp_path: Path
) -> None:
    """A sender's name is the episode's role too: NULs and lone surrogates are cleaned from
    both, and the memory's own export restores into a fresh memory."""
    export = {"name": "tg", "type": "personal_chat", "id": 1, "messages": [
        {"id": 1, "type": "message", "date": "2024-01-01T10:00:00", "from": "Bob\u0000Evil",
         "text": "first"},
        {"id": 2, "type": "message", "date": "2024-01-01T10:01:00", "from": "A\ud800",
         "text": "second"},
    ]}  # fmt: skip
    path = tmp_path / "result.json"
    path.write_text(json.dumps(export))
    assert memory.ingest(path, user_id=USER, me="nobody").added == 2
    episodes = memory.store.get_episodes([i for n in notes(memory) for i in n.episode_ids])
    assert sorted((e.role, e.name) for e in episodes.values()) == [
        ("A?", "A?"),
        ("BobEvil", "BobEvil"),
    ]
    backup = tmp_path / "backup.jsonl"
    memory.export(backup)
    with Memory(store=SQLiteStore(tmp_path / "restored.db"), embedder=HashEmbedder()) as fresh:
        assert fresh.import_file(backup).added > 0
        assert len(notes(fresh)) == 2


def test_ingest_needs_an_owner_and_paths(memory: Memory, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="owner"):
        memory.ingest(tmp_path)
    with pytest.raises(InvalidInputError, match="at least one"):
        memory.ingest([], user_id=USER)
    with pytest.raises(InvalidInputError, match="organise"):
        memory.ingest(tmp_path, user_id=USER, organise="soon")
    missing = memory.ingest(tmp_path / "nope.md", user_id=USER)
    assert missing.skipped == ((str(tmp_path / "nope.md"), "no such file or folder"),)


class CrashingSQLite(SQLiteStore):
    """A real SQLite store whose commits of ingested chunks fail after `allowed` of them."""

    def __init__(self, path: str, allowed: int) -> None:
        super().__init__(path)
        self.allowed = allowed

    def apply(self, changes: Changes) -> None:
        if changes.episodes:
            if self.allowed == 0:
                raise OSError("the disk went away")
            self.allowed -= 1
        super().apply(changes)


def _long_chat(path: Path, messages: int) -> None:
    lines = [
        f"1/{1 + i // 600}/24, {(i // 60) % 10 + 1}:{i % 60:02d} AM - {'Ada' if i % 2 else 'Bo'}:"
        f" message number {i}"
        for i in range(messages)
    ]
    path.write_text("\n".join(lines) + "\n")


def test_an_interrupted_ingest_resumes_without_duplicates(tmp_path: Path) -> None:
    chat = tmp_path / "chat.txt"
    _long_chat(chat, 700)  # three batches of at most 256
    location = str(tmp_path / "memory.db")
    with Memory(store=CrashingSQLite(location, 1), embedder=HashEmbedder(), llm=None) as broken:
        with pytest.raises(OSError, match="disk went away"):
            broken.ingest(chat, user_id=USER, me="Ada")
        assert len(notes(broken)) == 256  # the first batch, and its ledger, committed
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        result = memory.ingest(chat, user_id=USER, me="Ada")
        assert (result.added, result.unchanged) == (700 - 256, 256)
        texts = Counter(n.text for n in notes(memory))
        assert len(texts) == 700 and set(texts.values()) == {1}
        assert memory.ingest(chat, user_id=USER, me="Ada").unchanged == 700


def test_hostile_exports_are_read_or_skipped_never_fatal(memory: Memory, tmp_path: Path) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    cycle = {
        "a": {"parent": "b", "children": ["b"], "message": {"author": {"role": "user"},
              "content": {"parts": ["in a cycle"]}, "create_time": "not a time"}},
        "b": {"parent": "a", "children": ["a"], "message": None},
    }  # fmt: skip
    long_id = "x" * 100_000
    (root / "conversations.json").write_text(
        json.dumps([{"id": long_id, "title": "t" * 100_000, "mapping": cycle, "current_node": "a"}])
    )
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "result.json").write_text(json.dumps({"messages": [1, None, {"text": {"a": 1}}]}))
    result = memory.ingest(root, user_id=USER)
    reasons = dict(result.skipped)
    assert set(reasons) == {"deep.json", "result.json"}
    assert reasons["result.json"] == "no text found in it (read as telegram)"
    (note,) = notes(memory)
    assert note.text == "in a cycle" and len(note.metadata["chunk"]) <= 200
    assert "conversation" not in note.metadata  # too large to keep: provenance only
    assert memory.ingest(root, user_id=USER).unchanged == 1


def test_racing_ingests_of_one_folder_add_each_chunk_once(memory: Memory, tmp_path: Path) -> None:
    root = tmp_path / "race"
    for day in range(8):
        write_vault(root, {f"Day {day}": f"Entry {day}.", "Notes": f"More on {day}."}, f"{day}.md")
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(memory.ingest(root, user_id=USER).added))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 16
    assert len(notes(memory)) == 16


def test_a_file_over_the_size_limit_is_skipped_unread(memory: Memory, tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    with (root / "huge.md").open("wb") as sparse:
        sparse.truncate(MAX_FILE_BYTES + 1)  # no disk used: the size alone says no
    (root / "small.md").write_text("Small.")
    result = memory.ingest(root, user_id=USER)
    assert result.skipped == (("huge.md", "larger than 256 MiB"),) and result.added == 1
