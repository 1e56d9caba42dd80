"""A corpus of hostile export files: each is refused with one `InvalidInputError` that names
the line (and the field), and leaves the memory exactly as it was, on every store."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from remem import InvalidInputError, Memory, RememError
from remem.testing import HashEmbedder

EMBEDDER = HashEmbedder()  # 64 dimensions: "hash-64"
HEADER = {"type": "remem-export", "format": 1, "embedder": EMBEDDER.model_id}
EPISODE_ID = "ep_01HZX0000000000000000000E1"
NOTE_ID = "nt_01HZX0000000000000000000N1"
WHEN = "2024-05-08T10:00:00.000000Z"
Lines = list[Any]  # each a record (dumped as JSON) or raw text of a line


def _base64(values: Any) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")


def _scope(**changes: Any) -> dict[str, Any]:
    return {"user_id": "u", "agent_id": None, "session_id": None, "tenant": "", **changes}


def episode(**changes: Any) -> dict[str, Any]:
    record = {
        "type": "episode",
        "id": EPISODE_ID,
        "scope": _scope(),
        "text": "I moved to Lisbon in March.",
        "role": "user",
        "name": "Ana",
        "metadata": {"source": "chat"},
        "occurred_at": WHEN,
        "recorded_at": WHEN,
        "deleted_at": None,
    }
    return {**record, **changes}


def note(**changes: Any) -> dict[str, Any]:
    record = {
        "type": "note",
        "id": NOTE_ID,
        "scope": _scope(),
        "text": "I moved to Lisbon in March.",
        "metadata": {"source": "chat"},
        "occurred_at": WHEN,
        "created_at": WHEN,
        "updated_at": WHEN,
        "version": 1,
        "episode_ids": [EPISODE_ID],
        "keywords": [],
        "tags": [],
        "context": None,
        "importance": 0.5,
        "valid_from": WHEN,
        "valid_to": None,
        "superseded_by": None,
        "deleted_at": None,
        "kind": "turn",
        "vector": _base64(EMBEDDER.embed("I moved to Lisbon in March.")),
    }
    return {**record, **changes}


def link(**changes: Any) -> dict[str, Any]:
    record = {
        "type": "link",
        "id": "ln_01HZX0000000000000000000L1",
        "source_id": NOTE_ID,
        "target_id": NOTE_ID,
        "relation": "similar",
        "weight": 0.9,
        "reason": "cosine",
        "created_at": WHEN,
    }
    return {**record, **changes}


def event(**changes: Any) -> dict[str, Any]:
    record = {
        "type": "event",
        "id": "ev_01HZX0000000000000000000V1",
        "action": "add",
        "target_id": NOTE_ID,
        "scope": _scope(),
        "at": WHEN,
        "actor": "local",
        "before": None,
        "after": None,
    }
    return {**record, **changes}


def job(**changes: Any) -> dict[str, Any]:
    record = {
        "type": "job",
        "id": "jb_01HZX0000000000000000000J1",
        "kind": "embed",
        "target_id": NOTE_ID,
        "status": "done",
        "attempts": 1,
        "last_error": None,
        "created_at": WHEN,
        "updated_at": WHEN,
        "payload": {},
        "lease": None,
        "leased_until": None,
    }
    return {**record, **changes}


def valid(*last: Any) -> Lines:
    """A valid file with `last` appended: the bad line comes after records that would be
    written first if the import did not check the whole file before writing."""
    return [HEADER, episode(), note(), link(), event(), job(), *last]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"k": value}
    return value


def many_episodes(count: int) -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield episode(id=f"ep_01HZX00000000000000000{index:04d}", text=f"turn {index}")


# (name, lines of the file, words the message must hold)
CASES: list[tuple[str, Lines, str]] = [
    ("bare string line", valid('"just a string"'), "JSON object"),
    ("array line", valid("[1, 2, 3]"), "JSON object"),
    ("number line", valid("42"), "JSON object"),
    ("null line", valid("null"), "JSON object"),
    ("broken JSON", valid("{broken"), "not valid JSON"),
    ("invalid UTF-8", valid(b'{"type": "episode", "text": "\xff\xfe"}'), "not valid JSON"),
    ("deep nesting beyond the parser", valid("[" * 100_000 + "]" * 100_000), "nested"),
    ("deep nesting in metadata", valid(episode(id="ep_2", metadata=nested(200))), "metadata"),
    ("NaN", valid('{"type": "note", "importance": NaN}'), "NaN"),
    ("Infinity", valid('{"type": "link", "weight": -Infinity}'), "Infinity"),
    (
        "overflowing float",
        valid(json.dumps(link(id="ln_2", weight=12.5)).replace("12.5", "1e999")),
        "weight",
    ),
    ("float beyond real", valid(link(id="ln_2", weight=1e300)), "weight"),
    (
        "integer too long for Python",
        valid('{"type": "note", "version": ' + "9" * 5000 + "}"),
        "not valid JSON",
    ),
    ("no type", valid({"id": "ep_2"}), "type"),
    ("type not a string", valid({"type": ["episode"]}), "type"),
    ("unknown record type", valid({"type": "widget", "id": "wd_1"}), "widget"),
    ("duplicate header", valid(HEADER), "header"),
    ("missing text", valid({k: v for k, v in episode(id="ep_2").items() if k != "text"}), "text"),
    ("missing scope", valid({k: v for k, v in note(id="nt_2").items() if k != "scope"}), "scope"),
    ("integer date", valid(episode(id="ep_2", occurred_at=1_700_000_000)), "occurred_at"),
    ("unreadable date", valid(episode(id="ep_2", recorded_at="yesterday")), "recorded_at"),
    (
        "year 1 with an offset",
        valid(note(id="nt_2", created_at="0001-01-01T00:00:00+05:00")),
        "created_at",
    ),
    (
        "year 9999 behind UTC",
        valid(episode(id="ep_2", occurred_at="9999-12-31T23:59:59-05:00")),
        "occurred_at",
    ),
    ("year 10000", valid(event(id="ev_2", at="10000-01-01T00:00:00Z")), "at"),
    ("bad optional date", valid(note(id="nt_2", deleted_at="soon")), "deleted_at"),
    ("huge version", valid(note(id="nt_2", version=10**30)), "version"),
    ("version zero", valid(note(id="nt_2", version=0)), "version"),
    ("version a float", valid(note(id="nt_2", version=1.5)), "version"),
    ("version a bool", valid(note(id="nt_2", version=True)), "version"),
    ("version a string", valid(note(id="nt_2", version="1")), "version"),
    ("negative attempts", valid(job(id="jb_2", attempts=-1)), "attempts"),
    ("importance a string", valid(note(id="nt_2", importance="high")), "importance"),
    ("id of the wrong kind", valid(episode(id="nt_3")), "'id'"),
    ("id not a string", valid(episode(id=7)), "'id'"),
    ("empty id", valid(episode(id="")), "'id'"),
    ("id with NUL", valid(episode(id="ep_\x00")), "'id'"),
    ("overlong id", valid(episode(id="ep_" + "X" * 300)), "'id'"),
    ("id that is a path", valid(episode(id="ep_x/../../health")), "only letters"),
    ("id with a query", valid(note(id="nt_a?b=c#d", episode_ids=[EPISODE_ID])), "only letters"),
    ("link to a path", valid(link(id="ln_2", target_id="nt_/../memories/x")), "target_id"),
    ("duplicate id", valid(episode()), EPISODE_ID),
    (
        "episode id of the wrong kind in a note",
        valid(note(id="nt_2", episode_ids=["nt_1"])),
        "episode_ids",
    ),
    ("episode ids not a list", valid(note(id="nt_2", episode_ids="ep_1")), "episode_ids"),
    ("link to an episode", valid(link(id="ln_2", target_id=EPISODE_ID)), "target_id"),
    ("event target of no kind", valid(event(id="ev_2", target_id="whatever")), "target_id"),
    ("text with NUL", valid(episode(id="ep_2", text="a\x00b")), "NUL"),
    ("text with a lone surrogate", valid(episode(id="ep_2", text="a\ud800")), "text"),
    ("name with a lone surrogate", valid(episode(id="ep_2", name="\udfff")), "name"),
    ("role not a string", valid(episode(id="ep_2", role=5)), "role"),
    ("text not a string", valid(episode(id="ep_2", text=["a"])), "text"),
    ("metadata a list", valid(episode(id="ep_2", metadata=["a"])), "metadata"),
    ("metadata too large", valid(episode(id="ep_2", metadata={"k": "x" * 70_000})), "metadata"),
    ("metadata key with NUL", valid(note(id="nt_2", metadata={"a\x00": 1})), "metadata"),
    ("payload with NUL", valid(job(id="jb_2", payload={"a": "\x00"})), "payload"),
    ("before not a dict", valid(event(id="ev_2", before="text")), "before"),
    ("scope not a dict", valid(episode(id="ep_2", scope="u")), "scope"),
    ("scope value not a string", valid(episode(id="ep_2", scope=_scope(user_id=5))), "user_id"),
    ("scope value empty", valid(note(id="nt_2", scope=_scope(user_id=""))), "user_id"),
    ("scope value with NUL", valid(episode(id="ep_2", scope=_scope(user_id="u\x00"))), "user_id"),
    ("scope of another tenant", valid(episode(id="ep_2", scope=_scope(tenant="acme"))), "tenant"),
    ("event of another tenant", valid(event(id="ev_2", scope=_scope(tenant="acme"))), "tenant"),
    ("note kind unknown", valid(note(id="nt_2", kind="opinion")), "kind"),
    ("job status unknown", valid(job(id="jb_2", status="stuck")), "status"),
    ("tags not strings", valid(note(id="nt_2", tags=[1, 2])), "tags"),
    ("vector of the wrong size", valid(note(id="nt_2", vector=_base64(np.ones(32)))), "vector"),
    ("vector not base64", valid(note(id="nt_2", vector="!!not base64!!")), "vector"),
    ("vector bytes not floats", valid(note(id="nt_2", vector="AAAAAAA=")), "vector"),
    ("vector a list", valid(note(id="nt_2", vector=[0.1] * 64)), "vector"),
    ("vector with NaN", valid(note(id="nt_2", vector=_base64([np.nan] * 64))), "vector"),
    (
        "sentences of the wrong size",
        valid(note(id="nt_2", sentences=_base64(np.ones(100)))),
        "sentences",
    ),
    ("sentences not base64", valid(note(id="nt_2", sentences="%%%")), "sentences"),
    ("after a full batch", [HEADER, *many_episodes(600), "[]"], "JSON object"),
    (
        "note naming an episode that is nowhere",
        valid(note(id="nt_2", episode_ids=["ep_01HZX0000000000000000000E9"])),
        "neither earlier in the file nor in this memory",
    ),
    (
        "link naming a note that is nowhere",
        valid(link(id="ln_2", source_id="nt_01HZX0000000000000000000N9")),
        "neither earlier",
    ),
    (
        "dangling note after a full batch",
        [HEADER, *many_episodes(600), note(id="nt_2", episode_ids=["ep_404"])],
        "ep_404",
    ),
    (
        "organise job without its episodes",
        valid(job(id="jb_2", kind="organise", target_id=EPISODE_ID, payload={"done": {}})),
        "payload",
    ),
    (
        "organise job naming a note as an episode",
        valid(
            job(
                id="jb_2",
                kind="organise",
                target_id=EPISODE_ID,
                payload={"episodes": [NOTE_ID], "done": {}},
            )
        ),
        "payload.episodes",
    ),
]


def _write(path: Path, lines: Lines) -> None:
    with path.open("wb") as out:
        for line in lines:
            if isinstance(line, bytes):
                out.write(line)
            elif isinstance(line, str):
                out.write(line.encode("utf-8", "surrogatepass"))
            else:
                out.write(json.dumps(line).encode("utf-8", "surrogatepass"))
            out.write(b"\n")


def _state(memory: Memory, folder: Path) -> tuple[dict[str, int], list[str]]:
    """What the memory holds: its counts, and its export without the header."""
    path = folder / f"state-{len(os.listdir(folder))}.jsonl"
    memory.export(path)
    return memory.store.counts(), path.read_text(encoding="utf-8").splitlines()[1:]


@pytest.fixture
def filled(location: str) -> Iterator[Memory]:
    """A memory that already holds something, so "unchanged" is not "empty"."""
    with Memory(location, embedder=HashEmbedder()) as memory:
        memory.add("The spare key is under the blue flowerpot.", user_id="u")
        memory.as_tenant("acme").add("A tenant's own note.", user_id="u")
        yield memory


def test_the_template_file_imports(filled: Memory, tmp_path: Path) -> None:
    """The corpus mutates a valid file: without its mutation each file imports."""
    path = tmp_path / "good.jsonl"
    _write(path, valid())
    assert filled.import_file(path).added == 5
    assert filled.get(NOTE_ID).text == "I moved to Lisbon in March."
    assert filled.search("Lisbon", user_id="u")[0].id == NOTE_ID


@pytest.mark.parametrize(("lines", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_file_is_refused_and_changes_nothing(
    filled: Memory, tmp_path: Path, lines: Lines, words: str
) -> None:
    path = tmp_path / "hostile.jsonl"
    _write(path, lines)
    before = _state(filled, tmp_path)
    with pytest.raises(InvalidInputError) as refused:
        filled.import_file(path)
    message = str(refused.value)
    assert f"{path}:{len(lines)}" in message or f"line {len(lines)}" in message, message
    assert words in message, message
    assert "\n" not in message and len(message) < 500, message
    assert _state(filled, tmp_path) == before


def test_a_note_before_its_episode_is_refused(filled: Memory, tmp_path: Path) -> None:
    """Records are loaded in the order of the file (an export's: episodes, then notes...),
    so a note may name only an episode already read, or one in the memory."""
    path = tmp_path / "reordered.jsonl"
    _write(path, [HEADER, note(id="nt_2", episode_ids=["ep_2"]), episode(id="ep_2")])
    before = _state(filled, tmp_path)
    with pytest.raises(InvalidInputError, match=f"{path}:2: note names ep_2, which is neither"):
        filled.import_file(path)
    assert _state(filled, tmp_path) == before


def _local_file(memory: Memory, path: Path) -> None:
    """The local memory's records, imported by a tenant: refused, not rewritten."""
    _write(path, valid())


def _other_tenant_reference(memory: Memory, path: Path) -> None:
    """A tenant's file naming an episode that another tenant holds."""
    theirs = memory.add("Local secret.", user_id="u").episode_ids[0]
    _write(path, [HEADER, note(id="nt_9", scope=_scope(tenant="acme"), episode_ids=[theirs])])


def _other_tenant_id(memory: Memory, path: Path) -> None:
    """A record whose id another tenant already holds: refused, not skipped."""
    theirs = memory.add("Local secret.", user_id="u").note_ids[0]
    _write(path, [HEADER, note(id=theirs, scope=_scope(tenant="acme"))])


def _other_tenant_history(memory: Memory, path: Path) -> None:
    """An event written into another tenant's history."""
    theirs = memory.add("Local secret.", user_id="u").note_ids[0]
    _write(path, [HEADER, event(target_id=theirs, scope=_scope(tenant="acme"))])


def _other_tenant_in_a_job(memory: Memory, path: Path) -> None:
    """An organise job of the tenant's own episode whose payload names another tenant's:
    run, it would read that episode's text into the tenant's facts."""
    theirs = memory.add("Local secret.", user_id="u").episode_ids[0]
    own = episode(scope=_scope(tenant="acme"))
    payload = {"episodes": [EPISODE_ID, theirs], "done": {}}
    queued = job(kind="organise", target_id=EPISODE_ID, status="pending", payload=payload)
    _write(path, [HEADER, own, queued])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_local_file, "tenant ''"),
        (_other_tenant_reference, "another tenant"),
        (_other_tenant_id, "another tenant"),
        (_other_tenant_history, "another tenant"),
        (_other_tenant_in_a_job, "another tenant"),
    ],
)
def test_a_tenant_imports_only_into_itself(
    filled: Memory, tmp_path: Path, make: Callable[[Memory, Path], None], words: str
) -> None:
    path = tmp_path / "tenant.jsonl"
    make(filled, path)
    before = _state(filled, tmp_path)
    with pytest.raises(InvalidInputError, match=words) as refused:
        filled.as_tenant("acme").import_file(path)
    assert str(path) in str(refused.value)
    assert _state(filled, tmp_path) == before


