"""A note's lifecycle on every store: importance rated at write time, reads counted in
batches, pins, archive, expiry and its sweep, each change in history, on every surface
that maps (REST here; the parity tests check the rest have the methods)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from remem import InvalidDateError, InvalidInputError, Memory, NotFoundError
from remem.server.app import create_app
from remem.stores.base import Access, Changes
from remem.stores.sqlite import SQLiteStore
from remem.testing import HashEmbedder
from remem.testing.http import running
from remem.write.importance import rate

FUTURE = datetime(2090, 1, 1, tzinfo=UTC)


def _add(memory: Memory, text: str, user: str = "ana", **more: object) -> str:
    return memory.add(text, user_id=user, **more).note_ids[0]  # type: ignore[arg-type]


def _expire_now(memory: Memory, note_id: str) -> None:
    """As if the note's expiry had come: its expires_at moved into the past (the API
    refuses a past expiry, and a test does not wait for one)."""
    note = memory.store.get_notes([note_id])[note_id]
    past = datetime.now(UTC) - timedelta(minutes=1)
    memory.store.apply(Changes(notes=[replace(note, expires_at=past, version=note.version + 1)]))


# -- importance -------------------------------------------------------------------------


def test_importance_ranks_statements_above_small_talk() -> None:
    ordered = [
        "I moved to Lisbon with my sister Maria on 3 May 2021",
        "Remember: my passport number is X1234567",
        "I'm allergic to peanuts",
        "what time is it?",
        "ok thanks!",
    ]
    scores = [rate(text) for text in ordered]
    assert scores == sorted(scores, reverse=True)
    assert scores[1] >= 0.8 and scores[-1] <= 0.1
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert rate("") == rate("lol") == rate("Hi, hello!!") == rate("   ")


def test_each_note_is_rated_when_it_is_written(memory: Memory) -> None:
    plan = _add(memory, "We will fly to Tokyo on Friday at 9am")
    thanks = _add(memory, "thanks!")
    assert memory.get(plan).importance == rate("We will fly to Tokyo on Friday at 9am")
    assert memory.get(plan).importance > memory.get(thanks).importance


# -- access counts ----------------------------------------------------------------------


class BrokenCounts(SQLiteStore):
    """A store whose count writes fail with what is not a RememError (a bug)."""

    broken = True

    def record_access(self, accesses: Mapping[str, Access]) -> None:
        if self.broken:
            raise ValueError("a bug in the store")
        super().record_access(accesses)


def test_reads_whose_count_write_hits_a_bug_are_kept(tmp_path: Path) -> None:
    store = BrokenCounts(tmp_path / "m.db")
    with Memory(store=store, embedder=HashEmbedder()) as memory:
        note_id = memory.add("Ana keeps her bike in the garage.", user_id="ana").note_ids[0]
        memory.search("bike", user_id="ana")
        with pytest.raises(ValueError, match="a bug in the store"):
            memory.access_log.flush()
        store.broken = False
        assert memory.access_log.flush() == 1
        assert store.get_notes([note_id])[note_id].access_count == 1


def test_search_context_and_get_count_reads_in_batches(memory: Memory) -> None:
    note_id = _add(memory, "Ana keeps her bike in the basement")
    other = _add(memory, "Ana keeps her bike in the basement", user="ben")
    before = memory.get(note_id)
    memory.access_log.flush()
    assert memory.store.get_notes([note_id])[note_id].access_count == 1  # that get
    assert before.access_count == 0 and before.last_accessed_at is None
    hits = memory.search("where is the bike", user_id="ana")
    assert [hit.id for hit in hits] == [note_id]
    memory.context("where is the bike", user_id="ana", min_score=0.0)
    assert memory.store.get_notes([note_id])[note_id].access_count == 1  # not yet written
    assert memory.access_log.flush() == 1
    read = memory.store.get_notes([note_id])[note_id]
    assert read.access_count == 3 and read.last_accessed_at is not None
    assert read.version == before.version  # a read is no new version
    assert memory.store.get_notes([other])[other].access_count == 0  # ben's: never returned


def test_reads_of_another_tenant_are_neither_counted_nor_allowed(memory: Memory) -> None:
    acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
    note_id = _add(acme, "The launch code is kept in the red folder")
    _add(umbrella, "The launch code is kept in the red folder")
    umbrella.search("launch code", user_id="ana")
    with pytest.raises(NotFoundError):
        umbrella.get(note_id)
    with pytest.raises(NotFoundError):
        umbrella.pin(note_id)
    memory.access_log.flush()
    assert acme.store.get_notes([note_id])[note_id].access_count == 0
    assert not acme.store.get_notes([note_id])[note_id].pinned


def test_no_read_is_lost_to_concurrent_updates(memory: Memory) -> None:
    note_id = _add(memory, "The spare key is under the blue flowerpot")
    searches, errors = 20, []

    def read() -> None:
        for _ in range(searches):
            assert memory.search("spare key flowerpot", user_id="ana", limit=1)[0].id == note_id
            memory.access_log.flush()

    def write() -> None:
        try:
            for round_ in range(10):
                memory.update(note_id, metadata={"round": round_})
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    memory.access_log.flush()
    note = memory.store.get_notes([note_id])[note_id]
    assert not errors
    assert note.access_count == searches and note.metadata == {"round": 9}


def test_close_writes_the_reads_still_buffered(location: str) -> None:
    with Memory(location, embedder=HashEmbedder()) as memory:
        note_id = _add(memory, "The wifi password is on the fridge")
        memory.search("wifi password", user_id="ana")
    with Memory(location, embedder=HashEmbedder()) as memory:
        assert memory.store.get_notes([note_id])[note_id].access_count == 1


# -- pins -------------------------------------------------------------------------------


def test_pin_and_unpin_are_versions_in_history(memory: Memory) -> None:
    note_id = _add(memory, "My blood type is O negative")
    pinned = memory.pin(note_id)
    assert pinned.pinned and pinned.version == 2
    assert memory.pin(note_id).version == 2  # already pinned: nothing written
    assert not memory.unpin(note_id).pinned
    actions = [event.action for event in memory.history(note_id)]
    assert actions == ["add", "pin", "unpin"]
    assert memory.history(note_id)[1].after == {"pinned": True, "version": 2}


def test_a_pinned_note_passes_any_relevance_floor(memory: Memory) -> None:
    note_id = _add(memory, "My blood type is O negative")
    floor = {"user_id": "ana", "min_score": 1.0, "profile_share": 0.0}
    assert memory.context("blood type", **floor).items == ()  # type: ignore[arg-type]
    memory.pin(note_id)
    items = memory.context("blood type", **floor).items  # type: ignore[arg-type]
    assert [item.id for item in items] == [note_id]


# -- archive ----------------------------------------------------------------------------


def test_archive_leaves_search_context_and_list_until_unarchived(memory: Memory) -> None:
    note_id = _add(memory, "My old address was 12 Elm Street", session_id="s1")
    kept = _add(memory, "My address is 4 Oak Road now", session_id="s1")
    archived = memory.archive(note_id)
    assert archived.archived_at is not None
    assert note_id not in [hit.id for hit in memory.search("address street", user_id="ana")]
    block = memory.context("address street", user_id="ana", session_id="s1", min_score=0.0)
    assert note_id not in [item.id for item in block.items]
    assert "Elm" not in block.text
    assert [n.id for n in memory.list(user_id="ana").items] == [kept]
    assert [n.id for n in memory.list(user_id="ana", archived=True).items] == [note_id]
    assert memory.get(note_id).archived_at is not None  # kept, and read by id
    memory.unarchive(note_id)
    assert note_id in [hit.id for hit in memory.search("address street", user_id="ana")]
    assert [event.action for event in memory.history(note_id)] == ["add", "archive", "unarchive"]


def test_an_archived_note_leaves_the_profile_inputs(memory: Memory) -> None:
    note_id = _add(memory, "I work as a nurse in Porto")
    assert note_id in memory.store.live_ids(memory._scope("ana", None, None), visible=True)[1]
    memory.archive(note_id)
    scope = memory._scope("ana", None, None)
    assert note_id not in memory.store.live_ids(scope, visible=True)[1]
    assert note_id in memory.store.live_ids(scope)[1]  # delete_all still reaches it


# -- expiry -----------------------------------------------------------------------------


def test_an_expired_note_leaves_at_once_and_the_sweep_purges_it(memory: Memory) -> None:
    note_id = _add(memory, "The door code this week is 4471", session_id="s1", expires_at=FUTURE)
    assert memory.get(note_id).expires_at == FUTURE
    assert [hit.id for hit in memory.search("door code", user_id="ana")] == [note_id]
    _expire_now(memory, note_id)
    assert memory.search("door code", user_id="ana") == []
    block = memory.context("door code", user_id="ana", session_id="s1", min_score=0.0)
    assert "4471" not in block.text
    assert memory.list(user_id="ana").items == ()
    assert memory.sweep_expired() == 1
    with pytest.raises(NotFoundError):
        memory.get(note_id)
    assert [event.action for event in memory.history(note_id)] == ["add", "purge"]
    assert memory.sweep_expired() == 0


def test_the_sweep_stays_in_its_tenant(memory: Memory) -> None:
    acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
    note_id = _add(acme, "A temporary note", expires_at=FUTURE)
    _expire_now(acme, note_id)
    assert umbrella.sweep_expired() == 0
    assert acme.sweep_expired() == 1


def test_update_sets_and_clears_an_expiry(memory: Memory) -> None:
    note_id = _add(memory, "Parking spot 42 until the renovation ends")
    expiring = memory.update(note_id, expires_at="2090-01-01T00:00:00Z")
    assert expiring.expires_at == FUTURE
    both = memory.update(note_id, text="Parking spot 43", expires_at="2091-01-01")
    assert both.text == "Parking spot 43" and both.expires_at == datetime(2091, 1, 1, tzinfo=UTC)
    assert memory.update(note_id, expires_at="never").expires_at is None
    actions = [event.action for event in memory.history(note_id)]
    assert actions == ["add", "expire_at", "update_text", "expire_at", "expire_never"]


@pytest.mark.parametrize(
    "when", ["2001-01-01", "yesterday", "2024-13-45", 17, "0001-01-01T00:00:00+05:00"]
)
def test_a_past_or_invalid_expiry_is_refused(memory: Memory, when: object) -> None:
    with pytest.raises(InvalidDateError):
        memory.add("Something to forget", user_id="ana", expires_at=when)  # type: ignore[arg-type]
    note_id = _add(memory, "Something to keep")
    with pytest.raises(InvalidDateError):
        memory.update(note_id, expires_at=when)  # type: ignore[arg-type]
    assert memory.get(note_id).expires_at is None
    assert len(memory.list(user_id="ana").items) == 1  # the refused add stored nothing


# -- hostile ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["pin", "unpin", "archive", "unarchive"])
def test_unknown_and_malformed_ids_are_not_found(memory: Memory, method: str) -> None:
    with pytest.raises(NotFoundError):
        getattr(memory, method)("nt_01M8QEYS97TB9G91Z49HFWAS5R")
    with pytest.raises(InvalidInputError):
        getattr(memory, method)("")
    episode = memory.add("hello there", user_id="ana").episode_ids[0]
    with pytest.raises(NotFoundError):
        getattr(memory, method)(episode)


def test_a_deleted_note_cannot_be_pinned_or_archived(memory: Memory) -> None:
    note_id = _add(memory, "Gone soon")
    memory.delete(note_id)
    for method in (memory.pin, memory.archive):
        with pytest.raises(NotFoundError):
            method(note_id)


def test_racing_pins_and_updates_lose_nothing(memory: Memory) -> None:
    note_id = _add(memory, "Version zero")
    errors: list[BaseException] = []

    def run(work: object) -> None:
        try:
            work()  # type: ignore[operator]
        except BaseException as error:
            errors.append(error)

    def pins() -> None:
        for _ in range(10):
            memory.pin(note_id)
            memory.unpin(note_id)
        memory.pin(note_id)

    def updates() -> None:
        for round_ in range(10):
            memory.update(note_id, text=f"Version {round_ + 1}")

    threads = [threading.Thread(target=run, args=(work,)) for work in (pins, updates)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    note = memory.get(note_id)
    assert not errors
    assert note.pinned and note.text == "Version 10"
    assert note.version == 1 + 21 + 10  # every change a version of its own
    assert len(memory.history(note_id)) == 1 + 21 + 10


# -- export and import ------------------------------------------------------------------


def test_export_keeps_the_lifecycle_and_old_exports_still_import(
    memory: Memory, tmp_path: Path
) -> None:
    note_id = _add(memory, "My locker is number 118", expires_at=FUTURE)
    memory.pin(note_id)
    memory.archive(note_id)
    memory.get(note_id)
    memory.access_log.flush()
    source = memory.store.get_notes([note_id])[note_id]
    path = tmp_path / "export.jsonl"
    memory.export(path)
    with Memory(tmp_path / "copy.db", embedder=HashEmbedder()) as copy:
        copy.import_file(path)
        copied = copy.store.get_notes([note_id])[note_id]
    assert copied == source and copied.access_count == 1 and copied.pinned
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        if line.get("type") == "note":
            for name in ("access_count", "last_accessed_at", "pinned", "expires_at", "archived_at"):
                line.pop(name)
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with Memory(tmp_path / "old.db", embedder=HashEmbedder()) as copy:
        copy.import_file(old)
        imported = copy.get(note_id)
    assert not imported.pinned and imported.archived_at is None and imported.access_count == 0


def test_an_export_with_a_bad_lifecycle_field_is_refused(memory: Memory, tmp_path: Path) -> None:
    _add(memory, "Something")
    path = tmp_path / "export.jsonl"
    memory.export(path)
    for name, value in (("pinned", "yes"), ("access_count", -1), ("expires_at", "soon")):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        for line in lines:
            if line.get("type") == "note":
                line[name] = value
        bad = tmp_path / f"bad-{name}.jsonl"
        bad.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        copy = Memory(tmp_path / f"{name}.db", embedder=HashEmbedder())
        with copy, pytest.raises(InvalidInputError, match=name):
            copy.import_file(bad)


# -- REST -------------------------------------------------------------------------------


@pytest.fixture
def client(memory: Memory) -> Iterator[httpx.Client]:
    with running(create_app(memory)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def test_rest_pins_archives_expires_and_sweeps(client: httpx.Client) -> None:
    added = client.post(
        "/v1/memories",
        json={"content": "My gate code is 9911", "user_id": "ana", "expires_at": "2090-01-01"},
    )
    assert added.status_code == 201, added.text
    note_id = added.json()["note_ids"][0]
    assert client.post(f"/v1/memories/{note_id}/pin").json()["pinned"] is True
    assert client.delete(f"/v1/memories/{note_id}/pin").json()["pinned"] is False
    assert client.post(f"/v1/memories/{note_id}/archive").json()["archived_at"]
    listed = client.get("/v1/memories", params={"user_id": "ana", "archived": "true"}).json()
    assert [item["id"] for item in listed["items"]] == [note_id]
    assert client.get("/v1/memories", params={"user_id": "ana"}).json()["items"] == []
    assert client.delete(f"/v1/memories/{note_id}/archive").json()["archived_at"] is None
    patched = client.patch(f"/v1/memories/{note_id}", json={"expires_at": "never"})
    assert patched.status_code == 200 and patched.json()["expires_at"] is None
    assert client.post("/v1/expired/sweep").json() == {"purged": 0}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/memories/nt_01M8QEYS97TB9G91Z49HFWAS5R/pin", None, 404),
        ("DELETE", "/v1/memories/nt_01M8QEYS97TB9G91Z49HFWAS5R/archive", None, 404),
        ("POST", "/v1/memories", {"content": "x", "user_id": "a", "expires_at": "2001-01-01"}, 422),
        ("POST", "/v1/memories", {"content": "x", "user_id": "a", "expires_at": "soon"}, 422),
        ("POST", "/v1/memories", {"content": "x", "user_id": "a", "expires_at": 5}, 422),
        ("PATCH", "/v1/memories/{id}", {"expires_at": "1999-01-01T00:00:00Z"}, 422),
        ("PATCH", "/v1/memories/{id}", {"expires_at": ""}, 422),
        ("GET", "/v1/memories?user_id=ana&archived=maybe", None, 422),
    ],
)
def test_rest_refuses_bad_lifecycle_input(
    client: httpx.Client, method: str, path: str, body: object, status: int
) -> None:
    added = client.post("/v1/memories", json={"content": "A note", "user_id": "ana"})
    path = path.replace("{id}", added.json()["note_ids"][0])
    answer = client.request(method, path, json=body)
    assert answer.status_code == status, answer.text
    assert "error" in answer.json() or "detail" in answer.json()


# -- the organising model's rating -----------------------------------------------------


def test_a_fact_keeps_the_model_s_rating_or_else_the_heuristic(location: str) -> None:
    from remem.llms import OpenAICompatibleLLM
    from remem.testing import ScriptedOpenAIServer

    rated = {"text": "Ana is allergic to penicillin.", "occurred_on": None, "importance": 0.97}
    plain = {"text": "Ana said hello.", "occurred_on": None}
    with ScriptedOpenAIServer() as model:
        model.reply(json.dumps({"facts": [rated, plain]}), when='"name": "extract"')
        for name, empty in (("reconcile", "decisions"), ("enrich", "notes"), ("link", "links")):
            model.reply(json.dumps({empty: []}), when=f'"name": "{name}"', times=None)
        model.reply('{"updates": []}', when='"name": "evolve"', times=None)
        llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5, backoff=0.01)
        with Memory(location, embedder=HashEmbedder(), llm=llm) as memory:
            added = memory.add("I'm allergic to penicillin, hello!", user_id="ana")
            facts = [memory.get(i) for i in added.note_ids if memory.get(i).kind == "fact"]
    by_text = {fact.text: fact.importance for fact in facts}
    assert by_text == {rated["text"]: 0.97, plain["text"]: rate(str(plain["text"]))}


# -- MCP --------------------------------------------------------------------------------


def test_mcp_tools_pin_archive_and_expire(memory: Memory) -> None:
    import anyio
    from mcp.server.mcpserver.exceptions import ToolError

    from remem.server.mcp_tools import create_mcp_server

    server = create_mcp_server(memory, "ana")

    def call(tool: str, **arguments: object) -> dict[str, object]:
        result = anyio.run(server.call_tool, tool, arguments)
        assert not result.is_error, result.content
        return result.structured_content  # type: ignore[return-value]

    added = call("add_memory", content="I park at spot 7", expires_at="2090-01-01")
    note_id = added["note_ids"][0]  # type: ignore[index]
    assert call("pin_memory", memory_id=note_id)["pinned"] is True
    assert call("unpin_memory", memory_id=note_id)["pinned"] is False
    assert call("archive_memory", memory_id=note_id)["archived_at"]
    assert call("list_memories")["items"] == []
    listed = call("list_memories", archived=True)["items"]
    assert [item["id"] for item in listed] == [note_id]  # type: ignore[attr-defined, index]
    assert call("unarchive_memory", memory_id=note_id)["archived_at"] is None
    assert call("update_memory", memory_id=note_id, expires_at="never")["expires_at"] is None
    with pytest.raises(ToolError, match="not in the future"):
        anyio.run(server.call_tool, "add_memory", {"content": "x", "expires_at": "2001-01-01"})


# -- Citus ------------------------------------------------------------------------------


def test_lifecycle_reads_and_counts_go_to_one_shard(citus_location: str) -> None:
    import psycopg

    from remem.stores.postgres_writes import owner_of
    from remem.types import Scope
    from test_citus import RecordingStore, task_counts

    store = RecordingStore(citus_location)
    try:
        with Memory(store=store, embedder=HashEmbedder(), llm=None) as memory:
            note_id = _add(memory, "My gym locker is 31", session_id="s1")
            memory.archive(note_id)
            store.sent.clear()
            memory.list(user_id="ana", archived=True)
            memory.context("gym locker", user_id="ana", session_id="s1")
            store.record_access({note_id: Access(Scope("ana"), 2, datetime.now(UTC))})
            assert store.get_notes([note_id])[note_id].access_count == 2
        scoped = [(sql, ps) for sql, ps in store.sent if {"ana", ":ana"} & set(map(str, ps))]
        assert any("archived_at IS NOT NULL" in sql for sql, _ in scoped)
        with psycopg.connect(citus_location, autocommit=True) as cluster:
            for sql, params in scoped:
                assert set(task_counts(cluster, sql, params)) == {1}, sql
            bump = (
                "UPDATE notes SET access_count = access_count + %s,"
                " last_accessed_at = greatest(last_accessed_at, %s) WHERE owner = %s AND id = %s"
            )
            params = (1, datetime.now(UTC), owner_of(Scope("ana")), note_id)
            assert task_counts(cluster, bump, params) == [1]
    finally:
        store.close()
