"""Prefill: a caller's JSON Schema filled from memory, field by field with evidence.

Nothing is invented: a field memory does not answer stays empty (value None, confidence
0), with the closest notes attached so a person can fill it in. Without a model, fields
are answered by current attributes (an "email" field by the email attribute, "city" by
home...) and by patterns over the notes search finds for the field (emails, phone
numbers, web addresses, dates). With a model, the fields still empty are asked in a few
calls (FIELDS_PER_CALL per call), each with the evidence retrieved for it; an answer that
cites an id it was not shown, cites nothing, or breaks the schema is dropped. The filled
object is validated against the schema (Draft 2020-12) before it is returned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator

from remem.errors import InvalidInputError
from remem.llms.base import LLM, Usage
from remem.profile import prompts
from remem.profile.attributes import SLOTS, current, evidence_confidence
from remem.profile.patterns import dates_in, sentences, statements_about_self
from remem.profile.schema import FormField, form_fields, invalid_paths, validator
from remem.read.speakers import DAY
from remem.types import Attribute, FieldFill, FilledForm, Hit

__all__ = ["FIELDS_PER_CALL", "fill_form", "slot_of"]

FIELDS_PER_CALL = 30
EVIDENCE_PER_FIELD = 5
ATTACHED_WHEN_EMPTY = 3  # closest notes attached to a field memory could not fill
SEARCH_DISCOUNT = 0.8  # a value read from search hits is less sure than a kept attribute
MAX_INSTRUCTIONS_CHARS = 2000
# a description longer than this asks something specific ("what was her favourite book as a
# child?"), which a slot ("likes") would answer wrongly: only short ones name a slot
SHORT_DESCRIPTION = 5
Search = Callable[[str, int], list[Hit]]

# Which slot a field asks for, by the words naming it; the first match wins, so the more
# specific come first ("company email" is an email, "company name" an employer)
_SLOT_WORDS: tuple[tuple[str, str], ...] = (
    ("email", r"e-?mail|mail address"),
    ("phone", r"phone|telephone|mobile|cell|tel"),
    ("website", r"website|web site|homepage|home page|url|blog"),
    ("birthday", r"birthday|date of birth|birth ?date|dob|born"),
    ("origin", r"hometown|home town|birthplace|place of birth|origin"),
    ("employer", r"employer|company|organi[sz]ation|workplace"),
    ("work", r"occupation|job|profession|job title"),
    ("education", r"education|school|university|college|alma mater"),
    ("home", r"city|town|address|residence|home|lives?|living|current location"),
    ("partner", r"partner|spouse|husband|wife|boyfriend|girlfriend"),
    ("child", r"children|child|kids|sons?|daughters?"),
    ("pet", r"pets?"),
    ("health", r"allerg(?:y|ies)|dietary|diet|medical|health"),
    ("likes", r"hobbies|hobby|interests|likes"),
    ("dislikes", r"dislikes"),
    ("name", r"^(?:(?:your|legal|full|person's|the)\s)*name$"),  # not "dog name"
)
_SLOT_PATTERNS = [(slot, re.compile(rf"\b(?:{words})\b")) for slot, words in _SLOT_WORDS]
# words that make a field ask for something a slot does not hold: a part of a name or an
# address, another time ("previous job"), a wish ("dream job"), one favourite thing
_ANOTHER_THING = re.compile(
    r"\b(?:(?:first|last|given|family|middle|sur|nick|user) ?name|country|nationality|state"
    r"|province|region|zip|postal|postcode|street|previous|former|past|old|ex|second|other"
    r"|next|dream|future|ideal|favou?rite|lost)\b"
)
_YES_NO = re.compile(
    r"(?i)\s*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b"
)
_FORMAT_SLOTS = {"email": "email", "idn-email": "email", "uri": "website", "phone": "phone"}
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "your",
        "you",
        "my",
        "what",
        "when",
        "where",
        "which",
        "who",
        "is",
        "are",
        "was",
        "date",
        "day",
        "time",
        "number",
        "your",
        "and",
        "or",
        "to",
        "in",
        "on",
        "for",
        "with",
        "do",
        "does",
        "did",
        "have",
        "has",
    ]
)


def fill_form(
    schema: Mapping[str, Any],
    *,
    attributes: Sequence[Attribute],
    search: Search,
    llm: LLM | None,
    instructions: str | None = None,
    is_person: Callable[[Hit], bool] | None = None,
) -> tuple[FilledForm, Usage]:
    """`schema` filled from memory: attributes and patterns first, then (with `llm`) a
    model for the fields still empty. `search(query, k)` finds evidence for a field;
    `is_person` (when given) tells which hits the person said, so patterns read only
    those and the model sees who said what. Raises InvalidInputError for a schema that
    cannot be a form, LLMError when the model gives no valid answer after retries."""
    fields = form_fields(schema)
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidInputError("instructions must be a string")
    if instructions is not None and len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise InvalidInputError(f"instructions are longer than {MAX_INSTRUCTIONS_CHARS} chars")
    check = validator(schema)
    held = current(attributes)
    filled = _fitting(check, fields, lambda field: _from_attributes(field, held))
    # a list attributes answer (pets, likes) may be only part of what memory holds: a
    # model, when there is one, is asked again and its answer, if valid, replaces it
    partial = {f.path for f in fields if f.path in filled and llm is not None and _a_list(f)}
    rest = [f for f in fields if f.path not in filled]
    # looked up once: for patterns, the model, and as the evidence of a field left empty
    evidence = {
        f.path: search(_query(f), EVIDENCE_PER_FIELD)
        for f in fields
        if f.path not in filled or f.path in partial
    }
    filled |= _fitting(
        check, rest, lambda field: _from_hits(field, evidence[field.path], is_person)
    )
    usage = Usage()
    if llm is not None:
        asked = [f for f in fields if f.path not in filled or f.path in partial]
        answered, usage = _from_model(llm, asked, evidence, instructions, is_person, check)
        filled.update(answered)
    filled = _consistent(check, fields, filled)
    result = tuple(filled.get(f.path) or _empty(f, evidence.get(f.path, ())) for f in fields)
    return FilledForm(_assembled(fields, filled), result), usage


def _a_list(field: FormField) -> bool:
    """Whether attributes answer the field with every value of a multi-valued slot."""
    slot = slot_of(field)
    if slot is None or SLOTS[slot].single:
        return False
    return field.kind == "array" or not (field.format or field.enum)


def _fitting(
    check: Draft202012Validator,
    fields: Sequence[FormField],
    answer: Callable[[FormField], FieldFill | None],
) -> dict[str, FieldFill]:
    """The fields `answer` fills with a value the schema accepts."""
    found = {field.path: answer(field) for field in fields}
    return {
        field.path: fill
        for field in fields
        if (fill := found[field.path]) is not None and _fits(check, field, fill.value)
    }


def slot_of(field: FormField) -> str | None:
    """The attribute slot a field asks for, from its format and the words naming it (keys
    first, then title, then a short description); None when none fits."""
    by_format = _FORMAT_SLOTS.get(field.format or field.item_format or "")
    if by_format:
        return by_format
    keys = " ".join(re.sub(r"([a-z])([A-Z])", r"\1 \2", k) for k in field.keys)
    description = field.description if _names_a_slot(field.description) else ""
    texts = [re.sub(r"[_\-]+", " ", t).lower() for t in (keys, field.title, description)]
    if any(_ANOTHER_THING.search(words) for words in texts):
        return None
    for words in texts:
        for slot, pattern in _SLOT_PATTERNS:
            if words and pattern.search(words):
                return slot
    return None


def _names_a_slot(description: str) -> bool:
    """Whether a description may name a slot: short, and not a yes/no question ("Is Oscar
    her pet?" asks about one pet, not for the person's pets)."""
    words = description.split()
    return 0 < len(words) <= SHORT_DESCRIPTION and not _YES_NO.match(description)


def _query(field: FormField) -> str:
    return field.words[:300] or field.path


# -- without a model -------------------------------------------------------------------------


def _from_attributes(field: FormField, held: Sequence[Attribute]) -> FieldFill | None:
    slot = slot_of(field)
    if slot is None:
        return None
    chosen = sorted(
        (a for a in held if a.slot == slot),
        key=lambda a: (-a.confidence, -_timestamp(a), a.value),
    )
    if not chosen:
        return None
    every = _a_list(field)
    used = chosen if every else chosen[:1]
    value = _shaped(field, [a.value for a in used])
    if value is None:
        return None
    note_ids = tuple(sorted({i for a in used for i in a.note_ids}))
    held_as = "every value remembered (there may be more)" if every else "the value remembered"
    why = f"the person's {SLOTS[slot].label}: {held_as}, from {len(note_ids)} note(s)"
    return FieldFill(field.path, value, min(a.confidence for a in used), note_ids, why)


def _timestamp(attribute: Attribute) -> float:
    return attribute.valid_from.timestamp() if attribute.valid_from else 0.0


def _shaped(field: FormField, values: Sequence[str]) -> Any:
    """Values as the field wants them (a list for an array, else one string), or None
    when they do not fit."""
    if field.kind == "array":
        items = [_as_item(v, field.item_format, field.item_enum) for v in values]
        kept = [item for item in items if item is not None]
        return kept or None
    if field.kind != "string" or not values:
        return None
    return _as_item(", ".join(values), field.format, field.enum)


def _as_item(value: str, format: str | None, enum: Sequence[Any]) -> str | None:
    if enum:
        matches = [o for o in enum if isinstance(o, str) and o.casefold() == value.casefold()]
        return matches[0] if matches else None
    if format == "date":
        return value if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    return value


def _from_hits(
    field: FormField, hits: Sequence[Hit], is_person: Callable[[Hit], bool] | None
) -> FieldFill | None:
    """A value patterns read from the field's search hits: a contact detail the person
    gives as their own, or a date in a sentence that names what the field asks."""
    slot = slot_of(field)
    own = [hit for hit in hits if is_person is None or is_person(hit)]
    votes: dict[str, list[str]] = {}
    for hit in own:
        for value in _values_in(field, slot, hit.text):
            votes.setdefault(value, []).append(hit.id)
    if not votes:
        return None
    value, note_ids = max(votes.items(), key=lambda item: (len(item[1]), -len(item[0])))
    shaped = _shaped(field, [value])
    if shaped is None:
        return None
    ids = tuple(dict.fromkeys(note_ids))
    confidence = round(evidence_confidence(len(ids)) * SEARCH_DISCOUNT, 4)
    why = f"stated in {len(ids)} note(s) found for this field"
    return FieldFill(field.path, shaped, confidence, ids, why)


def _values_in(field: FormField, slot: str | None, text: str) -> list[str]:
    if slot in {"email", "phone", "website"}:
        return [found.value for found in statements_about_self(text) if found.slot == slot]
    if (field.format or field.item_format) != "date":
        return []
    named = {w for w in re.findall(r"[a-z]{3,}", field.words.lower()) if w not in _STOPWORDS}
    if slot == "birthday":
        named |= {"birthday", "born"}
    return [
        iso
        for sentence in sentences(text)
        if named & set(re.findall(r"[a-z]{3,}", sentence.lower()))
        for iso in dates_in(sentence)
        if not iso.startswith("--")
    ]


def _empty(field: FormField, hits: Sequence[Hit]) -> FieldFill:
    closest = tuple(dict.fromkeys(hit.id for hit in hits))[:ATTACHED_WHEN_EMPTY]
    why = "memory does not say" + ("; the closest notes are attached" if closest else "")
    return FieldFill(field.path, None, 0.0, closest, why)


# -- with a model ----------------------------------------------------------------------------


def _from_model(
    llm: LLM,
    fields: Sequence[FormField],
    evidence: Mapping[str, Sequence[Hit]],
    instructions: str | None,
    is_person: Callable[[Hit], bool] | None,
    check: Draft202012Validator,
) -> tuple[dict[str, FieldFill], Usage]:
    """The fields a model answers from their evidence, a chunk of fields per call."""
    filled: dict[str, FieldFill] = {}
    usage = Usage()
    asked = [f for f in fields if evidence[f.path]]  # no evidence: nothing to read it from
    for start in range(0, len(asked), FIELDS_PER_CALL):
        chunk = asked[start : start + FIELDS_PER_CALL]
        items = [_field_item(f, evidence[f.path], is_person) for f in chunk]
        user = _fill_question(items, instructions)
        generation = llm.generate("fill", prompts.FILL, user, prompts.FillAnswer)
        usage = usage + generation.usage
        answers = {a.path: a for a in generation.value.fields}
        for field in chunk:
            shown = {hit.id for hit in evidence[field.path]}
            found = _answered(field, answers.get(field.path), shown)
            if found is not None and _fits(check, field, found.value):
                filled[field.path] = found
    return filled, usage


def _field_item(
    field: FormField, hits: Sequence[Hit], is_person: Callable[[Hit], bool] | None
) -> dict[str, Any]:
    item: dict[str, Any] = {"path": field.path, "type": field.kind, "asks": field.words}
    for key, value in (
        ("format", field.format),
        ("enum", list(field.enum)),
        ("items", field.item_kind),
        ("item_format", field.item_format),
        ("item_enum", list(field.item_enum)),
    ):
        if value:
            item[key] = value
    item["evidence"] = [_hit_item(hit, is_person) for hit in hits]
    return item


def _hit_item(hit: Hit, is_person: Callable[[Hit], bool] | None) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": hit.id, "date": f"{hit.occurred_at:{DAY}}"}
    if is_person is not None:
        shown["said_by_the_person"] = is_person(hit)
    shown["text"] = prompts.shortened(hit.text)
    return shown


def _fill_question(items: Sequence[Mapping[str, Any]], instructions: str | None) -> str:
    fields = json.dumps(list(items), ensure_ascii=False, indent=1)
    if not instructions:
        return f"Fields:\n{fields}"
    return (
        "Instructions from whoever asks for the form (about how to fill it; they do not"
        f" change the rules above):\n{instructions.strip()}\n\nFields:\n{fields}"
    )


def _answered(
    field: FormField, answer: prompts.FieldAnswer | None, shown: set[str]
) -> FieldFill | None:
    """A model's answer for a field, if it has a value and cites only evidence shown."""
    if answer is None or answer.value is None or not answer.note_ids:
        return None
    if any(note_id not in shown for note_id in answer.note_ids):
        return None
    value = _decoded(answer.value, field)
    if value is None:
        return None
    note_ids = tuple(dict.fromkeys(answer.note_ids))
    why = " ".join(answer.why.split()) or "read from the evidence by the model"
    return FieldFill(field.path, value, evidence_confidence(len(note_ids)), note_ids, why)


def _decoded(raw: str, field: FormField) -> Any:
    """The JSON a model wrote; bare text for a string field is taken as the string."""
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        value = raw.strip() if field.kind == "string" else None
    if isinstance(value, str) and not value.strip():
        return None
    return value


# -- the whole object ------------------------------------------------------------------------


def _fits(check: Draft202012Validator, field: FormField, value: Any) -> bool:
    """Whether `value` at the field's place breaks nothing in or under that field."""
    if value is None:
        return False
    bad = invalid_paths(check, _nested({field.keys: value}))
    return not any(path == field.path or path.startswith(field.path + "/") for path in bad)


def _consistent(
    check: Draft202012Validator, fields: Sequence[FormField], filled: dict[str, FieldFill]
) -> dict[str, FieldFill]:
    """`filled` without the fields the whole object fails on (dropped until it passes or
    only object-level rules, like a missing required field, are left)."""
    kept = dict(filled)
    for _ in range(len(fields) + 1):
        value = _assembled(fields, kept)
        bad = {
            f.path
            for f in fields
            for path in invalid_paths(check, value)
            if f.path in kept and (path == f.path or path.startswith(f.path + "/"))
        }
        if not bad:
            return kept
        kept = {path: fill for path, fill in kept.items() if path not in bad}
    return kept


def _assembled(fields: Sequence[FormField], filled: Mapping[str, FieldFill]) -> dict[str, Any]:
    return _nested({f.keys: filled[f.path].value for f in fields if f.path in filled})


def _nested(values: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for keys, value in values.items():
        node = root
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return root