def test_a_tenant_imports_its_own_export(filled: Memory, tmp_path: Path) -> None:
    acme = filled.as_tenant("acme")
    acme.export(tmp_path / "acme.jsonl")
    with Memory(tmp_path / "copy.db", embedder=HashEmbedder()) as copy:
        assert copy.as_tenant("acme").import_file(tmp_path / "acme.jsonl").added > 0
        assert [n.text for n in copy.as_tenant("acme").list().items] == ["A tenant's own note."]


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "NUL"])
def test_import_of_what_is_not_a_file_names_it(memory: Memory, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "export.jsonl"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "NUL":
        path = tmp_path / "ex\x00port.jsonl"
    with pytest.raises(InvalidInputError) as refused:
        memory.import_file(path)
    assert kind == "NUL" or str(path) in str(refused.value)


def test_a_line_over_the_limit_is_refused(
    memory: Memory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from remem import transfer

    monkeypatch.setattr(transfer, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "long.jsonl"
    _write(path, [HEADER, episode(text="x" * 2000)])
    with pytest.raises(InvalidInputError, match=f"{path}:2: .*1000 bytes"):
        memory.import_file(path)
    assert memory.store.counts()["records"] == 0


def test_vectors_of_another_embedder_are_checked_for_consistency(
    memory: Memory, tmp_path: Path
) -> None:
    """Vectors the import re-embeds are not kept, but a file mixing sizes is still broken."""
    header = {**HEADER, "embedder": "another-model"}
    path = tmp_path / "mixed.jsonl"
    _write(path, [header, episode(), note(vector=_base64(np.ones(8))), note(id="nt_2")])
    with pytest.raises(InvalidInputError, match=f"{path}:4: note field 'vector'"):
        memory.import_file(path)
    _write(path, [header, episode(), note(vector=_base64(np.ones(8)))])
    assert memory.import_file(path).added == 2  # re-embedded with the memory's embedder
    assert memory.search("Lisbon", user_id="u")[0].id == NOTE_ID


def test_every_refusal_is_a_remem_error() -> None:
    assert issubclass(InvalidInputError, RememError)
