"""The store protocols: what every backend (SQLite, PostgreSQL) must do, and nothing more.

`Store` is every role at once. A caller takes the narrowest role it uses (`Records`,
`Retrieval`, `JobQueue`, `KeyStore`, `Accounting`, or a named combination of them), so its
type says what it touches and a test double needs only that.

Writes go through one method, `apply`, which commits a `Changes` batch atomically, so the
write path never depends on a backend's transaction style. Reads are small and typed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from remem.embedders.base import Vectors
from remem.types import ApiKey, Episode, Event, Job, Link, Note, Scope

ScoredIds = list[tuple[str, float]]
# Notes per passage (a run of consecutive notes of a session, searched as one text): a
# conversation session is usually shorter; a longer one is split so that appending a note
# never rewrites an unbounded text.
PASSAGE_NOTES = 64


@dataclass
class Changes:
    """One atomic batch of writes. Records with an existing id replace it (upsert)."""

    episodes: list[Episode] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    # note id -> the text full-text search indexes (live notes only)
    bodies: dict[str, str] = field(default_factory=dict)
    # note id -> its vector, in the space of the memory's embedder
    vectors: dict[str, Vectors] = field(default_factory=dict)
    # note id -> one vector per sentence (rows), for notes of two or more sentences. Writing
    # a note's vector replaces its sentence vectors with this entry, or with none.
    sentence_vectors: dict[str, Vectors] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    llm_calls: list[LLMCall] = field(default_factory=list)
    # (job id, lease token): commit only while that job is pending under that lease, so a
    # worker whose lease ran out cannot write over the one that took the job over
    lease: tuple[str, str] | None = None
    # note id -> the version this batch was computed from: commit only while every such
    # note is live at that version (checked under a lock), so a write made from a stale
    # read can neither lose another update nor bring back a deleted note
    expect: dict[str, int] = field(default_factory=dict)
    # meta key -> the value this batch was computed from (None: no such row): commit only
    # while every such row still holds it (a compare-and-set: an ingest's ledger, read and
    # written again by two processes at once, would otherwise lose one's write)
    expect_meta: dict[str, str | None] = field(default_factory=dict)
    # ids of episodes and notes to erase, with everything derived from them (search rows,
    # vectors, passages' text, links, their jobs, their history's payloads)
    purge: list[str] = field(default_factory=list)
    # note id -> its scope, for notes this batch takes from under the thoughts resting on
    # them (see `write/thoughts`): commit only while every live thought linked `rests_on`
    # to one of them is written or purged by this batch (a thought made since it was read
    # makes it StaleWriteError, so it is built again, with that thought)
    evidence_changed: dict[str, Scope] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMCall:
    """What one model step of a job cost."""

    job_id: str
    step: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    ok: bool
    at: datetime


@dataclass(frozen=True)
class TextMatches:
    """One full-text search, ranked with the note's context and by the note alone."""

    in_context: ScoredIds
    note: ScoredIds


class NoteFacts(NamedTuple):
    """What ranking needs to know of a candidate note, without loading all of it (a named
    tuple: a search makes hundreds, and a frozen dataclass costs twice the time to make)."""

    id: str
    text: str
    speaker: str | None
    occurred_at: datetime
    passage: int | None  # the run of session notes it belongs to
    previous: str | None  # the live note before it in its session
    following: str | None  # the live note after it in its session


@dataclass(frozen=True)
class NoteRecord:
    """A note as a store holds it: with its vector and its sentences' vectors, if any."""

    note: Note
    vector: Vectors | None = None
    sentences: Vectors | None = None


@dataclass(frozen=True)
class Dump:
    """Everything a store holds, for export: read lazily, in a stable order."""

    episodes: Iterator[Episode]
    notes: Iterator[NoteRecord]
    links: Iterator[Link]
    events: Iterator[Event]
    jobs: Iterator[Job]


@dataclass(frozen=True)
class Access:
    """Reads of one note since the last flush: the note's scope (whose owner a sharded store
    routes by), how many reads, and the last one's time."""

    scope: Scope
    count: int
    at: datetime


class LeaseLostError(Exception):
    """A job's lease was taken over (or the job finished) before this worker committed."""


class StaleWriteError(Exception):
    """A note a batch expected (`Changes.expect`) changed or went since it was read."""

    def __init__(self, note_id: str, expected: int, current: int | None) -> None:
        now = "deleted" if current is None else f"at version {current}"
        super().__init__(f"note {note_id} is {now}, not at version {expected}")
        self.note_id = note_id
        self.expected = expected
        self.current = current  # None: deleted or gone


class NewThoughtError(StaleWriteError):
    """A live thought came to rest on a note of `Changes.evidence_changed` after the batch
    was read (another process thought it meanwhile): build the batch again."""

    def __init__(self, thought_id: str, note_id: str) -> None:
        Exception.__init__(self, f"thought {thought_id} came to rest on note {note_id}")
        self.note_id = note_id
        self.expected = 0
        self.current = None


