"""Versions and history: what the event log keeps of each change to a note.

Events are typed by what happened: add, update_text, update_metadata,
update_text_and_metadata, supersede, evolve, link, merge (a thought concluded again, see
`write/thoughts`), embed, delete, purge. An event about a
note keeps the note as it was and as it became (`before`, `after`); `changed_fields` says
which fields differ.
"""

from __future__ import annotations

from typing import Any

from remem import clock, ids
from remem.types import Event, Link, Note, Scope


def snapshot(note: Note) -> dict[str, Any]:
    """What history keeps of one version of a note (organising fields only when set)."""
    kept: dict[str, Any] = {
        "text": note.text,
        "metadata": note.metadata,
        "version": note.version,
        "updated_at": clock.to_text(note.updated_at),
    }
    for name in ("context", "tags", "valid_to", "superseded_by"):
        value = getattr(note, name)
        if value:
            kept[name] = clock.to_text(value) if name == "valid_to" else value
    if kept.get("tags"):
        kept["tags"] = list(kept["tags"])
    return kept


# what a version number and a time stamp say is no change of what the note holds
_BOOKKEEPING = ("version", "updated_at")


def update_action(before: Note, after: Note) -> str:
    """The type of an update by what it changed: update_text, update_metadata, or both."""
    changed = [
        name for name in ("text", "metadata") if getattr(before, name) != getattr(after, name)
    ]
    return "update_" + "_and_".join(changed) if changed else "update"


def changed_fields(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> dict[str, tuple[Any, Any]]:
    """The fields an event changed, each as (before, after); bookkeeping left out."""
    old, new = before or {}, after or {}
    return {
        name: (old.get(name), new.get(name))
        for name in dict.fromkeys([*old, *new])
        if name not in _BOOKKEEPING and old.get(name) != new.get(name)
    }


def link_event(link: Link, scope: Scope, actor: str) -> Event:
    """A link made from a note: what it points to, how and why."""
    made = {"link_id": link.id, "target_id": link.target_id, "relation": link.relation}
    return event("link", link.source_id, scope, actor, after={**made, "reason": link.reason})


def event(
    action: str,
    target_id: str,
    scope: Scope,
    actor: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Event:
    """One entry of the append-only log."""
    return Event(ids.new_id(ids.EVENT), action, target_id, scope, clock.now(), actor, before, after)
