"""What the ingest ledgers keep and how they match files: uploads known by their full
cleaned names, no user text in a ledger (and a purge can blank it), a forgotten chunk stays
forgotten, a chat export's conversations known by their ids wherever the file lies, and
two processes ingesting one file at once add each chunk once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from remem import Memory
from remem.ingest import ledger_changes_for_purge
from remem.ingest.api import upload_name
from remem.ingest.batch import Target
from remem.ingest.ledger import INDEX_PREFIX, Ledger, ledger_name, owner_ledgers
from remem.ingest.run import Progress, ingest_paths
from remem.stores.base import Changes
from remem.stores.sqlite import SQLiteStore
from remem.testing import HashEmbedder
from remem.types import Note, Scope

USER = "ada"


def notes(memory: Memory, user: str = USER) -> list[Note]:
    return list(memory.list(user_id=user, limit=1000).items)


def test_uploads_of_one_name_in_two_folders_are_two_files(memory: Memory) -> None:
    result = memory.ingest_uploads(
        [
            ("work/notes.txt", b"Board meeting on Monday."),
            ("home/notes.txt", b"Buy milk and eggs."),
            ("work/notes.txt", b"A second file of the same name."),
        ],
        user_id=USER,
    )
    assert (result.files, result.added) == (2, 2)
    assert result.skipped == (
        ("work/notes.txt", "another file of this name came first in this request"),
    )
    assert {n.metadata["path"]: n.text for n in notes(memory)} == {
        "work/notes.txt": "Board meeting on Monday.",
        "home/notes.txt": "Buy milk and eggs.",
    }
    again = memory.ingest_uploads([("home/notes.txt", b"Buy milk.")], user_id=USER)
    assert (again.added, again.updated) == (0, 1)


def test_upload_names_are_cleaned_relative_paths() -> None:
    assert upload_name("../../etc/passwd", 0) == "etc/passwd"
    assert upload_name("/abs/./x/../y.txt", 0) == "abs/x/y.txt"
    assert upload_name("a\\b\\.hidden", 0) == "a/b/hidden"
    assert upload_name("\x00\x07", 2) == "upload-3"
    assert upload_name("d/" * 150 + "name.txt", 0).endswith("/name.txt")
    assert len(upload_name("d/" * 150 + "name.txt", 0)) <= 200


SECRETS = ("Diagnosis", "Carol", "2023-12-31", "told nobody")


def _vault(root: Path) -> Path:
    root.mkdir()
    (root / "Health.md").write_text("# Diagnosis\n\nI told nobody.\n\n# Other\n\nFine.\n")
    (root / "chat.txt").write_text(
        "12/31/23, 9:41 PM - Carol: see you tonight\n12/31/23, 9:42 PM - Me: ok\n"
    )
    return root


def _meta_rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT key, value FROM meta WHERE key LIKE 'ingest%'"))


def test_ledgers_hold_no_user_text_and_a_purge_blanks_them(tmp_path: Path) -> None:
    vault = _vault(tmp_path / "vault")
    database = tmp_path / "m.db"
    owner = Scope(user_id=USER)
    with Memory(str(database), embedder=HashEmbedder()) as memory:
        memory.ingest(vault, user_id=USER, me="Me")
        rows = _meta_rows(database)
        assert rows and not [r for r in rows if any(s in r[0] + r[1] for s in SECRETS)]
        ledgers = owner_ledgers(memory.store, owner)
        assert len(ledgers) == 2
        one = next(n for n in notes(memory) if n.text == "I told nobody.")
        memory.store.apply(ledger_changes_for_purge(memory.store, owner, [one.id]))
        left = [e.note_id for name in ledgers for e in Ledger.load(memory.store, name).entries()]
        assert len(left) == 3 and one.id not in left
        erased = [n.id for n in notes(memory)]
        memory.store.apply(ledger_changes_for_purge(memory.store, owner, erased))
        assert owner_ledgers(memory.store, owner) == []
        assert all(Ledger.load(memory.store, name).entries() == [] for name in ledgers)
    assert {value for _, value in _meta_rows(database) if "ingest-title" not in _} <= {""}


def test_a_forgotten_chunk_stays_forgotten_until_it_changes(memory: Memory, tmp_path: Path) -> None:
    path = tmp_path / "diary.md"
    path.write_text("# Jan\n\nI met Tom.\n\n# Feb\n\nTom and I broke up.\n")
    memory.ingest(path, user_id=USER)
    memory.delete(next(n.id for n in notes(memory) if "broke" in n.text))
    path.write_text(path.read_text() + "\n# Mar\n\nNew job!\n")
    result = memory.ingest(path, user_id=USER)
    assert (result.added, result.unchanged, result.updated) == (1, 2, 0)
    assert sorted(n.text for n in notes(memory)) == ["I met Tom.", "New job!"]
    assert memory.ingest(path, user_id=USER).added == 0  # still forgotten next time
    path.write_text(path.read_text().replace("broke up.", "broke up; we are friends now."))
    assert memory.ingest(path, user_id=USER).added == 1  # new text: it comes back
    assert "Tom and I broke up; we are friends now." in {n.text for n in notes(memory)}
    assert len(notes(memory, "bo")) == 0 and memory.ingest(path, user_id="bo").added == 3


def _export(messages: list[str]) -> list[dict[str, Any]]:
    mapping: dict[str, Any] = {}
    for index, text in enumerate(messages):
        role = "user" if index % 2 == 0 else "assistant"
        mapping[f"m{index}"] = {
            "message": {
                "author": {"role": role},
                "content": {"parts": [text]},
                "create_time": 1_700_000_000 + index,
            },
            "parent": f"m{index - 1}" if index else None,
            "children": [f"m{index + 1}"] if index + 1 < len(messages) else [],
        }
    current = f"m{len(messages) - 1}"
    return [{"id": "conv-1", "title": "Cats", "mapping": mapping, "current_node": current}]


def test_a_conversation_is_known_by_its_id_wherever_its_export_lies(
    memory: Memory, tmp_path: Path
) -> None:
    first = ["I adopted a cat named Miso.", "Lovely."]
    for folder in ("export-2024-01", "copy"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "conversations.json").write_text(json.dumps(_export(first)))
    assert memory.ingest(tmp_path / "export-2024-01", user_id=USER).added == 2
    assert memory.ingest(tmp_path / "copy", user_id=USER).unchanged == 2
    upload = json.dumps(_export([*first, "Miso turned one today."])).encode()
    result = memory.ingest_uploads([("conversations.json", upload)], user_id=USER)
    assert (result.added, result.unchanged) == (1, 2)
    assert len(notes(memory)) == 3


def _racer(database: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\nfrom remem import Memory\nfrom remem.testing import HashEmbedder\n"
        "with Memory(sys.argv[1], embedder=HashEmbedder()) as m:\n"
        "    print(m.ingest(sys.argv[2], user_id='ada').added)\n"
    )
    command = [sys.executable, "-c", script, str(database), str(folder)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)


def _sixty_messages(tmp_path: Path) -> Path:
    """A folder holding a chat export of 60 messages."""
    folder = tmp_path / "v"
    folder.mkdir()
    lines = [f"12/31/23, 9:{i % 60:02d} PM - Ada: message {i}" for i in range(60)]
    (folder / "chat.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_another_process_ingesting_the_file_meanwhile_adds_nothing_twice(
    tmp_path: Path,
) -> None:
    folder, database = _sixty_messages(tmp_path), tmp_path / "m.db"
    with Memory(str(database), embedder=HashEmbedder()) as memory:
        other: list[str] = []

        def meanwhile(progress: Progress) -> None:
            if not other:  # after our first batch: another process ingests it all
                other.append(_racer(database, folder).stdout.strip())

        owner = Scope(user_id=USER)
        target = Target(memory.store, HashEmbedder(), owner, "test", False)
        result = ingest_paths(folder, target, memory.store.apply, progress=meanwhile, batch=10)
        texts = Counter(n.text for n in notes(memory))
        assert len(texts) == 60 and set(texts.values()) == {1}
        assert result.added + int(other[0]) == 60 and result.added >= 10
        name = ledger_name(owner, str((folder / "chat.txt").resolve()))
        assert len(Ledger.load(memory.store, name).entries()) == 60


def test_another_process_committing_just_before_this_one_adds_nothing_twice(
    tmp_path: Path,
) -> None:
    # The other process ingests the whole file after this one last looked at the ledger
    # and before it commits its first batch: the commit must see the ledger has changed.
    folder, database = _sixty_messages(tmp_path), tmp_path / "m.db"
    with Memory(str(database), embedder=HashEmbedder()) as memory:
        other: list[str] = []

        def commit(changes: Changes) -> None:
            if changes.episodes and not other:
                other.append(_racer(database, folder).stdout.strip())
            memory.store.apply(changes)

        target = Target(memory.store, HashEmbedder(), Scope(user_id=USER), "test", False)
        result = ingest_paths(folder, target, commit, batch=10)
        texts = Counter(n.text for n in notes(memory))
        assert len(texts) == 60 and set(texts.values()) == {1}
        assert (result.added, int(other[0])) == (0, 60)


def test_a_ledger_another_writer_lists_meanwhile_stays_listed(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain words.\n")
    database = tmp_path / "m.db"
    with Memory(str(database), embedder=HashEmbedder()) as memory:
        meddled: list[str] = []

        def commit(changes: Changes) -> None:
            listing = [key for key in changes.meta if key.startswith(INDEX_PREFIX)]
            if listing and not meddled:  # another process lists a file in the same row
                with Memory(str(database), embedder=HashEmbedder()) as other:
                    other.store.apply(Changes(meta={listing[0]: json.dumps(["ingest:theirs"])}))
                meddled.append(listing[0])
            memory.store.apply(changes)

        owner = Scope(user_id=USER)
        target = Target(memory.store, HashEmbedder(), owner, "test", False)
        assert ingest_paths(tmp_path / "a.txt", target, commit).added == 1
        mine = ledger_name(owner, str((tmp_path / "a.txt").resolve()))
        assert set(json.loads(memory.store.get_meta(meddled[0]) or "[]")) == {"ingest:theirs", mine}


class IngestBeforePurge(SQLiteStore):
    """A real SQLite store that lets another writer ingest once, after a purge has read the
    ledgers and before it commits."""

    meanwhile: Callable[[], object] | None = None

    def apply(self, changes: Changes) -> None:
        if changes.purge and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        super().apply(changes)


def _chat(path: Path, count: int) -> None:
    path.write_text(
        "".join(f"12/31/23, 9:{i:02d} PM - Ada: message number {i}\n" for i in range(count))
    )


def test_a_purge_never_writes_over_what_an_ingest_added_meanwhile(tmp_path: Path) -> None:
    chat, database = tmp_path / "chat.txt", tmp_path / "m.db"
    _chat(chat, 3)
    store = IngestBeforePurge(database)
    with (
        Memory(store=store, embedder=HashEmbedder()) as mine,
        Memory(str(database), embedder=HashEmbedder()) as other,
    ):
        mine.ingest(chat, user_id=USER)
        first = next(n for n in notes(mine) if n.text.endswith(" 0"))
        _chat(chat, 4)
        added: list[int] = []
        store.meanwhile = lambda: added.append(other.ingest(chat, user_id=USER).added)
        mine.purge(first.id)
        assert added == [1]
        mine.ingest(chat, user_id=USER)  # the purged message comes back, once
        texts = Counter(n.text for n in notes(mine))
        assert len(texts) == 4 and set(texts.values()) == {1}


def test_a_purge_all_meeting_a_file_listed_meanwhile_leaves_no_ledger(tmp_path: Path) -> None:
    owner, database = Scope(user_id=USER), tmp_path / "m.db"
    first = tmp_path / "a.txt"
    first.write_text("Alpha words.\n")
    row = ledger_name(owner, str(first.resolve()))[-2:]  # (the index row a ledger is listed in)
    second = next(
        path
        for i in range(100_000)
        if ledger_name(owner, str((path := tmp_path / f"b{i}.txt").resolve()))[-2:] == row
    )
    second.write_text("Beta words.\n")
    store = IngestBeforePurge(database)
    with (
        Memory(store=store, embedder=HashEmbedder()) as mine,
        Memory(str(database), embedder=HashEmbedder()) as other,
    ):
        mine.ingest(first, user_id=USER)
        store.meanwhile = lambda: other.ingest(second, user_id=USER)
        mine.purge_all(user_id=USER)  # built again once it meets the new listing: both go
        assert notes(mine) == [] and owner_ledgers(mine.store, owner) == []
        assert not [row for row in _meta_rows(database) if row[1]]  # no ledger left behind


def test_a_moved_file_keeps_its_notes_and_a_copy_is_a_file_of_its_own(
    memory: Memory, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "a.md").write_text("# Trip\n\nWe went to Rome in May.\n")
    (vault / "b.txt").write_text("Plain words about Rome.\n")
    assert memory.ingest(vault, user_id=USER).added == 2
    before = {n.id: n.text for n in notes(memory)}
    (vault / "a.md").rename(vault / "rome.md")
    (vault / "b.txt").rename(vault / "rome.txt")  # its title (the file's name) changes
    result = memory.ingest(vault, user_id=USER)
    assert (result.added, result.unchanged, result.updated) == (0, 1, 1)
    assert {n.id: n.text for n in notes(memory)} == before
    assert memory.ingest(vault, user_id=USER).unchanged == 2
    (vault / "copy.md").write_text((vault / "rome.md").read_text())
    assert memory.ingest(vault / "copy.md", user_id=USER).added == 1  # both files exist
    assert memory.ingest(vault, user_id=USER).added == 0


def test_memory_purges_take_their_ledger_entries_with_them(tmp_path: Path) -> None:
    vault = _vault(tmp_path / "vault")
    owner = Scope(user_id=USER)
    with Memory(str(tmp_path / "m.db"), embedder=HashEmbedder()) as memory:
        memory.ingest(vault, user_id=USER, me="Me")
        ledgers = owner_ledgers(memory.store, owner)
        one = next(n for n in notes(memory) if n.text == "I told nobody.")
        memory.purge(one.id)
        left = [e.note_id for name in ledgers for e in Ledger.load(memory.store, name).entries()]
        assert one.id not in left and left
        memory.purge_all(user_id=USER)
        assert owner_ledgers(memory.store, owner) == []
        again = memory.ingest(vault, user_id=USER, me="Me")  # nothing of it is known now
        assert again.added == len(left) + 1


def test_two_processes_linking_to_one_missing_file_both_get_their_link(
    location: str, tmp_path: Path
) -> None:
    # x.md and y.md both wait for [[Target]], ingested by two writers at once: neither wait
    # may write over the other's.
    for folder, text in (("x", "See [[Target]] for more."), ("y", "Also [[Target]] please.")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{folder}.md").write_text(f"# {folder.upper()}\n\n{text}\n")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "Target.md").write_text("# Target\n\nThe target itself.\n")
    with (
        Memory(location, embedder=HashEmbedder()) as mine,
        Memory(location, embedder=HashEmbedder()) as other,
    ):
        raced: list[int] = []

        def commit(changes: Changes) -> None:
            if changes.notes and not raced:  # the other writer ingests y.md meanwhile
                raced.append(other.ingest(tmp_path / "y", user_id=USER).added)
            mine.store.apply(changes)

        target = Target(mine.store, HashEmbedder(), Scope(user_id=USER), "test", False)
        assert ingest_paths(tmp_path / "x", target, commit).added == 1 and raced == [1]
        mine.ingest(tmp_path / "t", user_id=USER)
        by_text = {note.text: note.id for note in notes(mine)}
        goal = next(note_id for text, note_id in by_text.items() if "target itself" in text)
        linked = {link.source_id for link in mine.links(goal) if link.target_id == goal}
        assert sorted(text for text, note_id in by_text.items() if note_id in linked) == [
            "Also [[Target]] please.",
            "See [[Target]] for more.",
        ]
