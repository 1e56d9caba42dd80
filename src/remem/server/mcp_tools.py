"""remem as an MCP server: eleven tools over the Python API, for any MCP client.

    remem mcp                      # stdio, for a client that starts it
    remem mcp --http --port 8766   # streamable HTTP on 127.0.0.1

Tools default to the server's user (`--user`), so a client need not pass scope ids.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

import remem
from remem.errors import RememError
from remem.memory import Memory
from remem.serialize import to_data

T = TypeVar("T")

INSTRUCTIONS = (
    "remem is the user's long-term memory. Call get_context (or search_memory) before"
    " answering anything that may depend on what the user said before; call add_memory"
    " for facts, preferences and decisions worth keeping. Each memory has an id; update or"
    " delete it by id, and memory_history shows how it changed."
)

UserId = Annotated[str | None, Field(description="whose memory; default: the server's user")]
AgentId = Annotated[str | None, Field(description="the agent the memory belongs to, if any")]
SessionId = Annotated[str | None, Field(description="a conversation or session id")]
MemoryId = Annotated[str, Field(description="a memory id (nt_...) or an episode id (ep_...)")]
Order = Annotated[
    Literal["oldest", "newest", "added"],
    Field(description="by when it happened, oldest or newest first; or in the order added"),
]

# (user_id, agent_id, session_id) as a call gives them -> the scope keyword arguments
ScopeOf = Callable[[str | None, str | None, str | None], dict[str, Any]]


def create_mcp_server(memory: Memory, user_id: str) -> MCPServer:
    """An MCP server whose tools act on `memory`, for `user_id` unless a call says otherwise."""
    server: MCPServer = MCPServer(
        name="remem", version=remem.__version__, instructions=INSTRUCTIONS
    )

    def scope(user: str | None, agent: str | None, session: str | None) -> dict[str, Any]:
        return {"user_id": user or user_id, "agent_id": agent, "session_id": session}

    _add_tool(server, memory, scope)
    _recall_tools(server, memory, scope)
    _memory_tools(server, memory, scope)
    _record_tools(server, memory)
    _person_tools(server, memory, scope)
    return server


def _add_tool(server: MCPServer, memory: Memory, scope: ScopeOf) -> None:
    """Remembering what the user said."""

    @server.tool()
    async def add_memory(
        content: Annotated[str, Field(description="what to remember, in the user's words")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        occurred_at: Annotated[
            str | None, Field(description="when it happened, ISO 8601; default: now")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="a JSON object kept with the memory")
        ] = None,
    ) -> dict[str, Any]:
        """Remember something the user said, read or decided. Returns the new memory ids."""
        call = partial(
            memory.add,
            content,
            occurred_at=occurred_at,
            metadata=metadata,
            **scope(user_id, agent_id, session_id),
        )
        return to_data(await _run(call))


def _recall_tools(server: MCPServer, memory: Memory, scope: ScopeOf) -> None:
    """Finding what a query needs."""

    @server.tool()
    async def search_memory(
        query: Annotated[str, Field(description="what to look for, as a question or keywords")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        limit: Annotated[int, Field(ge=1, le=100, description="how many memories")] = 10,
        include_superseded: Annotated[
            bool, Field(description="also facts a later fact made out of date")
        ] = False,
    ) -> list[dict[str, Any]]:
        """The memories most relevant to a query, best first, each with its id and date."""
        call = partial(
            memory.search,
            query,
            limit=limit,
            include_superseded=include_superseded,
            **scope(user_id, agent_id, session_id),
        )
        return [to_data(hit) for hit in await _run(call)]

    @server.tool()
    async def get_context(
        query: Annotated[str, Field(description="the user's latest message or the task")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        budget_tokens: Annotated[int, Field(ge=50, le=100_000)] = 1500,
    ) -> dict[str, Any]:
        """A ready prompt block: recent turns of the session and the relevant memories,
        dated, within a token budget. Put its `text` into your context."""
        call = partial(
            memory.context,
            query,
            budget_tokens=budget_tokens,
            **scope(user_id, agent_id, session_id),
        )
        return to_data(await _run(call))


def _memory_tools(server: MCPServer, memory: Memory, scope: ScopeOf) -> None:
    """Reading, listing, correcting and forgetting memories."""

    @server.tool()
    async def get_memory(memory_id: MemoryId) -> dict[str, Any]:
        """One memory by id, with its sources, version and dates."""
        return to_data(await _run(partial(memory.get, memory_id)))

    @server.tool()
    async def list_memories(
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Field(description="from the previous page")] = None,
        order: Order = "oldest",
    ) -> dict[str, Any]:
        """Memories in a scope, oldest first; pass the cursor back (same order) for more."""
        where = scope(user_id, agent_id, session_id)
        call = partial(memory.list, limit=limit, cursor=cursor, order=order, **where)
        return to_data(await _run(call))

    @server.tool()
    async def update_memory(
        memory_id: MemoryId,
        text: Annotated[str | None, Field(description="the corrected text")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="replaces it")] = None,
        expected_version: Annotated[
            int | None, Field(description="change only this version (from get_memory)")
        ] = None,
    ) -> dict[str, Any]:
        """Correct a memory; the previous version stays in its history."""
        update = partial(
            memory.update,
            memory_id,
            text=text,
            metadata=metadata,
            expected_version=expected_version,
        )
        return to_data(await _run(update))

    @server.tool()
    async def delete_memory(
        memory_id: MemoryId,
        purge: Annotated[
            bool, Field(description="erase it for good, history payloads too (the user asked)")
        ] = False,
    ) -> dict[str, Any]:
        """Forget a memory (history keeps a record that it was deleted); with purge, erase
        it so that nothing of its text is kept."""
        if purge:
            await _run(partial(memory.purge, memory_id))
            return {"purged": memory_id}
        await _run(partial(memory.delete, memory_id))
        return {"deleted": memory_id}


def _record_tools(server: MCPServer, memory: Memory) -> None:
    """What a memory's history and links say about it."""

    @server.tool()
    async def memory_history(memory_id: MemoryId) -> list[dict[str, Any]]:
        """Every change to a memory, oldest first, typed by what it did (add, update_text,
        update_metadata, supersede, evolve, link, delete, purge), by whom, when."""
        return [to_data(event) for event in await _run(partial(memory.history, memory_id))]

    @server.tool()
    async def memory_links(memory_id: MemoryId) -> list[dict[str, Any]]:
        """The links from and to a memory (source_id -> target_id): how related notes
        connect, with the relation, its weight and the reason it was made."""
        return [to_data(link) for link in await _run(partial(memory.links, memory_id))]


