"""Prefill: a JSON Schema filled from a real memory, with and without a (scripted) model;
what memory does not know stays empty; hostile schemas are refused before any work."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from remem import Memory
from remem.errors import InvalidInputError, LLMError
from remem.llms import OpenAICompatibleLLM
from remem.profile.attributes import find_attributes
from remem.profile.fill import FIELDS_PER_CALL, fill_form, slot_of
from remem.profile.schema import MAX_FIELDS, form_fields
from remem.testing import ScriptedOpenAIServer
from remem.types import Attribute, FieldFill, FilledForm, Hit

FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "email": {"type": "string", "format": "email"},
        "phone": {"type": "string", "title": "Mobile number"},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City you live in"}},
        },
        "date_of_birth": {"type": "string", "format": "date"},
        "favourite_colour": {"type": "string"},
        "age": {"type": "integer"},
        "level": {"type": "string", "enum": ["beginner", "expert"]},
        "pets": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["email", "age"],
}
TURNS = [
    ("Ana", "Hi! My email is ana.silva@example.com if you need it.", "2024-01-02T10:00:00Z"),
    ("Ana", "I live in Lisbon, near the river.", "2024-01-03T10:00:00Z"),
    ("Bo", "My email is bo@example.org and my number is +44 20 7946 0958.", "2024-01-04T10:00:00Z"),
    ("Ana", "Text me on my mobile, the number is +351 912 345 678.", "2024-01-05T10:00:00Z"),
    ("Ana", "My birthday is May 3rd, 1990.", "2024-01-06T10:00:00Z"),
    ("Ana", "My dog Rex and my cat Luna fight all day.", "2024-01-07T10:00:00Z"),
    ("Ana", "Green is the colour I paint my walls, always green.", "2024-01-08T10:00:00Z"),
    ("Ana", "I moved to Porto last month and I love it!", "2024-03-01T10:00:00Z"),
]


@pytest.fixture
def remembered(memory: Memory) -> Memory:
    for name, text, when in TURNS:
        memory.add([{"role": "user", "name": name, "content": text}], user_id="u", occurred_at=when)
    return memory


def speakers(memory: Memory) -> dict[str, str]:
    """note id -> who said it, read through the public API."""
    notes = memory.list(user_id="u", limit=100).items
    return {n.id: memory.episode(n.episode_ids[0]).name or "" for n in notes}


def attributes_of(memory: Memory) -> list[Attribute]:
    said = speakers(memory)
    notes = memory.list(user_id="u", limit=100).items
    return find_attributes(notes, lambda n: said[n.id] == "Ana")


def searcher(memory: Memory) -> Callable[[str, int], list[Hit]]:
    return lambda query, k: memory.search(query, user_id="u", limit=k)


def by_path(form: FilledForm) -> dict[str, FieldFill]:
    return {f.path: f for f in form.fields}


def test_without_a_model_attributes_fill_what_they_know(remembered: Memory) -> None:
    form, usage = fill_form(
        FORM, attributes=attributes_of(remembered), search=searcher(remembered), llm=None
    )
    fields = by_path(form)
    assert usage.calls == 0
    assert form.value["email"] == "ana.silva@example.com"
    assert form.value["phone"] == "+351 912 345 678"
    assert form.value["address"] == {"city": "Porto"}  # the move closed Lisbon
    assert form.value["date_of_birth"] == "1990-05-03"
    assert sorted(form.value["pets"]) == ["Luna (cat)", "Rex (dog)"]
    for path in ("/email", "/phone", "/address/city", "/date_of_birth", "/pets"):
        assert fields[path].confidence > 0 and fields[path].note_ids and fields[path].why
    said = speakers(remembered)
    assert all(said[i] == "Ana" for path in ("/email", "/phone") for i in fields[path].note_ids)


def test_what_memory_does_not_know_stays_empty_with_evidence(remembered: Memory) -> None:
    form, _ = fill_form(FORM, attributes=[], search=searcher(remembered), llm=None)
    fields = by_path(form)
    for path in ("/favourite_colour", "/age", "/level"):
        assert fields[path].value is None and fields[path].confidence == 0
        assert "does not say" in fields[path].why
    assert fields["/favourite_colour"].note_ids  # the closest notes, for a person to look at
    assert "favourite_colour" not in form.value and "age" not in form.value
    assert [f.path for f in form.fields] == [f.path for f in form_fields(FORM)]


def test_patterns_read_contacts_from_hits_only_when_the_person_said_them(
    remembered: Memory,
) -> None:
    said = speakers(remembered)
    schema = {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}
    own, _ = fill_form(
        schema,
        attributes=[],
        search=searcher(remembered),
        llm=None,
        is_person=lambda hit: said[hit.id] == "Ana",
    )
    assert own.value == {"email": "ana.silva@example.com"}
    assert own.fields[0].confidence < 0.75  # read from search hits: less sure than an attribute
    theirs, _ = fill_form(
        schema,
        attributes=[],
        search=searcher(remembered),
        llm=None,
        is_person=lambda hit: said[hit.id] == "Bo",
    )
    assert theirs.value == {"email": "bo@example.org"}


def test_a_value_that_breaks_the_schema_is_left_empty() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 3},
            "email": {"type": "string", "format": "email", "maxLength": 5},
            "level": {"type": "string", "enum": ["Porto", "Lisbon"]},
        },
    }
    home = Attribute("home", "Porto", ("nt_1",), 0.75)
    email = Attribute("email", "ana@example.com", ("nt_2",), 0.75)
    form, _ = fill_form(schema, attributes=[home, email], search=lambda q, k: [], llm=None)
    assert form.value == {}
    assert all(f.value is None and f.confidence == 0 for f in form.fields)


# -- with a (scripted) model -----------------------------------------------------------------


@pytest.fixture
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


def llm(server: ScriptedOpenAIServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "scripted", timeout=5.0, backoff=0.01)


def asked_fields(body: dict[str, Any]) -> list[dict[str, Any]]:
    content = body["messages"][1]["content"]
    fields = json.loads(content.split("Fields:\n", 1)[1])
    assert isinstance(fields, list)
    return fields


def evidence_with(field: dict[str, Any], word: str) -> list[str]:
    return [e["id"] for e in field["evidence"] if word in e["text"].lower()]


def answers(body: dict[str, Any]) -> str:
    """A model that reads the evidence: the right colour, and wrong answers of every kind."""
    out = []
    for field in asked_fields(body):
        path = field["path"]
        if path == "/favourite_colour":
            out.append(
                {"path": path, "value": '"green"', "note_ids": evidence_with(field, "green")}
            )
        elif path == "/age":  # wrong type
            out.append({"path": path, "value": '"forty"', "note_ids": [field["evidence"][0]["id"]]})
        elif path == "/level":  # not an allowed value
            out.append({"path": path, "value": '"guru"', "note_ids": [field["evidence"][0]["id"]]})
        elif path == "/nickname":  # an id it was not shown
            out.append({"path": path, "value": '"Nana"', "note_ids": ["nt_not_shown"]})
        elif path == "/hobby":  # no evidence at all
            out.append({"path": path, "value": '"painting"', "note_ids": []})
    out.append({"path": "/not_asked", "value": '"x"', "note_ids": []})  # ignored
    return json.dumps({"fields": out})


def test_a_model_fills_with_evidence_and_wrong_answers_are_dropped(
    remembered: Memory, model: ScriptedOpenAIServer
) -> None:
    schema = json.loads(json.dumps(FORM))
    schema["properties"].update(nickname={"type": "string"}, hobby={"type": "string"})
    model.reply(answers, when='"name": "fill"', times=None)
    form, usage = fill_form(
        schema,
        attributes=attributes_of(remembered),
        search=searcher(remembered),
        llm=llm(model),
        instructions="Answer in English.",
    )
    fields = by_path(form)
    assert usage.calls == 1
    assert form.value["favourite_colour"] == "green"
    green = fields["/favourite_colour"]
    assert green.note_ids and green.confidence > 0
    assert all("green" in remembered.get(i).text.lower() for i in green.note_ids)
    for path in ("/age", "/level", "/nickname", "/hobby"):
        assert fields[path].value is None and fields[path].confidence == 0
    assert "not_asked" not in form.value and "/not_asked" not in fields
    assert form.value["email"] == "ana.silva@example.com"  # attributes are not asked again
    asked = {f["path"] for f in asked_fields(model.chat_requests()[0])}
    assert "/email" not in asked and "/favourite_colour" in asked
    assert "Answer in English." in model.chat_requests()[0]["messages"][1]["content"]


def test_big_forms_are_asked_in_chunks(remembered: Memory, model: ScriptedOpenAIServer) -> None:
    count = FIELDS_PER_CALL * 2 + 5
    schema = {"type": "object", "properties": {f"q{i}": {"type": "string"} for i in range(count)}}
    model.reply('{"fields": []}', when='"name": "fill"', times=None)
    form, usage = fill_form(schema, attributes=[], search=searcher(remembered), llm=llm(model))
    assert usage.calls == 3 and len(model.chat_requests()) == 3
    assert len(form.fields) == count and form.value == {}


def test_a_failing_model_raises(remembered: Memory, model: ScriptedOpenAIServer) -> None:
    model.fail_next(500, times=3)
    with pytest.raises(LLMError):
        fill_form(FORM, attributes=[], search=searcher(remembered), llm=llm(model))
    model.reply("garbage, not JSON", when='"name": "fill"', times=3)
    with pytest.raises(LLMError):
        fill_form(FORM, attributes=[], search=searcher(remembered), llm=llm(model))


# -- hostile schemas -------------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"inner": schema}}
    return schema


def form(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


STRING = {"type": "string"}
NODE = {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}
CYCLE = {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}
HOSTILE: list[tuple[str, Any, str]] = [
    ("a list", [1, 2], "JSON object"),
    ("a string", "form", "JSON object"),
    ("a string schema", STRING, "object"),
    ("no properties", form(), "no properties"),
    ("a bad type", form(a={"type": 5}), "not valid JSON Schema"),
    ("non-string keys", {"type": "object", "properties": {1: STRING}}, "strings"),
    ("10k fields", form(**{f"f{i}": STRING for i in range(10_000)}), "too big"),
    ("too many fields", form(**{f"f{i}": STRING for i in range(MAX_FIELDS + 1)}), "more than"),
    ("too deep", nested(100), "deeper"),
    ("deep but few fields", nested(12), "deeper"),
    ("a remote $ref", form(a={"$ref": "https://example.com/s.json"}), "outside"),
    ("a file $ref", form(a={"$ref": "file:///etc/passwd"}), "outside"),
    ("a self $ref", form(me={"$ref": "#"}), "refers to itself"),
    ("a $ref cycle", {**form(x={"$ref": "#/$defs/a"}), "$defs": CYCLE}, "refers to itself"),
    ("a recursive object", {**form(r={"$ref": "#/$defs/node"}), "$defs": {"node": NODE}}, "itself"),
    ("a dangling $ref", form(a={"$ref": "#/$defs/missing"}), "points at nothing"),
    ("a dangling $ref elsewhere", {**form(a=STRING), "not": {"$ref": "#/nope"}}, "points at"),
    ("an anchor $ref", form(a={"$ref": "#here"}), "outside"),
    ("a nested $id", form(a={"$id": "https://evil.example/x", **STRING}), "not supported"),
    ("a choice", form(a={"anyOf": [STRING, {"type": "integer"}]}), "several choices"),
    ("arrays of objects", form(a={"type": "array", "items": form(b=STRING)}), "not supported"),
    ("a null field", form(a={"type": "null"}), "a form field must be"),
    ("a pattern", form(a={"type": "string", "pattern": "^(a+)+$"}), "pattern is not supported"),
    ("an alternation", form(a={"type": "string", "pattern": "^(?:b|a+)+$"}), "unbounded time"),
    (
        "pattern properties",
        {**form(a=STRING), "patternProperties": {"^(a+)+$": {}}},
        "patternProperties is not",
    ),
    ("property names", {**form(a=STRING), "propertyNames": {"pattern": "^a"}}, "not supported"),
    ("a huge enum", form(a={"type": "string", "enum": [str(i) for i in range(201)]}), "enum"),
    ("a deep document", {**form(a=STRING), "x": json.loads("[" * 500 + "]" * 500)}, "nests"),
]


@pytest.mark.parametrize(
    ("schema", "message"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_schemas_are_refused_clearly(schema: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        fill_form(schema, attributes=[], search=lambda q, k: [], llm=None)


def test_local_refs_nullable_fields_and_exactly_max_fields_are_fine() -> None:
    schema = {
        "$id": "https://example.com/person.schema.json",
        "type": "object",
        "$defs": {"city": {"type": "string", "description": "city"}},
        "properties": {
            "home": {"$ref": "#/$defs/city"},
            "work": {"$ref": "#/$defs/city"},
            "email": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
            **{f"f{i}": {"type": ["string", "null"]} for i in range(MAX_FIELDS - 3)},
        },
    }
    home = Attribute("home", "Porto", ("nt_1",), 0.75)
    form, _ = fill_form(schema, attributes=[home], search=lambda q, k: [], llm=None)
    assert len(form.fields) == MAX_FIELDS
    assert form.value == {"home": "Porto", "work": "Porto"}


def test_a_specific_question_is_not_answered_by_a_slot() -> None:
    pets = Attribute("pet", "Bailey (cat)", ("nt_1",), 0.75)
    schema = form(
        oscar={"type": "string", "description": "Is Oscar Melanie's pet?"},
        book={"type": "string", "description": "What was her favourite book as a child?"},
        pets={"type": "string", "description": "Pets you have"},
    )
    filled, _ = fill_form(schema, attributes=[pets], search=lambda q, k: [], llm=None)
    assert filled.value == {"pets": "Bailey (cat)"}


@pytest.mark.parametrize(
    ("key", "description", "slot"),
    [
        ("email", "", "email"),
        ("contactEmail", "", "email"),
        ("company_email", "", "email"),
        ("mobile", "", "phone"),
        ("name", "", "name"),
        ("full_name", "", "name"),
        ("dog_names", "", None),
        ("first_name", "", None),
        ("city", "", "home"),
        ("home_country", "", None),
        ("previous_job", "The job the person lost", None),
        ("occupation", "", "work"),
        ("q1", "City you live in", "home"),
        ("q2", "What pet does Ana have?", "pet"),
        ("q3", "Is Oscar Ana's pet?", None),
        ("q4", "What is the name of Ana's one-year-old child?", None),
        ("dream_job", "", None),
    ],
)
def test_fields_name_the_slot_they_ask_for(key: str, description: str, slot: str | None) -> None:
    field = form_fields(form(**{key: {"type": "string", "description": description}}))[0]
    assert slot_of(field) == slot


def test_a_model_may_complete_a_list_attributes_know_part_of(
    remembered: Memory, model: ScriptedOpenAIServer
) -> None:
    schema = form(pets={"type": "array", "items": STRING}, city=STRING)

    def complete(body: dict[str, Any]) -> str:
        fields = asked_fields(body)
        assert [f["path"] for f in fields] == ["/pets"]  # the city is known: not asked
        ids = evidence_with(fields[0], "dog")
        value = json.dumps(["Rex", "Luna"])
        return json.dumps({"fields": [{"path": "/pets", "value": value, "note_ids": ids}]})

    model.reply(complete, when='"name": "fill"')
    filled, usage = fill_form(
        schema, attributes=attributes_of(remembered), search=searcher(remembered), llm=llm(model)
    )
    assert usage.calls == 1 and filled.value["city"] == "Porto"
    assert filled.value["pets"] == ["Rex", "Luna"]
    model.reply('{"fields": []}', when='"name": "fill"')  # no answer: the attributes stay
    kept, _ = fill_form(
        schema, attributes=attributes_of(remembered), search=searcher(remembered), llm=llm(model)
    )
    assert sorted(kept.value["pets"]) == ["Luna (cat)", "Rex (dog)"]
