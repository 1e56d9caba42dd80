"""Attributes of the person: what patterns read from their own words, and the merge that
keeps history (a newer home closes the older one, which stays readable)."""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from remem.errors import LLMError
from remem.llms import OpenAICompatibleLLM
from remem.profile.attributes import (
    SLOTS,
    current,
    evidence_confidence,
    find_attributes,
    merge_attributes,
    model_attributes,
)
from remem.testing import ScriptedOpenAIServer
from remem.types import Attribute, Note, Scope

START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
ANA = "Ana"


def note(text: str, day: int = 0, *, note_id: str | None = None, who: str = ANA) -> Note:
    when = START + timedelta(days=day)
    return Note(
        id=note_id
        or f"nt_{day:03d}_{zlib.crc32((who + text).encode('utf-8', 'surrogatepass')):08x}",
        scope=Scope(user_id="u"),
        text=text,
        metadata={"who": who},
        occurred_at=when,
        created_at=when,
        updated_at=when,
        version=1,
        episode_ids=(),
    )


def checksum(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def said_by_ana(n: Note) -> bool:
    return bool(n.metadata.get("who") == ANA)


def values(attributes: list[Attribute], slot: str) -> list[str]:
    return [a.value for a in attributes if a.slot == slot]


@pytest.mark.parametrize(
    ("text", "slot", "value"),
    [
        ("I live in Lisbon.", "home", "Lisbon"),
        ("We just moved to New York City and love it", "home", "New York City"),
        ("I work as a nurse at St Mary's Hospital.", "work", "nurse"),
        ("I work as a nurse at St Mary's Hospital.", "employer", "St Mary's Hospital"),
        ("I'm working for Acme Corp these days", "employer", "Acme Corp"),
        ("My dog Rex loves the beach", "pet", "Rex (dog)"),
        ("my cat, Luna, sleeps all day", "pet", "Luna (cat)"),
        ("And yup, I do- Oscar, my guinea pig.", "pet", "Oscar (guinea pig)"),
        ("we got another cat named Bailey too", "pet", "Bailey (cat)"),
        ("My birthday is May 3rd, 1990.", "birthday", "1990-05-03"),
        ("my birthday is on 3 March", "birthday", "--03-03"),
        ("I'm allergic to peanuts.", "health", "allergic to peanuts"),
        ("I'm lactose intolerant, so no cheese", "health", "lactose intolerant"),
        ("Reach me at Ana.Silva@example.com any time", "email", "ana.silva@example.com"),
        ("My number is +351 912 345 678", "phone", "+351 912 345 678"),
        (
            "Check out my blog https://ana.example/posts, thanks",
            "website",
            "https://ana.example/posts",
        ),
        ("I love hiking!", "likes", "hiking"),
        ("I can't stand loud music", "dislikes", "loud music"),
        ("My name is Ana Silva", "name", "Ana Silva"),
        ("I grew up in São Paulo", "origin", "São Paulo"),
        ("my wife Maria is a painter", "partner", "Maria (wife)"),
        ("I graduated from MIT in 2010", "education", "MIT"),
        ("Our trip was for my daughter Sara\u2019s birthday", "child", "Sara (daughter)"),
    ],
)
def test_patterns_fill_the_right_slot_with_evidence(text: str, slot: str, value: str) -> None:
    said = note(text, 3)
    found = find_attributes([said], said_by_ana)
    assert value in values(found, slot)
    attribute = next(a for a in found if a.slot == slot and a.value == value)
    assert attribute.note_ids == (said.id,)
    assert attribute.valid_from == said.occurred_at and attribute.valid_to is None
    assert attribute.source == "pattern" and attribute.confidence == evidence_confidence(1)


@pytest.mark.parametrize(
    "text",
    [
        "Do you live in Paris?",
        "I don't work at Google.",
        "I do not live in Berlin anymore",
        "If I lived in Rome I would eat pasta daily",
        "If I live in Rome, I'll learn Italian.",
        "I want to live in Paris one day",
        "I'd love to move to Tokyo",
        "I never said I live in Madrid",
        "I love that!",
        "I love how you paint",
        "I love the colours in this one",
        "a job I enjoy every day",
        "Her email is bo@example.com",
        "his number is +1 555 123 4567",
        "I paid 1234567 dollars for it",
        "My girlfriend, Toby and I went camping",
        "Thanks, Mel, my dog loves it",
        "My husband and I went out",
        "I moved to a new flat",
        "my birthday is in two weeks",
        "I hate not being on the court",
    ],
)
def test_questions_negations_hypotheticals_and_references_fill_nothing(text: str) -> None:
    assert find_attributes([note(text)], said_by_ana) == []


def test_other_speakers_statements_are_not_the_person_s() -> None:
    notes = [note("I live in Oslo", 1, who="Bo"), note("My dog Rex is old", 2, who="Bo")]
    notes.append(note("I live in Lisbon", 3))
    found = find_attributes(notes, said_by_ana)
    assert [(a.slot, a.value) for a in found] == [("home", "Lisbon")]


def test_a_move_closes_the_old_home_and_keeps_it() -> None:
    lisbon, porto = note("I live in Lisbon", 1), note("I moved to Porto last month!", 40)
    found = find_attributes([porto, lisbon], said_by_ana)  # order given does not matter
    homes = [a for a in found if a.slot == "home"]
    assert [(a.value, a.valid_to) for a in homes] == [
        ("Lisbon", porto.occurred_at),
        ("Porto", None),
    ]
    assert [a.value for a in current(found)] == ["Porto"]


def test_a_value_said_again_adds_its_evidence() -> None:
    first, again = note("I live in Lisbon", 1), note("I still live in Lisbon.", 9)
    found = find_attributes([first], said_by_ana)
    merged = merge_attributes(found, find_attributes([again], said_by_ana))
    assert len(merged) == 1
    assert merged[0].value == "Lisbon" and merged[0].valid_from == first.occurred_at
    assert merged[0].note_ids == tuple(sorted((first.id, again.id)))
    assert merged[0].confidence == evidence_confidence(2) > evidence_confidence(1)


def test_moving_back_is_a_new_period_not_the_old_one() -> None:
    notes = [
        note("I live in Lisbon", 1),
        note("I moved to Porto", 10),
        note("I moved to Lisbon", 20),
    ]
    homes = find_attributes(notes, said_by_ana)
    assert [(a.value, a.valid_from, a.valid_to) for a in homes] == [
        ("Lisbon", notes[0].occurred_at, notes[1].occurred_at),
        ("Porto", notes[1].occurred_at, notes[2].occurred_at),
        ("Lisbon", notes[2].occurred_at, None),
    ]


def test_multi_valued_slots_accumulate() -> None:
    notes = [note("My dog Rex barks", 1), note("My cat Luna purrs", 2), note("my dog Rex again", 3)]
    pets = [a for a in find_attributes(notes, said_by_ana) if a.slot == "pet"]
    assert sorted((a.value, len(a.note_ids)) for a in pets) == [("Luna (cat)", 1), ("Rex (dog)", 2)]
    assert all(a.valid_to is None for a in pets)


def test_the_merge_does_not_depend_on_input_order() -> None:
    notes = [
        note("I live in Lisbon", 1),
        note("I moved to Porto", 5),
        note("I live in Porto", 6),
        note("My dog Rex", 2),
        note("I love hiking", 3),
        note("I work as a teacher", 4),
        note("I work as a baker", 8),
    ]
    found = [find_attributes([n], said_by_ana) for n in notes]
    expected = merge_attributes([], [a for part in found for a in part])
    for order in itertools.islice(itertools.permutations(found), 60):
        flat = [a for part in order for a in part]
        half = len(flat) // 2
        assert merge_attributes(flat[:half], flat[half:]) == expected
        assert merge_attributes(merge_attributes([], flat[half:]), flat[:half]) == expected


def test_a_person_set_value_keeps_full_confidence_and_unknown_slots_are_dropped() -> None:
    mine = Attribute("home", "Braga", (), 1.0, START, source="person")
    odd = Attribute("favourite-colour", "red", ("nt_x",), 0.9, START)
    blank = Attribute("home", "   ", ("nt_y",), 0.9, START)
    merged = merge_attributes([mine], [odd, blank])
    assert merged == [mine]


def test_odd_encodings_do_not_break_or_fool_the_patterns() -> None:
    texts = [
        "I live in Z\u00fcrich\u200b.",  # zero-width space after the name
        "I\u00a0live in Lisbon",  # no-break space: not the pattern's space, so no match
        "\ud800 broken surrogate I live in Kyiv",
        "I live in \u202eLondon",  # right-to-left override: not a capital letter
        "\x00\x01 My dog Rex \x7f",
        "I live in " + "A" * 10_000,
        "my email is " + "a" * 5000 + "@example.com",
    ]
    found = find_attributes([note(t, i) for i, t in enumerate(texts)], said_by_ana)
    by_slot = {(a.slot, a.value) for a in found}
    assert ("pet", "Rex (dog)") in by_slot and ("home", "Kyiv") in by_slot
    assert all(len(a.value) < 200 for a in found)
    assert all(a.slot in SLOTS for a in found)


# -- with a model ----------------------------------------------------------------------------


@pytest.fixture
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


def llm(server: ScriptedOpenAIServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "scripted", timeout=5.0, backoff=0.01)


def test_model_attributes_keep_only_cited_known_slots(model: ScriptedOpenAIServer) -> None:
    notes = [note("We finally settled in Porto", 1), note("Started at the bakery", 2)]
    answer = {
        "attributes": [
            {"slot": "home", "value": "Porto", "note_ids": [notes[0].id]},
            {"slot": "work", "value": "baker", "note_ids": [notes[1].id, "nt_made_up"]},
            {"slot": "star sign", "value": "Leo", "note_ids": [notes[0].id]},
            {"slot": "pet", "value": "  ", "note_ids": [notes[0].id]},
            {"slot": "employer", "value": "Padaria", "note_ids": ["nt_someone_else"]},
        ]
    }
    model.reply(json.dumps(answer), when='"name": "attributes"')
    found, usage = model_attributes(llm(model), notes, "Ana", speaker_of=lambda n: ANA)
    assert [(a.slot, a.value, a.note_ids, a.source) for a in found] == [
        ("home", "Porto", (notes[0].id,), "model")
    ]
    assert found[0].valid_from == notes[0].occurred_at
    assert usage.calls == 1
    shown = model.chat_requests()[0]["messages"][1]["content"]
    assert notes[0].id in shown and "Ana" in shown and "Porto" in shown


def test_model_attributes_raise_when_the_model_keeps_failing(model: ScriptedOpenAIServer) -> None:
    model.fail_next(500, times=3)
    with pytest.raises(LLMError):
        model_attributes(llm(model), [note("I live in Lisbon")], None)
    model.reply("this is not json", times=3)
    with pytest.raises(LLMError) as raised:
        model_attributes(llm(model), [note("I live in Lisbon")], None)
    assert raised.value.usage is not None and raised.value.usage.calls == 3


def test_model_attributes_of_no_notes_cost_nothing(model: ScriptedOpenAIServer) -> None:
    found, usage = model_attributes(llm(model), [], "Ana")
    assert found == [] and usage.calls == 0
    assert model.chat_requests() == []


def test_when_the_newer_value_s_evidence_is_gone_the_older_one_holds_again() -> None:
    lisbon, porto = note("I live in Lisbon", 1), note("I moved to Porto", 40)
    history = find_attributes([lisbon, porto], said_by_ana)
    without_porto = [a for a in history if porto.id not in a.note_ids]  # its note was deleted
    merged = merge_attributes(without_porto, [])
    assert [(a.value, a.valid_to) for a in merged] == [("Lisbon", None)]


def test_odd_times_merge_without_error() -> None:
    naive = Attribute("home", "Braga", ("nt_a",), 0.75, datetime(2024, 2, 1))  # no zone
    undated = Attribute("home", "Faro", ("nt_b",), 0.75, None)  # the earliest
    ancient = Attribute("home", "Evora", ("nt_c",), 0.75, datetime(1, 6, 1, tzinfo=UTC))
    late = Attribute("home", "Tavira", ("nt_d",), 0.75, datetime(9999, 12, 30, tzinfo=UTC))
    merged = merge_attributes([late, naive], [ancient, undated])
    assert [a.value for a in merged] == ["Faro", "Evora", "Braga", "Tavira"]
    assert [a.value for a in current(merged)] == ["Tavira"]
