"""What only the clients do: settings from the environment, retries with backoff (and no
repeated write), timeouts, answers mapped back to remem's errors, uploads in batches,
against a real server on 127.0.0.1 (behind a proxy that fails on purpose where a test
says so). What every surface does alike is in test_api_parity."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remem import (
    AsyncClient,
    Client,
    ConfigError,
    ConflictError,
    InvalidInputError,
    LLMError,
    Memory,
    NotFoundError,
    RememError,
    StoreError,
)
from remem.client.answers import error_from
from remem.keys import create_key
from remem.server.app import create_app
from remem.testing import FailingEmbedder, HashEmbedder
from remem.testing.http import running

Message = dict[str, Any]


class Flaky:
    """An ASGI app in front of remem's that, for `METHOD /path`, plays the planned steps
    first: a status to answer instead ("503"), "after:502" (do the request, then answer
    502 as a proxy that lost the answer would), "sleep" (answer late), "garbage"."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.plan: dict[str, list[str]] = {}
        self.seen: list[str] = []

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        key = f"{scope['method']} {scope['path']}"
        self.seen.append(key)
        steps = self.plan.get(key)
        step = steps.pop(0) if steps else None
        if step is None:
            return await self.app(scope, receive, send)
        if step == "sleep":
            await asyncio.sleep(1.5)
            return await self.app(scope, receive, send)
        if step.startswith("after:"):

            async def dropped(message: Message) -> None:
                pass

            await self.app(scope, receive, dropped)
        status = 200 if step == "garbage" else int(step.removeprefix("after:"))
        body = b'{"id": 5}' if step == "garbage" else b"<html>proxy error</html>"
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def memory(db_path: Path) -> Iterator[Memory]:
    with Memory(db_path, embedder=HashEmbedder(), llm=None) as memory:
        yield memory


@pytest.fixture
def flaky(memory: Memory) -> Iterator[tuple[Flaky, str]]:
    proxy = Flaky(create_app(memory, open_without_keys=False))
    with running(proxy) as url:
        yield proxy, url


@pytest.fixture
def key(memory: Memory) -> str:
    return create_key(memory.store, "acme")[1]


def test_url_and_key_come_from_the_environment(
    flaky: tuple[Flaky, str], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEM_URL", flaky[1] + "/")
    monkeypatch.setenv("REMEM_API_KEY", key)
    with Client() as client:
        assert client.add("from the environment", user_id="ana").note_ids
    with Client(flaky[1], api_key="rk_wrong") as client, pytest.raises(ConfigError, match="key"):
        client.search("x", user_id="ana")  # an argument wins over the environment
    monkeypatch.delenv("REMEM_API_KEY")
    with Client() as client, pytest.raises(ConfigError, match="API key"):
        client.list()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"url": "localhost:8765"}, ConfigError),
        ({"retries": -1}, InvalidInputError),
        ({"retries": 1.5}, InvalidInputError),
        ({"timeout": -2}, InvalidInputError),
        ({"backoff": "1"}, InvalidInputError),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Client(**options)


def test_connection_errors_are_retried_with_backoff_then_a_store_error() -> None:
    with Client("http://127.0.0.1:9", retries=3, backoff=0.05) as client:
        started = time.monotonic()
        with pytest.raises(StoreError, match="did not answer GET /v1/memories"):
            client.list()
        assert time.monotonic() - started >= 0.05 + 0.1 + 0.2  # three waits, doubling


