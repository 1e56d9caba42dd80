"""Thoughts (Think-in-Memory): conclusions stored as notes of kind `thought`, each linked
(`rests_on`) to the notes it rests on.

A thought is inserted like a fact (its text in full-text search, its vector), merged when
it repeats a live thought of the same owner (the new evidence is linked to the earlier
one, and an event records it), and dropped when its evidence goes: every write that
supersedes, deletes, archives or edits the text of a note calls `drop_thoughts`, which
supersedes (never deletes) the live thoughts resting on it, and the thoughts resting on
those, in the same batch. A thought therefore never outlives its evidence:

- an edit of the evidence's text drops it (it rests on a statement no longer made); an
  edit of only its metadata or expiry does not;
- archiving the evidence drops it like a deletion: an archived note is out of search and
  context, and a live thought would keep saying what it said there. `unarchive` does not
  bring the thought back (nothing re-checks that the conclusion still follows; think it
  again);
- a purge erases the thoughts resting on what it erases (`thoughts_to_purge`), and those
  resting on them, whatever their state: their text may restate what was erased;
- a thought expires no later than its evidence does (the earliest `expires_at` of its
  evidence when it is made), and archived or expired notes are refused as evidence.

A batch that drops thoughts names the notes they rested on (`Changes.evidence_changed`):
the store commits it only while no other live thought rests on them, so a thought that
another process made meanwhile makes the batch be built again, with that thought too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from remem import clock, ids
from remem.embedders.base import Embedder, Vectors
from remem.errors import InvalidInputError, NotFoundError
from remem.read.query import search_terms
from remem.stores.base import Changes, Records, RecordsWithRetrieval
from remem.types import Link, Note, Scope
from remem.write.indexing import index_notes
from remem.write.ingest import index_text
from remem.write.organise import enrich
from remem.write.versions import event, link_event, snapshot

THOUGHT: Literal["thought"] = "thought"
RESTS_ON = "rests_on"
# Cosine of two thoughts' vectors from which the second says the first again. MiniLM puts
# paraphrases at 0.6-0.9 and a sentence and its negation near 0.9, so merging is left to
# near-identical wordings: anything less is kept as a thought of its own.
SAME_THOUGHT = 0.97
# earlier notes of the owner each retriever proposes as the thought a new one may repeat
CANDIDATES = 50
_TRAILING = re.compile(r"[\s.!;,]+$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ThinkRequest:
    """A conclusion a caller asked to remember, checked."""

    text: str
    evidence_ids: tuple[str, ...]
    scope: Scope
    occurred_at: datetime
    metadata: dict[str, Any]


def think(
    request: ThinkRequest, store: RecordsWithRetrieval, embedder: Embedder, *, actor: str
) -> tuple[Changes, Note]:
    """A new thought linked to its evidence, or, when it repeats a live thought of the same
    owner, the links of its new evidence to that one; and the thought either way."""
    evidence = _evidence(request, store)
    (note,) = enrich([_note(request, evidence)], store)  # keywords, relative dates resolved
    changes = index_notes([note], {}, embedder)
    earlier = _repeated(note, changes.vectors.get(note.id), store)
    expect = {e.id: e.version for e in evidence}  # each still live, as read, at commit
    if earlier is not None:
        merged = _merge(earlier, request, evidence, store, actor)
        merged.expect = {**expect, earlier.id: earlier.version}
        return merged, earlier
    changes.links = [_link(note.id, e.id, note.created_at) for e in evidence]
    after = {"evidence_ids": list(request.evidence_ids)}
    changes.events = [event("add", note.id, note.scope, actor, after=after)]
    changes.events += [link_event(link, note.scope, actor) for link in changes.links]
    changes.expect = expect
    return changes, note


def drop_thoughts(
    changes: Changes,
    gone: Sequence[Note],
    store: Records,
    actor: str,
    why: str,
    replaced_by: Mapping[str, str] | None = None,
) -> Changes:
    """`changes`, which supersede, delete or purge the `gone` notes, with every live
    thought resting on one of them (and on such a thought, and so on) superseded too:
    `superseded_by` names what replaced the evidence (`replaced_by`), else the evidence."""
    moment = clock.now()
    changes.evidence_changed.update({note.id: note.scope for note in gone})
    batch = {note.id: index for index, note in enumerate(changes.notes)}
    leaving = {*changes.purge, *(note.id for note in gone)}
    leaving |= {n.id for n in changes.notes if n.deleted_at is not None or n.superseded_by}
    frontier = {note.id: note for note in gone}
    while frontier:  # to the end of the chain: each thought is dropped once (`leaving`)
        dropped: dict[str, Note] = {}
        for link, thought in _resting_on(frontier, store):
            if thought.id in leaving:
                continue
            cause = (replaced_by or {}).get(link.target_id, link.target_id)
            current = changes.notes[batch[thought.id]] if thought.id in batch else thought
            new = replace(current, superseded_by=cause, valid_to=moment, updated_at=moment)
            if thought.id in batch:  # already rewritten by this batch: that version changes
                changes.notes[batch[thought.id]] = new
            else:
                new = replace(new, version=thought.version + 1)
                batch[thought.id] = len(changes.notes)
                changes.notes.append(new)
                changes.expect.setdefault(thought.id, thought.version)
            changes.bodies[thought.id] = index_text(new, {})
            reason = f"the memory it rests on, {link.target_id}, was {why}"
            after = {**snapshot(new), "reason": reason}
            changes.events.append(
                event("supersede", thought.id, thought.scope, actor, snapshot(thought), after)
            )
            leaving.add(thought.id)
            dropped[thought.id] = new
            # a thought concluded on it meanwhile by another process must go too: retry
            changes.evidence_changed[thought.id] = thought.scope
        frontier = dropped
    return changes


def drop_outdated(
    changes: Changes, before: Mapping[str, Note], store: Records, actor: str
) -> Changes:
    """`changes` of the organising pipeline, which supersede or rewrite some of the notes
    `before` held, with the thoughts resting on those superseded too (by what replaced the
    evidence, or by the evidence whose text changed)."""
    superseded = [
        note
        for note in changes.notes
        if note.superseded_by and note.id in before and before[note.id].superseded_by is None
    ]
    replaced_by = {note.id: note.superseded_by or note.id for note in superseded}
    drop_thoughts(changes, superseded, store, actor, "superseded", replaced_by)
    edited = [
        note
        for note in changes.notes
        if note.id in before and note.id not in replaced_by and note.text != before[note.id].text
    ]
    return drop_thoughts(changes, edited, store, actor, "edited") if edited else changes


def thoughts_to_purge(notes: Sequence[Note], store: Records) -> list[Note]:
    """Every thought resting on one of `notes` (live, superseded or deleted), and on such a
    thought, and so on: a purge of `notes` erases them too, since their text may restate
    what is erased. Those among `notes` are not repeated."""
    seen = {note.id for note in notes}
    found: list[Note] = []
    frontier = {note.id: note for note in notes}
    while frontier:  # to the end of the chain: `seen` stops a cycle
        frontier = {
            thought.id: thought
            for _, thought in _resting_on(frontier, store, live=False)
            if thought.id not in seen
        }
        seen |= set(frontier)
        found += frontier.values()
    return found


def owner_of(scope: Scope) -> tuple[str, str, str]:
    """Whose memory a scope is: its tenant and its user, else its agent, else its session
    (a thought and its evidence share it, so they share a shard on Citus)."""
    for name in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, name)
        if value:
            return scope.tenant, name, value
    return scope.tenant, "", ""


def normalised(text: str) -> str:
    """A thought's text as two wordings of the same conclusion compare: case, runs of
    spaces and closing punctuation aside."""
    return _TRAILING.sub("", _SPACES.sub(" ", text.casefold())).strip()


# -- helpers -------------------------------------------------------------------------------


def _evidence(request: ThinkRequest, store: Records) -> list[Note]:
    """The evidence notes: each live, of the caller's tenant (else not found, as `get`
    says), of the thought's owner, and not superseded."""
    found = store.get_notes(request.evidence_ids)
    evidence = []
    for index, note_id in enumerate(request.evidence_ids):
        note = found.get(note_id)
        if note is None or note.scope.tenant != request.scope.tenant or note.deleted_at:
            raise NotFoundError("memory", note_id)
        where = f"evidence_ids[{index}]: memory {note_id!r}"
        if owner_of(note.scope) != owner_of(request.scope):
            _, name, value = owner_of(request.scope)
            raise InvalidInputError(
                f"{where} is not in the memory of {name} {value!r}: a conclusion rests on"
                " memories of the one it is about"
            )
        if note.superseded_by is not None:
            raise InvalidInputError(
                f"{where} was superseded by {note.superseded_by!r}: rest the conclusion on"
                " what holds now"
            )
        if note.archived_at is not None:
            raise InvalidInputError(f"{where} is archived: unarchive it first")
        if note.expires_at is not None and note.expires_at <= clock.now():
            raise InvalidInputError(f"{where} has expired")
        evidence.append(note)
    return evidence


