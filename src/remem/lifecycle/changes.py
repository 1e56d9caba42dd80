"""The writes of a note's lifecycle: pin, archive, expiry, and the sweep of expired notes.

Each returns the `Changes` that the store commits, like `write/operations`: a new version
of the note (so a concurrent update or delete is never lost: `expect` names the version it
was made from) and one event in its history, typed by what happened:

- `pin` / `unpin`: a pinned note never decays and is always eligible for context;
- `archive` / `unarchive`: out of search, context, list and profile, kept, listed on
  request (`list(archived=True)`);
- `expire_at` / `expire_never`: a note with `expires_at` leaves search, context, list and
  profile when that time comes; the sweep then purges it (its history keeps `purge`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from remem import clock
from remem.stores.base import Changes
from remem.types import Note
from remem.write.versions import event


def pin(note: Note, pinned: bool, actor: str) -> Changes | None:
    """Pin or unpin a note; None when it already is as asked."""
    if note.pinned == pinned:
        return None
    return _changed(note, "pin" if pinned else "unpin", {"pinned": pinned}, actor)


def archive(note: Note, archived: bool, actor: str) -> Changes | None:
    """Archive a note now, or bring it back; None when it already is as asked."""
    if (note.archived_at is not None) == archived:
        return None
    moment = clock.now() if archived else None
    return _changed(note, "archive" if archived else "unarchive", {"archived_at": moment}, actor)


def expire(note: Note, expires_at: datetime | None, actor: str) -> Changes | None:
    """Set when a note expires (None: never); None when that is already so."""
    if note.expires_at == expires_at:
        return None
    action = "expire_at" if expires_at is not None else "expire_never"
    return _changed(note, action, {"expires_at": expires_at}, actor)


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
