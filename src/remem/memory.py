"""`Memory`: the facade that wires a store, an embedder and the read and write paths.

No SQL, no HTTP and no prompts live here: only the order in which the parts are called.
"""

from __future__ import annotations

import builtins
import copy
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from remem import clock, ids
from remem.config import Settings
from remem.embedders import Embedder
from remem.errors import (
    ConfigError,
    NotFoundError,
    StoreError,
)
from remem.ingest import ledger_changes_for_purge
from remem.ingest.api import IngestMethods
from remem.inputs import (
    MAX_BUDGET,
    MAX_LIMIT,
    MIN_BUDGET,
    Content,
    check_count,
    check_cursor,
    check_expiry,
    check_filters,
    check_id,
    check_limit,
    check_metadata,
    check_order,
    check_path,
    check_query,
    check_share,
    check_tenant,
    make_scope,
    parse_content,
)
from remem.lifecycle import retention
from remem.lifecycle.access import AccessLog
from remem.lifecycle.api import LifecycleMethods
from remem.lifecycle.consolidation_api import ConsolidationMethods
from remem.llms import LLM
from remem.parts import FROM_SETTINGS, Default, build_parts, check_embedder
from remem.profile.api import PersonMethods
from remem.profile.service import invalidate as invalidate_profiles
from remem.profile.service import outdated_by as profiles_outdated_by
from remem.read.context import build_context, profile_lines
from remem.read.policy import Ranking, weights_of
from remem.read.relevance import CONTEXT_FLOOR
from remem.read.search import search as hybrid_search
from remem.stores.base import Changes, StaleWriteError, Store
from remem.thoughts_api import ThoughtMethods
from remem.tokens import token_counts
from remem.transfer import export_jsonl, import_jsonl
from remem.types import (
    AddResult,
    Context,
    Episode,
    Event,
    Hit,
    ImportResult,
    Link,
    Note,
    Page,
    Scope,
)
from remem.write import operations
from remem.write.jobs import LEASE, JobRunner
from remem.write.merges import resolved
from remem.write.pipeline import Organiser

__all__ = ["Memory"]

# A write built from a read another write overtook is built again, this many times at most
# (each retry means another writer committed to the same note in between).
WRITE_ATTEMPTS = 20
log = logging.getLogger("remem")
R = TypeVar("R", Episode, Note)


