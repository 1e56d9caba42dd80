"""remem as an MCP server: sixteen tools over the Python API, for any MCP client.

    remem mcp                      # stdio, for a client that starts it
    remem mcp --http --port 8766   # streamable HTTP at /mcp
    remem serve                    # also serves these tools at /mcp, behind its API keys

Tools default to the server's user (`--user`), so a client need not pass scope ids. Over
HTTP behind keys, each request's memory is its key's tenant (see `remem.server.mcp_http`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

import remem
from remem import ids
from remem.errors import RememError
from remem.memory import Memory
from remem.serialize import to_data

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = (
    "remem is the user's long-term memory. Call get_context (or search_memory) before"
    " answering anything that may depend on what the user said before; call add_memory"
    " for facts, preferences and decisions worth keeping. Each memory has an id (nt_...)"
    " and comes from episodes (ep_..., what was said verbatim); update or delete a memory"
    " by id, and memory_history shows how it changed. After answering, call"
    " remember_conclusion for a conclusion you reached that is worth keeping, with the ids"
    " of the memories it rests on: it is kept, marked inferred, while they hold."
)
SCOPE_FIELDS = ("user_id", "agent_id", "session_id")

UserId = Annotated[str | None, Field(description="whose memory; default: the server's user")]
AgentId = Annotated[str | None, Field(description="the agent the memory belongs to, if any")]
SessionId = Annotated[str | None, Field(description="a conversation or session id")]
Explain = Annotated[bool, Field(description="give each memory its score parts: why it ranked")]
NoteId = Annotated[
    str, Field(description="a memory id (nt_...), as search_memory and list_memories give")
]
ItemId = Annotated[
    str,
    Field(description="a memory id (nt_...) or an episode id (ep_..., a memory's source)"),
]
Order = Annotated[
    Literal["oldest", "newest", "added"],
    Field(description="by when it happened, oldest or newest first; or in the order added"),
]

# (user_id, agent_id, session_id) as a call gives them -> the scope keyword arguments
ScopeOf = Callable[[str | None, str | None, str | None], dict[str, Any]]
# the memory a tool call acts on: one memory, or the calling key's tenant (see mcp_http)
MemoryOf = Callable[[Context], Memory]


def create_mcp_server(memory: Memory | MemoryOf, user_id: str) -> MCPServer:
    """An MCP server whose tools act on `memory` (or on the memory `memory(ctx)` gives for
    each call), for `user_id` unless a call says otherwise."""
    server: MCPServer = MCPServer(
        name="remem", version=remem.__version__, instructions=INSTRUCTIONS
    )
    memory_of: MemoryOf = (lambda ctx: memory) if isinstance(memory, Memory) else memory

    def scope(user: str | None, agent: str | None, session: str | None) -> dict[str, Any]:
        return {"user_id": user or user_id, "agent_id": agent, "session_id": session}

    _add_tool(server, memory_of, scope)
    _conclusion_tool(server, memory_of, scope)
    _recall_tools(server, memory_of, scope)
    _memory_tools(server, memory_of)
    _scope_tools(server, memory_of, scope)
    _record_tools(server, memory_of)
    _lifecycle_tools(server, memory_of)
    _person_tools(server, memory_of, scope)
    return server


def _tool(server: MCPServer) -> Callable[[F], F]:
    """Register a tool, its docstring dedented into the description the model reads."""

    def register(function: F) -> F:
        server.add_tool(function, description=inspect.cleandoc(function.__doc__ or ""))
        return function

    return register


def _add_tool(server: MCPServer, memory_of: MemoryOf, scope: ScopeOf) -> None:
    """Remembering what the user said."""

    @_tool(server)
    async def add_memory(
        ctx: Context,
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
        expires_at: Annotated[
            str | None, Field(description="when to forget it, ISO 8601; default: never")
        ] = None,
    ) -> dict[str, Any]:
        """Remember something the user said, read or decided. Returns the new memory ids
        (note_ids) and the ids of the verbatim episodes they came from (episode_ids)."""
        call = partial(
            memory_of(ctx).add,
            content,
            occurred_at=occurred_at,
            metadata=metadata,
            expires_at=expires_at,
            **scope(user_id, agent_id, session_id),
        )
        return to_data(await _run(call))


def _conclusion_tool(server: MCPServer, memory_of: MemoryOf, scope: ScopeOf) -> None:
    """Remembering what the agent concluded (Think-in-Memory)."""

    @_tool(server)
    async def remember_conclusion(
        ctx: Context,
        text: Annotated[
            str, Field(description="the conclusion, in a sentence or two, about the user")
        ],
        evidence_ids: Annotated[
            list[str],
            Field(
                min_length=1,
                description="ids of the memories (nt_...) it rests on, from search_memory"
                " or get_context",
            ),
        ],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """Remember a conclusion you reached from the user's memories (e.g. after answering),
        so it need not be worked out again. It is marked inferred in get_context, merged
        with the same conclusion said before, and dropped when a memory it rests on is
        corrected or forgotten. Returns the conclusion as a memory (kind "thought")."""
        asked = scope(user_id, agent_id, session_id)
        call = partial(memory_of(ctx).think, text, evidence_ids=evidence_ids, **asked)
        return _unscoped(to_data(await _run(call)), asked)


def _recall_tools(server: MCPServer, memory_of: MemoryOf, scope: ScopeOf) -> None:
    """Finding what a query needs."""

    @_tool(server)
    async def search_memory(
        ctx: Context,
        query: Annotated[str, Field(description="what to look for, as a question or keywords")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        limit: Annotated[
            int, Field(ge=1, le=100, description="at most this many memories (1-100)")
        ] = 10,
        include_superseded: Annotated[
            bool, Field(description="also facts a later fact made out of date")
        ] = False,
        min_score: Annotated[
            float,
            Field(ge=0, le=1, description="leave out memories less relevant than this (0-1)"),
        ] = 0.0,
        explain: Explain = False,
    ) -> list[dict[str, Any]]:
        """The memories most relevant to a query, best first: each with its id, text,
        score, date and the episode ids it came from (with explain, its score parts). A
        hit names its user, agent or session only where it differs from the ones asked for."""
        asked = scope(user_id, agent_id, session_id)
        call = partial(
            memory_of(ctx).search,
            query,
            limit=limit,
            include_superseded=include_superseded,
            min_score=min_score,
            explain=explain,
            **asked,
        )
        return [_unscoped(to_data(hit), asked) for hit in await _run(call)]

    @_tool(server)
    async def get_context(
        ctx: Context,
        query: Annotated[str, Field(description="the user's latest message or the task")],
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        budget_tokens: Annotated[
            int,
            Field(ge=50, le=100_000, description="the most tokens the text may take (50-100000)"),
        ] = 1500,
    ) -> dict[str, Any]:
        """A ready prompt block: who the user is, recent turns of the session and the
        relevant memories, dated, within a token budget. Put its `text` into your
        context."""
        call = partial(
            memory_of(ctx).context,
            query,
            budget_tokens=budget_tokens,
            **scope(user_id, agent_id, session_id),
        )
        return to_data(await _run(call))


def _memory_tools(server: MCPServer, memory_of: MemoryOf) -> None:
    """Reading, correcting and forgetting one memory."""

    @_tool(server)
    async def get_memory(ctx: Context, memory_id: ItemId) -> dict[str, Any]:
        """One memory by id, with its episode ids, version and dates; or, given an episode
        id, that episode: what was said, verbatim, by whom and when."""
        memory = memory_of(ctx)
        if ids.kind_of(memory_id) == ids.EPISODE:
            return to_data(await _run(partial(memory.episode, memory_id)))
        return to_data(await _run(partial(memory.get, memory_id)))

    @_tool(server)
    async def update_memory(
        ctx: Context,
        memory_id: NoteId,
        text: Annotated[str | None, Field(description="the corrected text")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="a JSON object that replaces it")
        ] = None,
        expected_version: Annotated[
            int | None, Field(description="change only this version (from get_memory)")
        ] = None,
        expires_at: Annotated[
            str | None, Field(description='when to forget it (ISO 8601), or "never"')
        ] = None,
    ) -> dict[str, Any]:
        """Correct a memory's text, replace its metadata and/or set when it expires; the
        previous version stays in its history."""
        update = partial(
            memory_of(ctx).update,
            memory_id,
            text=text,
            metadata=metadata,
            expected_version=expected_version,
            expires_at=expires_at,
        )
        return to_data(await _run(update))

    @_tool(server)
    async def delete_memory(
        ctx: Context,
        memory_id: ItemId,
        purge: Annotated[
            bool, Field(description="erase it for good, history payloads too (the user asked)")
        ] = False,
    ) -> dict[str, Any]:
        """Forget a memory (with the episodes only it came from), or an episode with the
        memories made from it; history keeps a record that it was deleted. With purge,
        erase it so that nothing of its text is kept."""
        memory = memory_of(ctx)
        if purge:
            await _run(partial(memory.purge, memory_id))
            return {"purged": memory_id}
        await _run(partial(memory.delete, memory_id))
        return {"deleted": memory_id}


def _scope_tools(server: MCPServer, memory_of: MemoryOf, scope: ScopeOf) -> None:
    """Listing the memories of a scope."""

    @_tool(server)
    async def list_memories(
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        limit: Annotated[
            int, Field(ge=1, le=1000, description="at most this many per page (1-1000)")
        ] = 50,
        cursor: Annotated[
            str | None, Field(description="the cursor the previous page gave, for the next")
        ] = None,
        order: Order = "oldest",
        archived: Annotated[bool, Field(description="list the archived memories")] = False,
    ) -> dict[str, Any]:
        """Memories in a scope, oldest first; pass the cursor back (same order) for more.
        A memory names its user, agent or session only where it differs from the ones
        asked for."""
        asked = scope(user_id, agent_id, session_id)
        call = partial(
            memory_of(ctx).list, limit=limit, cursor=cursor, order=order, archived=archived, **asked
        )
        page = to_data(await _run(call))
        page["items"] = [_unscoped(note, asked) for note in page["items"]]
        return page


def _lifecycle_tools(server: MCPServer, memory_of: MemoryOf) -> None:
    """Pinning and archiving a memory."""

    @_tool(server)
    async def pin_memory(ctx: Context, memory_id: NoteId) -> dict[str, Any]:
        """Pin a memory the user wants kept in view: it never fades and is always eligible
        for get_context."""
        return to_data(await _run(partial(memory_of(ctx).pin, memory_id)))

    @_tool(server)
    async def unpin_memory(ctx: Context, memory_id: NoteId) -> dict[str, Any]:
        """Unpin a memory: it is ranked like any other again."""
        return to_data(await _run(partial(memory_of(ctx).unpin, memory_id)))

    @_tool(server)
    async def archive_memory(ctx: Context, memory_id: NoteId) -> dict[str, Any]:
        """Archive a memory: it leaves search and context but is kept (list_memories with
        archived lists it; unarchive_memory brings it back)."""
        return to_data(await _run(partial(memory_of(ctx).archive, memory_id)))

    @_tool(server)
    async def unarchive_memory(ctx: Context, memory_id: NoteId) -> dict[str, Any]:
        """Bring an archived memory back into search and context."""
        return to_data(await _run(partial(memory_of(ctx).unarchive, memory_id)))


def _record_tools(server: MCPServer, memory_of: MemoryOf) -> None:
    """What a memory's history and links say about it."""

    @_tool(server)
    async def memory_history(ctx: Context, memory_id: ItemId) -> list[dict[str, Any]]:
        """Every change to a memory or episode, oldest first, typed by what it did (add,
        update_text, update_metadata, supersede, evolve, link, delete, purge), by whom,
        when."""
        events = await _run(partial(memory_of(ctx).history, memory_id))
        return [to_data(event) for event in events]

    @_tool(server)
    async def memory_links(ctx: Context, memory_id: NoteId) -> list[dict[str, Any]]:
        """The links from and to a memory (source_id -> target_id): how related memories
        connect, with the relation, its weight and the reason it was made."""
        links = await _run(partial(memory_of(ctx).links, memory_id))
        return [to_data(link) for link in links]


