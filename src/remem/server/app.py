"""The REST API: the Python API over HTTP, one tenant per API key.

    app = create_app(memory, open_without_keys=True)   # what `remem serve` runs

Handlers are plain functions (FastAPI runs them in its thread pool), because the store
and the embedder are synchronous and already thread-safe.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Path, Query, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

import remem
from remem.errors import ConflictError
from remem.inputs import MAX_ID_LENGTH, MAX_LIMIT
from remem.memory import Memory
from remem.server import errors
from remem.server.auth import Caller
from remem.server.errors import documented
from remem.server.import_jobs_api import install_import_jobs_routes
from remem.server.ingest_api import install_ingest_routes
from remem.server.lifecycle_api import install_lifecycle_routes
from remem.server.limits import BodyLimit
from remem.server.mcp_http import install_mcp
from remem.server.openapi import ADDED, FORGET, NDJSON, READ, WRITE
from remem.server.profile_api import install_profile_routes
from remem.server.proxy import Upstream, install_proxy
from remem.server.schemas import (
    CURSOR,
    NO_NUL,
    AddRequest,
    ContextRequest,
    Deleted,
    ScopeFields,
    SearchRequest,
    UpdateRequest,
    scope_parameter,
)
from remem.server.thoughts_api import install_thought_routes
from remem.server.ui import install_ui
from remem.types import AddResult, Context, Episode, Event, Hit, Link, Note, Page

MAX_BODY_BYTES = 4 * 1024 * 1024
# file uploads (the API's and the web UI's): a chat export is often tens of megabytes
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
UPLOAD_PATHS = ("/v1/ingest", "/v1/import", "/import")


def create_app(
    memory: Memory,
    *,
    open_without_keys: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    upstream: Upstream | None = None,
    mcp_user: str = "me",
) -> FastAPI:
    """The API over `memory`. With `open_without_keys` (a loopback-only server) requests
    without a key act as the local user while no API key exists; otherwise every request
    needs a key. With an `upstream` chat model it also serves the chat proxy. MCP clients
    get the same tenants at /mcp; their tools act for `mcp_user` when a call names none."""
    app = FastAPI(
        title="remem",
        version=remem.__version__,
        description="Long-term memory for people and the agents that act for them.",
    )
    app.state.memory = memory
    app.state.open_without_keys = open_without_keys
    uploads = dict.fromkeys(UPLOAD_PATHS, max_upload_bytes)
    app.add_middleware(BodyLimit, limit=max_body_bytes, uploads=uploads)
    errors.install(app)
    _service_routes(app)
    _remember_and_recall_routes(app)
    _scope_routes(app)
    _one_memory_routes(app)
    _record_routes(app)
    install_profile_routes(app)
    install_thought_routes(app)
    install_lifecycle_routes(app)
    install_ingest_routes(app)
    install_import_jobs_routes(app)
    install_proxy(app, upstream)  # without one, its route says what to set
    install_mcp(app, mcp_user)  # MCP at /mcp, behind the same keys; tools default to mcp_user
    install_ui(app)  # the web UI at /, after the API so /v1 routes match first
    return app


ScopeQuery = Annotated[str | None, Query(max_length=256, pattern=NO_NUL)]
# DELETE /v1/memories documents these three as one `scope` parameter that needs one of them
HiddenScope = Annotated[str | None, Query(max_length=256, pattern=NO_NUL, include_in_schema=False)]
ItemId = Annotated[str, Path(max_length=MAX_ID_LENGTH, pattern=NO_NUL)]
Purge = Annotated[
    bool, Query(description="Erase instead of forgetting: text, vectors and history payloads.")
]
ETAG = re.compile(r'\s*"(\d{1,18})"\s*')  # strong only: RFC 9110 If-Match
# a plain string (empty: not sent), so the document offers no `null` a client could send
IfMatch = Annotated[
    str,
    Header(
        max_length=256,
        description='The ETag a GET gave (`"3"`), or `*`: change only that version (else 412).',
    ),
]


def etag(version: int) -> str:
    """A memory's version as a strong HTTP entity tag."""
    return f'"{version}"'


