"""The writes of a note's lifecycle: pin, archive, expiry, and the sweep of expired notes.

Each returns the `Changes` that the store commits, like `write/operations`: a new version
of the note (so a concurrent update or delete is never lost: `expect` names the version it
was made from) and one event in its history, typed by what happened:

- `pin` / `unpin`: a pinned note never decays and is always eligible for context;
- `archive` / `unarchive`: out of search, context, list and profile, kept, listed on
  request (`list(archived=True)`); archiving drops the thoughts resting on the note, as
  deleting it does (`write/thoughts` says why), and unarchiving does not bring them back;
- `expire_at` / `expire_never`: a note with `expires_at` leaves search, context, list and
  profile when that time comes; the sweep then purges it (its history keeps `purge`). A
  fact a model drew from expiring turns expires with the last of them (`as_sources`) and
  does not change a note kept longer (`lifecycle/expiring`), so what was said to be
  forgotten is not kept in other words.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from remem import clock
from remem.stores.base import Changes, Records
from remem.types import Note
from remem.write.thoughts import drop_thoughts
from remem.write.versions import event


def pin(note: Note, pinned: bool, actor: str) -> Changes | None:
    """Pin or unpin a note; None when it already is as asked."""
    if note.pinned == pinned:
        return None
    return _changed(note, "pin" if pinned else "unpin", {"pinned": pinned}, actor)


def archive(note: Note, archived: bool, actor: str, store: Records) -> Changes | None:
    """Archive a note now (dropping the thoughts resting on it), or bring it back; None
    when it already is as asked."""
    if (note.archived_at is not None) == archived:
        return None
    if not archived:
        return _changed(note, "unarchive", {"archived_at": None}, actor)
    changes = _changed(note, "archive", {"archived_at": clock.now()}, actor)
    return drop_thoughts(changes, [note], store, actor, "archived")


def expire(note: Note, expires_at: datetime | None, actor: str) -> Changes | None:
    """Set when a note expires (None: never); None when that is already so."""
    if note.expires_at == expires_at:
        return None
    action = "expire_at" if expires_at is not None else "expire_never"
    return _changed(note, action, {"expires_at": expires_at}, actor)


def as_sources(
    notes: Mapping[str, Note], store: Records, guessed: Collection[str] = ()
) -> dict[str, Note]:
    """New notes drawn from turns (the facts a model extracted), each expiring when the
    last of the turns it came from does: never, if one of them never does. (A thought, which
    rests on all of its evidence at once, goes with the first; a fact said twice holds while
    one of its sayings does; a deleted turn ended when it was deleted.) A `guessed` note,
    whose turns the model did not name (all of its batch stand in), may come from any of
    them: it expires with the first."""
    ends = turn_ends(store, [e for note in notes.values() for e in note.episode_ids])
    expiring = {}
    for note_id, note in notes.items():
        end = _first(ends, note.episode_ids) if note_id in guessed else None
        end = end or _last(ends, note.episode_ids)
        expiring[note_id] = note if end is None else replace(note, expires_at=end)
    return expiring


def turn_ends(store: Records, episode_ids: Sequence[str]) -> dict[str, datetime | None]:
    """When the turn said in each of these episodes ends (None: never)."""
    ends: dict[str, datetime | None] = {}
    unique = list(dict.fromkeys(episode_ids))
    for turn in store.notes_of_episodes(unique, include_deleted=True):
        if turn.kind == "turn":
            for episode_id in turn.episode_ids:
                ends[episode_id] = ends_at(turn)
    return ends


def ends_at(note: Note) -> datetime | None:
    """When a note stops being kept: it expires, or it was deleted (None: neither)."""
    return min((when for when in (note.expires_at, note.deleted_at) if when), default=None)


def _first(ends: Mapping[str, datetime | None], episode_ids: Sequence[str]) -> datetime | None:
    """When the first of these episodes' turns to expire does (None: none does)."""
    return min((end for e in episode_ids if (end := ends.get(e)) is not None), default=None)


def _last(ends: Mapping[str, datetime | None], episode_ids: Sequence[str]) -> datetime | None:
    """When the last of these episodes' turns expires; None if one never does (or none is
    known)."""
    found = [ends.get(e) for e in episode_ids]
    if not found or None in found:
        return None
    return max(end for end in found if end is not None)


def _changed(note: Note, action: str, fields: dict[str, Any], actor: str) -> Changes:
    after = replace(note, **fields, version=note.version + 1, updated_at=clock.now())
    before = {name: _plain(getattr(note, name)) for name in fields} | {"version": note.version}
    now = {name: _plain(value) for name, value in fields.items()} | {"version": after.version}
    return Changes(
        notes=[after],
        events=[event(action, note.id, note.scope, actor, before, now)],
        expect={note.id: note.version},  # no other write in between, no delete
    )


def _plain(value: Any) -> Any:
    return clock.to_text(value) if isinstance(value, datetime) else value
