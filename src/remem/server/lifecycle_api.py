"""Pins, archive, the sweep of expired memories and consolidation over HTTP, tenant-scoped
like the rest of the API: `POST`/`DELETE /v1/memories/{id}/pin`, `.../archive`,
`POST /v1/expired/sweep`, `PUT /v1/default-expiry`, `POST /v1/consolidate`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import FastAPI, Path, Response
from pydantic import BaseModel, Field

from remem.inputs import MAX_ID_LENGTH
from remem.lifecycle.retention import LONGEST
from remem.server.auth import Caller
from remem.server.errors import documented
from remem.server.openapi import WRITE
from remem.server.schemas import FAR_DAYS_LEFT_OUT, NO_NUL, ScopeFields, ScopeId, Strict
from remem.types import Consolidation, Note

ItemId = Annotated[str, Path(max_length=MAX_ID_LENGTH, pattern=NO_NUL)]
ONE = WRITE | documented(404)


class Swept(BaseModel):
    purged: int


class DefaultExpiryRequest(ScopeFields):
    """How long after being added the scope's notes expire (null: no default)."""

    after_seconds: float | None = Field(
        gt=0,
        le=LONGEST.total_seconds(),
        description="seconds after being added; null clears the scope's default",
    )


class ConsolidateRequest(Strict):
    """Whose near-duplicate memories to merge (every owner of the tenant when no id is
    given), and how."""

    user_id: ScopeId = None
    agent_id: ScopeId = None
    session_id: ScopeId = None
    since: str | None = Field(
        default=None,
        max_length=64,
        description="compare only memories added or changed since then (ISO 8601)",
        json_schema_extra={"format": "date-time", "pattern": FAR_DAYS_LEFT_OUT},
    )
    dry_run: bool = Field(default=False, description="report what would merge, merge nothing")
    model: Literal["auto", "never"] = Field(
        default="auto", description="auto: a configured model confirms each merge"
    )


def install_lifecycle_routes(app: FastAPI) -> None:
    """Pinning, archiving, and purging expired memories."""

    @app.post("/v1/memories/{memory_id}/pin", tags=["memories"], responses=ONE)
    def pin(memory_id: ItemId, memory: Caller) -> Note:
        """Pin a memory: it never decays and is always eligible for context."""
        return memory.pin(memory_id)

    @app.delete("/v1/memories/{memory_id}/pin", tags=["memories"], responses=ONE)
    def unpin(memory_id: ItemId, memory: Caller) -> Note:
        """Unpin a memory."""
        return memory.unpin(memory_id)

    @app.post("/v1/memories/{memory_id}/archive", tags=["memories"], responses=ONE)
    def archive(memory_id: ItemId, memory: Caller) -> Note:
        """Archive a memory: out of search, context, lists and the profile, kept (listed
        with `GET /v1/memories?archived=true`)."""
        return memory.archive(memory_id)

    @app.delete("/v1/memories/{memory_id}/archive", tags=["memories"], responses=ONE)
    def unarchive(memory_id: ItemId, memory: Caller) -> Note:
        """Bring an archived memory back."""
        return memory.unarchive(memory_id)

    @app.post("/v1/expired/sweep", tags=["memories"], responses=WRITE)
    def sweep_expired(memory: Caller) -> Swept:
        """Purge every memory of this tenant whose `expires_at` has passed; answer how many."""
        return Swept(purged=memory.sweep_expired())

    @app.put("/v1/default-expiry", status_code=204, tags=["memories"], responses=WRITE)
    def set_default_expiry(body: DefaultExpiryRequest, memory: Caller) -> Response:
        """Make the notes added to this scope from now on expire that long after being
        added (unless an add gives `expires_at`); the most specific scope's default wins."""
        memory.set_default_expiry(body.after_seconds, **body.scope())
        return Response(status_code=204)

    @app.post("/v1/consolidate", tags=["memories"], responses=WRITE)
    def consolidate(body: ConsolidateRequest, memory: Caller) -> Consolidation:
        """Merge near-duplicate memories of each owner into one (the oldest survives with
        all their sources; the others' ids resolve to it; history keeps every version)."""
        return memory.consolidate(
            user_id=body.user_id,
            agent_id=body.agent_id,
            session_id=body.session_id,
            since=body.since,
            dry_run=body.dry_run,
            model=body.model,
        )