def versions_of(if_match: str) -> set[int] | None:
    """The versions an If-Match header names (RFC 9110 13.1.1: a list of ETags, or `*` for
    any version: None); what is not one of our ETags names none."""
    if if_match.strip() == "*":
        return None
    return {int(found.group(1)) for tag in if_match.split(",") if (found := ETAG.fullmatch(tag))}


def _service_routes(app: FastAPI) -> None:
    """What a load balancer or supervisor asks."""

    @app.get("/healthz", tags=["service"], responses=documented(413))
    def healthz() -> dict[str, str]:
        """The server is up."""
        return {"status": "ok"}


def _remember_and_recall_routes(app: FastAPI) -> None:
    """Adding memories, and finding the ones a query needs."""

    @app.post("/v1/memories", status_code=201, tags=["memories"], responses=WRITE | ADDED)
    def add(body: AddRequest, memory: Caller) -> AddResult:
        """Remember a text or chat messages; the episodes are durable when this returns."""
        content: Any = body.content
        if isinstance(content, list):
            content = [message.model_dump(exclude_none=True) for message in content]
        return memory.add(
            content,
            occurred_at=body.occurred_at,
            metadata=body.metadata,
            expires_at=body.expires_at,
            **body.scope(),
        )

    @app.post("/v1/search", tags=["memories"], responses=WRITE)
    def search(body: SearchRequest, memory: Caller) -> list[Hit]:
        """The memories most relevant to a query, best first."""
        return memory.search(
            body.query,
            limit=body.limit,
            filters=body.filters,
            include_superseded=body.include_superseded,
            min_score=body.min_score,
            explain=body.explain,
            **body.scope(),
        )

    @app.post("/v1/context", tags=["memories"], responses=WRITE)
    def context(body: ContextRequest, memory: Caller) -> Context:
        """A dated prompt block of recent turns and relevant memories within a token budget."""
        return memory.context(
            body.query,
            budget_tokens=body.budget_tokens,
            recent_turns=body.recent_turns,
            memories=body.memories,
            profile_share=body.profile_share,
            min_score=body.min_score,
            min_top_score=body.min_top_score,
            **body.scope(),
        )


def _scope_routes(app: FastAPI) -> None:
    """Listing and forgetting the memories of a scope."""

    @app.get("/v1/memories", tags=["memories"], responses=READ)
    def list_memories(
        memory: Caller,
        user_id: ScopeQuery = None,
        agent_id: ScopeQuery = None,
        session_id: ScopeQuery = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        cursor: Annotated[str | None, Query(pattern=CURSOR)] = None,
        order: Annotated[
            Literal["oldest", "newest", "added"],
            Query(description="by occurred_at, oldest or newest first; or in the order added"),
        ] = "oldest",
        archived: Annotated[bool, Query(description="list the archived memories")] = False,
    ) -> Page:
        """Live memories in a scope, oldest first (see `order`); pass `cursor` back, with
        the same order, for the next page."""
        return memory.list(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            limit=limit,
            cursor=cursor,
            order=order,
            archived=archived,
        )

    @app.delete(
        "/v1/memories",
        tags=["memories"],
        responses=FORGET,
        openapi_extra={"parameters": [scope_parameter()]},
    )
    def delete_all(
        memory: Caller,
        user_id: HiddenScope = None,
        agent_id: HiddenScope = None,
        session_id: HiddenScope = None,
        purge: Purge = False,
    ) -> Deleted:
        """Forget every memory in a scope (at least one scope id is required); with
        `purge=true`, erase every episode and memory of it, deleted ones too, and answer
        how many records went."""
        scope = ScopeFields(user_id=user_id, agent_id=agent_id, session_id=session_id)
        if purge:
            return Deleted(deleted=memory.purge_all(**scope.scope()))
        return Deleted(deleted=memory.delete_all(**scope.scope()))


