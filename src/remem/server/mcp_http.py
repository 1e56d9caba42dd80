"""MCP over streamable HTTP at /mcp, behind the REST API's keys.

    install_mcp(app, user_id="me")   # what create_app does for `remem serve`
    mcp_app(memory, "me", open_without_keys=True)   # what `remem mcp --http` serves

Every request is authenticated exactly as a REST request (`remem.server.auth.caller`): a
bearer key names a tenant and the tools see that tenant's memory only; a keyless loopback
server serves the local user, and only requests addressed to this machine. The SDK's
session manager runs stateless, so each request stands alone: its key is checked on every
call, and no session outlives a revoked key or carries one tenant's calls for another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from remem.memory import Memory
from remem.server.auth import caller
from remem.server.errors import error_body
from remem.server.limits import BodyLimit, BodyTooLargeError, too_large
from remem.server.mcp_tools import create_mcp_server

PATH = "/mcp"
# where the caller's memory travels from the authentication to the tools: the ASGI scope,
# which the SDK hands to a tool as its request
MEMORY_KEY = "remem.memory"
# `caller` already checks Host and Origin where no key guards the server; the SDK's own
# check knows only loopback names and would refuse a keyed server's public name
NO_SDK_HOST_CHECK = TransportSecuritySettings(enable_dns_rebinding_protection=False)
ALLOW = {"Allow": "POST"}
MAX_BODY_BYTES = 4 * 1024 * 1024  # as `remem serve`: a tool call is small


def install_mcp(app: Starlette, user_id: str = "me") -> None:
    """Serve remem's MCP tools at /mcp of `app` (whose `state` holds `memory` and
    `open_without_keys`, as `create_app` sets them), started and stopped with the app."""
    endpoint = AuthenticatedMCP(create_mcp_server(memory_of_request, user_id))
    route = Route(PATH, endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    app.router.routes.append(route)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        async with outer(served) as state, endpoint.running():
            yield state

    app.router.lifespan_context = lifespan


def mcp_app(
    memory: Memory, user_id: str, *, open_without_keys: bool, max_body_bytes: int = MAX_BODY_BYTES
) -> Starlette:
    """An app serving only the MCP tools at /mcp, authenticated like `remem serve`, and
    like it refusing a body over `max_body_bytes` before reading it."""
    app = Starlette()
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.state.memory = memory
    app.state.open_without_keys = open_without_keys
    install_mcp(app, user_id)
    return app


def memory_of_request(ctx: Context) -> Memory:
    """The memory a tool call may act on: the one its HTTP request was authenticated for."""
    request = ctx.request_context.request
    memory = getattr(request, "scope", {}).get(MEMORY_KEY)
    if not isinstance(memory, Memory):  # never fall back to the whole store
        raise ToolError("this request was not authenticated")
    return memory


class AuthenticatedMCP:
    """The /mcp endpoint: authenticate a request, then hand it to the SDK."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self.manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's session manager, for as long as the app runs (a fresh one each time:
        one can run only once)."""
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=NO_SDK_HOST_CHECK,
        )
        manager = self.server.session_manager
        async with manager.run():
            self.manager = manager
            try:
                yield
            finally:
                self.manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self.manager
        if manager is None:
            refused = HTTPException(503, "the MCP endpoint is not running (app lifespan off)")
            await _refusal(refused)(scope, receive, send)
            return
        try:
            # a key lookup reads the store: off the event loop
            memory = await anyio.to_thread.run_sync(caller, Request(scope))
            if scope["method"] == "GET":  # stateless: no stream would ever carry a message
                raise HTTPException(405, "this MCP server offers no SSE stream: POST", ALLOW)
            # read here, where a body over the limit can still be answered with a 413 (the
            # SDK would answer 500); it reads the whole body anyway
            receive = await _buffered(receive)
        except HTTPException as refused:
            await _refusal(refused)(scope, receive, send)
            return
        except BodyTooLargeError as error:
            await too_large(error.limit)(scope, receive, send)
            return
        scope[MEMORY_KEY] = memory
        await manager.handle_request(scope, receive, send)


async def _buffered(receive: Receive) -> Receive:
    """`receive`, with the request's whole body read first (a disconnect as it comes)."""
    chunks: list[bytes] = []
    message = await receive()
    while message["type"] == "http.request" and message.get("more_body", False):
        chunks.append(message.get("body", b""))
        message = await receive()
    if message["type"] == "http.request":
        chunks.append(message.get("body", b""))
        message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
    first: Message | None = message

    async def replay() -> Message:
        nonlocal first
        if first is None:
            return await receive()
        message, first = first, None
        return message

    return replay


def _refusal(error: HTTPException) -> JSONResponse:
    """The JSON error REST answers with, for a request MCP will not serve."""
    kind = HTTPStatus(error.status_code).phrase.replace(" ", "")
    return JSONResponse(
        error_body(kind, str(error.detail)),
        status_code=error.status_code,
        headers=dict(error.headers or {}),
    )