def _note(request: ThinkRequest, evidence: Sequence[Note]) -> Note:
    moment = clock.now()
    expiries = [e.expires_at for e in evidence if e.expires_at is not None]
    return Note(
        id=ids.new_id(ids.NOTE),
        scope=request.scope,
        text=request.text,
        metadata=request.metadata,
        occurred_at=request.occurred_at,
        created_at=moment,
        updated_at=moment,
        version=1,
        episode_ids=(),
        valid_from=request.occurred_at,
        kind=THOUGHT,
        expires_at=min(expiries, default=None),  # it never outlives its evidence
    )


def _repeated(note: Note, vector: Vectors | None, store: RecordsWithRetrieval) -> Note | None:
    """The live thought of the note's owner that says what it says, if there is one: the
    same text (see `normalised`), or a vector at least SAME_THOUGHT close."""
    owner = note.scope.across_sessions()
    close = dict(store.search_vector(vector, owner, CANDIDATES)) if vector is not None else {}
    worded = store.search_text(search_terms(note.text), owner, CANDIDATES, lambda: list(close)).note
    candidates = [*close, *(i for i, _ in worded if i not in close)]
    found = store.get_notes(candidates)
    wording = normalised(note.text)
    for candidate in candidates:
        other = found.get(candidate)
        if (
            other is None
            or other.kind != THOUGHT
            or other.deleted_at is not None
            or other.superseded_by is not None
            or (other.scope.user_id, other.scope.agent_id, other.scope.tenant)
            != (note.scope.user_id, note.scope.agent_id, note.scope.tenant)
        ):
            continue
        if normalised(other.text) == wording or close.get(candidate, 0.0) >= SAME_THOUGHT:
            return other
    return None