class MetaChangedError(StaleWriteError):
    """A meta row of `Changes.expect_meta` was written by another writer after the batch
    read it: read it again and build the batch again."""

    def __init__(self, key: str) -> None:
        Exception.__init__(self, f"meta row {key} was written by another writer meanwhile")
        self.key = self.note_id = key
        self.expected = 0
        self.current = None


# The live thoughts resting on some notes (`Changes.evidence_changed`), for the stores' check
# at commit; `{route}` names the owner on a sharded store, `{same_owner}` joins within it.
RESTING_THOUGHTS = (
    "SELECT l.source_id, l.target_id FROM links l JOIN notes n ON n.id = l.source_id{same_owner}"
    " WHERE {route}l.relation = 'rests_on' AND n.kind = 'thought' AND n.deleted_at IS NULL"
    " AND n.superseded_by IS NULL AND l.target_id {ids}"
)


def unsettled_thought(changes: Changes, resting: Iterable[tuple[str, str]]) -> None:
    """Raise NewThoughtError for a (thought, note) of `resting` the batch does not write."""
    written = {note.id for note in changes.notes} | set(changes.purge)
    for thought_id, note_id in resting:
        if thought_id not in written:
            raise NewThoughtError(thought_id, note_id)


class Records(Protocol):
    """Where episodes, notes, links, events and jobs are kept: one atomic write, typed reads."""

    def apply(self, changes: Changes) -> None:
        """Commit every change in one transaction, or none of them."""

    def bulk_load(self, batches: Iterable[Changes], size: int) -> None:
        """Apply batches of new records (ids the store does not hold yet), each in one
        transaction, faster than `apply` one by one; `size`, the number of notes that may
        come, lets a large load build the search indexes once, after it. Every batch
        committed is complete (search rows, passages, vectors) and the indexes are whole
        again when this returns or raises; a batch that fails is rolled back."""

    def get_meta(self, key: str) -> str | None: ...

    def get_episodes(self, ids: Sequence[str]) -> dict[str, Episode]:
        """The episodes with these ids, deleted ones included."""

    def get_notes(self, ids: Sequence[str]) -> dict[str, Note]:
        """The notes with these ids, deleted ones included."""

    def list_notes(
        self,
        scope: Scope,
        limit: int,
        cursor: str | None,
        order: str = "oldest",
        archived: bool = False,
    ) -> tuple[list[Note], str | None]:
        """Live notes in the scope from an opaque cursor, and the next cursor. `order`:
        "oldest" or "newest" by occurred_at (ties in insertion order), or "added". Archived
        and expired notes are left out; with `archived`, only the archived ones are listed."""

    def live_ids(
        self, scope: Scope, *, include_deleted: bool = False, visible: bool = False
    ) -> tuple[list[str], list[str]]:
        """Ids of live (or also deleted) episodes and notes in the scope; with `visible`,
        notes archived or expired are left out."""

    def expired_notes(self, tenant: str | None, moment: datetime, limit: int) -> list[Note]:
        """Up to `limit` notes of a tenant (of every tenant: None; deleted ones included)
        whose expiry is at or before `moment`, soonest expired first (for the sweep)."""

    def record_access(self, accesses: Mapping[str, Access]) -> None:
        """Add each note's reads to its `access_count` and move its `last_accessed_at`
        forward (never back), in one transaction; unknown ids are skipped. An increment,
        never a rewrite: a concurrent write to the note loses no read and no read loses it."""

    def notes_of_episodes(
        self, episode_ids: Sequence[str], *, include_deleted: bool = False
    ) -> list[Note]:
        """Live (or also deleted) notes made from any of these episodes."""

    def events(self, target_id: str) -> list[Event]:
        """Every event about one record, oldest first."""

    def links_of(self, note_id: str) -> list[Link]:
        """Every link from or to one note, oldest first."""

    def links_to(
        self, note_ids: Sequence[str], relation: str, owner: Scope | None = None
    ) -> list[Link]:
        """Every link of `relation` to one of these notes; `owner` (a scope whose links
        they are, if known) lets a sharded store ask only that owner's shard."""

    def note_ids_ending(self, suffix: str, tenant: str, limit: int) -> list[str]:
        """Ids of up to `limit` live notes of a tenant that end with `suffix` (the short ids
        tables show)."""

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids (of any kind) the store already holds, or held and purged (so
        an old export cannot bring back what was erased)."""

    def dump(self) -> Dump: ...


@dataclass(frozen=True)
class Replacement:
    """What an outdated turn said was superseded: by this turn, said then."""

    turn_id: str
    said_at: datetime
    text: str


def no_candidates() -> tuple[()]:
    """The candidates of a text search no other retriever helps (a store that sees this
    function ranks every match without weighing the cost first)."""
    return ()


class Retrieval(Protocol):
    """The retrievers and what ranking asks of the notes they find."""

    def search_text(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[str]] = no_candidates,
    ) -> TextMatches:
        """Live notes matching any term (BM25), ranked two ways: by their own text, and by
        their text with the note before them in their session. When ranking every match
        would cost too much (common words in a large memory), a store may rank only the
        notes of the rarer terms and the `candidates()` (note ids another retriever found;
        none: rank every match). They are asked for only then, so that retriever may still
        be running while the full ranking, the usual case, goes on."""

    def search_passages(
        self,
        terms: Sequence[str],
        scope: Scope,
        limit: int,
        candidates: Callable[[], Sequence[int]] = no_candidates,
    ) -> list[tuple[int, float]]:
        """Passages (runs of consecutive session notes) matching any term, best first; the
        `candidates()` (passage keys) are as in `search_text`."""

    def speakers_named(self, words: Sequence[str], scope: Scope) -> list[str]:
        """Which of these words (lower-cased) are the name of a speaker in the scope."""

    def describe(self, ids: Sequence[str], *, neighbours: bool = True) -> dict[str, NoteFacts]:
        """Ranking facts of the live notes among `ids` (`previous` and `following` are left
        None unless `neighbours`: finding them is most of the cost)."""

    def search_vector(self, vector: Vectors, scope: Scope, limit: int) -> ScoredIds:
        """Live notes nearest to a unit vector, best first (cosine)."""

    def sentence_scores(self, vector: Vectors, ids: Sequence[str]) -> dict[str, float]:
        """For each of these notes that has a vector: the best cosine of a unit vector with
        the note or, for a note of several sentences, with one of its sentences."""

    def vectors_of(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """note id -> its vector, for the notes of `ids` that are embedded."""
        ...

    def recent_episodes(self, scope: Scope, limit: int) -> list[Episode]:
        """The live episodes of the scope said last, newest first."""

    def replaced_turns(self, ids: Sequence[str]) -> dict[str, Replacement]:
        """The turns among `ids` that said something a later fact superseded, each with
        the live turn that said what replaced it (see `read/updates`)."""

    def thread_near(self, scope: Scope, moment: datetime, gap: timedelta) -> str | None:
        """The thread of the owner's live sessionless turn said nearest to `moment`, if one
        was said within `gap` of it (see `write/threads`)."""

    def term_counts(self, terms: Sequence[str], cap: int) -> dict[str, int]:
        """In how many notes each term occurs, counted up to `cap` (so a common word costs
        no more than a rare one)."""


class JobQueue(Protocol):
    """The jobs kept in the store, and the lease a worker takes on one."""

    def jobs(self, status: str | None = None) -> list[Job]: ...

    def claim_job(self, token: str, until: datetime, job_id: str | None = None) -> Job | None:
        """Lease the oldest pending organising job (not `embed`: `Memory.run_jobs` retries
        those in bulk) whose lease is free or expired, or job `job_id` if it is: set its
        lease to `token` until `until` and return it; None when there is none."""


class KeyStore(Protocol):
    """The server's API keys (kept as digests)."""

    def save_key(self, key: ApiKey) -> None:
        """Store an API key, or replace the one with its id."""

    def find_key(self, digest: str) -> ApiKey | None:
        """The API key whose secret has this digest, revoked or not."""

    def list_keys(self) -> list[ApiKey]:
        """Every API key, oldest first."""