def _person_tools(server: MCPServer, memory_of: MemoryOf, scope: ScopeOf) -> None:
    """Who the user is, and forms filled from what they said."""

    @_tool(server)
    async def get_profile(
        ctx: Context, user_id: UserId = None, agent_id: AgentId = None
    ) -> dict[str, Any]:
        """What memory knows of the user: biography and status, attributes (home, work,
        contacts, family, preferences...) each with the memory ids it rests on, and the
        topics of their memory."""
        where = scope(user_id, agent_id, None)
        call = partial(memory_of(ctx).profile, user_id=where["user_id"], agent_id=agent_id)
        return to_data(await _run(call))

    @_tool(server)
    async def fill_form(
        ctx: Context,
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
            memory_of(ctx).fill,
            form,
            user_id=where["user_id"],
            agent_id=agent_id,
            instructions=instructions,
        )
        return to_data(await _run(call))


def _unscoped(record: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    """A hit or memory without the scope the call already named (tokens matter to the
    model): only scope ids that say something new stay, empty metadata goes, and so does
    a hit's explanation when none was asked for."""
    scope = record.pop("scope", None) or {}
    for name in SCOPE_FIELDS:
        if scope.get(name) and scope[name] != asked.get(name):
            record[name] = scope[name]
    for empty in ("metadata", "explanation"):
        if not record.get(empty):
            record.pop(empty, None)
    if record.get("thread") in (None, scope.get("session_id")):
        record.pop("thread", None)  # the session already says which conversation
    return record


async def _run(call: Callable[[], T]) -> T:
    """Run a blocking memory call off the event loop; remem's errors reach the model."""
    try:
        return await anyio.to_thread.run_sync(call)
    except RememError as error:
        raise ToolError(str(error)) from error
