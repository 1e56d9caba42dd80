"""One behavioural suite, four surfaces: `Memory`, `AsyncMemory`, `Client` and `AsyncClient`
(the clients against a real `remem serve` app on 127.0.0.1, one API key per tenant), so
the four cannot drift. Each test gets `open(tenant)`: the API as that tenant sees it, driven
synchronously (coroutines run on one event loop)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remem import (
    AddResult,
    AsyncClient,
    AsyncMemory,
    Client,
    ConflictError,
    Consolidation,
    Context,
    Episode,
    Event,
    FilledForm,
    Hit,
    ImportResult,
    IngestResult,
    InvalidDateError,
    InvalidInputError,
    Memory,
    Merge,
    Note,
    NotFoundError,
    Page,
    Profile,
    ScopeRequiredError,
)
from remem.keys import create_key
from remem.server.app import create_app
from remem.testing import HashEmbedder
from remem.testing.http import running

SURFACES = ["memory", "async_memory", "client", "async_client"]
Open = Callable[..., Any]


class Blocking:
    """An async surface driven from a synchronous test: each coroutine runs on `loop`."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target, self._loop = target, loop

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if not inspect.iscoroutinefunction(found):
            return found
        return lambda *args, **kwargs: self._loop.run_until_complete(found(*args, **kwargs))


@pytest.fixture(params=SURFACES)
def open_api(request: pytest.FixtureRequest, location: str, tmp_path: Path) -> Iterator[Open]:
    """open(tenant, memory="main"): the API of a tenant; `memory="other"` is a second,
    empty memory (a SQLite file), for moving records between memories."""
    memories = {
        "main": Memory(location, embedder=HashEmbedder(), llm=None),
        "other": Memory(tmp_path / "other.db", embedder=HashEmbedder(), llm=None),
    }
    loop = asyncio.new_event_loop()
    with ExitStack() as stack:
        opens = {
            name: stack.enter_context(_surface(request.param, m, loop))
            for name, m in memories.items()
        }
        yield lambda tenant, memory="main": opens[memory](tenant)
    loop.close()
    for memory in memories.values():
        memory.close()


@contextmanager
def _surface(kind: str, memory: Memory, loop: asyncio.AbstractEventLoop) -> Iterator[Open]:
    if kind == "memory":
        yield memory.as_tenant
    elif kind == "async_memory":
        shared = AsyncMemory(memory)
        yield lambda tenant: Blocking(shared.as_tenant(tenant), loop)
        shared._lanes.shut()  # the fixture closes the memory itself
    else:
        with running(create_app(memory, open_without_keys=False)) as url:
            clients: list[Any] = []

            def open_client(tenant: str) -> Any:
                _, secret = create_key(memory.store, tenant)
                if kind == "client":
                    clients.append(Client(url, api_key=secret, retries=0))
                    return clients[-1]
                clients.append(AsyncClient(url, api_key=secret, retries=0))
                return Blocking(clients[-1], loop)

            yield open_client
            for client in clients:
                Blocking(client, loop).close()


@pytest.fixture
def api(open_api: Open) -> Any:
    return open_api("acme")


def test_add_get_episode_and_search_return_the_records(api: Any) -> None:
    added = api.add("Ana's cat is called Miso", user_id="ana", occurred_at="2024-03-01T10:00:00Z")
    assert type(added) is AddResult and len(added.note_ids) == len(added.episode_ids) == 1
    note = api.get(added.note_ids[0])
    assert type(note) is Note and note.text == "Ana's cat is called Miso"
    assert note.occurred_at.isoformat() == "2024-03-01T10:00:00+00:00"
    assert note.scope.user_id == "ana" and note.scope.tenant == "acme" and note.version == 1
    episode = api.episode(added.episode_ids[0])
    assert type(episode) is Episode and episode.text == note.text
    messages = [{"role": "user", "name": "Ana", "content": "I adopted a second cat, Tofu."}]
    more = api.add(messages, user_id="ana", metadata={"source": "chat", "n": [1, 2]})
    assert api.get(more.note_ids[0]).metadata == {"source": "chat", "n": [1, 2]}
    hits = api.search("cat name", user_id="ana", limit=5)
    assert all(type(hit) is Hit for hit in hits)
    assert {hit.id for hit in hits} == {*added.note_ids, *more.note_ids}
    only_chat = api.search("cat", user_id="ana", filters={"source": "chat"})
    assert [hit.id for hit in only_chat] == list(more.note_ids)
    assert api.search("cat", user_id="bob") == []


