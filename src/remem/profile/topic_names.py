"""Names and descriptions of topics, written by a model from the topics' notes.

One call per topic: the model sees the topic's keywords and a sample of its notes (the
timeline's first, then notes spread over its life), each with its id and date, and answers a
short name and a one-paragraph description whose every sentence cites the notes it rests
on. A cited id that is not one of the topic's notes is dropped, and a sentence left with no
evidence goes with it: the model is trusted with wording, never with evidence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from remem.llms.base import LLM, Usage
from remem.profile import prompts
from remem.types import Note, Statement, Topic

__all__ = ["NAME_TOPIC", "TopicNameAnswer", "name_topic", "name_topics"]

MAX_SHOWN = 24  # notes shown per topic
MAX_NAME = 80
MAX_SENTENCES = 6

NAME_TOPIC = (
    "You name one topic of a person's memory: a group of their notes about the same theme."
    " From the keywords and notes listed, answer `name`: a short title of the theme (2 to 6"
    " words, no quotes), and `description`: one paragraph of at most six short sentences"
    " on what the notes say about it and how it changed over time. Each sentence cites the"
    " ids of the notes it rests on; a sentence without evidence is not allowed. Use only"
    " the ids listed and say nothing the notes do not say."
)


class TopicNameAnswer(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: list[prompts.SentenceAnswer] = Field(max_length=20)


def name_topics(
    llm: LLM, topics: Sequence[Topic], notes_by_id: Mapping[str, Note]
) -> dict[str, tuple[str, tuple[Statement, ...]]]:
    """A name and a cited description per topic id; a topic with none of its notes at hand,
    or whose answer had no usable name, is left out. A failing model raises `LLMError`."""
    named: dict[str, tuple[str, tuple[Statement, ...]]] = {}
    for topic in topics:
        found = name_topic(llm, topic, notes_by_id)
        if found is not None:
            name, description, _ = found
            named[topic.id] = (name, description)
    return named


def name_topic(
    llm: LLM, topic: Topic, notes_by_id: Mapping[str, Note]
) -> tuple[str, tuple[Statement, ...], Usage] | None:
    """One topic's name, description and what asking cost (None: nothing to ask about)."""
    shown = _shown(topic, notes_by_id)
    if not shown:
        return None
    evidence = {
        "keywords": list(topic.keywords),
        "notes": [prompts.note_item(note, None) for note in shown],
    }
    user = json.dumps(evidence, ensure_ascii=False)
    generation = llm.generate("topic_name", NAME_TOPIC, user, TopicNameAnswer)
    name = " ".join(generation.value.name.split()).strip("\"'")[:MAX_NAME].strip()
    if not name:
        return None
    allowed = set(topic.note_ids)
    description = tuple(prompts.cited(generation.value.description, allowed))[:MAX_SENTENCES]
    return name, description, generation.usage


def _shown(topic: Topic, notes_by_id: Mapping[str, Note]) -> list[Note]:
    """The timeline's notes, then notes spread evenly over the topic, in time order."""
    chosen = dict.fromkeys(e.note_id for e in topic.timeline if e.note_id in notes_by_id)
    others = [n for n in topic.note_ids if n in notes_by_id and n not in chosen]
    room = min(MAX_SHOWN - len(chosen), len(others))
    for index in range(max(room, 0)):
        chosen.setdefault(others[index * len(others) // room])
    order = {note_id: position for position, note_id in enumerate(topic.note_ids)}
    ids = sorted(list(chosen)[:MAX_SHOWN], key=lambda note_id: order.get(note_id, 0))
    return [notes_by_id[note_id] for note_id in ids]
