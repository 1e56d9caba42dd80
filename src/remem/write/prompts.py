"""What the organising pipeline asks a language model, and the JSON it must answer.

Each step is one call per add batch. Inputs name records by their real ids; answers that
cite an id the step did not offer are dropped, never trusted. Every turn, existing memory
and new fact a step shows carries its date and who said it (a name, else "the user" or "the
assistant"): a fact is only as true as what the model was shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from remem.read.speakers import DAY, TURN_TIME, speaker_of
from remem.types import Episode, Note

# -- answers ---------------------------------------------------------------------------------


class Fact(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    occurred_on: str | None = Field(default=None, description="YYYY-MM-DD when it happened")
    episode_ids: list[str] = Field(default_factory=list)
    # how much it will matter later; without it remem rates the fact (`write/importance`)
    importance: float | None = Field(default=None, ge=0, le=1, description="0-1: will it matter")


class Extracted(BaseModel):
    facts: list[Fact] = Field(max_length=100)


class Decision(BaseModel):
    fact: int = Field(ge=0)
    action: Literal["add", "update", "supersede", "ignore"]
    target_id: str | None = None
    text: str | None = Field(default=None, max_length=2000)


class Reconciled(BaseModel):
    decisions: list[Decision]


class Enrichment(BaseModel):
    fact: int = Field(ge=0)
    keywords: list[str] = Field(default_factory=list, max_length=10)
    tags: list[str] = Field(default_factory=list, max_length=10)
    context: str | None = Field(default=None, max_length=500)


class Enriched(BaseModel):
    notes: list[Enrichment]


class LinkAnswer(BaseModel):
    fact: int = Field(ge=0)
    target_id: str
    relation: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=500)


class Linked(BaseModel):
    links: list[LinkAnswer]


class Evolution(BaseModel):
    note_id: str
    context: str | None = Field(default=None, max_length=500)
    tags: list[str] | None = Field(default=None, max_length=10)


class Evolved(BaseModel):
    updates: list[Evolution]


# -- questions -------------------------------------------------------------------------------

EXTRACT = (
    "You turn conversation turns into memory. Extract every fact worth remembering about the"
    " people in it: events, plans, preferences, relationships, possessions, opinions. Each"
    " fact is one self-contained sentence that names who (never 'I' or 'he'), what, and when"
    " when known; resolve relative dates ('yesterday', 'last week') against the time the turn"
    " was said and write the absolute date. Give each fact the ids of the turns it comes"
    " from. Skip greetings and small talk. No facts is a valid answer."
)
RECONCILE = (
    "You keep a memory consistent. For each new fact decide against the existing memories"
    " listed with it: 'add' if it is new; 'ignore' if an existing memory already says it;"
    " 'update' if it adds detail to one existing memory (give target_id and the merged"
    " text); 'supersede' if it makes one existing memory no longer true, e.g. a move, a"
    " changed preference or plan (give target_id). Use only the ids listed."
)
ENRICH = (
    "For each memory give up to 5 keywords (specific nouns and names), up to 3 short tags"
    " (topics such as 'family', 'work', 'health') and a one-line context that says what the"
    " memory is about and why it may matter later."
)
LINK = (
    "Link each new memory to the listed earlier memories it is really related to (same"
    " event, cause, consequence, contradiction, same person or thing). Give the relation in"
    " one or two words and a short reason. Use only the ids listed; no link is fine."
)
EVOLVE = (
    "New memories were linked to these earlier ones. Where a new memory changes how an"
    " earlier one should be understood, give the earlier one an updated one-line context"
    " and tags. Leave the others out. Use only the ids listed."
)


def turns_text(episodes: Sequence[Episode]) -> str:
    """Turns as `[id] [2024-05-01 12:00] speaker: text` lines."""
    return "\n".join(
        f"[{e.id}] [{e.occurred_at.strftime(TURN_TIME)}] {speaker_of(e)}: {e.text}"
        for e in episodes
    )


def new_fact(index: int, fact: Mapping[str, Any], episodes: Sequence[Episode]) -> dict[str, Any]:
    """An extracted fact as later steps show it: its date (from extract) and who said the
    turn it came from, so the model can tell it from, and order it against, earlier ones."""
    sources = [e for e in episodes if e.id in fact["episode_ids"]]
    return {
        "fact": index,
        "date": str(fact["occurred_at"])[:10],
        "speaker": speaker_of(sources[0] if sources else None),
        "text": fact["text"],
    }


def shown(note: Note, sources: Mapping[str, Episode]) -> dict[str, Any]:
    """An existing memory as a model sees it: a turn with its time and speaker, a fact with
    its date and who said the turn it came from."""
    source = sources.get(note.episode_ids[0]) if note.episode_ids else None
    item: dict[str, Any] = {
        "id": note.id,
        "kind": note.kind,
        "date": note.occurred_at.strftime(DAY if note.kind == "fact" else TURN_TIME),
        "speaker": speaker_of(source),
        "text": note.text,
    }
    if note.context:
        item["context"] = note.context
    if note.tags:
        item["tags"] = list(note.tags)
    return item


def listing(items: object) -> str:
    return json.dumps(items, ensure_ascii=False, indent=1)
