"""Names and descriptions of a profile's topics, kept per topic id between refreshes: a
model names the surest topics once, and again when they have changed much; what it said
keeps only evidence still in the topic."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from remem.llms import LLM
from remem.llms.base import Usage
from remem.profile import state as saved
from remem.profile.topic_names import name_topic
from remem.types import Note, Statement, Topic

# with a model, the surest topics are named (one call each) once, and again when they
# have grown or shrunk by this share
TOPICS_NAMED = 8
RENAME_AFTER_SHARE = 0.25
NOTES_SHOWN_PER_TOPIC = 48


def name_changed(
    read_notes: Callable[[Sequence[str]], list[Note]],
    llm: LLM,
    topics: Sequence[Topic],
    before: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], Usage]:
    """Names and descriptions of the surest topics, kept per topic id: asked of the model
    for a topic not named yet or much changed since; dropped with their topic."""
    names = {tid: entry for tid, entry in (before or {}).items() if tid in {t.id for t in topics}}
    due = [topic for topic in topics[:TOPICS_NAMED] if _rename_due(topic, names.get(topic.id))]
    shown = sorted({i for topic in due for i in _sample(topic.note_ids)})
    notes = {note.id: note for note in read_notes(shown)}
    usage = Usage()
    for topic in due:
        found = name_topic(llm, topic, notes)
        if found is not None:
            name, description, cost = found
            names[topic.id] = {
                "name": name,
                "description": saved.statements_json(description),
                "size": topic.size,
            }
            usage = usage + cost
    return names, usage


def _rename_due(topic: Topic, named: Mapping[str, Any] | None) -> bool:
    if not named:
        return True
    size = max(1, int(named.get("size", 1)))
    return abs(topic.size - size) >= RENAME_AFTER_SHARE * size


def _sample(note_ids: Sequence[str]) -> list[str]:
    """At most NOTES_SHOWN_PER_TOPIC ids spread over a topic's life."""
    step = max(1, len(note_ids) // NOTES_SHOWN_PER_TOPIC)
    return list(note_ids[::step][:NOTES_SHOWN_PER_TOPIC])


def named(topic: Topic, named: Mapping[str, Any] | None) -> Topic:
    """A topic with the name a model gave it; description sentences keep only evidence
    still in the topic, and go when none is left."""
    if not named:
        return topic
    members = set(topic.note_ids)
    description = tuple(
        Statement(item.text, kept)
        for item in saved.statements(named.get("description", []))
        if (kept := tuple(i for i in item.note_ids if i in members))
    )
    return replace(topic, name=str(named["name"]), description=description)
