"""Pins, archive and the sweep of expired memories over HTTP, tenant-scoped like the rest
of the API: `POST`/`DELETE /v1/memories/{id}/pin`, `.../archive`, `POST /v1/expired/sweep`."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Path
from pydantic import BaseModel

from remem.inputs import MAX_ID_LENGTH
from remem.server.auth import Caller
from remem.server.errors import documented
from remem.server.openapi import WRITE
from remem.server.schemas import NO_NUL
from remem.types import Note

ItemId = Annotated[str, Path(max_length=MAX_ID_LENGTH, pattern=NO_NUL)]
ONE = WRITE | documented(404)


class Swept(BaseModel):
    purged: int


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
