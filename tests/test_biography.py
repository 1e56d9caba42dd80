"""The biography and status: a summary without a model that is never empty when there are
notes, a model's version that keeps only sentences with evidence it was shown, and the
compact profile block that leads every context."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from remem.errors import LLMError
from remem.llms import OpenAICompatibleLLM
from remem.profile.biography import (
    MAX_BIOGRAPHY_WORDS,
    model_biography,
    profile_block,
    summary_biography,
)
from remem.testing import ScriptedOpenAIServer
from remem.tokens import token_counts
from remem.types import Attribute, Biography, Note, Profile, Scope, Statement, TimelineEntry, Topic

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)


def note(note_id: str, text: str, days_ago: float) -> Note:
    when = NOW - timedelta(days=days_ago)
    return Note(note_id, Scope(user_id="u"), text, {}, when, when, when, 1, ())


def topic(topic_id: str, label: str, notes: Sequence[Note], confidence: float = 0.5) -> Topic:
    return Topic(
        id=topic_id,
        label=label,
        keywords=tuple(label.split()),
        note_ids=tuple(n.id for n in notes),
        first_at=min(n.occurred_at for n in notes),
        last_at=max(n.occurred_at for n in notes),
        timeline=tuple(TimelineEntry(n.occurred_at, n.id, n.text) for n in notes),
        confidence=confidence,
    )


POTTERY = [note(f"nt_p{i}", f"Pottery class number {i} was fun", 60 - i * 10) for i in range(4)]
RUNNING = [note(f"nt_r{i}", f"Ran {5 + i} km this morning", 30 - i * 5) for i in range(3)]
RECENT = [note("nt_new1", "Signed up for a half marathon in Porto", 2), note("nt_new2", "x", 1)]
HOME = Attribute("home", "Porto", ("nt_h1", "nt_h2"), 0.875, NOW - timedelta(days=90))
OLD_HOME = Attribute("home", "Lisbon", ("nt_h0",), 0.75, NOW - timedelta(days=400), HOME.valid_from)
PET = Attribute("pet", "Rex (dog)", ("nt_d1",), 0.75, NOW - timedelta(days=100))
KNOWN = {n.id for n in [*POTTERY, *RUNNING, *RECENT]} | {"nt_h1", "nt_h2", "nt_h0", "nt_d1"}


def every_id(biography: Biography) -> set[str]:
    return {i for s in (*biography.sentences, *biography.status) for i in s.note_ids}


def test_the_summary_tells_attributes_topics_and_recent_activity() -> None:
    topics = [topic("tp_1", "pottery class", POTTERY, 0.9), topic("tp_2", "running km", RUNNING)]
    bio = summary_biography(topics, [OLD_HOME, HOME, PET], RECENT, version=3, now=NOW)
    assert bio.by == "summary" and bio.version == 3 and bio.updated_at == NOW
    assert "Lives in Porto." in bio.text and "Lisbon" not in bio.text  # only what holds now
    assert "Pets: Rex (dog)." in bio.text
    assert bio.text.index("pottery class") < bio.text.index("running km")  # surest first
    assert [s.note_ids for s in bio.status] == [("nt_new2",), ("nt_new1",)]  # newest first
    assert "half marathon" in bio.status[1].text
    assert all(s.note_ids for s in (*bio.sentences, *bio.status))
    assert every_id(bio) <= KNOWN
    assert bio.text == " ".join(s.text for s in bio.sentences)


def test_the_summary_is_never_empty_when_there_are_notes() -> None:
    old = [note("nt_o1", "Went to the dentist", 300), note("nt_o2", "Bought a bike", 299.5)]
    bio = summary_biography([], [], old, version=1, now=NOW)
    assert bio.sentences and bio.status  # the last active day, when nothing is recent
    assert {i for s in bio.status for i in s.note_ids} == {"nt_o1", "nt_o2"}
    empty = summary_biography([], [], [], version=1, now=NOW)
    assert empty.text == "" and empty.sentences == () and empty.status == ()


def test_the_summary_shortens_long_notes_and_cites_a_bounded_number_of_ids() -> None:
    many = [note(f"nt_{i:04d}", "word " * 500, 3) for i in range(40)]
    bio = summary_biography([topic("tp_big", "words", many)], [], many, version=1, now=NOW)
    assert all(len(s.text) < 300 for s in (*bio.sentences, *bio.status))
    assert all(0 < len(s.note_ids) <= 10 for s in bio.sentences)
    assert every_id(bio) <= {n.id for n in many}


# -- with a model ----------------------------------------------------------------------------


@pytest.fixture
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


def llm(server: ScriptedOpenAIServer) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "scripted", timeout=5.0, backoff=0.01)


def written(biography: list[tuple[str, list[str]]], status: list[tuple[str, list[str]]]) -> str:
    return json.dumps(
        {
            "biography": [{"text": t, "note_ids": ids} for t, ids in biography],
            "status": [{"text": t, "note_ids": ids} for t, ids in status],
        }
    )


def test_model_sentences_keep_only_evidence_they_were_shown(model: ScriptedOpenAIServer) -> None:
    topics = [topic("tp_1", "pottery", POTTERY)]
    answer = written(
        [
            ("Ana lives in Porto.", ["nt_h1"]),
            ("She makes pottery.", ["nt_p3", "nt_invented"]),
            ("She is a famous astronaut.", ["nt_invented"]),
            ("She is kind.", []),
        ],
        [("She is training for a half marathon.", ["nt_new1"])],
    )
    model.reply(answer, when='"name": "biography"')
    bio, usage = model_biography(
        llm(model), topics, [HOME], RECENT, person="Ana", version=2, now=NOW
    )
    assert bio.by == "model" and bio.version == 2 and usage.calls == 1
    assert [(s.text, s.note_ids) for s in bio.sentences] == [
        ("Ana lives in Porto.", ("nt_h1",)),
        ("She makes pottery.", ("nt_p3",)),
    ]
    assert bio.status == (Statement("She is training for a half marathon.", ("nt_new1",)),)
    asked = model.chat_requests()[0]["messages"][1]["content"]
    assert "Ana" in asked and "nt_new1" in asked and "2024-06-30" in asked


def test_a_model_biography_stays_within_200_words(model: ScriptedOpenAIServer) -> None:
    long = [(f"Sentence {i} " + "word " * 18, ["nt_new1"]) for i in range(20)]
    model.reply(written(long, []), when='"name": "biography"')
    bio, _ = model_biography(llm(model), [], [], RECENT, person=None, version=1, now=NOW)
    assert 0 < len(bio.text.split()) <= MAX_BIOGRAPHY_WORDS


def test_a_model_answer_with_no_evidence_falls_back_to_the_summary(
    model: ScriptedOpenAIServer,
) -> None:
    model.reply(written([("Made up.", ["nt_nope"])], []), when='"name": "biography"')
    bio, usage = model_biography(llm(model), [], [HOME], RECENT, person="Ana", version=4, now=NOW)
    assert bio.by == "summary" and "Lives in Porto." in bio.text and usage.calls == 1


def test_a_failing_model_raises_with_its_cost(model: ScriptedOpenAIServer) -> None:
    model.fail_next(500, times=3)
    with pytest.raises(LLMError) as raised:
        model_biography(llm(model), [], [HOME], RECENT, person="Ana", version=1, now=NOW)
    assert raised.value.usage is not None and raised.value.usage.calls == 3


def test_nothing_to_show_asks_no_model(model: ScriptedOpenAIServer) -> None:
    bio, usage = model_biography(llm(model), [], [], [], person="Ana", version=1, now=NOW)
    assert bio.text == "" and usage.calls == 0 and model.chat_requests() == []


# -- the block in every context --------------------------------------------------------------


def profile(
    biography: Biography, attributes: Sequence[Attribute], topics: Sequence[Topic]
) -> Profile:
    return Profile("pf_1", Scope(user_id="u"), tuple(topics), tuple(attributes), biography, 1, NOW)


def test_the_block_says_who_this_is_within_the_budget() -> None:
    name = Attribute("name", "Ana Silva", ("nt_n",), 0.75, NOW)
    topics = [topic("tp_1", "pottery class", POTTERY), topic("tp_2", "running", RUNNING)]
    bio = summary_biography(topics, [name, HOME, PET], RECENT, version=1, now=NOW)
    known = profile(bio, [name, OLD_HOME, HOME, PET], topics)
    block = profile_block(known, 500, token_counts)
    lines = block.splitlines()
    assert lines[0] == "About the person:"
    assert "Name: Ana Silva" in lines and "Lives in: Porto" in lines
    assert "Lisbon" not in block and any(line.startswith("Main topics: pottery") for line in lines)
    assert any(line.startswith("Lately: ") for line in lines)
    for budget in (5, 12, 20, 40, 80):
        small = profile_block(known, budget, token_counts)
        assert sum(token_counts(small.splitlines())) + len(small.splitlines()) <= budget + 1
        assert small == "" or small.startswith("About the person:\nName: Ana Silva")


def test_the_block_is_empty_when_nothing_is_known() -> None:
    nothing = summary_biography([], [], [], version=1, now=NOW)
    assert profile_block(profile(nothing, [], []), 500, token_counts) == ""
    assert profile_block(profile(nothing, [HOME], []), 0, token_counts) == ""


def test_the_status_is_the_person_s_own_when_speakers_are_known() -> None:
    mine = note("nt_mine", "Booked flights to Porto", 1)
    theirs = note("nt_theirs", "As your assistant I suggest hotels", 0.5)
    bio = summary_biography(
        [], [], [mine, theirs], version=1, now=NOW, is_person=lambda n: n.id == "nt_mine"
    )
    assert [s.note_ids for s in bio.status] == [("nt_mine",)]
    nobody = summary_biography([], [], [theirs], version=1, now=NOW, is_person=lambda n: False)
    assert [s.note_ids for s in nobody.status] == [("nt_theirs",)]  # never empty