def _person_tools(server: MCPServer, memory: Memory, scope: ScopeOf) -> None:
    """Who the user is, and forms filled from what they said."""

    @server.tool()
    async def get_profile(user_id: UserId = None, agent_id: AgentId = None) -> dict[str, Any]:
        """What memory knows of the user: biography and status, attributes (home, work,
        contacts, family, preferences...) each with the memory ids it rests on, and the
        topics of their memory."""
        where = scope(user_id, agent_id, None)
        call = partial(memory.profile, user_id=where["user_id"], agent_id=agent_id)
        return to_data(await _run(call))

    @server.tool()
    async def fill_form(
        form: Annotated[
            dict[str, Any], Field(description="a JSON Schema (type object) of the fields")
        ],
        user_id: UserId = None,
        agent_id: AgentId = None,
        instructions: Annotated[
            str | None, Field(description="what the form is for, to guide the filling")
        ] = None,
    ) -> dict[str, Any]:
        """Fill a form from the user's memory: the filled object, and per field its value,
        confidence, the memory ids it rests on and why. Fields memory does not know stay
        empty; ask the user for those rather than guessing."""
        where = scope(user_id, agent_id, None)
        call = partial(
            memory.fill,
            form,
            user_id=where["user_id"],
            agent_id=agent_id,
            instructions=instructions,
        )
        return to_data(await _run(call))


async def _run(call: Callable[[], T]) -> T:
    """Run a blocking memory call off the event loop; remem's errors reach the model."""
    try:
        return await anyio.to_thread.run_sync(call)
    except RememError as error:
        raise ToolError(str(error)) from error
