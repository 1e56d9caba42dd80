"""The records remem reads and writes. Small, typed, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from remem.errors import ScopeRequiredError

__all__ = [
    "AddResult",
    "ApiKey",
    "Attribute",
    "Biography",
    "Context",
    "ContextItem",
    "Episode",
    "Event",
    "FieldFill",
    "FilledForm",
    "Hit",
    "ImportResult",
    "IngestResult",
    "Job",
    "Link",
    "Note",
    "Page",
    "Profile",
    "Scope",
    "Statement",
    "TimelineEntry",
    "Topic",
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
    statement a language model extracted); or a `thought`, a conclusion `Memory.think`
    stored, linked (`rests_on`) to the notes it rests on and made from no episode. A
    superseded fact keeps `valid_to` and the id of the note that `superseded_by` it; a
    thought is superseded when a note it rests on goes (`superseded_by` names the note
    that replaced that evidence, or the evidence itself when it was deleted or purged)."""

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
    kind: Literal["turn", "fact", "thought"] = "turn"
    # The conversation a turn belongs to: its session, or, when the app gave none, the
    # thread remem inferred from when the turns were said (see `write/threads`).
    thread: str | None = None
    # Lifecycle: how often and when the note was last returned to a caller (`search`,
    # `context`, `get`; bumped in batches, so a read may lag a little), whether it is
    # pinned (never decays, always eligible for context), when it expires (it leaves
    # search at once and the sweep purges it) and when it was archived (out of search and
    # context, kept, listed on request). `importance` (0-1) is rated when it is written.
    access_count: int = 0
    last_accessed_at: datetime | None = None
    pinned: bool = False
    expires_at: datetime | None = None
    archived_at: datetime | None = None


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
    """One search result. `episode_ids` are its sources, most relevant first. `score` is
    its relevance: the estimated probability (0 to 1) that it bears on the query, from its
    own words and meaning (see `read/relevance`). Hits come in rank order, which also
    weighs a hit's conversation (the turn before it, its passage, the time and speaker
    asked about), so a later hit may score higher than an earlier one."""

    id: str
    kind: Literal["note", "episode"]
    text: str
    score: float
    metadata: Metadata
    occurred_at: datetime
    episode_ids: tuple[str, ...]
    scope: Scope = field(default_factory=Scope)
    thread: str | None = None  # the note's conversation thread (see `Note.thread`)
    # With `search(..., explain=True)`: what each ranking step added to the hit's ranking
    # score (the parts sum to "rank"), and the inputs of its relevance (see `read/explain`).
    explanation: dict[str, float] | None = None


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


ORGANISE_JOB = "organise"  # the kind of job that organises the episodes its payload lists


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
class IngestResult:
    """What `Memory.ingest` did with files: chunks (episodes) added, updated (a changed
    chunk: a new version), unchanged and removed (gone from the file), and the files skipped
    with the reason."""

    files: int
    added: int
    updated: int
    unchanged: int
    removed: int
    skipped: tuple[tuple[str, str], ...] = ()


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
    """One line of a `Context`: a line of the person's profile (`kind="profile"`, id of the
    profile), a recent turn (`kind="recent"`, id of the episode) or a memory
    (`kind="memory"`, id of the note), as it appears in the text."""

    id: str
    kind: Literal["profile", "recent", "memory"]
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


# -- the person layer (L1 profile): every statement carries the note ids it rests on -------


@dataclass(frozen=True)
class Statement:
    """One sentence about the person and the notes it rests on."""

    text: str
    note_ids: tuple[str, ...]


@dataclass(frozen=True)
class TimelineEntry:
    """A dated note that marks a change in a topic."""

    occurred_at: datetime
    note_id: str
    text: str


@dataclass(frozen=True)
class Topic:
    """A theme of a person's memory (Second Me's "shade"): notes grouped by meaning.

    `id` stays the same while the topic grows; `label` and `keywords` are the words that
    set its notes apart from the rest of the memory. `name` and `description` are written
    by a model when one is configured (each description sentence with its evidence).
    `confidence` comes from evidence: how many notes, sessions, and how recent."""

    id: str
    label: str
    keywords: tuple[str, ...]
    note_ids: tuple[str, ...]
    first_at: datetime
    last_at: datetime
    timeline: tuple[TimelineEntry, ...]
    confidence: float
    sessions: int = 0
    name: str | None = None
    description: tuple[Statement, ...] = ()

    @property
    def size(self) -> int:
        return len(self.note_ids)


@dataclass(frozen=True)
class Attribute:
    """One typed slot about the person (`slot` such as "home", "work", "email", "pet"):
    its value, the notes it comes from, when it held, and how sure remem is. A newer value
    of a single-valued slot closes the older one (`valid_to`), which stays in history."""

    slot: str
    value: str
    note_ids: tuple[str, ...]
    confidence: float
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    source: Literal["pattern", "model", "person"] = "pattern"


@dataclass(frozen=True)
class Biography:
    """Who the person is (a short biography) and what is happening now (status), sentence
    by sentence with evidence; `by` says whether a model wrote it or it was summarised
    from topics and attributes without one."""

    text: str
    sentences: tuple[Statement, ...]
    status: tuple[Statement, ...]
    by: Literal["summary", "model"]
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class Profile:
    """What remem knows of the person a scope is about: topics, current attributes,
    biography. `version` grows with every change; older versions are in `history(id)`."""

    id: str
    scope: Scope
    topics: tuple[Topic, ...]
    attributes: tuple[Attribute, ...]
    biography: Biography
    version: int
    updated_at: datetime
    notes_seen: int = 0
    person: str | None = None
    # every attribute value ever held, the closed ones (valid_to set) included
    attribute_history: tuple[Attribute, ...] = ()


@dataclass(frozen=True)
class FieldFill:
    """One field of a filled form: its JSON pointer path, value (None when memory does not
    say), confidence (0 when empty), the notes it rests on, and why."""

    path: str
    value: Any
    confidence: float
    note_ids: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class FilledForm:
    """A JSON Schema filled from memory: the object, and per field its evidence."""

    value: dict[str, Any]
    fields: tuple[FieldFill, ...]


@dataclass(frozen=True)
class Merge:
    """One group of near-duplicate notes merged by `consolidate`: the note that survives,
    the notes merged into it (their ids now resolve to it), the lowest cosine of a merged
    note with it, and what decided ("similarity", or "model:<id>")."""

    survivor_id: str
    merged_ids: tuple[str, ...]
    similarity: float
    decided_by: str


@dataclass(frozen=True)
class Consolidation:
    """What a consolidation pass did (with `dry_run`, would do): notes examined, pairs of
    close notes looked at, and the merges."""

    examined: int
    candidates: int
    merges: tuple[Merge, ...]
    dry_run: bool

    @property
    def merged(self) -> int:
        """How many notes were (or would be) merged into another."""
        return sum(len(merge.merged_ids) for merge in self.merges)
