"""Keeping a person's profile current: what changed in the owner's notes since the last
refresh goes through topics, attributes and the biography, and comes out as one batch
(the saved profile and its history event).

The notes are the truth; the profile is derived from them and can always be rebuilt. A
refresh compares the ids the topics hold with the live notes of the owner, so notes added,
deleted or purged since (by this process or another) are all seen, whatever order they
committed in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from remem import clock
from remem.embedders.base import Vectors
from remem.errors import InvalidInputError
from remem.llms import LLM
from remem.llms.base import Usage
from remem.profile import attributes as found_attributes
from remem.profile import biography as biographies
from remem.profile import naming
from remem.profile import state as saved
from remem.profile.state import ProfileDoc
from remem.profile.topics import TopicInput, TopicState, rebuild_topics, topics_of, update_topics
from remem.stores.base import Changes, Records
from remem.types import Attribute, Biography, Episode, Note, Profile, Scope, Statement
from remem.write.versions import event

# how many notes are read at a time while catching up
BATCH = 500
# the biography a model writes is written again once this many notes are new (or this share)
REWRITE_AFTER_NOTES = 20
REWRITE_AFTER_SHARE = 0.2
# notes a model reads for attributes in one refresh (in calls of MODEL_BATCH): the rest wait,
# marked unread in the saved profile, for the next refresh
MODEL_NOTES_PER_REFRESH = 200
MODEL_BATCH = 40
# "recent" for the status part of the biography
RECENT = timedelta(days=7)
RECENT_NOTES = 20


class ProfileStore(Records, Protocol):
    """What the profile reads: records, and the vectors notes were embedded to."""

    def vectors_of(self, ids: Sequence[str]) -> dict[str, Vectors]: ...


@dataclass(frozen=True)
class Refresh:
    """A refreshed profile and the batch that saves it (None: nothing changed)."""

    doc: ProfileDoc
    changes: Changes | None
    usage: Usage = field(default_factory=Usage)
    base: int = 0  # the saved version it was built from (0: none)


def owner_of(scope: Scope) -> Scope:
    """A profile belongs to a user or an agent, across their sessions."""
    return Scope(user_id=scope.user_id, agent_id=scope.agent_id, tenant=scope.tenant)


def stored(store: Records, scope: Scope) -> ProfileDoc | None:
    """The profile as last saved, without refreshing it."""
    return saved.load(store.get_meta(saved.key_of(owner_of(scope))))


def refresh(
    store: ProfileStore,
    scope: Scope,
    *,
    person: str | None,
    now: datetime,
    actor: str,
    llm: LLM | None = None,
    rebuild: bool = False,
    max_new: int | None = None,
) -> Refresh:
    """The owner's profile brought up to date with their live notes. With `max_new`, a
    refresh that would have to place more new notes than that is left for later (a
    context must stay fast; `Memory.profile` does the whole work)."""
    owner = owner_of(scope)
    before = stored(store, owner)
    base = before.version if before else 0
    doc = _start(before, owner, person, rebuild=rebuild)
    state = _topic_state(doc)
    live = set(store.live_ids(owner, visible=True)[1])  # archived, expired: left out
    placed = state.note_ids if state else frozenset()
    added_ids, removed = sorted(live - placed), placed - live
    if (max_new is not None and len(added_ids) > max_new) or (before is None and not live):
        return Refresh(doc, None, base=base)  # too much for now, or nothing to keep
    unread = _unread_by_model(doc, live) if llm is not None else []
    if not (added_ids or removed or unread) and doc.version and not _model_due(doc, llm, live):
        return Refresh(doc, None, base=base)
    doc = _without_evidence(doc, removed)
    added = _read_notes(store, added_ids)
    state = _placed(state, _topic_inputs(store, added), removed, now)
    attributes = _attributes(store, doc.attributes, added, removed, doc.person)
    new, usage = _written(store, owner, doc, state, attributes, live, unread, now, llm)
    changes = Changes(meta={saved.key_of(owner): saved.dump(new)})
    if before is None or _told(new) != _told(before):  # not every placed note: noise
        changes.events.append(_event(before, new, owner, actor))
    return Refresh(new, changes, usage, base=base)


def _without_evidence(doc: ProfileDoc, removed: Set[str]) -> ProfileDoc:
    """The biography without what rests only on forgotten notes: a sentence loses their
    ids, and goes when none is left (a model's is then due to be written again)."""
    biography = doc.biography
    if biography is None or not removed:
        return doc

    def kept(statements: Sequence[Statement]) -> tuple[Statement, ...]:
        pruned = (
            Statement(s.text, tuple(i for i in s.note_ids if i not in removed)) for s in statements
        )
        return tuple(s for s in pruned if s.note_ids)

    sentences, status = kept(biography.sentences), kept(biography.status)
    if (sentences, status) == (biography.sentences, biography.status):
        return doc
    text = " ".join(s.text for s in sentences)
    pruned = replace(biography, text=text, sentences=sentences, status=status)
    return doc.with_changes(biography=pruned, extra={**doc.extra, "biography_stale": True})


def _start(
    before: ProfileDoc | None, owner: Scope, person: str | None, *, rebuild: bool
) -> ProfileDoc:
    """The saved profile to continue from (a new one when none), for `person` (None: as
    before; never named, the person is whoever speaks as the user)."""
    person = person or (before.person if before else None)
    doc = before or saved.new_doc(person)
    if rebuild or doc.person != person:  # attributes are read from the person's own words
        doc = doc.with_changes(person=person, topics=None, attributes=(), extra={})
    return doc


def _placed(
    state: TopicState | None, inputs: Sequence[TopicInput], removed: Set[str], now: datetime
) -> TopicState:
    if state is None:
        return rebuild_topics(inputs, now)
    try:
        return update_topics(state, inputs, removed, now)
    except InvalidInputError:  # vectors of another size: the embedder changed since
        return rebuild_topics(inputs, now)


def _written(
    store: Records,
    owner: Scope,
    doc: ProfileDoc,
    state: TopicState,
    attributes: list[Attribute],
    live: set[str],
    unread: Sequence[str],
    now: datetime,
    llm: LLM | None,
) -> tuple[ProfileDoc, Usage]:
    """The next version of the profile: with a model, what it reads of unread notes, the
    names of topics that changed, and a biography when enough has changed."""
    usage, extra = Usage(), dict(doc.extra)
    if llm is not None:
        read: list[str] = []
        if unread:
            attributes, read, usage = _model_attributes(store, llm, attributes, unread, doc.person)
        extra["model_read"] = sorted(set(extra.get("model_read", ())) & live | set(read))
        names, named = naming.name_changed(
            lambda ids: _read_notes(store, ids),
            llm,
            topics_of(state, now),
            extra.get("topic_names"),
        )
        extra["topic_names"], usage = names, usage + named
    biography, written = _biography(store, owner, doc, state, attributes, now, llm, len(live))
    if biography.by == "model" and biography is not doc.biography:
        extra.pop("biography_stale", None)
    new = doc.with_changes(
        version=doc.version + 1,
        updated_at=now,
        topics=state.to_json(),
        attributes=tuple(attributes),
        biography=biography,
        biography_notes=len(live) if biography is not doc.biography else doc.biography_notes,
        notes_seen=len(live),
        extra=extra,
    )
    return new, usage + written


def profile_of(doc: ProfileDoc, scope: Scope, now: datetime) -> Profile:
    """The public record of a saved profile."""

    state = _topic_state(doc)
    names = doc.extra.get("topic_names") or {}
    return Profile(
        id=doc.id,
        scope=owner_of(scope),
        topics=tuple(naming.named(topic, names.get(topic.id)) for topic in topics_of(state, now))
        if state
        else (),
        attributes=tuple(found_attributes.current(doc.attributes)),
        biography=doc.biography or _empty_biography(now),
        version=doc.version,
        updated_at=doc.updated_at or now,
        notes_seen=doc.notes_seen,
        person=doc.person,
        attribute_history=tuple(doc.attributes),
    )


def outdated_by(changes: Changes) -> dict[str, str]:
    """Marks for the profiles a batch's forgotten notes fed (meta key -> when): a context
    then brings the profile up to date at once instead of within FRESH_ENOUGH, so what
    a person forgot stops showing in what an agent is told."""
    owners = {
        saved.outdated_key(owner)
        for note in changes.notes
        if note.deleted_at is not None
        for owner in saved.owner_scopes(note.scope)
    }
    moment = clock.to_text(clock.now())
    return dict.fromkeys(sorted(owners), moment)


def outdated_since(store: Records, scope: Scope) -> datetime | None:
    """When a note the owner's profile may rest on was last forgotten."""
    mark = store.get_meta(saved.outdated_key(owner_of(scope)))
    return clock.parse_time(mark) if mark else None


def invalidate(scope: Scope, store: Records) -> Changes:
    """Forget the profiles a scope's notes feed and erase their history's payloads (a purge
    must not leave what it erased in a derived text); the next refresh rebuilds them."""
    changes = Changes()
    for owner in saved.owner_scopes(scope):
        doc = saved.load(store.get_meta(saved.key_of(owner)))
        if doc is not None:
            changes.meta[saved.key_of(owner)] = ""
            changes.purge.append(doc.id)
    return changes


# -- steps ---------------------------------------------------------------------------------


def _topic_state(doc: ProfileDoc) -> TopicState | None:

    if not doc.topics:
        return None
    try:
        return TopicState.from_json(doc.topics)
    except ValueError:
        return None  # a state this version cannot read: rebuilt from the notes


def _read_notes(store: Records, ids: Sequence[str]) -> list[Note]:
    notes: list[Note] = []
    for chunk in _chunks(ids):
        found = store.get_notes(chunk)
        notes.extend(found[i] for i in chunk if i in found and found[i].deleted_at is None)
    return notes


def _topic_inputs(store: ProfileStore, notes: Sequence[Note]) -> list[TopicInput]:
    """The notes as the clusterer sees them; a note not embedded yet waits for the next
    refresh (it is not placed, so it counts as new again)."""

    inputs: list[TopicInput] = []
    for chunk in _chunks(notes):
        vectors = store.vectors_of([note.id for note in chunk])
        inputs.extend(
            TopicInput(
                note.id, vectors[note.id], note.text, note.occurred_at, note.scope.session_id
            )
            for note in chunk
            if note.id in vectors
        )
    return inputs


def _attributes(
    store: Records,
    current: Sequence[Attribute],
    added: Sequence[Note],
    removed: frozenset[str] | set[str],
    person: str | None,
) -> list[Attribute]:
    """Attributes with the evidence of removed notes taken out, and what new notes say."""
    kept = []
    for attribute in current:
        evidence = tuple(i for i in attribute.note_ids if i not in removed)
        if evidence:
            kept.append(attribute if evidence == attribute.note_ids else _with(attribute, evidence))
    speakers = _speakers(store, added)
    found = found_attributes.find_attributes(
        added, lambda note: said_by_person(speakers.get(note.id), person)
    )
    # what the person set themselves (a correction in the web UI, `source: person`) is
    # their word, not a reading of it
    corrected = {note.id for note in added if note.metadata.get("source") == "person"}
    found = [
        replace(found_one, source="person", confidence=found_attributes.PERSON_CONFIDENCE)
        if set(found_one.note_ids) <= corrected
        else found_one
        for found_one in found
    ]
    return found_attributes.merge_attributes(kept, found)


def _unread_by_model(doc: ProfileDoc, live: set[str]) -> list[str]:
    """Live notes the model has not read for attributes yet, oldest first, up to what one
    refresh reads (the rest are read by the next: progress is saved with the profile)."""
    read = set(doc.extra.get("model_read", ()))
    return sorted(live - read)[:MODEL_NOTES_PER_REFRESH]


def _model_attributes(
    store: Records,
    llm: LLM,
    attributes: list[Attribute],
    unread: Sequence[str],
    person: str | None,
) -> tuple[list[Attribute], list[str], Usage]:
    """Attributes a model reads from the person's notes, merged over what patterns found;
    returns them, the note ids read, and the model's cost."""
    notes = _read_notes(store, unread)
    speakers = _speakers(store, notes)
    own = [note for note in notes if said_by_person(speakers.get(note.id), person)]
    usage = Usage()
    for start in range(0, len(own), MODEL_BATCH):
        found, cost = found_attributes.model_attributes(
            llm, own[start : start + MODEL_BATCH], person
        )
        attributes = found_attributes.merge_attributes(attributes, found)
        usage = usage + cost
    return attributes, [note.id for note in notes], usage


def _biography(
    store: Records,
    owner: Scope,
    doc: ProfileDoc,
    state: TopicState,
    attributes: Sequence[Attribute],
    now: datetime,
    llm: LLM | None,
    notes: int,
) -> tuple[Biography, Usage]:
    """The biography: written by the model when one is given and enough has changed, else
    kept (a model's) or summarised again (the summary costs nothing)."""

    version = (doc.biography.version if doc.biography else 0) + 1
    topics = topics_of(state, now)
    recent = _recent(store, owner, now, doc.person)
    current = found_attributes.current(attributes)
    if llm is not None and _biography_due(doc, llm, range(notes)):
        return biographies.model_biography(
            llm, topics, current, recent, person=doc.person, version=version, now=now
        )
    if doc.biography is not None and doc.biography.by == "model":
        return doc.biography, Usage()
    summary = biographies.summary_biography(topics, current, recent, version=version, now=now)
    same = (summary.sentences, summary.status)
    if doc.biography is not None and (doc.biography.sentences, doc.biography.status) == same:
        return doc.biography, Usage()
    return summary, Usage()


def _model_due(doc: ProfileDoc, llm: LLM | None, live: Any) -> bool:
    """Whether a model has writing to do though no note changed: a biography it has not
    written yet, or topics it has not named."""
    if llm is None:
        return False
    return _biography_due(doc, llm, live) or "topic_names" not in doc.extra


def _biography_due(doc: ProfileDoc, llm: LLM | None, live: Any) -> bool:
    if llm is None:
        return False
    if doc.biography is None or doc.biography.by != "model" or doc.extra.get("biography_stale"):
        return True
    new = abs(len(live) - doc.biography_notes)
    return new >= REWRITE_AFTER_NOTES or new >= REWRITE_AFTER_SHARE * max(1, len(live))


def _recent(store: Records, owner: Scope, now: datetime, person: str | None) -> list[Note]:
    """The person's own latest notes: those of the last days, else the last few."""
    notes, _ = store.list_notes(owner, RECENT_NOTES, None, "newest")
    speakers = _speakers(store, notes)
    own = [note for note in notes if said_by_person(speakers.get(note.id), person)]
    return [note for note in own if note.occurred_at >= now - RECENT] or own[:5]


def _speakers(store: Records, notes: Sequence[Note]) -> dict[str, tuple[str | None, str | None]]:
    """note id -> (role, name) of the episode it came from."""
    firsts = {note.id: note.episode_ids[0] for note in notes if note.episode_ids}
    episodes: dict[str, Episode] = {}
    for chunk in _chunks(sorted(set(firsts.values()))):
        episodes.update(store.get_episodes(chunk))
    return {
        note_id: (episodes[e].role, episodes[e].name)
        for note_id, e in firsts.items()
        if e in episodes
    }


def said_by_person(speaker: tuple[str | None, str | None] | None, person: str | None) -> bool:
    """Whether a note is the person's own words: said under their name, or as the user
    of a conversation that names no one; when the person was never named, whatever was
    said as the user (an import marks the person's own messages so)."""
    if speaker is None:
        return False
    role, name = speaker
    if name and person is not None:
        return name.casefold() == person.casefold()
    return role in (None, "user")


def _with(attribute: Attribute, evidence: tuple[str, ...]) -> Attribute:
    return replace(attribute, note_ids=evidence)


def _told(doc: ProfileDoc) -> tuple[Any, ...]:
    """What a profile says of the person: its current attributes and biography."""
    biography = doc.biography
    told = (biography.text, biography.status) if biography else ("", ())
    return (tuple(found_attributes.current(doc.attributes)), *told)


def _event(before: ProfileDoc | None, after: ProfileDoc, owner: Scope, actor: str) -> Any:
    """History keeps what each version said (current attributes, biography and status), so
    older values stay readable; closed attributes are in the profile itself."""

    def kept(doc: ProfileDoc | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        biography = doc.biography
        return {
            "version": doc.version,
            "attributes": [
                saved.attribute_json(a) for a in found_attributes.current(doc.attributes)
            ],
            "biography": biography.text if biography else "",
            "status": [s.text for s in biography.status] if biography else [],
            "notes_seen": doc.notes_seen,
        }

    return event("profile", after.id, owner, actor, before=kept(before), after=kept(after))


def _empty_biography(now: datetime) -> Biography:
    return Biography(text="", sentences=(), status=(), by="summary", version=0, updated_at=now)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]
