"""Conclusions over HTTP: `POST /v1/thoughts` (`Memory.think`), tenant-scoped like the rest
of the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI
from pydantic import Field

from remem.inputs import MAX_EVIDENCE, MAX_ID_LENGTH, MAX_THOUGHT_CHARS
from remem.server.auth import Caller
from remem.server.errors import documented
from remem.server.openapi import WRITE
from remem.server.schemas import FAR_DAYS_LEFT_OUT, NO_NUL, SOME_TEXT, Metadata, ScopeFields
from remem.types import Note

ThoughtText = Annotated[str, Field(min_length=1, max_length=MAX_THOUGHT_CHARS, pattern=SOME_TEXT)]
EvidenceId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_NUL)]


class ThinkRequest(ScopeFields):
    """A conclusion to remember, and the memories it rests on."""

    text: ThoughtText = Field(description="the conclusion, in a sentence or a paragraph")
    evidence_ids: list[EvidenceId] = Field(
        min_length=1,
        max_length=MAX_EVIDENCE,
        description="ids of the live memories (nt_...) of the same owner it rests on",
    )
    occurred_at: str | None = Field(
        default=None,
        max_length=64,
        description="when it was concluded (ISO 8601); default: now",
        json_schema_extra={"format": "date-time", "pattern": FAR_DAYS_LEFT_OUT},
    )
    metadata: Metadata | None = None


def install_thought_routes(app: FastAPI) -> None:
    """Remembering conclusions."""

    @app.post("/v1/thoughts", status_code=201, tags=["memories"], responses=WRITE | documented(404))
    def think(body: ThinkRequest, memory: Caller) -> Note:
        """Remember a conclusion (a memory of kind `thought`) resting on other memories; a
        repeat of a live conclusion is merged into it (the answer is that one). It leaves
        search when a memory it rests on is superseded, deleted or purged."""
        return memory.think(
            body.text,
            evidence_ids=body.evidence_ids,
            occurred_at=body.occurred_at,
            metadata=body.metadata,
            **body.scope(),
        )
