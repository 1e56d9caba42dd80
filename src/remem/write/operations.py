"""The write path's one entry point: one function per operation, each returning the
`Changes` that the store commits in one transaction (the mirror of `read/search.py`).

    memory -> write/operations -> ingest, organise, indexing, pipeline -> store.apply

Checks of caller input happen before (`remem.inputs`); running the organising job after
(`write/jobs`). Nothing here writes: a function reads what it needs and says what to write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from remem import clock
from remem.embedders.base import Embedder
from remem.errors import EmbedderError
from remem.inputs import Message
from remem.llms.base import Usage
from remem.stores.base import Changes, JobQueue, NoteRecord, Records, RecordsWithJobs, Retrieval
from remem.types import ORGANISE_JOB, AddResult, Episode, Job, Note, Scope
from remem.write.embedding import EMBED_JOB, embed_notes, failed_job, finished
from remem.write.indexing import index_notes
from remem.write.ingest import make_episodes, notes_from_episodes
from remem.write.merges import merged_into, restore_orphans
from remem.write.organise import enrich, similar_links
from remem.write.pipeline import Outcome, organise_job
from remem.write.thoughts import drop_thoughts, thoughts_to_purge
from remem.write.threads import assign_threads
from remem.write.versions import event, link_event, snapshot, update_action


@dataclass(frozen=True)
class AddRequest:
    """What a caller asked to remember, checked."""

    messages: Sequence[Message]
    scope: Scope
    occurred_at: datetime
    metadata: dict[str, Any]
    expires_at: datetime | None = None  # when its notes expire (checked: in the future)


def add(
    request: AddRequest, store: Retrieval, embedder: Embedder, *, actor: str, organise: bool
) -> Changes:
    """An episode and a note per message, organised without a model (keywords, dates,
    links); with `organise`, also the job that a language model will run."""
    episodes = make_episodes(request.messages, request.scope, request.occurred_at, request.metadata)
    notes = enrich(assign_threads(notes_from_episodes(episodes), store), store)
    if request.expires_at is not None:
        notes = [replace(note, expires_at=request.expires_at) for note in notes]
    changes = index_notes(notes, {episode.id: episode for episode in episodes}, embedder)
    changes.episodes = episodes
    changes.links = similar_links(notes, changes.vectors, store)
    changes.jobs += [organise_job(episodes)] if organise else []
    changes.events = [event("add", e.id, e.scope, actor) for e in episodes]
    changes.events += [event("add", n.id, n.scope, actor) for n in notes]
    changes.events += [link_event(link, request.scope, actor) for link in changes.links]
    return changes


def added(changes: Changes, outcome: Outcome | None) -> AddResult:
    """What an add reports, once its changes are committed and its organising job ran (or
    not: `outcome` None)."""
    organising = [job.id for job in changes.jobs if job.kind == ORGANISE_JOB]
    pending = [job.id for job in changes.jobs if job.kind != ORGANISE_JOB]
    if outcome is None or not outcome.done:
        pending += organising
    usage = outcome.usage if outcome is not None else Usage()
    return AddResult(
        episode_ids=tuple(episode.id for episode in changes.episodes),
        note_ids=tuple(note.id for note in changes.notes)
        + tuple(outcome.fact_ids if outcome else ()),
        pending_jobs=tuple(pending),
        llm_calls=usage.calls,
        llm_tokens=usage.tokens,
    )


def update(
    note: Note,
    text: str | None,
    metadata: dict[str, Any] | None,
    store: Records,
    embedder: Embedder,
    *,
    actor: str,
) -> Changes:
    """A new version of `note` with a new text and/or new metadata (re-embedded when the
    text changed; the thoughts resting on it are then dropped, see `write/thoughts`)."""
    updated = replace(
        note,
        text=note.text if text is None else text,
        metadata=note.metadata if metadata is None else metadata,
        version=note.version + 1,
        updated_at=clock.now(),
    )
    changed_text = updated.text != note.text
    changes = index_notes(
        [updated],
        store.get_episodes(updated.episode_ids),
        embedder,
        embed=[updated] if changed_text else [],
    )
    action = update_action(note, updated)
    changes.events = [event(action, note.id, note.scope, actor, snapshot(note), snapshot(updated))]
    changes.expect = {note.id: note.version}  # no other update in between, no delete
    return drop_thoughts(changes, [note], store, actor, "edited") if changed_text else changes


def forget_note(note: Note, store: Records, *, actor: str) -> Changes:
    """Delete a note (with the live notes merged into it) and the live episodes no other
    live note was made from."""
    group = [note, *(n for n in merged_into([note], store) if n.deleted_at is None)]
    episodes = store.get_episodes(_sources_only_of(group, store))
    alone = [episode for episode in episodes.values() if episode.deleted_at is None]
    return _deletion(alone, group, store, actor)


def _sources_only_of(notes: Sequence[Note], store: Records) -> list[str]:
    """The episodes of these notes that no other live note was made from."""
    inside = {note.id for note in notes}
    sources = list(dict.fromkeys(e for note in notes for e in note.episode_ids))
    shared = {
        episode_id
        for other in store.notes_of_episodes(sources)
        if other.id not in inside
        for episode_id in other.episode_ids
    }
    return [episode_id for episode_id in sources if episode_id not in shared]


def forget_episode(episode: Episode, store: Records, *, actor: str) -> Changes:
    """Delete an episode and the live notes made from it."""
    return _deletion([episode], store.notes_of_episodes([episode.id]), store, actor)


def forget_scope(scope: Scope, store: Records, *, actor: str) -> Changes:
    """Delete every live episode and note of a scope."""
    episode_ids, note_ids = store.live_ids(scope)
    episodes = list(store.get_episodes(episode_ids).values())
    return _deletion(episodes, list(store.get_notes(note_ids).values()), store, actor)


def _deletion(
    episodes: Sequence[Episode], notes: Sequence[Note], store: Records, actor: str
) -> Changes:
    """Delete these episodes and notes, and supersede the thoughts resting on the notes."""
    moment = clock.now()
    deleted = Changes(
        episodes=[replace(e, deleted_at=moment) for e in episodes],
        notes=[replace(n, deleted_at=moment) for n in notes],
        events=[event("delete", e.id, e.scope, actor) for e in episodes]
        + [event("delete", n.id, n.scope, actor, snapshot(n)) for n in notes],
        expect={note.id: note.version for note in notes},  # tombstones of what is current
    )
    restore_orphans(deleted, notes, store, actor)
    return drop_thoughts(deleted, notes, store, actor, "deleted")


def purge_note(note: Note, store: RecordsWithJobs, *, actor: str) -> Changes:
    """Erase a note (live or deleted) with the notes merged into it, the episodes no other
    live note was made from, and every note made from those."""
    group = [note, *merged_into([note], store)]
    alone = _sources_only_of(group, store)
    derived = store.notes_of_episodes(alone, include_deleted=True)
    erased = {n.id: n for n in [*group, *derived]}
    return _erasure(list(store.get_episodes(alone).values()), list(erased.values()), store, actor)


def purge_episode(episode: Episode, store: RecordsWithJobs, *, actor: str) -> Changes:
    """Erase an episode (live or deleted) and every note made from it."""
    notes = store.notes_of_episodes([episode.id], include_deleted=True)
    return _erasure([episode], notes, store, actor)


def purge_scope(scope: Scope, store: RecordsWithJobs, *, actor: str) -> Changes:
    """Erase every episode and note of a scope, deleted ones included."""
    episode_ids, note_ids = store.live_ids(scope, include_deleted=True)
    episodes = list(store.get_episodes(episode_ids).values())
    return _erasure(episodes, list(store.get_notes(note_ids).values()), store, actor)


def _erasure(
    episodes: Sequence[Episode], notes: Sequence[Note], store: RecordsWithJobs, actor: str
) -> Changes:
    """What a purge writes: the ids to erase, one event each saying only that, and new
    organising jobs for the rest of any batch a purged episode was waiting in; with the
    thoughts resting on the notes (see `write/thoughts`)."""
    notes = [*notes, *thoughts_to_purge(notes, store)]
    records = {e.id: e.scope for e in episodes} | {n.id: n.scope for n in notes}
    erased = Changes(
        purge=list(records),
        events=[event("purge", item_id, scope, actor) for item_id, scope in records.items()],
        expect={note.id: note.version for note in notes if note.deleted_at is None},
        jobs=_organise_the_rest(store, {episode.id for episode in episodes}),
    )
    restore_orphans(erased, notes, store, actor)
    return drop_thoughts(erased, notes, store, actor, "purged")


def _organise_the_rest(store: RecordsWithJobs, purged: set[str]) -> list[Job]:
    """A waiting organise job names its whole batch, and its checkpoints may quote a
    purged turn, so the purge drops it: the batch's other live episodes get a new one."""
    jobs = []
    for job in [*store.jobs("pending"), *store.jobs("failed")]:
        batch = job.payload.get("episodes", []) if job.kind == ORGANISE_JOB else []
        if purged.isdisjoint(batch):
            continue
        found = store.get_episodes([e for e in batch if e not in purged])
        rest = [found[e] for e in batch if e in found and found[e].deleted_at is None]
        jobs += [organise_job(rest)] if rest else []
    return jobs


