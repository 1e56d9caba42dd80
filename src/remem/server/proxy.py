"""An OpenAI-compatible chat proxy that gives any model a memory.

For each `/v1/chat/completions` request remem builds `Memory.context` for the latest user
message, adds it to the system prompt, forwards the request to the configured upstream,
hands the answer back unchanged (streamed when asked) and remembers the user's message and
the answer as episodes in the caller's scope: the API key's tenant, the `user` of the
request (or the `X-Remem-User` header) and the `X-Remem-Session` header when present.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from remem.memory import Memory
from remem.server.auth import Caller
from remem.server.errors import error_body
from remem.types import Scope

MEMORY_PREAMBLE = (
    "You have a long-term memory of this user (kept by remem). Use what is relevant to the"
    " request; do not mention it otherwise.\n\n"
)


@dataclass(frozen=True)
class Upstream:
    """The OpenAI-compatible endpoint the proxy forwards to."""

    base_url: str
    api_key: str | None = None
    model: str | None = None  # used when a request names none
    timeout: float = 120.0
    # how requests reach it; None: the network (tests pass remem.testing.ScriptedTransport)
    transport: httpx.AsyncBaseTransport | None = field(default=None, compare=False)


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; fields remem does not read are forwarded as sent."""

    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    model: str | None = Field(default=None, max_length=256)
    stream: bool = False
    user: str | None = Field(default=None, max_length=256)


def install_proxy(app: FastAPI, upstream: Upstream) -> None:
    """Add `POST /v1/chat/completions`, forwarding to `upstream`."""
    client = httpx.AsyncClient(
        base_url=upstream.base_url.rstrip("/"),
        timeout=upstream.timeout,
        transport=upstream.transport,
    )
    app.router.on_shutdown.append(client.aclose)
    headers = {"Authorization": f"Bearer {upstream.api_key}"} if upstream.api_key else {}

    @app.post("/v1/chat/completions", tags=["chat"], response_model=None)
    async def chat_completions(
        body: ChatRequest,
        memory: Caller,
        x_remem_user: str | None = Header(default=None, max_length=256),
        x_remem_session: str | None = Header(default=None, max_length=256),
    ) -> Response:
        """Chat with the upstream model, which gets the user's relevant memories."""
        user = body.user or x_remem_user
        if not user:
            raise HTTPException(422, "say whose memory to use: set `user` or X-Remem-User")
        scope = Scope(user_id=user, session_id=x_remem_session)
        said = _latest_user_text(body.messages)
        request = body.model_dump(exclude_none=True)
        request["model"] = body.model or upstream.model
        if said:
            context = await run_in_threadpool(
                partial(memory.context, said, user_id=user, session_id=x_remem_session)
            )
            if context.items:
                request["messages"] = _with_memory(body.messages, context.text)
        outgoing = client.build_request("POST", "/chat/completions", json=request, headers=headers)
        try:
            answer = await client.send(outgoing, stream=body.stream)
        except httpx.HTTPError as error:
            return JSONResponse(
                error_body("UpstreamUnavailable", f"upstream model failed: {error}"), 502
            )
        if answer.status_code != 200 or not body.stream:
            return await _relay_whole(answer, memory, said, scope)
        return _relay_stream(answer, memory, said, scope)


async def _relay_whole(answer: httpx.Response, memory: Memory, said: str, scope: Scope) -> Response:
    content = await answer.aread()
    await answer.aclose()
    if answer.status_code == 200 and said:
        reply = _reply_text(json.loads(content))
        await run_in_threadpool(_remember, memory, said, reply, scope)
    return Response(
        content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type", "application/json"),
    )


def _relay_stream(
    answer: httpx.Response, memory: Memory, said: str, scope: Scope
) -> StreamingResponse:
    """Relay the events as they come; hold back the final `[DONE]` until the exchange is
    remembered, so a client that saw the end of the stream can rely on it being stored."""

    async def chunks() -> AsyncIterator[bytes]:
        parts: list[str] = []
        done = None
        try:
            async for line in answer.aiter_lines():
                if line.strip() == "data: [DONE]":
                    done = line
                    continue
                parts.append(_delta_text(line))
                yield (line + "\n").encode()
        finally:
            await answer.aclose()
        if said:
            await run_in_threadpool(_remember, memory, said, "".join(parts), scope)
        if done is not None:
            yield (done + "\n\n").encode()

    return StreamingResponse(chunks(), media_type="text/event-stream")


def _remember(memory: Memory, said: str, reply: str, scope: Scope) -> None:
    messages = [{"role": "user", "content": said}]
    if reply.strip():
        messages.append({"role": "assistant", "content": reply})
    memory.add(messages, user_id=scope.user_id, session_id=scope.session_id)


def _latest_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (text parts of a multi-part message joined)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
            return content.strip() if isinstance(content, str) else ""
    return ""


def _with_memory(messages: list[dict[str, Any]], memory_text: str) -> list[dict[str, Any]]:
    """The messages with the memory block appended to the system prompt (or as one)."""
    block = MEMORY_PREAMBLE + memory_text
    first = messages[0]
    if first.get("role") == "system" and isinstance(first.get("content"), str):
        return [{**first, "content": first["content"] + "\n\n" + block}, *messages[1:]]
    return [{"role": "system", "content": block}, *messages]


def _reply_text(completion: Any) -> str:
    try:
        return str(completion["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        return ""


def _delta_text(line: str) -> str:
    """The content delta of one server-sent event line, or "" for anything else."""
    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
        return ""
    try:
        return str(json.loads(line[5:])["choices"][0]["delta"].get("content") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""
