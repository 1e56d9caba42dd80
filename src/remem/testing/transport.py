"""A scripted OpenAI-compatible model inside an httpx client: no socket, no thread.

    model = ScriptedTransport()
    model.fail_next(503)                      # the first request answers 503
    model.reply('{"city": "Lisbon"}')         # then this chat completion
    llm = OpenAICompatibleLLM(model.base_url, "m", transport=model, backoff=0)
    assert llm.generate("where", "system", "user", Answer).usage.calls == 2

The script (`fail_next`, `reply`, `slow_next`, `requests`, `chat_requests()`, `json_schema`)
is `ScriptedOpenAIServer`'s, answered by the same code. It works for `httpx.Client` and
`httpx.AsyncClient` (e.g. the chat proxy's `Upstream(transport=...)`). A `slow_next` wait
longer than the client's read timeout raises `httpx.ReadTimeout` once the timeout passes,
as a real client would.
"""

from __future__ import annotations

import time

import anyio
import httpx

from remem.testing.script import OpenAIScript, Received, Reply


class ScriptedTransport(OpenAIScript, httpx.MockTransport):
    """An httpx transport that answers from an `OpenAIScript`."""

    base_url = "http://scripted.test/v1"  # any base URL works; this one reads well

    def __init__(self, dimensions: int = 64, *, json_schema: bool = True) -> None:
        OpenAIScript.__init__(self, dimensions, json_schema=json_schema)
        httpx.MockTransport.__init__(self, self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        received = self.receive(request.url.path, request.content)
        waited, timed_out = _wait(received, request)
        time.sleep(waited)
        if timed_out:
            raise httpx.ReadTimeout("scripted wait outlasted the read timeout", request=request)
        return _response(self.respond(received), request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """As `handle_request`, but waits without blocking the event loop."""
        await request.aread()
        received = self.receive(request.url.path, request.content)
        waited, timed_out = _wait(received, request)
        await anyio.sleep(waited)
        if timed_out:
            raise httpx.ReadTimeout("scripted wait outlasted the read timeout", request=request)
        return _response(self.respond(received), request)


def _wait(received: Received, request: httpx.Request) -> tuple[float, bool]:
    """How long to wait, and whether the client's read timeout ends the wait."""
    timeout = (request.extensions.get("timeout") or {}).get("read")
    if timeout is not None and received.delay > timeout:
        return float(timeout), True
    return received.delay, False


def _response(reply: Reply, request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        reply.status,
        headers={"Content-Type": reply.media_type},
        content=b"".join(reply.chunks),
        request=request,
    )