def retry_embedding(store: RecordsWithJobs, embedder: Embedder, *, actor: str) -> Changes:
    """Embed the notes whose embedding failed: their vectors and their jobs done, or, when
    the embedder fails again, each job one attempt more."""
    pending = [job for job in store.jobs("pending") if job.kind == EMBED_JOB]
    notes = store.get_notes([job.target_id for job in pending])
    live = [note for note in notes.values() if note.deleted_at is None]
    try:
        made = embed_notes(embedder, live)
    except EmbedderError as error:
        return Changes(jobs=[failed_job(job.target_id, str(error), job) for job in pending])
    return Changes(
        vectors=dict(made.vectors),
        sentence_vectors=dict(made.sentence_vectors),
        jobs=[finished(job) for job in pending],
        events=[event("embed", note.id, note.scope, actor) for note in live],
        expect={note.id: note.version for note in live},  # the text embedded is current
    )


def revive_failed_jobs(store: JobQueue) -> Changes:
    """Make every job that failed too often pending again, with its attempts reset."""
    revived: list[Job] = [
        replace(job, status="pending", attempts=0, updated_at=clock.now())
        for job in store.jobs("failed")
    ]
    return Changes(jobs=revived)


def import_batch(
    records: Changes, given: Mapping[str, NoteRecord], store: Records, embedder: Embedder | None
) -> Changes:
    """New records from an export or another store, indexed: the vectors `given` are kept,
    other live notes are embedded when an `embedder` is passed (a copy without one leaves
    them to the embedding jobs it copies)."""
    sources = {episode.id: episode for episode in records.episodes}
    wanted = [e for note in records.notes for e in note.episode_ids if e not in sources]
    sources.update(store.get_episodes(wanted))
    vectors = {i: stored.vector for i, stored in given.items() if stored.vector is not None}
    sentences = {
        i: stored.sentences
        for i, stored in given.items()
        if stored.vector is not None and stored.sentences is not None
    }
    missing = [n for n in records.notes if n.id not in vectors and n.deleted_at is None]
    changes = index_notes(records.notes, sources, embedder, embed=missing, queue_failures=False)
    return replace(
        records,
        bodies=changes.bodies,
        vectors={**changes.vectors, **vectors},
        sentence_vectors={**changes.sentence_vectors, **sentences},
    )