def test_context_list_and_pages(api: Any) -> None:
    ids = [api.add(f"day {n}: walked the dog", user_id="ana").note_ids[0] for n in range(3)]
    context = api.context("the dog", user_id="ana", budget_tokens=400)
    assert type(context) is Context and "walked the dog" in context.text
    assert context.tokens <= context.budget == 400
    first = api.list(user_id="ana", limit=2, order="added")
    assert type(first) is Page and [n.id for n in first.items] == ids[:2]
    rest = api.list(user_id="ana", limit=2, order="added", cursor=first.cursor)
    assert [n.id for n in rest.items] == ids[2:] and rest.cursor is None
    assert first.items[0] == api.get(ids[0])
    newest = api.list(user_id="ana", order="newest").items
    assert {n.id for n in newest} == set(ids)


def test_update_history_and_conflict(api: Any) -> None:
    note_id = api.add("Ana lives in Porto", user_id="ana").note_ids[0]
    updated = api.update(note_id, text="Ana lives in Lisbon", metadata={"checked": True})
    assert type(updated) is Note and updated.version == 2 and updated.text == "Ana lives in Lisbon"
    with pytest.raises(ConflictError) as conflict:
        api.update(note_id, text="Ana lives in Faro", expected_version=1)
    assert (conflict.value.item_id, conflict.value.expected, conflict.value.current) == (
        note_id,
        1,
        2,
    )
    assert api.get(note_id).text == "Ana lives in Lisbon"
    history = api.history(note_id)
    assert all(type(event) is Event for event in history)
    assert [event.action for event in history][:2] == ["add", "update_text_and_metadata"]
    assert api.links(note_id) == []


def test_delete_purge_and_delete_all(api: Any) -> None:
    first, second, third = (api.add(t, user_id="ana").note_ids[0] for t in ("a1", "b2", "c3"))
    assert api.delete(first) is None
    with pytest.raises(NotFoundError):
        api.get(first)
    with pytest.raises(NotFoundError):
        api.delete(first)
    assert [event.action for event in api.history(first)][-1] == "delete"
    assert api.purge(second) is None
    with pytest.raises(NotFoundError):
        api.get(second)
    assert api.delete_all(user_id="ana") == 1
    assert api.list(user_id="ana").items == ()
    assert api.purge_all(user_id="ana") >= 1
    assert api.history(third)[-1].action.startswith("purge")  # only that it was purged


def test_export_then_import_into_a_new_memory(open_api: Open, tmp_path: Path) -> None:
    api = open_api("acme")
    ids = api.add("Ana's cat is called Miso", user_id="ana").note_ids
    api.update(ids[0], text="Ana's cat is Miso Soup")
    target = tmp_path / "acme.jsonl"
    count = api.export(target)
    lines = target.read_text().splitlines()
    assert count >= 3 and json.loads(lines[0])["type"] == "remem-export"
    assert api.import_file(target) == ImportResult(added=0, skipped=count)
    elsewhere = open_api("acme", memory="other")
    seen: list[int] = []
    result = elsewhere.import_file(target, progress=seen.append)
    assert result == ImportResult(added=count, skipped=0) and seen
    assert elsewhere.get(ids[0]).text == "Ana's cat is Miso Soup"
    assert [e.action for e in elsewhere.history(ids[0])] == [e.action for e in api.history(ids[0])]
    with pytest.raises(InvalidInputError):
        open_api("umbrella", memory="other").import_file(target)  # another tenant's records
    with pytest.raises(InvalidInputError):
        api.import_file(tmp_path / "missing.jsonl")
    with pytest.raises(InvalidInputError):
        api.export(tmp_path)  # a folder


