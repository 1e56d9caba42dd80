"""remem's records in the shapes mem0 returns, field for field.

The shapes follow mem0ai 2.2.1: `MemoryItem` in `mem0/configs/base.py` (id, memory, hash,
metadata, score, created_at, updated_at), the "promoted" payload keys `Memory.get`,
`get_all` and `_search_vector_store` add in `mem0/memory/main.py` (user_id, agent_id,
run_id, actor_id, role), add's `{"id", "memory", "event", "actor_id", "role"}` items, and
the history rows of `SQLiteManager.get_history` in `mem0/memory/storage.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from remem.types import Episode, Event, Note, Scope

# remem's scope fields as mem0 names them (a remem session is a mem0 run)
SCOPE_NAMES = (("user_id", "user_id"), ("agent_id", "agent_id"), ("session_id", "run_id"))
# remem's history actions as mem0's events (any "update_..." is an UPDATE); a link changes
# no memory and is left out
EVENTS = {
    "add": "ADD",
    "update_text": "UPDATE",
    "update_metadata": "UPDATE",
    "supersede": "UPDATE",
    "evolve": "UPDATE",
    "delete": "DELETE",
    "purge": "DELETE",
}
NO_SCORE = object()  # get_all's items have no score key at all; get's have None


def when(moment: datetime | None) -> str | None:
    """A time as mem0 writes it: ISO 8601 with "+00:00"."""
    return None if moment is None else moment.isoformat()


def text_hash(text: str) -> str:
    """mem0's `hash`: the MD5 of the text (an identity check, not security)."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def memory_item(note: Note, source: Episode | None, score: Any = NO_SCORE) -> dict[str, Any]:
    """A note as mem0's get / get_all / search item."""
    item: dict[str, Any] = {
        "id": note.id,
        "memory": note.text,
        "hash": text_hash(note.text),
        "metadata": dict(note.metadata) or None,
        "score": score,
        "created_at": when(note.created_at),
        "updated_at": when(note.updated_at),
    }
    if score is NO_SCORE:
        del item["score"]
    item |= scope_fields(note.scope)
    if source is not None and note.kind == "turn":
        item |= speaker_fields(source)
    return item


def scope_fields(scope: Scope) -> dict[str, str]:
    """The scope ids a memory has, under mem0's names."""
    return {
        mem0: value for remem, mem0 in SCOPE_NAMES if (value := getattr(scope, remem)) is not None
    }


def speaker_fields(episode: Episode) -> dict[str, Any]:
    """Who said a turn: mem0's `role`, and `actor_id` (the speaker's name) when known."""
    fields: dict[str, Any] = {"role": episode.role or "user"}
    if episode.name:
        fields["actor_id"] = episode.name
    return fields


def added_item(note: Note, source: Episode | None) -> dict[str, Any]:
    """One item of mem0's add result."""
    speaker = speaker_fields(source) if source is not None and note.kind == "turn" else {}
    return {
        "id": note.id,
        "memory": note.text,
        "event": "ADD",
        "actor_id": speaker.get("actor_id"),
        "role": speaker.get("role", "user"),
    }


def history_rows(
    events: Sequence[Event], note: Note | None, source: Episode | None
) -> list[dict[str, Any]]:
    """A note's history as mem0's rows: ADD, UPDATE and DELETE with old and new text."""
    rows: list[dict[str, Any]] = []
    created = when(note.created_at) if note is not None else None
    speaker = speaker_fields(source) if source is not None else {}
    for index, event in enumerate(events):
        kind = EVENTS.get(event.action, "UPDATE" if event.action.startswith("update") else None)
        if kind is None:
            continue
        old = _text(event.before)
        new = None if kind == "DELETE" else _text(event.after)
        if event.action == "add":  # its text is what the next change found, or the text now
            new = _text_after_add(events[index + 1 :], note)
        rows.append(
            {
                "id": event.id,
                "memory_id": event.target_id,
                "old_memory": old,
                "new_memory": new,
                "event": kind,
                "created_at": created or when(event.at),
                "updated_at": when(event.at),
                "is_deleted": kind == "DELETE",
                "actor_id": speaker.get("actor_id"),
                "role": speaker.get("role"),
            }
        )
    return rows


def _text(payload: Mapping[str, Any] | None) -> str | None:
    text = (payload or {}).get("text")
    return text if isinstance(text, str) else None


def _text_after_add(later: Sequence[Event], note: Note | None) -> str | None:
    for event in later:
        if (text := _text(event.before)) is not None:
            return text
    return note.text if note is not None and note.text else None
