"""The records remem reads and writes. Small, typed, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from remem.errors import ScopeRequiredError

__all__ = [
    "AddResult",
    "ApiKey",
    "Context",
    "ContextItem",
    "Episode",
    "Event",
    "Hit",
    "ImportResult",
    "Job",
    "Link",
    "Note",
    "Page",
    "Scope",
]

Metadata = dict[str, Any]


@dataclass(frozen=True)
class Scope:
    """Who a memory belongs to. A field left as None matches anything when reading.

    `tenant` is the account a served memory belongs to (an API key's tenant; "" for local
    use). Unlike the other fields it is never a wildcard: a read sees one tenant only.
    """

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    tenant: str = ""

    def across_sessions(self) -> Scope:
        """The same owner in all their sessions (the scope itself when it has no owner)."""
        if self.user_id or self.agent_id:
            return Scope(self.user_id, self.agent_id, None, self.tenant)
        return self

    def require(self, operation: str) -> Scope:
        """Return self, or raise when no field is set."""
        if not (self.user_id or self.agent_id or self.session_id):
            raise ScopeRequiredError(operation)
        return self


@dataclass(frozen=True)
class Episode:
    """One raw input, kept verbatim: a chat message, a document chunk, an event."""

    id: str
    scope: Scope
    text: str
    role: str | None
    name: str | None
    metadata: Metadata
    occurred_at: datetime
    recorded_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class Note:
    """One memory derived from episodes: a `turn` (one episode, verbatim) or a `fact` (a
    statement a language model extracted). A superseded fact keeps `valid_to` and the id of
    the note that `superseded_by` it."""

    id: str
    scope: Scope
    text: str
    metadata: Metadata
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int
    episode_ids: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    context: str | None = None
    importance: float = 0.5
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    superseded_by: str | None = None
    deleted_at: datetime | None = None
    kind: Literal["turn", "fact"] = "turn"


@dataclass(frozen=True)
class Link:
    """A typed, weighted edge between two notes, with the reason it was made."""

    id: str
    source_id: str
    target_id: str
    relation: str
    weight: float
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class Hit:
    """One search result. `episode_ids` are its sources, most relevant first."""

    id: str
    kind: Literal["note", "episode"]
    text: str
    score: float
    metadata: Metadata
    occurred_at: datetime
    episode_ids: tuple[str, ...]
    scope: Scope = field(default_factory=Scope)


@dataclass(frozen=True)
class Event:
    """One entry of the append-only log of writes: what changed, when and by whom."""

    id: str
    action: str
    target_id: str
    scope: Scope
    at: datetime
    actor: str
    before: Metadata | None
    after: Metadata | None


@dataclass(frozen=True)
class Job:
    """A unit of enrichment work kept in the store, so it survives crashes and is retried."""

    id: str
    kind: str
    target_id: str
    status: Literal["pending", "done", "failed"]
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    payload: Metadata = field(default_factory=dict)  # input, and results of finished steps
    lease: str | None = None  # token of the worker running it
    leased_until: datetime | None = None


@dataclass(frozen=True)
class AddResult:
    """What `Memory.add` stored: episode ids in input order, and the notes made from them.

    `pending_jobs` names work that failed or waits for a worker (e.g. embedding while the
    model server is down, organising by a language model); the episodes and notes are
    stored either way. `note_ids` includes facts a model extracted when that ran inline, and
    `llm_calls`/`llm_tokens` say what it cost.
    """

    episode_ids: tuple[str, ...]
    note_ids: tuple[str, ...]
    pending_jobs: tuple[str, ...] = ()
    llm_calls: int = 0
    llm_tokens: int = 0


@dataclass(frozen=True)
class ImportResult:
    """What `Memory.import_file` did: records added, and records skipped as already present."""

    added: int
    skipped: int


@dataclass(frozen=True)
class Page:
    """One page of a listing; pass `cursor` back to get the next page (None: no more)."""

    items: tuple[Note, ...]
    cursor: str | None


@dataclass(frozen=True)
class ApiKey:
    """A server API key: the tenant it acts for, and a digest of its secret (never the secret)."""

    id: str
    tenant: str
    name: str
    digest: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class ContextItem:
    """One line of a `Context`: a recent turn (`kind="recent"`, id of the episode) or a
    memory (`kind="memory"`, id of the note), as it appears in the text."""

    id: str
    kind: Literal["recent", "memory"]
    text: str
    occurred_at: datetime
    tokens: int
    score: float | None = None
    shortened: bool = False


@dataclass(frozen=True)
class Context:
    """A prompt block for a model, within a token budget, and the items it was made of."""

    text: str
    items: tuple[ContextItem, ...]
    tokens: int
    budget: int
