"""An OpenAI-compatible chat proxy that gives any model a memory.

For each `/v1/chat/completions` request remem builds `Memory.context` for the latest user
message, adds it to the system prompt, forwards the request to the configured upstream,
hands the answer back unchanged (streamed when asked) and remembers the user's message and
the answer as episodes in the caller's scope: the API key's tenant, the `user` of the
request (or the `X-Remem-User` header) and the `X-Remem-Session` header when present.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from remem.errors import RememError
from remem.memory import Memory
from remem.server.auth import Caller
from remem.server.errors import ErrorBody, documented, error_body
from remem.server.proxy_thoughts import conclude
from remem.server.schemas import NO_NUL, SOME_TEXT
from remem.types import ContextItem, Scope

MEMORY_PREAMBLE = (
    "You have a long-term memory of this user (kept by remem). Use what is relevant to the"
    " request; do not mention it otherwise.\n\n"
)
log = logging.getLogger("remem.server")
Said = Annotated[str, Field(pattern=NO_NUL)]  # no length limit but the body's


@dataclass(frozen=True)
class Upstream:
    """The OpenAI-compatible endpoint the proxy forwards to."""

    base_url: str
    api_key: str | None = None
    model: str | None = None  # used when a request names none
    timeout: float = 120.0
    # after each answer, ask the model what it concluded worth remembering and keep that as
    # thoughts (`remem.server.proxy_thoughts`): one more model call per exchange, so opt-in
    conclude: bool = False
    # how requests reach it; None: the network (tests pass remem.testing.ScriptedTransport)
    transport: httpx.AsyncBaseTransport | None = field(default=None, compare=False)


class ContentPart(BaseModel):
    """One part of a multi-part message; remem reads the text parts."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str = Field(max_length=64)
    text: Said | None = None


class ChatMessage(BaseModel):
    """One message; fields remem does not read are forwarded as sent."""

    model_config = ConfigDict(extra="allow", strict=True)

    role: str = Field(max_length=64, pattern=NO_NUL)
    content: Said | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=256, pattern=NO_NUL)


def _user_is_required(schema: dict[str, Any]) -> None:
    # the schema asks for `user`; the X-Remem-User header may stand in for it
    schema["required"] = [*schema.get("required", []), "user"]
    user = schema["properties"]["user"]
    schema["properties"]["user"] = {**user.pop("anyOf")[0], **user}


