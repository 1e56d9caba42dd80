"""What a model drew from expiring turns, kept apart from the notes kept longer.

Saying something with an expiry (or deleting it) asks for it to be forgotten. An organising
job may have shown it to the model beside notes kept longer, and whatever the model writes
into those notes would keep it. So each write a job makes to an existing note is bounded by
the earliest end of what the model saw: the turns its facts came from (a deleted one ended
when it was deleted) and the earlier notes its prompt showed. A decision to update or
supersede a note kept past that end becomes an add (the fact stands beside the note and
expires with its turns, see `changes.as_sources`), and evolve leaves such notes as they
are. Without an end in sight, nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from remem.lifecycle.changes import ends_at, turn_ends
from remem.stores.base import Records
from remem.types import Note

Fact = dict[str, Any]  # an extracted fact of a job's payload: its `episode_ids` are read


def lasting_decisions(
    facts: Sequence[Fact], decisions: list[dict[str, Any]], shown: Iterable[str], store: Records
) -> list[dict[str, Any]]:
    """Reconcile's decisions, an update or supersede of a note that outlives what the
    model saw (`shown`: the ids of the earlier notes its prompt held) made an add."""
    bound = _earliest_end(facts, shown, store)
    if bound is None:
        return decisions
    targets = store.get_notes([d["target_id"] for d in decisions if d.get("target_id")])
    return [
        {**decision, "action": "add"}
        if decision["action"] in ("update", "supersede")
        and _outlives(targets.get(decision.get("target_id") or ""), bound)
        else decision
        for decision in decisions
    ]


def lasting_updates(
    facts: Sequence[Fact], updates: list[dict[str, Any]], shown: Iterable[str], store: Records
) -> list[dict[str, Any]]:
    """Evolve's updates, less those of notes that outlive what the model saw."""
    bound = _earliest_end(facts, shown, store)
    if bound is None:
        return updates
    targets = store.get_notes([update["note_id"] for update in updates])
    return [u for u in updates if not _outlives(targets.get(u["note_id"]), bound)]


def expiring_apart(done: dict[str, Any], store: Records) -> dict[str, Any]:
    """A job's results (`done`), both rules applied as they stand at its commit (an expiry
    set, or a turn deleted, since a step ran counts)."""
    facts = done["extract"]["facts"]
    result = dict(done)
    if "reconcile" in done:
        step = done["reconcile"]
        shown = step.get("versions", {})
        result["reconcile"] = {
            **step,
            "decisions": lasting_decisions(facts, step["decisions"], shown, store),
        }
    if "evolve" in done:
        step = done["evolve"]
        updates = lasting_updates(facts, step["updates"], step.get("versions", {}), store)
        result["evolve"] = {**step, "updates": updates}
    return result


def _earliest_end(facts: Sequence[Fact], shown: Iterable[str], store: Records) -> datetime | None:
    """When the first of what the model saw ends (None: none of it does): the facts'
    turns, deleted ones included, and the shown notes."""
    turns = turn_ends(store, [e for fact in facts for e in fact["episode_ids"]]).values()
    notes = [ends_at(note) for note in store.get_notes(list(shown)).values()]
    return min((end for end in [*turns, *notes] if end is not None), default=None)


def _outlives(note: Note | None, bound: datetime) -> bool:
    return note is not None and (note.expires_at is None or note.expires_at > bound)
