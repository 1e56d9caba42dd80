"""MCP inside `remem serve` (at /mcp) and `remem mcp --http`: the SDK's own client over real
HTTP on 127.0.0.1, behind the REST API's keys, one tenant per key; and what the tools tell
the model (every parameter described, truthful ids)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from click.testing import CliRunner
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from remem import Memory
from remem.cli.main import cli
from remem.keys import create_key, revoke_key
from remem.server.app import create_app
from remem.server.mcp_http import mcp_app
from remem.server.mcp_tools import create_mcp_server
from remem.testing.http import running

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def connected(url: str, secret: str | None = None) -> AsyncIterator[Client]:
    """The SDK's client on `url`/mcp, sending `secret` as a bearer key."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    data = result.structured_content
    return data["result"] if isinstance(data, dict) and set(data) == {"result"} else data


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    return str(result.content[0].text)  # type: ignore[union-attr]


def test_each_key_sees_only_its_tenant(memory: Memory) -> None:
    _, acme = create_key(memory.store, "acme")
    _, umbrella = create_key(memory.store, "umbrella")
    theirs = memory.as_tenant("umbrella").add("Umbrella's launch code is 0451.", user_id="me")
    app = create_app(memory, open_without_keys=False)
    with running(app) as url:

        async def main() -> None:
            async with connected(url, acme) as client:
                added = await call(client, "add_memory", content="Acme ships on Fridays.")
                mine = added["note_ids"][0]
                hits = await call(client, "search_memory", query="launch code ships Fridays")
                assert [hit["id"] for hit in hits] == [mine]
                page = await call(client, "list_memories")
                assert [note["id"] for note in page["items"]] == [mine]
                # another tenant's ids, of every kind, are as good as unknown
                for tool in ("get_memory", "memory_history", "delete_memory"):
                    for item in (theirs.note_ids[0], theirs.episode_ids[0]):
                        assert "no " in await refused(client, tool, memory_id=item)
                stolen = theirs.note_ids[0]
                refusal = await refused(client, "update_memory", memory_id=stolen, text="pwned")
                assert refusal.endswith(f"no memory with id {stolen!r}")
                links = await refused(client, "memory_links", memory_id=stolen)
                assert links.endswith(f"no memory with id {stolen!r}")
            async with connected(url, umbrella) as client:
                hits = await call(client, "search_memory", query="launch code")
                assert [hit["id"] for hit in hits] == list(theirs.note_ids)

        anyio.run(main)
    assert memory.as_tenant("umbrella").get(theirs.note_ids[0]).version == 1
    assert [n.text for n in memory.as_tenant("acme").list().items] == ["Acme ships on Fridays."]
    assert memory.list().items == ()  # nothing leaked to the keyless tenant


def test_no_key_a_wrong_key_or_a_revoked_key_is_refused(memory: Memory) -> None:
    key, secret = create_key(memory.store, "acme")
    app = create_app(memory, open_without_keys=True)  # loopback, but a key exists
    with running(app) as url:
        for headers in ({}, {"Authorization": "Bearer rk_wrong"}, {"Authorization": "Basic x"}):
            answer = httpx.post(f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS | headers)
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["type"] == "Unauthorized"
        with pytest.raises(Exception) as wrong:  # the SDK's client cannot even connect
            anyio.run(_list_tools, url, "rk_wrong")
        assert "MCPError" in repr(wrong.value)
        assert "add_memory" in anyio.run(_list_tools, url, secret)

        async def revoked_mid_session() -> None:
            async with connected(url, secret) as client:
                await call(client, "add_memory", content="before the key was revoked")
                revoke_key(memory.store, key.id)
                with pytest.raises(MCPError):
                    await client.call_tool("add_memory", {"content": "after it was revoked"})

        anyio.run(revoked_mid_session)
    texts = [note.text for note in memory.as_tenant("acme").list().items]
    assert texts == ["before the key was revoked"]