def test_5xx_is_retried_for_reads_and_deletes(flaky: tuple[Flaky, str], key: str) -> None:
    proxy, url = flaky
    with Client(url, api_key=key, backoff=0.01) as client:
        note_id = client.add("Ana's cat is Miso", user_id="ana").note_ids[0]
        proxy.plan[f"GET /v1/memories/{note_id}"] = ["503", "500", "504"]
        assert client.get(note_id).text == "Ana's cat is Miso"
        assert proxy.seen.count(f"GET /v1/memories/{note_id}") == 4
        proxy.plan["POST /v1/search"] = ["502"] * 4
        with pytest.raises(StoreError):
            client.search("cat", user_id="ana")  # retries spent: the last answer's error
        proxy.plan[f"DELETE /v1/memories/{note_id}"] = ["after:502"]
        assert client.delete(note_id) is None  # done the first time; the retry finds it gone
        with pytest.raises(NotFoundError):
            client.delete(note_id)  # gone without an earlier try: not found, as Memory says


def test_a_write_that_may_have_happened_is_not_sent_again(
    flaky: tuple[Flaky, str], key: str, memory: Memory
) -> None:
    proxy, url = flaky
    with Client(url, api_key=key, backoff=0.01) as client:
        proxy.plan["POST /v1/memories"] = ["after:502"]
        with pytest.raises(StoreError):
            client.add("said once", user_id="ana")
        assert [n.text for n in memory.as_tenant("acme").list().items] == ["said once"]
        proxy.plan["POST /v1/memories"] = ["503", "503"]  # remem's 503: nothing was written
        assert client.add("said twice", user_id="ana").note_ids
        assert len(memory.as_tenant("acme").list().items) == 2
        note_id = memory.as_tenant("acme").list().items[0].id
        proxy.plan[f"PATCH /v1/memories/{note_id}"] = ["after:500"]
        with pytest.raises(StoreError):
            client.update(note_id, text="changed once")
        assert memory.as_tenant("acme").get(note_id).version == 2


def test_a_slow_answer_times_out(flaky: tuple[Flaky, str], key: str) -> None:
    proxy, url = flaky
    with Client(url, api_key=key, timeout=0.3, retries=1, backoff=0.01) as client:
        proxy.plan["GET /v1/memories"] = ["sleep", "sleep"]
        with pytest.raises(StoreError, match="ReadTimeout"):
            client.list()
        assert proxy.seen.count("GET /v1/memories") == 2
        proxy.plan["POST /v1/memories"] = ["sleep"]
        with pytest.raises(StoreError, match="ReadTimeout"):
            client.add("late", user_id="ana")
        assert proxy.seen.count("POST /v1/memories") == 1  # may have been written: once


def test_an_unreadable_answer_is_a_store_error(flaky: tuple[Flaky, str], key: str) -> None:
    proxy, url = flaky
    with Client(url, api_key=key) as client:
        proxy.plan["GET /v1/memories/nt_x"] = ["garbage"]
        with pytest.raises(StoreError, match="unreadable: answer.id is int, not str"):
            client.get("nt_x")


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (404, {"error": {"type": "NotFoundError", "message": "no episode with id 'ep_1'"}},
         NotFoundError, "no episode with id 'ep_1'"),
        (409, {"error": {"type": "ConflictError",
                         "message": "memory 'nt_1' is at version 3, not 2: read it again"}},
         ConflictError, "version 3"),
        (412, {"error": {"type": "PreconditionFailed", "message": "If-Match"}},
         ConflictError, "If-Match"),
        (422, {"error": {"type": "InvalidRequest", "message": "limit: too big"}},
         InvalidInputError, "limit"),
        (413, {"error": {"type": "BodyTooLarge", "message": "over 4 MiB"}},
         InvalidInputError, "4 MiB"),
        (502, {"error": {"type": "LLMError", "message": "model down"}}, LLMError, "model down"),
        (503, {"error": {"type": "EmbedderError", "message": "no model"}}, RememError, "no model"),
        (500, "<html>oops</html>", StoreError, "HTTP 500"),
        (418, {"error": {"type": "Teapot", "message": "short and stout"}}, RememError, "stout"),
        (401, {"error": {"type": "Unauthorized", "message": "need a key"}}, ConfigError, "key"),
        (422, {"error": {"type": "__class__", "message": "x"}}, InvalidInputError, "x"),
    ],
)  # fmt: skip
def test_error_bodies_become_remems_errors(
    status: int, body: Any, error: type[Exception], message: str
) -> None:
    found = error_from(status, body, str(body))
    assert isinstance(found, error) and message in str(found)


