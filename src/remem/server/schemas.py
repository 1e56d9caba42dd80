"""Request bodies of the REST API. Responses are remem's own records (dataclasses).

Every model forbids unknown fields, so a misspelt field is an error naming it rather
than a silently ignored value.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from remem.inputs import MAX_BUDGET, MAX_LIMIT, MIN_BUDGET

ScopeId = Annotated[str | None, Field(default=None, max_length=256)]
Text = Annotated[str, Field(min_length=1, max_length=100_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeFields(Strict):
    """Whose memory: at least one of the three ids (within the API key's tenant)."""

    user_id: ScopeId = None
    agent_id: ScopeId = None
    session_id: ScopeId = None

    def scope(self) -> ScopeArgs:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id}


class ScopeArgs(TypedDict):
    user_id: str | None
    agent_id: str | None
    session_id: str | None


class Message(Strict):
    """One chat message; each becomes one episode."""

    content: Text
    role: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=256)
    metadata: dict[str, Any] | None = None


class AddRequest(ScopeFields):
    """Remember a text or a list of chat messages."""

    content: Text | Annotated[list[Message], Field(min_length=1, max_length=1000)]
    occurred_at: str | None = Field(
        default=None, max_length=64, description="when it was said (ISO 8601); default: now"
    )
    metadata: dict[str, Any] | None = None


class SearchRequest(ScopeFields):
    query: Annotated[str, Field(min_length=1, max_length=10_000)]
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    filters: dict[str, Any] | None = Field(
        default=None, description="metadata key -> value every hit must have"
    )
    include_superseded: bool = Field(
        default=False, description="also facts that a later fact superseded"
    )


class ContextRequest(ScopeFields):
    query: Annotated[str, Field(min_length=1, max_length=10_000)]
    budget_tokens: int = Field(default=1500, ge=MIN_BUDGET, le=MAX_BUDGET)
    recent_turns: int = Field(default=10, ge=0, le=MAX_LIMIT)
    memories: int = Field(default=20, ge=0, le=MAX_LIMIT)


class UpdateRequest(Strict):
    """New text and/or new metadata for one memory; the old version stays in history."""

    text: Text | None = None
    metadata: dict[str, Any] | None = None


class Deleted(BaseModel):
    deleted: int