class Memory(PersonMethods, IngestMethods, ThoughtMethods, LifecycleMethods, ConsolidationMethods):
    """A long-term memory: `add` what was said, `search` for what matters now.

    Pass ready parts (`store=`, `embedder=`, `llm=`) or a `path` to a SQLite file; what
    is not passed is built from the settings (config file < REMEM_* environment, see
    `remem.config`), exactly as `from_config` and the CLI build it: with nothing set, the
    memory lives in the per-user data directory, embedded with the bundled offline model.
    `llm=None` says "no model" whatever the settings say. `ranking` tunes search: Weights
    or a policy's name ("recent"..., see `read/policy`). With a model, each `add` queues a job
    that extracts facts and reconciles, enriches, links and evolves memories; `jobs` says
    where it runs ("inline" in `add`, "background" on a thread, "worker" in `remem
    worker`). A memory acts for one tenant (`as_tenant`; "" is local use) and never sees
    another tenant's records.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        store: Store | None = None,
        embedder: Embedder | None = None,
        llm: LLM | Default | None = FROM_SETTINGS,
        actor: str = "local",
        ranking: Ranking = None,
        jobs: str | None = None,
        lease: timedelta = LEASE,
        settings: Settings | None = None,
    ) -> None:
        if store is not None and path is not None:
            raise ConfigError("pass either path or store, not both")
        if settings is None and (store is None or embedder is None or llm is FROM_SETTINGS):
            settings = Settings.resolve(db=None if path is None else str(path))
        parts = build_parts(
            settings or Settings(), store=store, embedder=embedder, llm=llm, jobs=jobs
        )
        self.store, self.embedder, self.llm = parts.store, parts.embedder, parts.llm
        self.actor = actor
        self.ranking = ranking = weights_of(ranking, settings)
        self.tenant = ""
        # one read-modify-write at a time per memory (its tenant views share it): threads of
        # one process take turns instead of overtaking each other's reads, which could
        # starve a delete behind a stream of updates; other processes meet `expect`
        self._writing = threading.Lock()
        self._profiles_read = {}
        self._embedder_recorded = check_embedder(self.store, self.embedder)
        organiser = Organiser(self.store, self.embedder, self.llm, ranking) if self.llm else None
        self._jobs = JobRunner(self.store, organiser, parts.jobs, lease)
        self.access_log = AccessLog(self.store)  # shared by tenant views, like the store

    @classmethod
    def from_config(cls, *, config_file: str | Path | None = None, **arguments: Any) -> Memory:
        """Build a memory from settings: defaults < config file < REMEM_* < arguments."""
        return cls(settings=Settings.resolve(config_file=config_file, **arguments))

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
        expires_at: datetime | str | None = None,
    ) -> AddResult:
        """Remember a text or a list of chat messages; each message becomes one episode
        (its notes expire at `expires_at` if given, a time in the future, else as the
        scope's default expiry says, see `set_default_expiry`)."""
        messages = parse_content(content)
        scope = self._scope(user_id, agent_id, session_id).require("add")
        request = operations.AddRequest(
            messages,
            scope,
            clock.parse_time(occurred_at),
            check_metadata(metadata),
            check_expiry(expires_at)
            if expires_at is not None
            else retention.expiry_for(self.store, scope),
        )
        changes = operations.add(
            request, self.store, self.embedder, actor=self.actor, organise=self.llm is not None
        )
        self._apply(changes)  # the episodes are durable from here on
        return operations.added(changes, self._jobs.after_add(changes))

    def delete(self, item_id: str) -> None:
        """Forget one note (with the episodes only it came from), or one episode with the
        notes made from it. History keeps what was deleted; `purge` erases it."""
        item_id = check_id(item_id)

        def change() -> Changes:
            if ids.kind_of(item_id) == ids.EPISODE:
                return operations.forget_episode(
                    self.episode(item_id), self.store, actor=self.actor
                )
            return operations.forget_note(self._live(item_id), self.store, actor=self.actor)

        self._write(change)

    def purge(self, item_id: str) -> None:
        """Erase one note (with the episodes only it came from) or one episode (with the
        notes made from it), deleted or not: their text, metadata, vectors, search index
        entries and history payloads. History keeps only that they were purged, when and
        by whom. This cannot be undone."""
        item_id = check_id(item_id)

        def change() -> Changes:
            if ids.kind_of(item_id) == ids.EPISODE:
                found = self.store.get_episodes([item_id])
                episode = self._record(found, item_id, "episode", live=False)
                purged = operations.purge_episode(episode, self.store, actor=self.actor)
                return self._dropping_profiles(purged, episode.scope)
            note = self._record(self.store.get_notes([item_id]), item_id, "memory", live=False)
            note = resolved(note, self.store)  # a merged note goes with what it was merged into
            purged = operations.purge_note(note, self.store, actor=self.actor)
            return self._dropping_profiles(purged, note.scope)

        self._write(change)

    def purge_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Erase every episode and note of the scope, deleted ones included (see `purge`);
        return how many records went."""
        scope = self._scope(user_id, agent_id, session_id).require("purge_all")
        erased: list[str] = []

        def change() -> Changes:
            purged = operations.purge_scope(scope, self.store, actor=self.actor)
            erased[:] = purged.purge
            return self._dropping_profiles(purged, scope)

        self._write(change)
        return len(erased)

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Forget every episode and note in the scope; return how many notes went."""
        scope = self._scope(user_id, agent_id, session_id).require("delete_all")
        changes = self._write(lambda: operations.forget_scope(scope, self.store, actor=self.actor))
        return sum(note.deleted_at is not None for note in changes.notes)  # not thoughts dropped

    def run_jobs(self) -> int:
        """Run pending jobs: embedding that failed, then organising by the language model
        (until one fails); return how many completed."""
        changes = self._write(
            lambda: operations.retry_embedding(self.store, self.embedder, actor=self.actor)
        )
        embedded = sum(job.status == "done" for job in changes.jobs)
        return embedded + sum(outcome.done for outcome in self._jobs.run_pending())

    def retry_failed_jobs(self) -> int:
        """Make jobs that failed too often pending again (after fixing the cause); return
        how many."""
        changes = operations.revive_failed_jobs(self.store)
        self._apply(changes)
        return len(changes.jobs)

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
        min_score: float = 0.0,
        explain: bool = False,
    ) -> builtins.list[Hit]:
        """The memories most relevant to `query` in the scope, best first, each with its
        relevance (`Hit.score`, 0 to 1), none below `min_score`, superseded facts only if
        `include_superseded`; `explain` gives each its score parts (`Hit.explanation`)."""
        return self._seen(
            hybrid_search(
                self.store,
                self.embedder,
                check_query(query, "search"),
                self._scope(user_id, agent_id, session_id).require("search"),
                check_limit(limit),
                check_filters(filters),
                self.ranking,
                include_superseded=bool(include_superseded),
                min_score=check_share(min_score, "min_score"),
                explain=bool(explain),
            )
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
        profile_share: float = 0.15,
        min_score: float = CONTEXT_FLOOR,
        min_top_score: float = 0.0,
    ) -> Context:
        """The prompt block a model needs now: who the person is (their profile, in at most
        `profile_share` of the budget; 0 leaves it out), the latest `recent_turns` of the
        session, then the memories most relevant to `query` (relevance >= `min_score`; none
        but pinned ones when no memory reaches `min_top_score`), dated, within
        `budget_tokens`."""
        scope = self._scope(user_id, agent_id, session_id).require("context")
        budget = check_count("budget_tokens", budget_tokens, MIN_BUDGET, MAX_BUDGET)
        share = check_share(profile_share)
        profile_id, profile_text = self._profile_lines(scope, budget) if share else ("", "")
        return self._seen_context(
            build_context(
                self.store,
                self.embedder,
                self.ranking,
                check_query(query, "context"),
                scope,
                budget,
                check_count("recent_turns", recent_turns, 0, MAX_LIMIT),
                check_count("memories", memories, 0, MAX_LIMIT),
                token_counts,
                profile_lines(profile_id, profile_text, clock.now()),
                share,
                check_share(min_score, "min_score"),
                check_share(min_top_score, "min_top_score"),
            )
        )

    def get(self, memory_id: str) -> Note:
        """One live note by id."""
        return self._seen_note(self._live(check_id(memory_id, "memory_id")))

    def episode(self, episode_id: str) -> Episode:
        """One live episode (a raw input, verbatim) by id."""
        episode_id = check_id(episode_id, "episode_id")
        found = self.store.get_episodes([episode_id])
        return self._record(found, episode_id, "episode", live=True)

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        order: str = "oldest",
        archived: bool = False,
    ) -> Page:
        """Live notes in the scope (all of them when no scope is given): by when they
        happened, "oldest" first (ties in the order added) or "newest", or "added".
        Archived and expired notes are left out; `archived` lists the archived ones."""
        scope = self._scope(user_id, agent_id, session_id)
        checked = check_cursor(cursor)
        notes, next_cursor = self.store.list_notes(
            scope, check_limit(limit), checked, check_order(order), bool(archived)
        )
        return Page(items=tuple(notes), cursor=next_cursor)

    def links(self, memory_id: str) -> builtins.list[Link]:
        """The links from and to one live note (relation, weight, reason, when made), oldest
        first; links to notes deleted since are left out."""
        note = self._live(check_id(memory_id, "memory_id"))
        links = self.store.links_of(note.id)
        others = self.store.get_notes([_other_end(link, note.id) for link in links])
        return [
            link
            for link in links
            if (other := others.get(_other_end(link, note.id))) is not None
            and other.deleted_at is None
            and other.scope.tenant == self.tenant
        ]

    def history(self, item_id: str) -> builtins.list[Event]:
        """Every recorded change to a note or episode, oldest first (deleted ones included)."""
        events = self.store.events(check_id(item_id))
        if not events or events[0].scope.tenant != self.tenant:
            raise NotFoundError("memory or episode", item_id)
        return events

    # -- moving memories -------------------------------------------------------------------

    def export(self, path: str | Path) -> int:
        """Write everything of this tenant, deleted records and history included, to a JSONL
        file."""
        target = Path(check_path(path, "export"))
        return export_jsonl(self.store, target, self.embedder.model_id, self.tenant)

    def import_file(
        self, path: str | Path, *, progress: Callable[[int], None] | None = None
    ) -> ImportResult:
        """Load an export; records already present (same id) are skipped."""
        source = Path(check_path(path, "import"))
        result = import_jsonl(self.store, source, self.embedder, self.tenant, progress)
        self._embedder_recorded = True
        return result

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self.access_log.close()  # the reads counted so far, before the store closes
        self._jobs.close()
        self.store.close()
        self.embedder.close()
        if self.llm is not None:
            self.llm.close()

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
        return make_scope(user_id, agent_id, session_id, self.tenant)

    def _write(self, change: Callable[[], Changes]) -> Changes:
        """Build a batch from what the store holds now and apply it; when a note it was
        built from changed before it committed (another process wrote it), build it again
        from the new state."""
        with self._writing:
            for attempt in range(WRITE_ATTEMPTS):
                changes = change()
                try:
                    self._apply(changes)
                    return changes
                except StaleWriteError as stale:
                    log.debug("a write raced another; building it again: %s", stale)
                    overtaken = stale
                    # a random pause, longer each time, so two writers stop meeting in step
                    time.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 6)))
            raise StoreError(f"gave up after {WRITE_ATTEMPTS} attempts: {overtaken}")

    def _record(self, found: Mapping[str, R], item_id: str, kind: str, *, live: bool) -> R:
        """A record of this tenant from a lookup by id; with `live`, not a deleted one."""
        record = found.get(item_id)
        if record is None or record.scope.tenant != self.tenant:
            raise NotFoundError(kind, item_id)
        if live and record.deleted_at is not None:
            raise NotFoundError(kind, item_id)
        return record

    def _dropping_profiles(self, purged: Changes, scope: Scope) -> Changes:
        """A purge with what its records fed: the profiles (a derived text must not keep
        what was erased; they are rebuilt from what is left) and the import ledgers'
        entries for them."""
        # every owner a purged record belonged to (a user's purge reaches their notes with
        # each agent), read from the purge's own events
        erased = list(purged.purge)
        for owner in {scope, *(event.scope for event in purged.events)}:
            dropped = invalidate_profiles(owner, self.store)
            purged.meta.update(dropped.meta)
            purged.purge.extend(i for i in dropped.purge if i not in purged.purge)
            ledgers = ledger_changes_for_purge(self.store, owner, erased)
            purged.meta.update(ledgers.meta)
            purged.expect_meta.update(ledgers.expect_meta)
        return purged

    def _apply(self, changes: Changes) -> None:
        if changes.vectors and not self._embedder_recorded:
            changes.meta["embedder"] = self.embedder.model_id
        changes.meta.update(profiles_outdated_by(changes))
        self.store.apply(changes)
        self._embedder_recorded = self._embedder_recorded or bool(changes.vectors)


def _other_end(link: Link, note_id: str) -> str:
    return link.target_id if link.source_id == note_id else link.source_id
