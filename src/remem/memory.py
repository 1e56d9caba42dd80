"""`Memory`: the facade that wires a store, an embedder and the read and write paths.

No SQL, no HTTP and no prompts live here: only the order in which the parts are called.
"""

from __future__ import annotations

import builtins
import copy
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from remem import clock, ids
from remem.config import Settings, default_db_path
from remem.embedders import Embedder, create_embedder
from remem.errors import ConfigError, InvalidContentError, InvalidInputError, NotFoundError
from remem.llms import LLM, Usage, create_llm
from remem.read.context import build_context
from remem.read.rank import DEFAULT as DEFAULT_WEIGHTS
from remem.read.rank import Weights
from remem.read.search import search as hybrid_search
from remem.stores.base import Changes, Store
from remem.tokens import token_counts
from remem.transfer import export_jsonl, import_jsonl
from remem.types import (
    AddResult,
    Context,
    Episode,
    Event,
    Hit,
    ImportResult,
    Note,
    Page,
    Scope,
)
from remem.write.embedding import EMBED_JOB, embed_or_queue, failed_job, finished
from remem.write.ingest import (
    Content,
    check_metadata,
    check_utf8,
    index_text,
    make_episodes,
    notes_from_episodes,
    parse_content,
)
from remem.write.jobs import JOB_MODES, LEASE, JobMode, JobRunner
from remem.write.organise import enrich, similar_links
from remem.write.pipeline import Organiser, organise_job
from remem.write.versions import event, snapshot

