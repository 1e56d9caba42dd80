"""remem's own test doubles: the scripted server and the scripted transport answer alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from remem.testing import OpenAIScript, ScriptedOpenAIServer, ScriptedTransport

Script = Callable[[OpenAIScript], None]
EXCHANGES: list[tuple[str, Script, str, dict[str, Any]]] = [
    ("embeddings", lambda s: None, "embeddings", {"model": "m", "input": ["a", "b c"]}),
    ("completion", lambda s: s.reply("hello there"), "chat/completions", {"messages": []}),
    ("stream", lambda s: s.reply("one two three"), "chat/completions", {"stream": True}),
    ("failure", lambda s: s.fail_next(503), "embeddings", {"input": "x"}),
    ("no route", lambda s: None, "moderations", {"input": "x"}),
    (
        "json_schema refused",
        lambda s: setattr(s, "json_schema", False),
        "chat/completions",
        {"response_format": {"type": "json_schema"}},
    ),
]


@pytest.mark.parametrize(
    ("script", "path", "body"), [e[1:] for e in EXCHANGES], ids=[e[0] for e in EXCHANGES]
)
def test_server_and_transport_answer_the_same(script: Script, path: str, body: dict[str, Any]):
    with ScriptedOpenAIServer() as server:
        script(server)
        over_http = httpx.post(f"{server.base_url}/{path}", json=body, timeout=5)
    transport = ScriptedTransport()
    script(transport)
    with httpx.Client(transport=transport, base_url=transport.base_url + "/") as client:
        in_process = client.post(path, json=body)
    assert in_process.status_code == over_http.status_code
    assert in_process.headers["content-type"] == over_http.headers["content-type"]
    assert in_process.content == over_http.content
    assert transport.requests == [{"path": f"/v1/{path}", "body": body}] == server.requests


def test_the_transport_serves_async_clients_and_their_timeouts() -> None:
    model = ScriptedTransport()
    model.reply("streamed words")
    model.slow_next(5.0, when="late")

    async def talk() -> tuple[list[str], type[Exception] | None]:
        async with httpx.AsyncClient(transport=model, base_url=model.base_url, timeout=0.05) as c:
            async with c.stream("POST", "/chat/completions", json={"stream": True}) as answer:
                lines = [line async for line in answer.aiter_lines() if line]
            try:
                await c.post("/embeddings", json={"input": "late"})
            except httpx.ReadTimeout as timeout:
                return lines, type(timeout)
            return lines, None

    lines, failure = asyncio.run(talk())
    assert lines[-1] == "data: [DONE]" and len(lines) == 4  # role, two words, done
    assert failure is httpx.ReadTimeout
    assert [r["path"] for r in model.requests] == ["/v1/chat/completions", "/v1/embeddings"]