def test_ingest_files_and_uploads(api: Any, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "trip.md").write_text("# Trip\n\nWe went to Porto in May and ate francesinha.\n")
    (folder / ".hidden.md").write_text("secret")
    result = api.ingest(folder, user_id="ana")
    assert type(result) is IngestResult and result.files == 1 and result.added >= 1
    assert api.ingest(folder, user_id="ana").unchanged >= 1  # only what changed is written
    uploaded = api.ingest_uploads([("diary.txt", b"Monday: bought a bike.")], user_id="ana")
    assert uploaded.files == 1 and uploaded.added == 1
    assert any("bike" in hit.text for hit in api.search("bike", user_id="ana"))


def test_profile_topics_and_fill(api: Any) -> None:
    api.add("My email is ana@example.org", user_id="ana")
    profile = api.profile(user_id="ana")
    assert type(profile) is Profile and profile.scope.user_id == "ana"
    assert isinstance(api.topics(user_id="ana"), list)
    schema = {"type": "object", "properties": {"email": {"type": "string"}}}
    form = api.fill(schema, user_id="ana")
    assert type(form) is FilledForm and form.value.get("email") == "ana@example.org"
    with pytest.raises(ScopeRequiredError):
        api.profile()


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("get", ("nt_missing",), {}),
        ("episode", ("ep_missing",), {}),
        ("update", ("nt_missing",), {"text": "x"}),
        ("delete", ("nt_missing",), {}),
        ("purge", ("nt_missing",), {}),
        ("history", ("nt_missing",), {}),
        ("links", ("nt_missing",), {}),
        ("get", ("a/b",), {}),  # an id no route can carry as is
        ("get", ("..",), {}),
    ],
)
def test_a_missing_id_is_not_found(api: Any, method: str, args: tuple[Any], kwargs: Any) -> None:
    with pytest.raises(NotFoundError) as error:
        getattr(api, method)(*args, **kwargs)
    assert args[0] in str(error.value)


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "error"),
    [
        ("add", ("",), {"user_id": "a"}, InvalidInputError),
        ("add", ("x",), {}, ScopeRequiredError),
        ("add", ("x",), {"user_id": "a", "occurred_at": "soon"}, InvalidDateError),
        ("add", ("x",), {"user_id": "a", "metadata": {"n": float("nan")}}, InvalidInputError),
        ("add", ("x\x00y",), {"user_id": "a"}, InvalidInputError),
        ("search", ("",), {"user_id": "a"}, InvalidInputError),
        ("search", ("x",), {}, ScopeRequiredError),
        ("search", ("x",), {"user_id": "a", "limit": 0}, InvalidInputError),
        ("context", ("x",), {"user_id": "a", "budget_tokens": 1}, InvalidInputError),
        ("list", (), {"cursor": "zz"}, InvalidInputError),
        ("list", (), {"order": "sideways"}, InvalidInputError),
        ("update", ("nt_x",), {}, InvalidInputError),
        ("get", ("",), {}, InvalidInputError),
        ("get", ("x" * 300,), {}, InvalidInputError),
        ("delete_all", (), {}, ScopeRequiredError),
    ],
)
def test_bad_input_is_an_invalid_input_error(
    api: Any, method: str, args: tuple[Any], kwargs: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        getattr(api, method)(*args, **kwargs)


def test_a_call_with_wrong_arguments_is_a_type_error(api: Any) -> None:
    with pytest.raises(TypeError):
        api.search("x", "ana")  # scope ids are keyword-only
    with pytest.raises(TypeError):
        api.add("x", user="ana")


def test_another_tenants_records_are_invisible(open_api: Open) -> None:
    acme, umbrella = open_api("acme"), open_api("umbrella")
    added = acme.add("Acme's launch code is 1234", user_id="ana")
    note_id, episode_id = added.note_ids[0], added.episode_ids[0]
    for call in (
        lambda: umbrella.get(note_id),
        lambda: umbrella.episode(episode_id),
        lambda: umbrella.history(note_id),
        lambda: umbrella.links(note_id),
        lambda: umbrella.update(note_id, text="stolen"),
        lambda: umbrella.delete(note_id),
        lambda: umbrella.purge(episode_id),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert umbrella.search("launch code", user_id="ana") == []
    assert umbrella.list(user_id="ana").items == ()
    assert umbrella.delete_all(user_id="ana") == 0
    assert acme.get(note_id).text == "Acme's launch code is 1234"


def test_think_links_merges_and_keeps_to_its_tenant_and_owner(open_api: Open) -> None:
    acme, umbrella = open_api("acme"), open_api("umbrella")
    lisbon = acme.add("I moved to Lisbon", user_id="ana").note_ids[0]
    thought = acme.think("Ana lives in Lisbon", evidence_ids=(lisbon,), user_id="ana")
    assert type(thought) is Note and thought.kind == "thought" and thought.scope.tenant == "acme"
    again = acme.think("ana lives in Lisbon.", evidence_ids=[lisbon], user_id="ana")
    assert again.id == thought.id
    assert [(ln.target_id, ln.relation) for ln in acme.links(thought.id)] == [(lisbon, "rests_on")]
    with pytest.raises(NotFoundError):
        umbrella.think("Ana lives in Lisbon", evidence_ids=[lisbon], user_id="ana")
    with pytest.raises(InvalidInputError):
        acme.think("Bo lives in Lisbon", evidence_ids=[lisbon], user_id="bo")
    with pytest.raises(InvalidInputError):
        acme.think("Ana lives in Lisbon", evidence_ids=[], user_id="ana")
    acme.delete(lisbon)
    assert acme.get(thought.id).superseded_by == lisbon


def test_consolidate_merges_repeats_within_the_tenant(open_api: Open) -> None:
    acme, umbrella = open_api("acme"), open_api("umbrella")
    dog = "I adopted a golden retriever called Max last spring"
    first = acme.add(dog, user_id="ana").note_ids[0]
    again = acme.add(dog + "!", user_id="ana", session_id="s2").note_ids[0]
    umbrella.add(dog, user_id="ana")
    umbrella.add(dog, user_id="ana", session_id="s2")
    done = acme.consolidate(user_id="ana", since="2000-01-01T00:00:00Z")
    assert type(done) is Consolidation and done.merged == 1 and not done.dry_run
    (merge,) = done.merges
    assert type(merge) is Merge and (merge.survivor_id, merge.merged_ids) == (first, (again,))
    assert acme.get(again).id == first
    assert umbrella.consolidate(dry_run=True).merged == 1  # another tenant's pass left it
    with pytest.raises(InvalidInputError):
        acme.consolidate(model="sometimes")


def test_set_default_expiry_applies_to_later_adds_of_the_tenant(open_api: Open) -> None:
    acme, umbrella = open_api("acme"), open_api("umbrella")
    assert acme.set_default_expiry(timedelta(hours=2), user_id="ana") is None
    note = acme.get(acme.add("Gate code 1234", user_id="ana").note_ids[0])
    assert note.expires_at is not None
    assert timedelta(hours=1) < note.expires_at - note.created_at <= timedelta(hours=2)
    assert (
        umbrella.get(umbrella.add("Gate code 1234", user_id="ana").note_ids[0]).expires_at is None
    )
    acme.set_default_expiry(None, user_id="ana")
    assert acme.get(acme.add("Gate code 5678", user_id="ana").note_ids[0]).expires_at is None
    with pytest.raises(InvalidInputError):
        acme.set_default_expiry(-1, user_id="ana")
    with pytest.raises(ScopeRequiredError):
        acme.set_default_expiry(60)
