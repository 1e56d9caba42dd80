"""Versions and history: what the event log keeps of each change to a note."""

from __future__ import annotations

from typing import Any

from remem import clock, ids
from remem.types import Event, Note, Scope


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