class ChatRequest(BaseModel):
    """An OpenAI chat completion request; fields remem does not read are forwarded as sent."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra=_user_is_required)

    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    model: str | None = Field(default=None, max_length=256)
    stream: bool = False
    user: str | None = Field(
        default=None,
        max_length=256,
        pattern=SOME_TEXT,
        description="whose memory to use (or send the X-Remem-User header instead)",
    )


# headers documented by hand: a header is a string or absent, never null
HiddenHeader = Annotated[str | None, Header(max_length=256, include_in_schema=False)]
SESSION_HEADER = {
    "name": "x-remem-session",
    "in": "header",
    "required": False,
    "description": "the session the exchange belongs to",
    "schema": {"type": "string", "maxLength": 256},
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The model's answer: one completion, or server-sent events if `stream`.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            # each event, as OpenAPI 3.1 tools read an event stream's schema
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "string", "description": "a completion chunk, or [DONE]"},
                        "event": {"type": "string"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            },
        },
    },
    **documented(400, 401, 403, 413, 421, 422, 502, 503),
    "default": {
        "description": "An error of the upstream model, passed through.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
}


NOT_CONFIGURED = (
    "no chat model is configured for the proxy: set REMEM_LLM_BASE_URL and REMEM_LLM_MODEL"
    " (and REMEM_LLM_API_KEY if the model needs one), then restart the server"
)


def install_proxy(app: FastAPI, upstream: Upstream | None) -> None:
    """Add `POST /v1/chat/completions`, forwarding to `upstream`; without one, the route
    says which settings name a model."""
    if upstream is None:
        _install_not_configured(app)
        return
    client = httpx.AsyncClient(
        base_url=upstream.base_url.rstrip("/"),
        timeout=upstream.timeout,
        transport=upstream.transport,
    )
    app.router.on_shutdown.append(client.aclose)
    headers = {"Content-Type": "application/json"}
    if upstream.api_key:
        headers["Authorization"] = f"Bearer {upstream.api_key}"

    @app.post(
        "/v1/chat/completions",
        tags=["chat"],
        response_model=None,
        responses=ANSWERS,
        openapi_extra={"parameters": [SESSION_HEADER]},
    )
    async def chat_completions(
        body: ChatRequest,
        memory: Caller,
        x_remem_user: HiddenHeader = None,
        x_remem_session: HiddenHeader = None,
    ) -> Response:
        """Chat with the upstream model, which gets the user's relevant memories. The whole
        request is checked before the model is asked."""
        scope = Scope(user_id=_user_of(body, x_remem_user), session_id=x_remem_session)
        request = body.model_dump(exclude_unset=True)
        request["model"] = body.model or upstream.model
        content = _encoded(request)  # refused here, before the memory or the model is asked
        said = _latest_user_text(request["messages"])
        then: Then | None = None
        if said:
            context = await run_in_threadpool(
                partial(memory.context, said, user_id=scope.user_id, session_id=scope.session_id)
            )
            if context.items:
                request["messages"] = _with_memory(request["messages"], context.text)
                content = _encoded(request)
            if upstream.conclude:
                think = partial(conclude, client, headers, request["model"], memory)
                then = partial(_concluding, think, said, context.items, scope)
        outgoing = client.build_request(
            "POST", "/chat/completions", content=content, headers=headers
        )
        try:
            answer = await client.send(outgoing, stream=body.stream)
        except httpx.HTTPError as error:
            return _failed(f"upstream model failed: {error}")
        if answer.status_code != 200 or not body.stream:
            return await _relay_whole(answer, memory, said, scope, then)
        return _relay_stream(answer, memory, said, scope, then)


# what to do with the answer's text once the exchange is remembered (see `Upstream.conclude`)
Then = Callable[[str], Awaitable[object]]


async def _concluding(
    think: Callable[..., Awaitable[list[str]]],
    said: str,
    evidence: tuple[ContextItem, ...],
    scope: Scope,
    reply: str,
) -> list[str]:
    return await think((said, reply), evidence, scope)


def _user_of(body: ChatRequest, header: str | None) -> str:
    user = (body.user or header or "").strip()
    if not user or "\x00" in user:
        raise HTTPException(422, "say whose memory to use: set `user` or X-Remem-User")
    return user


def _encoded(request: dict[str, Any]) -> bytes:
    """The request as the upstream gets it; 422 for what JSON cannot carry."""
    try:
        return json.dumps(request, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as error:
        message = f"the request holds text that is not Unicode: {error.reason}"
        raise HTTPException(422, message) from None
    except ValueError as error:  # NaN or Infinity
        raise HTTPException(422, f"the request holds a value JSON cannot carry: {error}") from None
    except RecursionError:
        raise HTTPException(422, "the request is nested too deeply") from None


def _failed(message: str) -> JSONResponse:
    return JSONResponse(error_body("UpstreamUnavailable", message), 502)


async def _relay_whole(
    answer: httpx.Response, memory: Memory, said: str, scope: Scope, then: Then | None = None
) -> Response:
    """The upstream's whole answer (its errors passed through); 502 when a 200 cannot be
    read, so a client never gets a body that is not JSON."""
    content = await answer.aread()
    await answer.aclose()
    try:
        completion = json.loads(content.decode("utf-8"))
    except ValueError:  # not UTF-8, or not JSON
        if answer.status_code == 200:
            return _failed("the upstream model answered something that is not JSON")
        text = content.decode("utf-8", "replace")[:500]
        return JSONResponse(error_body("UpstreamError", text), answer.status_code)
    if answer.status_code == 200 and said:
        await run_in_threadpool(_remember, memory, said, _reply_text(completion), scope)
        if then is not None:
            await then(_reply_text(completion))
    return Response(content, status_code=answer.status_code, media_type="application/json")


def _relay_stream(
    answer: httpx.Response, memory: Memory, said: str, scope: Scope, then: Then | None = None
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
            if then is not None:
                await then("".join(parts))
        if done is not None:
            yield (done + "\n\n").encode()

    return StreamingResponse(chunks(), media_type="text/event-stream")


def _remember(memory: Memory, said: str, reply: str, scope: Scope) -> None:
    """Keep the exchange. The client has the answer already, so a reply remem cannot keep
    (a model may send anything) loses its odd characters, and a failure is only logged."""
    messages = [{"role": "user", "content": said}]
    reply = reply.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if reply.strip():
        messages.append({"role": "assistant", "content": reply})
    try:
        memory.add(messages, user_id=scope.user_id, session_id=scope.session_id)
    except RememError as error:
        log.error("the chat exchange of %s was not remembered: %s", scope.user_id, error)


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


def _install_not_configured(app: FastAPI) -> None:
    @app.post(
        "/v1/chat/completions",
        tags=["chat"],
        response_model=None,
        responses={
            **documented(401, 403, 413, 421),
            503: {"model": ErrorBody, "description": "No chat model is configured."},
        },
    )
    def chat_completions(memory: Caller) -> JSONResponse:
        """The chat proxy, when no upstream model is configured: a 503 naming the settings."""
        return JSONResponse(error_body("not_configured", NOT_CONFIGURED), status_code=503)