async def _list_tools(url: str, secret: str | None) -> set[str]:
    async with connected(url, secret) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def test_a_keyless_loopback_server_serves_the_local_user_to_local_requests(
    memory: Memory,
) -> None:
    app = create_app(memory, open_without_keys=True, mcp_user="ana")
    with running(app) as url:

        async def main() -> None:
            async with connected(url) as client:
                await call(client, "add_memory", content="I keep bees.")

        anyio.run(main)
        # DNS rebinding: a page's name in Host, or a write from another origin, is refused
        rebound = httpx.post(
            f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Host": "evil.example"}
        )
        assert rebound.status_code == 421
        foreign = httpx.post(
            f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
    assert [note.scope.user_id for note in memory.list().items] == ["ana"]


def test_the_rest_api_and_mcp_share_one_server(memory: Memory) -> None:
    _, secret = create_key(memory.store, "acme")
    bearer = {"Authorization": f"Bearer {secret}"}
    with running(create_app(memory, open_without_keys=False)) as url:
        added = httpx.post(
            f"{url}/v1/memories", json={"content": "Sky is blue.", "user_id": "me"}, headers=bearer
        )
        assert added.status_code == 201

        async def main() -> list[Any]:
            async with connected(url, secret) as client:
                return await call(client, "search_memory", query="sky colour")  # type: ignore[no-any-return]

        assert [hit["id"] for hit in anyio.run(main)] == added.json()["note_ids"]
        assert httpx.get(f"{url}/openapi.json").json()["paths"].get("/mcp") is None


def test_without_the_app_lifespan_mcp_says_so(memory: Memory) -> None:
    from starlette.testclient import TestClient

    client = TestClient(create_app(memory))  # not entered: no lifespan
    answer = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert answer.status_code == 503 and "lifespan" in answer.json()["error"]["message"]


def test_a_served_app_can_start_twice(memory: Memory) -> None:
    app = mcp_app(memory, "ana", open_without_keys=True)
    for _ in range(2):
        with running(app) as url:
            assert "get_context" in anyio.run(_list_tools, url, None)


def test_tools_describe_every_parameter_truthfully(memory: Memory) -> None:
    async def main() -> list[Any]:
        async with Client(create_mcp_server(memory, "ana")) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in anyio.run(main)}
    for tool in tools.values():
        assert tool.description and "\n " not in tool.description, tool.name  # dedented
        assert "ctx" not in tool.input_schema["properties"]
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
    memory_id = {
        name: tool.input_schema["properties"]["memory_id"]
        for name, tool in tools.items()
        if "memory_id" in tool.input_schema["properties"]
    }
    for name in ("get_memory", "delete_memory", "memory_history"):
        assert "ep_" in memory_id[name]["description"], name
    for name in ("update_memory", "memory_links"):
        assert "ep_" not in memory_id[name]["description"], name


def test_hits_name_only_the_scope_the_call_did_not(memory: Memory) -> None:
    memory.add("I run on Sundays.", user_id="ana", agent_id="coach", session_id="s1")

    async def main() -> list[Any]:
        async with Client(create_mcp_server(memory, "ana")) as client:
            return [
                await call(client, "search_memory", query="run Sundays"),
                await call(client, "search_memory", query="run Sundays", agent_id="coach"),
                await call(client, "list_memories", session_id="s1"),
                await call(client, "search_memory", query="run Sundays", min_score=1.0),
            ]

    across, with_agent, page, strict = anyio.run(main)
    assert strict == [] and 0 < across[0]["score"] < 1.0
    assert across[0]["agent_id"] == "coach" and across[0]["session_id"] == "s1"
    assert "agent_id" not in with_agent[0] and with_agent[0]["session_id"] == "s1"
    assert page["items"][0]["agent_id"] == "coach" and "session_id" not in page["items"][0]
    assert "user_id" not in across[0] and "thread" not in across[0]


def test_mcp_over_http_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    env = {"REMEM_DB": str(tmp_path / "m.db"), "REMEM_EMBEDDER": "hash"}
    result = CliRunner().invoke(cli, ["mcp", "--http", "--host", "0.0.0.0"], env=env)
    assert result.exit_code != 0 and "without API keys" in result.output


@pytest.fixture
def served_cli(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`remem mcp --http` in a subprocess, with one key; yields (url, secret)."""
    env = {"REMEM_DB": str(tmp_path / "m.db"), "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""}
    made = CliRunner().invoke(cli, ["keys", "create", "--tenant", "acme", "--json"], env=env)
    secret = made.output.split('"secret": "')[1].split('"')[0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "remem", "mcp", "--http", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/mcp", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, secret
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.slow
def test_remem_mcp_http_needs_a_key_once_one_exists(served_cli: tuple[str, str]) -> None:
    url, secret = served_cli
    assert httpx.post(f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code == 401

    async def main() -> Any:
        async with connected(url, secret) as client:
            await call(client, "add_memory", content="The CLI serves MCP with keys.")
            return await call(client, "list_memories")

    assert [note["text"] for note in anyio.run(main)["items"]] == ["The CLI serves MCP with keys."]


def test_hostile_requests_get_clear_errors(memory: Memory) -> None:
    _, secret = create_key(memory.store, "acme")
    bearer = MCP_HEADERS | {"Authorization": f"Bearer {secret}"}
    with running(create_app(memory, open_without_keys=False, max_body_bytes=64 * 1024)) as url:
        huge = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 100_000}}  # type: ignore[dict-item]
        assert httpx.post(f"{url}/mcp", json=huge, headers=bearer).status_code == 413
        # the size is refused before the key is even looked at
        assert httpx.post(f"{url}/mcp", json=huge, headers=MCP_HEADERS).status_code == 413
        broken = httpx.post(f"{url}/mcp", content=b"{not json", headers=bearer)
        assert broken.status_code == 400
        assert httpx.put(f"{url}/mcp", headers=bearer).status_code == 405
        # a keyed server answers under its public name (the SDK alone knows only loopback)
        public = bearer | {"Host": "memory.example.com", "Origin": "https://app.example.com"}
        assert httpx.post(f"{url}/mcp", json=INITIALIZE, headers=public).status_code == 200
        long_key = {"Authorization": "Bearer " + "k" * 10_000}
        assert (
            httpx.post(f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS | long_key).status_code
            == 401
        )