MAX_LIMIT = 1000
MIN_BUDGET, MAX_BUDGET = 50, 100_000
CURSOR_DIGITS = 18  # a cursor is a row number; longer ones overflow a 64-bit integer
TENANT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Memory:
    """A long-term memory: `add` what was said, `search` for what matters now.

    Pass ready parts (`store=`, `embedder=`) or a `path` to a SQLite file; with neither,
    the memory lives in `$REMEM_DB` or the per-user data directory, embedded with the
    bundled offline model. `ranking` tunes (or, with zeros, turns off) the steps of search
    ranking. With an `llm`, each `add` also queues a job that extracts facts and
    reconciles, enriches, links and evolves memories; `jobs` says where it runs ("inline"
    in `add`, "background" on a thread, "worker" in `remem worker`). A memory acts for one
    tenant (`as_tenant`; "" is local use) and never sees another tenant's records.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        store: Store | None = None,
        embedder: Embedder | None = None,
        llm: LLM | None = None,
        actor: str = "local",
        ranking: Weights = DEFAULT_WEIGHTS,
        jobs: JobMode = "inline",
        lease: timedelta = LEASE,
    ) -> None:
        if store is not None and path is not None:
            raise ConfigError("pass either path or store, not both")
        if store is None:
            store = open_store(str(path or os.environ.get("REMEM_DB") or default_db_path()))
        if embedder is None:
            embedder = create_embedder(Settings())
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.actor = actor
        self.ranking = ranking
        self.tenant = ""
        self._embedder_recorded = _check_embedder(store, embedder)
        if jobs not in JOB_MODES:
            raise ConfigError(f"jobs must be one of {', '.join(JOB_MODES)}, got {jobs!r}")
        organiser = Organiser(store, embedder, llm, ranking) if llm is not None else None
        self._jobs = JobRunner(store, organiser, jobs, lease)

    @classmethod
    def from_config(cls, *, config_file: str | Path | None = None, **arguments: Any) -> Memory:
        """Build a memory from settings: defaults < config file < REMEM_* < arguments."""
        settings = Settings.resolve(config_file=config_file, **arguments)
        return cls(
            store=open_store(settings.db),
            embedder=create_embedder(settings),
            llm=create_llm(settings),
            jobs=cast(JobMode, settings.jobs),
        )

    def as_tenant(self, tenant: str) -> Memory:
        """This memory as seen by one tenant: same store and embedder, only its records.
        Close the original, not the view."""
        view = copy.copy(self)
        view.tenant = check_tenant(tenant)
        return view

    # -- writing ---------------------------------------------------------------------------

    def add(
        self,
        content: Content,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        occurred_at: datetime | str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AddResult:
        """Remember a text or a list of chat messages; each message becomes one episode."""
        scope = self._scope(user_id, agent_id, session_id).require("add")
        messages = parse_content(content)
        episodes = make_episodes(
            messages, scope, clock.parse_time(occurred_at), check_metadata(metadata)
        )
        notes = enrich(notes_from_episodes(episodes), self.store)
        by_id = {episode.id: episode for episode in episodes}
        bodies = {note.id: index_text(note, by_id) for note in notes}
        embedded = embed_or_queue(self.embedder, notes)
        organising = [organise_job(episodes)] if self.llm is not None else []
        changes = Changes(
            episodes=episodes,
            notes=notes,
            bodies=bodies,
            vectors=embedded.vectors,
            sentence_vectors=embedded.sentence_vectors,
            links=similar_links(notes, embedded.vectors, self.store),
            jobs=embedded.failed_jobs + organising,
            events=[self._event("add", e.id, scope) for e in episodes]
            + [self._event("add", n.id, scope) for n in notes],
        )
        self._apply(changes)  # the episodes are durable from here on
        pending = [job.id for job in embedded.failed_jobs]
        outcome = self._jobs.after_add(organising[0].id) if organising else None
        if organising and (outcome is None or not outcome.done):
            pending.append(organising[0].id)
        usage = outcome.usage if outcome is not None else Usage()
        return AddResult(
            episode_ids=tuple(e.id for e in episodes),
            note_ids=tuple(n.id for n in notes) + tuple(outcome.fact_ids if outcome else ()),
            pending_jobs=tuple(pending),
            llm_calls=usage.calls,
            llm_tokens=usage.tokens,
        )

    def update(
        self, memory_id: str, *, text: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> Note:
        """Change a note's text and/or replace its metadata; the old version stays in history."""
        if text is None and metadata is None:
            raise InvalidInputError("update needs text or metadata")
        if text is not None and not isinstance(text, str):
            raise InvalidContentError(f"text must be a string, got {type(text).__name__}")
        note = self.get(memory_id)
        new_text = note.text if text is None else parse_content(text)[0].text
        updated = replace(
            note,
            text=new_text,
            metadata=note.metadata if metadata is None else check_metadata(metadata),
            version=note.version + 1,
            updated_at=clock.now(),
        )
        changes = Changes(
            notes=[updated],
            bodies={updated.id: self._body(updated)},
            events=[self._event("update", note.id, note.scope, snapshot(note), snapshot(updated))],
        )
        if new_text != note.text:
            embedded = embed_or_queue(self.embedder, [updated])
            changes.vectors, changes.jobs = embedded.vectors, embedded.failed_jobs
            changes.sentence_vectors = embedded.sentence_vectors
        self._apply(changes)
        return updated

    def delete(self, item_id: str) -> None:
        """Forget one note (with the episodes only it came from), or one episode with the
        notes made from it. History keeps what was deleted."""
        if ids.kind_of(item_id) == ids.EPISODE:
            episodes = [self.episode(item_id)]
            notes = self.store.notes_of_episodes([item_id])
        else:
            notes = [self.get(item_id)]
            episodes = self._sources_only_of(notes[0])
        self._apply(self._deletion(episodes, notes, clock.now()))

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Forget every episode and note in the scope; return how many notes went."""
        scope = self._scope(user_id, agent_id, session_id).require("delete_all")
        episode_ids, note_ids = self.store.live_ids(scope)
        episodes = list(self.store.get_episodes(episode_ids).values())
        notes = list(self.store.get_notes(note_ids).values())
        self._apply(self._deletion(episodes, notes, clock.now()))
        return len(notes)

    def run_jobs(self) -> int:
        """Run pending jobs: embedding that failed, then organising by the language model
        (until one fails); return how many completed."""
        embedded = self._retry_embedding()
        return embedded + sum(outcome.done for outcome in self._jobs.run_pending())

    def retry_failed_jobs(self) -> int:
        """Make jobs that failed too often pending again (after fixing the cause); return
        how many."""
        failed = [
            replace(job, status="pending", attempts=0, updated_at=clock.now())
            for job in self.store.jobs("failed")
        ]
        self._apply(Changes(jobs=failed))
        return len(failed)

    def _retry_embedding(self) -> int:
        pending = [job for job in self.store.jobs("pending") if job.kind == EMBED_JOB]
        notes = self.store.get_notes([job.target_id for job in pending])
        embedded = embed_or_queue(self.embedder, list(notes.values()))
        if embedded.failed_jobs:
            error = embedded.failed_jobs[0].last_error or "unknown error"
            self._apply(Changes(jobs=[failed_job(job.target_id, error, job) for job in pending]))
            return 0
        self._apply(
            Changes(
                vectors=embedded.vectors,
                sentence_vectors=embedded.sentence_vectors,
                jobs=[finished(job) for job in pending],
                events=[self._event("embed", n.id, n.scope) for n in notes.values()],
            )
        )
        return len(pending)

    # -- reading ---------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 10,
        filters: Mapping[str, Any] | None = None,
        include_superseded: bool = False,
    ) -> builtins.list[Hit]:
        """The memories most relevant to `query` in the scope, best first. Facts a later fact
        superseded are left out unless `include_superseded`."""
        scope = self._scope(user_id, agent_id, session_id).require("search")
        _check_query(query, "search")
        if filters is not None and not isinstance(filters, Mapping):
            raise InvalidInputError("filters must be a dict of metadata key -> value")
        return hybrid_search(
            self.store,
            self.embedder,
            query,
            scope,
            _limit(limit),
            filters,
            self.ranking,
            include_superseded=bool(include_superseded),
        )

    def context(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        budget_tokens: int = 1500,
        recent_turns: int = 10,
        memories: int = 20,
    ) -> Context:
        """The prompt block a model needs now: the latest `recent_turns` of the session, then
        the memories most relevant to `query`, each dated, within `budget_tokens`."""
        scope = self._scope(user_id, agent_id, session_id).require("context")
        _check_query(query, "context")
        _check_count("budget_tokens", budget_tokens, MIN_BUDGET, MAX_BUDGET)
        _check_count("recent_turns", recent_turns, 0, MAX_LIMIT)
        _check_count("memories", memories, 0, MAX_LIMIT)
        return build_context(
            self.store,
            self.embedder,
            self.ranking,
            query,
            scope,
            budget_tokens,
            recent_turns,
            memories,
            token_counts,
        )

    def get(self, memory_id: str) -> Note:
        """One live note by id."""
        note = self.store.get_notes([memory_id]).get(memory_id)
        if note is None or note.deleted_at is not None or note.scope.tenant != self.tenant:
            raise NotFoundError("memory", memory_id)
        return note

    def episode(self, episode_id: str) -> Episode:
        """One live episode (a raw input, verbatim) by id."""
        episode = self.store.get_episodes([episode_id]).get(episode_id)
        if episode is None or episode.deleted_at is not None or episode.scope.tenant != self.tenant:
            raise NotFoundError("episode", episode_id)
        return episode

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Live notes in the scope (all of them when no scope is given), oldest first."""
        scope = self._scope(user_id, agent_id, session_id)
        if cursor is not None and not (
            isinstance(cursor, str) and cursor.isdigit() and len(cursor) <= CURSOR_DIGITS
        ):
            raise InvalidInputError(f"cursor {cursor!r} is not one this memory handed out")
        notes, next_cursor = self.store.list_notes(scope, _limit(limit), cursor)
        return Page(items=tuple(notes), cursor=next_cursor)

    def history(self, item_id: str) -> builtins.list[Event]:
        """Every recorded change to a note or episode, oldest first (deleted ones included)."""
        events = self.store.events(item_id)
        if not events or events[0].scope.tenant != self.tenant:
            raise NotFoundError("memory or episode", item_id)
        return events

    # -- moving memories -------------------------------------------------------------------

    def export(self, path: str | Path) -> int:
        """Write everything of this tenant, deleted records and history included, to a JSONL
        file."""
        return export_jsonl(self.store, Path(path), self.embedder.model_id, self.tenant)

    def import_file(
        self, path: str | Path, *, progress: Callable[[int], None] | None = None
    ) -> ImportResult:
        """Load an export; records already present (same id) are skipped."""
        result = import_jsonl(self.store, Path(path), self.embedder, self._body, progress)
        self._embedder_recorded = True
        return result

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._jobs.close()
        self.store.close()
        self.embedder.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------

    def _scope(self, user_id: Any, agent_id: Any, session_id: Any) -> Scope:
        return replace(make_scope(user_id, agent_id, session_id), tenant=self.tenant)

    def _apply(self, changes: Changes) -> None:
        if changes.vectors and not self._embedder_recorded:
            changes.meta["embedder"] = self.embedder.model_id
        self.store.apply(changes)
        self._embedder_recorded = self._embedder_recorded or bool(changes.vectors)

    def _body(self, note: Note) -> str:
        return index_text(note, self.store.get_episodes(note.episode_ids))

    def _sources_only_of(self, note: Note) -> builtins.list[Episode]:
        """The live episodes of `note` that no other live note was made from."""
        shared = {
            episode_id
            for other in self.store.notes_of_episodes(note.episode_ids)
            if other.id != note.id
            for episode_id in other.episode_ids
        }
        episodes = self.store.get_episodes([e for e in note.episode_ids if e not in shared])
        return [e for e in episodes.values() if e.deleted_at is None]

    def _deletion(
        self, episodes: builtins.list[Episode], notes: builtins.list[Note], moment: datetime
    ) -> Changes:
        return Changes(
            episodes=[replace(e, deleted_at=moment) for e in episodes],
            notes=[replace(n, deleted_at=moment) for n in notes],
            events=[self._event("delete", e.id, e.scope) for e in episodes]
            + [self._event("delete", n.id, n.scope, snapshot(n)) for n in notes],
        )

    def _event(
        self,
        action: str,
        target_id: str,
        scope: Scope,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> Event:
        return event(action, target_id, scope, self.actor, before, after)


def open_store(location: str) -> Store:
    """The store a location names: a `postgresql://` URL, or a SQLite path (":memory:")."""
    if location.startswith(("postgresql://", "postgres://")):
        try:
            from remem.stores.postgres import PostgresStore
        except ImportError as error:
            raise ConfigError(
                f"PostgreSQL needs remem's postgres extras ({error.name} is missing):"
                " pip install 'remem[postgres]'"
            ) from None
        return PostgresStore(location)
    if "://" in location:
        raise ConfigError(
            f"unsupported database URL {location!r}: use a postgresql:// URL or a SQLite path"
        )
    from remem.stores.sqlite import SQLiteStore

    return SQLiteStore(location)


def make_scope(user_id: Any, agent_id: Any, session_id: Any) -> Scope:
    """A scope from caller input: strings only; empty strings count as unset."""
    return Scope(
        _scope_value("user_id", user_id),
        _scope_value("agent_id", agent_id),
        _scope_value("session_id", session_id),
    )


def _scope_value(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    return check_utf8(value, name).strip() or None if value is not None else None


def check_tenant(tenant: Any) -> str:
    """A tenant name: 1-64 letters, digits, '.', '_' or '-'."""
    if not isinstance(tenant, str) or not TENANT_NAME.fullmatch(tenant):
        raise InvalidInputError(
            f"tenant must be 1-64 letters, digits, '.', '_' or '-', got {tenant!r}"
        )
    return tenant


def _limit(limit: Any) -> int:
    return _check_count("limit", limit, 1, MAX_LIMIT)


def _check_count(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _check_query(query: Any, operation: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"{operation} needs a non-empty query string")
    check_utf8(query, "query")


def _check_embedder(store: Store, embedder: Embedder) -> bool:
    """True when the store already records this embedder; raise when it records another."""
    recorded = store.get_meta("embedder")
    if recorded is not None and recorded != embedder.model_id:
        raise ConfigError(
            f"this memory was embedded with {recorded!r} but the configured embedder is "
            f"{embedder.model_id!r}; configure the embedder that made it (REMEM_EMBEDDER), "
            "or export it and import the file into a new memory to re-embed it"
        )
    return recorded is not None