def _one_memory_routes(app: FastAPI) -> None:
    """Reading, correcting and forgetting one memory by id."""

    @app.get("/v1/memories/{memory_id}", tags=["memories"], responses=READ | documented(404))
    def get(memory_id: ItemId, memory: Caller, response: Response) -> Note:
        """One memory by id; its `ETag` is its version, for `If-Match` on PATCH."""
        note = memory.get(memory_id)
        response.headers["ETag"] = etag(note.version)
        return note

    @app.patch(
        "/v1/memories/{memory_id}",
        tags=["memories"],
        responses=WRITE | documented(404, 409, 412),
    )
    def update(
        memory_id: ItemId,
        body: UpdateRequest,
        memory: Caller,
        response: Response,
        if_match: IfMatch = "",
    ) -> Note:
        """Change a memory's text and/or metadata; the old version stays in history. With
        `If-Match` (an ETag from GET) or `expected_version`, only if the memory is still at
        that version: else 412 or 409, and nothing changes."""
        expected, named = body.expected_version, versions_of(if_match) if if_match else None
        if named is not None:
            current = memory.get(memory_id).version  # a missing memory is still a 404
            if current not in named:
                raise HTTPException(412, f"If-Match {if_match!r} does not name version {current}")
            expected = current  # (and still current when the change is written, or 412)
        try:
            note = memory.update(
                memory_id,
                text=body.text,
                metadata=body.metadata,
                expected_version=expected,
                expires_at=body.expires_at,
            )
        except ConflictError as conflict:
            if named is None:  # (the body's expected_version: 409)
                raise
            raise HTTPException(412, str(conflict)) from conflict
        response.headers["ETag"] = etag(note.version)
        return note

    @app.delete(
        "/v1/memories/{memory_id}",
        status_code=204,
        tags=["memories"],
        responses=FORGET | documented(404, 409),
    )
    def delete(memory_id: ItemId, memory: Caller, purge: Purge = False) -> Response:
        """Forget one memory (or, given an episode id, an episode and its memories); with
        `purge=true`, erase it, deleted or not, history payloads included."""
        if purge:
            memory.purge(memory_id)
        else:
            memory.delete(memory_id)
        return Response(status_code=204)


def _record_routes(app: FastAPI) -> None:
    """What remem keeps beside the memories: their history, the episodes, the export."""

    @app.get("/v1/memories/{item_id}/history", tags=["memories"], responses=READ | documented(404))
    def history(item_id: ItemId, memory: Caller) -> list[Event]:
        """Every change to a memory or episode, oldest first."""
        return memory.history(item_id)

    @app.get("/v1/memories/{memory_id}/links", tags=["memories"], responses=READ | documented(404))
    def links(memory_id: ItemId, memory: Caller) -> list[Link]:
        """The links from and to a memory: relation, weight, the reason, when made."""
        return memory.links(memory_id)

    @app.get("/v1/episodes/{episode_id}", tags=["memories"], responses=READ | documented(404))
    def episode(episode_id: ItemId, memory: Caller) -> Episode:
        """One episode: a raw input, verbatim."""
        return memory.episode(episode_id)

    @app.get(
        "/v1/export",
        tags=["memories"],
        response_class=FileResponse,
        responses=NDJSON | documented(401, 413, 421, 503),
    )
    def export(memory: Caller) -> FileResponse:
        """Everything of the caller's tenant as remem's JSONL export (history included)."""
        handle, path = tempfile.mkstemp(prefix="remem-export-", suffix=".jsonl")
        os.close(handle)
        count = memory.export(path)
        return FileResponse(
            path,
            media_type="application/x-ndjson",
            filename="remem-export.jsonl",
            background=BackgroundTask(os.unlink, path),
            headers={"X-Remem-Records": str(count)},  # what Memory.export returns
        )