def test_rebuilt_errors_keep_their_fields() -> None:
    missing = error_from(404, {"error": {"type": "NotFoundError",
                                         "message": "no memory with id 'it''s'"}}, "")  # fmt: skip
    assert isinstance(missing, NotFoundError)
    conflict = error_from(409, {"error": {"type": "ConflictError", "message":
                          "memory 'nt_1' is at version 3, not 2: read it again"}}, "")  # fmt: skip
    assert isinstance(conflict, ConflictError)
    assert (conflict.item_id, conflict.expected, conflict.current) == ("nt_1", 2, 3)
    llm = error_from(502, {"error": {"type": "LLMError", "message": "down"}}, "")
    assert isinstance(llm, LLMError) and llm.usage is None


def test_as_tenant_cannot_pick_a_tenant(flaky: tuple[Flaky, str], key: str) -> None:
    with Client(flaky[1], api_key=key) as client, pytest.raises(ConfigError, match="key"):
        client.as_tenant("umbrella")


def test_jobs_are_the_local_users_only(key: str, flaky: tuple[Flaky, str], tmp_path: Path) -> None:
    with Client(flaky[1], api_key=key) as client, pytest.raises(ConfigError, match="tenant"):
        client.run_jobs()
    embedder = FailingEmbedder(HashEmbedder())  # down: the add leaves an embedding job
    with (
        Memory(tmp_path / "local.db", embedder=embedder, llm=None) as local,
        running(create_app(local)) as url,
        Client(url) as client,
    ):
        assert client.add("keyless loopback: the local user", user_id="ana").pending_jobs
        embedder.failing = False
        assert client.run_jobs() == 1
        assert client.run_jobs() == 0
        assert client.retry_failed_jobs() == 0


def test_ingest_uploads_in_batches_and_reports_what_it_skips(
    flaky: tuple[Flaky, str], key: str, tmp_path: Path
) -> None:
    proxy, url = flaky
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(101):
        (folder / f"note-{n:03}.txt").write_text(f"Note {n}: the kite number {n} is blue.")
    (folder / "broken.txt").symlink_to(tmp_path / "nowhere.txt")
    with Client(url, api_key=key) as client:
        result = client.ingest([folder, tmp_path / "missing.md"], user_id="ana")
        assert proxy.seen.count("POST /v1/ingest") == 2  # at most 100 files a request
        assert result.files == 101 and result.added == 101
        assert {name for name, _ in result.skipped} == {"broken.txt", str(tmp_path / "missing.md")}
        with pytest.raises(InvalidInputError, match="callable"):
            client.ingest(folder, user_id="ana", me=lambda senders: senders[0])


def test_many_async_calls_at_once(flaky: tuple[Flaky, str], key: str) -> None:
    async def main() -> None:
        async with AsyncClient(flaky[1], api_key=key) as client:
            added = await asyncio.gather(
                *(client.add(f"kite {n}", user_id="ana") for n in range(30))
            )
            notes = await asyncio.gather(*(client.get(a.note_ids[0]) for a in added))
            assert sorted(n.text for n in notes) == sorted(f"kite {n}" for n in range(30))
            with pytest.raises(ConfigError):
                client.as_tenant("umbrella")

    asyncio.run(main())


def test_an_import_error_names_the_file_sent(
    flaky: tuple[Flaky, str], key: str, tmp_path: Path
) -> None:
    bad = tmp_path / "not-an-export.jsonl"
    bad.write_text('{"hello": "world"}\n')
    with Client(flaky[1], api_key=key) as client:
        with pytest.raises(InvalidInputError, match="not-an-export.jsonl is not a remem") as error:
            client.import_file(bad)
        assert "remem-import-" not in str(error.value)  # no path of the server's
