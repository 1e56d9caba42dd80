"""`order` on every surface that lists: REST (`GET /v1/memories?order=`) and the MCP tool
`list_memories`, paging with the cursors they hand out; and the chat proxy's answer when no
model is configured."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from mcp import Client

from remem import Memory
from remem.server.app import create_app
from remem.server.mcp_tools import create_mcp_server
from remem.testing.http import running

DATES = ["2001-01-01T00:00:00Z", "1999-01-01T00:00:00Z", "2005-01-01T00:00:00Z"]


def _add(memory: Memory) -> list[str]:
    return [
        memory.add(f"note {i}", user_id="ana", occurred_at=d).note_ids[0]
        for i, d in enumerate(DATES)
    ]


def _rest_pages(client: httpx.Client, order: str | None) -> list[str]:
    seen: list[str] = []
    params: dict[str, Any] = {"user_id": "ana", "limit": 1}
    if order:
        params["order"] = order
    while True:
        answer = client.get("/v1/memories", params=params)
        assert answer.status_code == 200, answer.text
        seen += [note["id"] for note in answer.json()["items"]]
        if answer.json()["cursor"] is None:
            return seen
        params["cursor"] = answer.json()["cursor"]


def test_rest_lists_in_every_order(memory: Memory) -> None:
    first, second, third = _add(memory)
    with running(create_app(memory)) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert _rest_pages(client, None) == [second, first, third]
        assert _rest_pages(client, "oldest") == [second, first, third]
        assert _rest_pages(client, "newest") == [third, first, second]
        assert _rest_pages(client, "added") == [first, second, third]
        bad = client.get("/v1/memories", params={"user_id": "ana", "order": "random"})
        assert bad.status_code == 422 and "order" in bad.text
        forged = client.get("/v1/memories", params={"user_id": "ana", "cursor": "12"})
        assert forged.status_code == 422 and "cursor" in forged.json()["error"]["message"]


def test_mcp_lists_in_every_order(memory: Memory) -> None:
    first, second, third = _add(memory)
    app = create_mcp_server(memory, "ana").streamable_http_app()
    with running(app) as url:

        async def main() -> dict[str, list[str]]:
            found = {}
            async with Client(f"{url}/mcp") as client:
                for order in ("oldest", "newest", "added"):
                    result = await client.call_tool("list_memories", {"order": order, "limit": 2})
                    page = result.structured_content
                    assert page is not None and page["cursor"] is not None
                    rest = await client.call_tool(
                        "list_memories", {"order": order, "cursor": page["cursor"]}
                    )
                    assert rest.structured_content is not None
                    items = page["items"] + rest.structured_content["items"]
                    found[order] = [note["id"] for note in items]
            return found

        found = anyio.run(main)
    assert found == {
        "oldest": [second, first, third],
        "newest": [third, first, second],
        "added": [first, second, third],
    }


def test_the_proxy_without_a_model_says_what_to_set(memory: Memory) -> None:
    with running(create_app(memory)) as url:
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "user": "ana"},
            timeout=10,
        )
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert "REMEM_LLM_BASE_URL" in message and "REMEM_LLM_MODEL" in message
