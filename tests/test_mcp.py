"""The MCP server, in a real session with the SDK's own client: over stdio (a `remem mcp`
subprocess) and over streamable HTTP on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from remem import Memory
from remem.server.mcp_tools import create_mcp_server
from remem.testing.http import running

TOOLS = {
    "add_memory",
    "remember_conclusion",
    "search_memory",
    "get_context",
    "get_memory",
    "list_memories",
    "update_memory",
    "delete_memory",
    "memory_history",
    "memory_links",
    "get_profile",
    "fill_form",
    "pin_memory",
    "unpin_memory",
    "archive_memory",
    "unarchive_memory",
}


async def _call(client: Client, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    data = result.structured_content
    return data["result"] if isinstance(data, dict) and set(data) == {"result"} else data


async def _session(client: Client) -> None:
    listed = (await client.list_tools()).tools
    assert {tool.name for tool in listed} == TOOLS
    for tool in listed:
        assert tool.description and len(tool.description) > 30
        assert tool.input_schema["type"] == "object"
    added = await _call(client, "add_memory", content="I switched to decaf in June.")
    note_id = added["note_ids"][0]
    hits = await _call(client, "search_memory", query="decaf coffee")
    assert hits[0]["id"] == note_id and hits[0]["text"] == "I switched to decaf in June."
    # the scope the call named is not repeated in every hit (tokens matter to the model)
    assert not {"scope", "user_id", "tenant"} & set(hits[0])
    context = await _call(client, "get_context", query="what coffee do I drink?")
    assert "decaf" in context["text"]
    await _call(client, "update_memory", memory_id=note_id, text="I switched to decaf in July.")
    assert (await _call(client, "get_memory", memory_id=note_id))["version"] == 2
    page = await _call(client, "list_memories")
    assert [note["id"] for note in page["items"]] == [note_id]
    episode = await _call(client, "get_memory", memory_id=added["episode_ids"][0])
    assert episode["text"] == "I switched to decaf in June." and episode["role"] is None
    assert await _call(client, "memory_links", memory_id=note_id) == []
    actions = [e["action"] for e in await _call(client, "memory_history", memory_id=note_id)]
    assert actions == ["add", "update_text"]
    await _call(client, "delete_memory", memory_id=note_id)
    missing = await client.call_tool("get_memory", {"memory_id": note_id})
    assert missing.is_error and f"no memory with id '{note_id}'" in missing.content[0].text
    bad = await client.call_tool("search_memory", {"query": "x", "limit": 0})
    assert bad.is_error and "limit" in bad.content[0].text
    huge = await client.call_tool("add_memory", {"content": "x", "user_id": "u" * 100_000})
    assert huge.is_error and "user_id is longer than 256" in huge.content[0].text
    secret = (await _call(client, "add_memory", content="My pin is quokka."))["note_ids"][0]
    stale = await client.call_tool(
        "update_memory", {"memory_id": secret, "text": "My pin is wombat.", "expected_version": 7}
    )
    assert stale.is_error and "not 7" in stale.content[0].text
    assert await _call(client, "delete_memory", memory_id=secret, purge=True) == {"purged": secret}
    events = await _call(client, "memory_history", memory_id=secret)
    assert events[-1]["action"] == "purge" and "quokka" not in str(events)


@pytest.mark.slow
def test_stdio_session(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "remem", "mcp", "--user", "ana"],
        env={"REMEM_DB": str(tmp_path / "mcp.db"), "REMEM_EMBEDDER": "hash", "REMEM_CONFIG": ""},
    )

    async def main() -> None:
        async with Client(params) as client:
            await _session(client)

    anyio.run(main)


def test_streamable_http_session(memory: Memory) -> None:
    app = create_mcp_server(memory, "ana").streamable_http_app()
    with running(app) as url:

        async def main() -> None:
            async with Client(f"{url}/mcp") as client:
                await _session(client)

        anyio.run(main)
    # the tools wrote to this very memory
    notes = [
        event.target_id for event in memory.store.dump().events if event.target_id[:3] == "nt_"
    ]
    assert [event.action for event in memory.history(notes[0])] == ["add", "update_text", "delete"]