def _merge(
    earlier: Note, request: ThinkRequest, evidence: Sequence[Note], store: Records, actor: str
) -> Changes:
    """A repeated thought: links from the earlier one to the evidence it did not rest on
    yet, and an event saying it was concluded again."""
    linked = {link.target_id for link in store.links_of(earlier.id) if link.relation == RESTS_ON}
    moment = clock.now()
    links = [_link(earlier.id, e.id, moment) for e in evidence if e.id not in linked]
    said = {
        "text": request.text,
        "evidence_ids": list(request.evidence_ids),
        "added_evidence": [link.target_id for link in links],
    }
    return Changes(
        links=links,
        events=[
            event("merge", earlier.id, earlier.scope, actor, after=said),
            *(link_event(link, earlier.scope, actor) for link in links),
        ],
    )


def _link(thought_id: str, evidence_id: str, moment: datetime) -> Link:
    reason = "a conclusion resting on this memory"
    return Link(ids.new_id(ids.LINK), thought_id, evidence_id, RESTS_ON, 1.0, reason, moment)


def _resting_on(
    frontier: Mapping[str, Note], store: Records, *, live: bool = True
) -> list[tuple[Link, Note]]:
    """(link, thought) for each thought linked `rests_on` to a note of `frontier`: only the
    live ones (not deleted, not superseded) with `live`."""
    links: list[Link] = []
    by_owner: dict[tuple[str, str, str], list[Note]] = {}
    for note in frontier.values():
        by_owner.setdefault(owner_of(note.scope), []).append(note)
    for notes in by_owner.values():  # a thought's links are its (and its evidence's) owner's
        links += store.links_to([n.id for n in notes], RESTS_ON, notes[0].scope)
    thoughts = store.get_notes(list({link.source_id for link in links}))
    return [
        (link, thought)
        for link in links
        if (thought := thoughts.get(link.source_id)) is not None
        and thought.kind == THOUGHT
        and (not live or (thought.deleted_at is None and thought.superseded_by is None))
        and thought.scope.tenant == frontier[link.target_id].scope.tenant
    ]