class Accounting(Protocol):
    """What the store holds and what model calls cost, for reports."""

    def llm_totals(self) -> list[tuple[str, int, int, int, float]]:
        """Per step: calls, prompt tokens, completion tokens, total latency in ms."""

    def counts(self) -> dict[str, int]:
        """How many live episodes, turn and fact notes, superseded notes, links and jobs by
        status the store holds (all tenants)."""


class SearchStore(Retrieval, Protocol):
    """What `read.search` needs: the retrievers, and the notes they found."""

    def get_notes(self, ids: Sequence[str]) -> dict[str, Note]:
        """The notes with these ids, deleted ones included."""


class ContextStore(SearchStore, Protocol):
    """What `read.context` needs: search, and the episodes its lines quote."""

    def get_episodes(self, ids: Sequence[str]) -> dict[str, Episode]:
        """The episodes with these ids, deleted ones included."""


class RecordsWithRetrieval(Records, Retrieval, Protocol):
    """Records and search over them: what the organising pipeline reads and writes."""


class RecordsWithJobs(Records, JobQueue, Protocol):
    """Records and the job queue: what retrying failed embeddings reads."""


class RecordsWithKeys(Records, KeyStore, Protocol):
    """Records and API keys: everything a copy between stores moves."""


class Store(Records, Retrieval, JobQueue, KeyStore, Accounting, Protocol):
    """A durable home for episodes, notes, links, events and jobs, with two retrievers:
    every role at once, as `Memory` uses it."""

    def close(self) -> None: ...
