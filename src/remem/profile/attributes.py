"""Attributes: typed slots about the person (home, work, pets, contact details...), each
with the notes it rests on and when it held.

Two ways to fill them: `find_attributes` reads the person's own first-person statements
with patterns (no model, precision over recall), `model_attributes` asks a language model
for schema-guided extraction with evidence ids. Either way `merge_attributes` folds new
findings into what is known, keeping history: a newer value of a single-valued slot
(home, work) closes the older one, which stays readable with its `valid_to`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from remem.clock import EARLIEST
from remem.llms.base import LLM, Usage
from remem.profile import prompts
from remem.profile.patterns import statements_about_self
from remem.types import Attribute, Note

__all__ = [
    "SLOTS",
    "Slot",
    "current",
    "evidence_confidence",
    "find_attributes",
    "merge_attributes",
    "model_attributes",
]


@dataclass(frozen=True)
class Slot:
    """A kind of attribute: whether the person has one value at a time (`single`), and how
    it reads in a sentence."""

    name: str
    single: bool
    label: str


SLOTS: dict[str, Slot] = {
    slot.name: slot
    for slot in (
        Slot("name", True, "name"),
        Slot("home", True, "lives in"),
        Slot("origin", True, "comes from"),
        Slot("work", True, "works as"),
        Slot("employer", True, "works at"),
        Slot("education", False, "studied"),
        Slot("birthday", True, "birthday"),
        Slot("email", False, "email"),
        Slot("phone", False, "phone"),
        Slot("website", False, "website"),
        Slot("partner", True, "partner"),
        Slot("child", False, "child"),
        Slot("family", False, "family"),
        Slot("pet", False, "pet"),
        Slot("likes", False, "likes"),
        Slot("dislikes", False, "dislikes"),
        Slot("health", False, "health"),
        Slot("date", False, "important date"),
    )
}
PERSON_CONFIDENCE = 1.0  # a value the person set themselves


def evidence_confidence(notes: int) -> float:
    """How sure a value is from how many notes say it: 0.75 for one, 0.875 for two..."""
    return round(1 - 0.5 ** (max(notes, 0) + 1), 4) if notes else 0.0


def value_key(value: str) -> str:
    """Two spellings of one value compare equal ("Porto", " porto.")."""
    return re.sub(r"[\s.,;:!?'\"]+", " ", value.casefold()).strip()


# -- without a model -------------------------------------------------------------------------


def find_attributes(notes: Sequence[Note], is_person: Callable[[Note], bool]) -> list[Attribute]:
    """The attributes patterns read from the notes the person said (`is_person`), one per
    value with its evidence, merged with history (see `merge_attributes`)."""
    found = [
        Attribute(
            slot=statement.slot,
            value=statement.value,
            note_ids=(note.id,),
            confidence=evidence_confidence(1),
            valid_from=note.occurred_at,
            source="pattern",
        )
        for note in notes
        if note.deleted_at is None and is_person(note)
        for statement in statements_about_self(note.text)
    ]
    return merge_attributes([], found)


# -- merging with history --------------------------------------------------------------------


def merge_attributes(current: Sequence[Attribute], found: Sequence[Attribute]) -> list[Attribute]:
    """Known attributes and new findings as one history.

    Per single-valued slot, the values in time order: a run of the same value is one
    attribute (its evidence joined), each run is closed (`valid_to`) by the next one's
    `valid_from`, and the last one holds. Per multi-valued slot, each distinct value is one
    attribute with all its evidence. The result depends only on the inputs, not their
    order."""
    by_slot: dict[str, list[Attribute]] = {}
    for attribute in [*current, *found]:
        if attribute.slot in SLOTS and attribute.value.strip():
            by_slot.setdefault(attribute.slot, []).append(attribute)
    merged: list[Attribute] = []
    for slot in sorted(by_slot):
        ordered = sorted(by_slot[slot], key=_order)
        if SLOTS[slot].single:
            merged.extend(_timeline(ordered))
        else:
            merged.extend(_distinct(ordered))
    return merged


def current(attributes: Iterable[Attribute]) -> list[Attribute]:
    """The attributes that hold now (not closed by a newer value)."""
    return [attribute for attribute in attributes if attribute.valid_to is None]


def _order(attribute: Attribute) -> tuple[datetime, str, str, tuple[str, ...], str]:
    return (
        _moment(attribute.valid_from),
        value_key(attribute.value),
        attribute.value,
        attribute.note_ids,
        attribute.source,
    )


def _moment(at: datetime | None) -> datetime:
    if at is None:
        return EARLIEST
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _timeline(ordered: Sequence[Attribute]) -> list[Attribute]:
    runs: list[list[Attribute]] = []
    for attribute in ordered:
        if runs and value_key(runs[-1][0].value) == value_key(attribute.value):
            runs[-1].append(attribute)
        else:
            runs.append([attribute])
    joined = [_joined(run) for run in runs]
    # only a newer value closes one: the latest holds (again) when the evidence of what
    # followed it is gone
    return [
        replace(attribute, valid_to=following.valid_from)
        for attribute, following in itertools.pairwise(joined)
    ] + [replace(joined[-1], valid_to=None)]


def _distinct(ordered: Sequence[Attribute]) -> list[Attribute]:
    groups: dict[str, list[Attribute]] = {}
    for attribute in ordered:
        groups.setdefault(value_key(attribute.value), []).append(attribute)
    return [_joined(group) for group in groups.values()]


_RANK = {"pattern": 0, "model": 1, "person": 2}


def _joined(run: Sequence[Attribute]) -> Attribute:
    """One attribute from several sightings of a value: the first sighting's spelling and
    start, all the evidence, the strongest source; closed only if every sighting was."""
    note_ids = tuple(sorted({note_id for attribute in run for note_id in attribute.note_ids}))
    source = max((attribute.source for attribute in run), key=_RANK.__getitem__)
    closes = [attribute.valid_to for attribute in run]
    valid_to = None if any(c is None for c in closes) else max(map(_moment, closes))
    confidence = (
        PERSON_CONFIDENCE if source == "person" else evidence_confidence(max(len(note_ids), 1))
    )
    return Attribute(
        slot=run[0].slot,
        value=run[0].value,
        note_ids=note_ids,
        confidence=confidence,
        valid_from=run[0].valid_from,
        valid_to=valid_to,
        source=source,
    )


# -- with a model ----------------------------------------------------------------------------


def model_attributes(
    llm: LLM,
    notes: Sequence[Note],
    person: str | None,
    *,
    speaker_of: Callable[[Note], str] | None = None,
) -> tuple[list[Attribute], Usage]:
    """Attributes a language model reads from `notes`, each with the ids of the notes it
    rests on. An answer citing an id not shown, an unknown slot or an empty value is
    dropped; `valid_from` is the latest cited note's time. Raises LLMError when the
    model gives no valid answer after retries."""
    shown = {note.id: note for note in notes}
    if not shown:
        return [], Usage()
    listing = [prompts.note_item(note, speaker_of) for note in notes]
    user = prompts.attributes_question(person, json.dumps(listing, ensure_ascii=False, indent=1))
    system = prompts.attributes_system(sorted(SLOTS))
    generation = llm.generate("attributes", system, user, prompts.AttributesAnswer)
    found = []
    for answer in generation.value.attributes:
        slot, value = answer.slot.strip().lower(), answer.value.strip()
        cited = [shown[i] for i in dict.fromkeys(answer.note_ids) if i in shown]
        if slot not in SLOTS or not value or not cited or len(cited) < len(answer.note_ids):
            continue
        found.append(
            Attribute(
                slot=slot,
                value=value[: prompts.MAX_VALUE_CHARS],
                note_ids=tuple(sorted(note.id for note in cited)),
                confidence=evidence_confidence(len(cited)),
                valid_from=max(note.occurred_at for note in cited),
                source="model",
            )
        )
    return merge_attributes([], found), generation.usage
