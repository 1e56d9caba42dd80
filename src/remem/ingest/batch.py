"""One batch of a file's steps as the `Changes` the store commits at once: new episodes and
notes (embedded together), new versions of changed notes, deletions of gone chunks, their
history, organising jobs when a model is set, and the ledger pages they touched."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from remem import clock
from remem.embedders.base import Embedder
from remem.ingest.ledger import Entry, Ledger, key_digest
from remem.ingest.plan import Step
from remem.ingest.records import Chunk
from remem.inputs import MAX_METADATA_BYTES, check_metadata
from remem.stores.base import Changes, RecordsWithRetrieval
from remem.types import Episode, Event, Job, Note, Scope
from remem.write.indexing import index_notes
from remem.write.ingest import notes_from_episodes
from remem.write.organise import enrich, similar_links
from remem.write.pipeline import organise_job
from remem.write.thoughts import drop_thoughts
from remem.write.versions import event, link_event, snapshot, update_action

ORGANISE_TURNS = 32  # episodes per organising job: one model call reads them together
ORGANISE_CHARS = 12_000  # ...and at most about this much of their text


@dataclass(frozen=True)
class Target:
    """Where ingested chunks go: the store, the embedder, the owner (tenant, user and/or
    agent; each chunk adds its session), who writes, and whether a model organises them."""

    store: RecordsWithRetrieval
    embedder: Embedder
    owner: Scope
    actor: str
    organise: bool


@dataclass(frozen=True)
class FileFacts:
    """What every chunk of one file shares in its provenance."""

    format: str
    path: str
    fallback_time: datetime


def batch_changes(
    steps: Sequence[Step], facts: FileFacts, target: Target, ledger: Ledger
) -> Changes:
    """The writes of `steps` (a batch of one file's); the steps are recorded in `ledger`,
    whose `flush` the caller adds to these changes."""
    moment = clock.now()
    fresh = {s.note_id: _episode(s, facts, target.owner, moment) for s in steps if _writes(s)}
    added = [
        replace(notes_from_episodes([fresh[s.note_id]])[0], id=s.note_id)
        for s in steps
        if s.action == "add"
    ]
    changed = [
        (s.note, _version(s, fresh[s.note_id], moment))
        for s in steps
        if _updates(s) and s.note is not None
    ]
    organised = enrich([*added, *(after for _, after in changed)], target.store)
    by_id = {note.id: note for note in organised}
    added = [by_id[note.id] for note in added]
    changed = [(before, by_id[after.id]) for before, after in changed]
    embed = added + [after for before, after in changed if after.text != before.text]
    gone = [s for s in steps if s.action == "remove"]
    retired = [s.entry.episode_id for s in steps if s.entry and s.action in ("update", "remove")]
    old_episodes = target.store.get_episodes(retired)
    changes = index_notes(
        [*added, *(after for _, after in changed), *_deleted(gone, moment)],
        {episode.id: episode for episode in fresh.values()},
        target.embedder,
        embed=embed,
    )
    changes.episodes = [*fresh.values(), *_retired(old_episodes.values(), moment)]
    changes.links = similar_links(added, changes.vectors, target.store)
    changes.events = _events(fresh.values(), added, changed, gone, old_episodes, target)
    changes.events += [link_event(link, target.owner, target.actor) for link in changes.links]
    changes.expect = {  # neither changed nor deleted by anyone since it was read
        s.note.id: s.note.version
        for s in steps
        if s.note is not None and s.action in ("update", "remove")
    }
    changes.jobs += _organise_jobs(list(fresh.values())) if target.organise else []
    removed = [s.note for s in gone if s.note is not None]
    drop_thoughts(changes, removed, target.store, target.actor, "deleted")  # with its chunk
    edited = [before for before, after in changed if after.text != before.text]
    drop_thoughts(changes, edited, target.store, target.actor, "edited")  # a rewritten chunk
    _record(steps, ledger)  # the caller flushes it into these changes
    return changes


def _writes(step: Step) -> bool:
    return step.action in ("add", "update")


def _updates(step: Step) -> bool:
    return step.action == "update"


def _episode(step: Step, facts: FileFacts, owner: Scope, moment: datetime) -> Episode:
    chunk = step.chunk
    assert chunk is not None
    return Episode(
        id=step.episode_id,
        scope=Scope(owner.user_id, owner.agent_id, chunk.session, owner.tenant),
        text=chunk.text,
        role=chunk.role,
        name=chunk.name,
        metadata=provenance(chunk, facts, step.hash),
        occurred_at=chunk.occurred_at or facts.fallback_time,
        recorded_at=moment,
    )


def provenance(chunk: Chunk, facts: FileFacts, chunk_hash: str) -> dict[str, Any]:
    """The chunk's metadata with where it came from (format, path, place, hash); what the
    file said of itself is dropped when it is too large to keep."""
    source = {"source": facts.format, "path": facts.path, "chunk": chunk.key}
    source["chunk_hash"] = chunk_hash
    whole = {**chunk.metadata, **source}
    # parsers make JSON values of storable strings a few levels deep: only the size is left
    # to check, without the full walk of `check_metadata`
    size = len(json.dumps(whole, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return whole if size <= MAX_METADATA_BYTES else check_metadata(source)


def _version(step: Step, episode: Episode, moment: datetime) -> Note:
    """The next version of a changed chunk's note, made from its new episode."""
    assert step.note is not None
    return replace(
        step.note,
        text=episode.text,
        metadata=dict(episode.metadata),
        episode_ids=(episode.id,),
        occurred_at=episode.occurred_at,
        valid_from=episode.occurred_at,
        version=step.note.version + 1,
        updated_at=moment,
    )


def _deleted(gone: Sequence[Step], moment: datetime) -> list[Note]:
    return [replace(s.note, deleted_at=moment) for s in gone if s.note is not None]


def _retired(episodes: Iterable[Episode], moment: datetime) -> list[Episode]:
    """The episodes of changed and gone chunks, deleted (history keeps them)."""
    return [replace(e, deleted_at=moment) for e in episodes if e.deleted_at is None]


def _events(
    fresh: Iterable[Episode],
    added: Sequence[Note],
    changed: Sequence[tuple[Note | None, Note]],
    gone: Sequence[Step],
    old_episodes: dict[str, Episode],
    target: Target,
) -> list[Event]:
    actor = target.actor
    made = [event("add", e.id, e.scope, actor) for e in fresh]
    made += [event("add", n.id, n.scope, actor) for n in added]
    for before, after in changed:
        assert before is not None
        action = update_action(before, after)
        made.append(event(action, after.id, after.scope, actor, snapshot(before), snapshot(after)))
    made += [
        event("delete", s.note.id, s.note.scope, actor, snapshot(s.note)) for s in gone if s.note
    ]
    made += [
        event("delete", e.id, e.scope, actor) for e in old_episodes.values() if e.deleted_at is None
    ]
    return made


def _organise_jobs(episodes: Sequence[Episode]) -> list[Job]:
    """Organising jobs for new episodes: per session, in runs a model reads at once."""
    sessions: dict[str | None, list[Episode]] = defaultdict(list)
    for episode in episodes:
        sessions[episode.scope.session_id].append(episode)
    jobs: list[Job] = []
    for run in sessions.values():
        group: list[Episode] = []
        for episode in run:
            size = sum(len(e.text) for e in group) + len(episode.text)
            if group and (len(group) >= ORGANISE_TURNS or size > ORGANISE_CHARS):
                jobs.append(organise_job(group))
                group = []
            group.append(episode)
        jobs += [organise_job(group)] if group else []
    return jobs


def _record(steps: Sequence[Step], ledger: Ledger) -> None:
    for step in steps:
        if step.action in ("remove", "drop"):
            ledger.drop(step.note_id)
        elif step.chunk is not None:
            entry = Entry(key_digest(step.chunk.key), step.hash, step.episode_id, step.note_id)
            if entry != step.entry:  # a chunk that did not move needs no new page
                ledger.put(entry)
