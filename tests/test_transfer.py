"""Export and import are lossless: a round trip reproduces every record and vector."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remem import InvalidInputError, Memory
from remem.testing import HashEmbedder

storable = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.text(storable, min_size=1, max_size=40).filter(str.strip)
scope = st.fixed_dictionaries(
    {},
    optional={
        "user_id": st.sampled_from(["ana", "bo"]),
        "agent_id": st.sampled_from(["bot"]),
        "session_id": st.sampled_from(["s1", "s2"]),
    },
).filter(bool)
metadata = st.dictionaries(  # the stores keep no NUL and no lone surrogate: add refuses them
    st.text(storable, max_size=5),
    st.one_of(st.integers(), st.text(storable, max_size=5), st.booleans()),
    max_size=3,
)
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
operation = st.one_of(
    st.tuples(st.just("add"), text, scope, metadata, moments),
    st.tuples(st.just("update"), st.integers(0, 50), text),
    st.tuples(st.just("delete"), st.integers(0, 50)),
)


def _lines(path: Path) -> list[dict[str, object]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r for r in records if r["type"] != "remem-export"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=12))
def test_export_import_round_trip(operations: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with Memory(root / "a.db", embedder=HashEmbedder()) as source:
            live: list[str] = []
            for op in operations:
                if op[0] == "add":
                    _, content, where, meta, when = op
                    live += source.add(content, metadata=meta, occurred_at=when, **where).note_ids
                elif live and op[0] == "update":
                    source.update(live[op[1] % len(live)], text=op[2])
                elif live and op[0] == "delete":
                    source.delete(live.pop(op[1] % len(live)))
            source.export(root / "a.jsonl")
        with Memory(root / "b.db", embedder=HashEmbedder()) as target:
            first = target.import_file(root / "a.jsonl")
            again = target.import_file(root / "a.jsonl")
            target.export(root / "b.jsonl")
            assert again.added == 0 and again.skipped == first.added
            for note_id in live:
                assert target.get(note_id).text
        assert _lines(root / "a.jsonl") == _lines(root / "b.jsonl")


@pytest.mark.parametrize("direction", ["from the store", "into the store"])
def test_imported_memory_searches_like_the_original(
    location: str, tmp_path: Path, direction: str
) -> None:
    """Export and import across stores: SQLite to the store under test and back."""
    source, target = (location, tmp_path / "b.db")
    if direction == "into the store":
        source, target = tmp_path / "a.db", location
    with Memory(source, embedder=HashEmbedder()) as original:
        note_id = original.add("The boat is moored in Cascais marina.", user_id="u").note_ids[0]
        original.update(note_id, text="The boat is moored in Cascais marina, berth 12.")
        original.export(tmp_path / "a.jsonl")
    with Memory(target, embedder=HashEmbedder()) as copy:
        assert copy.import_file(tmp_path / "a.jsonl").added > 0
        assert copy.search("where is the boat", user_id="u")[0].id == note_id
        assert [e.action for e in copy.history(note_id)] == ["add", "update_text"]
        copy.export(tmp_path / "b.jsonl")
    assert _lines(tmp_path / "a.jsonl") == _lines(tmp_path / "b.jsonl")


def test_import_into_another_embedder_re_embeds(tmp_path: Path) -> None:
    with Memory(tmp_path / "a.db", embedder=HashEmbedder(64)) as source:
        note_id = source.add("Passport renewal is in June.", user_id="u").note_ids[0]
        source.export(tmp_path / "a.jsonl")
    with Memory(tmp_path / "b.db", embedder=HashEmbedder(32)) as target:
        target.import_file(tmp_path / "a.jsonl")
        vector = target.embedder.embed("Passport renewal is in June.")
        assert target.store.search_vector(vector, target.get(note_id).scope, 1)[0][0] == note_id


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "not a remem export"),
        ('{"type": "something"}\n', "not a remem export"),
        ('{"type": "remem-export", "format": 99}\n', "format 99"),
        ('{"type": "remem-export", "format": 1}\n{broken\n', ":2: not valid JSON"),
        ('{"type": "remem-export", "format": 1}\n{"type": "note", "id": "x"}\n', ":2"),
    ],
)
def test_bad_files_are_refused_with_the_reason(
    memory: Memory, tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=words):
        memory.import_file(path)


def test_migrate_copies_a_memory_between_stores_losslessly(location: str, tmp_path: Path) -> None:
    """SQLite -> the store under test -> SQLite again: the same export, history and search."""
    from click.testing import CliRunner

    from remem.cli.main import cli

    first, last = tmp_path / "first.db", tmp_path / "last.db"
    with Memory(first, embedder=HashEmbedder()) as original:
        kept = original.add("My locker code is 4812.", user_id="u", session_id="s").note_ids[0]
        gone = original.add("Temporary note.", user_id="u").note_ids[0]
        # two sentences: the export compared below holds its sentence vectors too
        original.update(kept, text="My locker code is 4813. The locker is by the door.")
        original.delete(gone)
        original.as_tenant("acme").add("A tenant's own note.", user_id="u")
        original.export(tmp_path / "first.jsonl")
    env = {"REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}
    for source, target in ((str(first), location), (location, str(last))):
        result = CliRunner().invoke(cli, ["migrate", "--from", source, "--to", target], env=env)
        assert result.exit_code == 0, result.output
        assert "copied" in result.output
    again = CliRunner().invoke(cli, ["migrate", "--from", str(first), "--to", location], env=env)
    assert again.exit_code == 0 and "copied 0 records" in again.output  # all there already
    with Memory(last, embedder=HashEmbedder()) as copy:
        copy.export(tmp_path / "last.jsonl")
        assert copy.search("locker code", user_id="u")[0].id == kept
        assert [e.action for e in copy.history(gone)] == ["add", "delete"]
        assert [n.text for n in copy.as_tenant("acme").list().items] == ["A tenant's own note."]
    assert _lines(tmp_path / "first.jsonl") == _lines(tmp_path / "last.jsonl")


def test_an_import_batch_is_one_transaction(location: str, tmp_path: Path) -> None:
    """A batch whose notes cannot be embedded leaves nothing behind, not its episodes alone."""
    from remem import EmbedderError
    from remem.testing import FailingEmbedder

    path = tmp_path / "export.jsonl"
    with Memory(tmp_path / "source.db", embedder=HashEmbedder(64)) as source:
        added = source.add([{"role": "user", "content": "a turn to move"}], user_id="u")
        source.export(path)
    down = FailingEmbedder(HashEmbedder(32))  # another vector space: the import re-embeds
    with Memory(location, embedder=down) as target:
        with pytest.raises(EmbedderError):
            target.import_file(path)
        assert target.store.existing_ids([*added.episode_ids, *added.note_ids]) == set()
        down.failing = False
        assert target.import_file(path).added > 0
        assert target.episode(added.episode_ids[0]).text == "a turn to move"
        assert target.search("turn to move", user_id="u")[0].id == added.note_ids[0]


def test_an_export_with_a_profile_history_imports(memory: Memory, tmp_path: Path) -> None:
    """A profile's history events name the profile (pf_...), not an episode or a note."""
    memory.add("I live in Lisbon and I work as a nurse.", user_id="ana")
    profile = memory.profile(user_id="ana")
    assert memory.history(profile.id)  # there is a profile history to carry over
    memory.export(tmp_path / "out.jsonl")
    with Memory(str(tmp_path / "copy.db"), embedder=HashEmbedder()) as copy:
        copy.import_file(tmp_path / "out.jsonl")
        assert [event.action for event in copy.history(profile.id)] == [
            event.action for event in memory.history(profile.id)
        ]
