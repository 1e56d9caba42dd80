"""What the person layer asks a language model, and the JSON it must answer.

Every item shown carries its real id; every answer cites the ids it rests on, and an
answer citing an id that was not shown is dropped, never trusted. Notes are shown with
their date and, when known, who said them: a statement about the person is only as true
as the evidence the model saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from remem.read.speakers import DAY
from remem.types import Note, Statement

MAX_VALUE_CHARS = 500
MAX_NOTE_CHARS = 1000  # a note longer than this is shown shortened

# -- answers ---------------------------------------------------------------------------------


class AttributeAnswer(BaseModel):
    slot: str = Field(min_length=1, max_length=40)
    value: str = Field(min_length=1, max_length=MAX_VALUE_CHARS)
    note_ids: list[str] = Field(min_length=1, max_length=20)


class AttributesAnswer(BaseModel):
    attributes: list[AttributeAnswer] = Field(max_length=100)


class SentenceAnswer(BaseModel):
    text: str = Field(min_length=1, max_length=600)
    note_ids: list[str] = Field(max_length=20)


class BiographyAnswer(BaseModel):
    biography: list[SentenceAnswer] = Field(max_length=20)
    status: list[SentenceAnswer] = Field(max_length=10)


class FieldAnswer(BaseModel):
    path: str = Field(min_length=1, max_length=400)
    value: str | None = Field(
        default=None, max_length=4000, description="the value as JSON text, or null"
    )
    note_ids: list[str] = Field(default_factory=list, max_length=20)
    why: str = Field(default="", max_length=500)


class FillAnswer(BaseModel):
    fields: list[FieldAnswer] = Field(max_length=100)


# -- questions -------------------------------------------------------------------------------

ATTRIBUTES = (
    "You keep a profile of one person. From the notes listed, extract what they state about"
    " themselves into these slots: {slots}. Each attribute has one slot, a short value"
    " (a place, a job, a name with its kind such as 'Rex (dog)', a date as YYYY-MM-DD) and"
    " the ids of the notes that say it. Use only statements by or clearly about the person;"
    " skip questions, hypotheticals, negations, jokes and what others say of themselves."
    " Use only the ids listed. No attributes is a valid answer."
)
BIOGRAPHY = (
    "You write a short profile of one person from the evidence listed: their topics,"
    " attributes and most recent notes. Write `biography`: at most 200 words in short"
    " sentences in the third person about who they are (places, work, family, interests),"
    " and `status`: a few sentences on what is going on in their life in the last days."
    " Each sentence cites the ids of the evidence it rests on; a sentence without evidence"
    " is not allowed. Use only the ids listed and say nothing the evidence does not say."
)
FILL = (
    "You fill in a form for a person from their memory. For each field listed you get its"
    " JSON pointer path, type, description and the evidence memory found for it. Answer"
    " every field with `value` written as JSON (a string in quotes, a number, true or false,"
    " an array) that fits the field's type, format and allowed values, the ids of the"
    " evidence it rests on, and a short `why`. When the evidence does not say, answer"
    " value null with no ids: never guess. Use only the ids listed for that field."
)


def attributes_system(slots: list[str]) -> str:
    return ATTRIBUTES.format(slots=", ".join(slots))


def attributes_question(person: str | None, listing: str) -> str:
    who = f"The person is {person}." if person else "The person is the user."
    return f"{who}\nNotes:\n{listing}"


def note_item(note: Note, speaker_of: Callable[[Note], str] | None) -> dict[str, Any]:
    """A note as a model sees it: id, date, who said it (when known) and text."""
    item: dict[str, Any] = {"id": note.id, "date": note.occurred_at.strftime(DAY)}
    if speaker_of is not None:
        item["speaker"] = speaker_of(note)
    item["text"] = shortened(note.text)
    return item


def shortened(text: str, limit: int = MAX_NOTE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def cited(answers: Sequence[SentenceAnswer], allowed: set[str]) -> list[Statement]:
    """A model's sentences with only the evidence ids it was shown; a sentence left citing
    nothing (or saying nothing) is dropped: the model is trusted with wording, never with
    evidence."""
    kept = []
    for answer in answers:
        ids = tuple(dict.fromkeys(i for i in answer.note_ids if i in allowed))
        text = " ".join(answer.text.split())
        if ids and text:
            kept.append(Statement(text, ids))
    return kept
