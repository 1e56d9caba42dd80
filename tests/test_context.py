"""`Memory.context`: recent turns, then relevant memories, dated, within the budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from remem import InvalidInputError, Memory
from remem.llms import OpenAICompatibleLLM
from remem.read.context import (
    MEMORY_HEADER,
    MIN_SHORTENED_WORDS,
    RECENT_HEADER,
    Candidate,
    assemble,
)
from remem.testing import HashEmbedder, ScriptedTransport
from remem.tokens import count_tokens, token_counts

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def lived(memory: Memory) -> Memory:
    memory.add(
        [{"role": "user", "name": "Ana", "content": "My sister Bea lives in Porto."}],
        user_id="ana",
        session_id="old",
        occurred_at="2024-01-10T09:00:00Z",
    )
    memory.add(
        [
            {"role": "user", "name": "Ana", "content": "I am planning a trip this summer."},
            {"role": "assistant", "content": "Where would you like to go?"},
        ],
        user_id="ana",
        session_id="now",
        occurred_at="2024-05-01T12:00:00Z",
    )
    return memory


# the sections below are tested without the profile block, which test_profile.py covers
def test_context_has_recent_turns_then_dated_memories(lived: Memory) -> None:
    context = lived.context(
        "Should I visit my sister Bea?", user_id="ana", session_id="now", profile_share=0
    )
    recent, memories = context.text.split("\n\n")
    assert recent.splitlines()[0] == RECENT_HEADER
    assert "- [2024-05-01 12:00] Ana: I am planning a trip this summer." in recent
    assert "- [2024-05-01 12:00] the assistant: Where would you like to go?" in recent
    assert recent.index("planning") < recent.index("Where would")  # in the order said
    assert memories.splitlines()[0] == MEMORY_HEADER
    assert "- [2024-01-10 09:00] Ana: My sister Bea lives in Porto." in memories
    assert [item.kind for item in context.items] == ["recent", "recent", "memory"]
    assert context.items[2].id == lived.search("sister Bea", user_id="ana")[0].id
    assert context.tokens == count_tokens([context.text]) <= context.budget


def test_turns_already_in_the_recent_part_are_not_repeated(lived: Memory) -> None:
    context = lived.context("trip this summer", user_id="ana", session_id="now", profile_share=0)
    assert context.text.count("planning a trip") == 1


def test_without_a_session_only_memories_are_given(lived: Memory) -> None:
    context = lived.context("trip", user_id="ana", profile_share=0)
    assert {item.kind for item in context.items} == {"memory"}


LABEL = "- [2024-05-01] fact: "


def _memories(count: int) -> list[Candidate]:
    return [
        Candidate(f"nt_{i}", "memory", f"{LABEL}item {i} " + "word " * 30, WHEN, 1 / (i + 1), LABEL)
        for i in range(count)
    ]


@pytest.mark.parametrize("budget", [40, 60, 120, 400])
def test_over_budget_the_least_relevant_go_first(budget: int) -> None:
    recent = [
        Candidate(f"ep_{i}", "recent", f"[2024-05-01 12:0{i}] Ana: turn {i}", WHEN)
        for i in range(3)
    ]
    context = assemble(recent, _memories(10), budget, token_counts)
    assert count_tokens([context.text]) == context.tokens <= budget
    kept = [item.id for item in context.items if item.kind == "memory"]
    assert kept == [f"nt_{i}" for i in range(len(kept))]  # a prefix of the ranking
    for kind in ("recent", "memory"):  # only the edge item of each part may be shortened
        part = [item for item in context.items if item.kind == kind]
        if kind == "recent":
            part.reverse()  # shown oldest first, fitted newest first
        assert all(not item.shortened for item in part[:-1])


def test_the_edge_item_is_shortened_at_a_word_boundary() -> None:
    context = assemble([], _memories(3), 70, token_counts)
    last = context.items[-1]
    assert last.shortened and last.text.endswith(" …")
    assert last.text.startswith(LABEL)
    original = _memories(3)[len(context.items) - 1].text
    assert original.startswith(last.text[: -len(" …")] + " ")


@pytest.mark.parametrize("budget", range(50, 90))
def test_a_shortened_item_keeps_its_label_and_eight_words_or_is_dropped(budget: int) -> None:
    context = assemble([], _memories(3), budget, token_counts)
    assert context.tokens <= budget
    for item in context.items:
        assert item.text.startswith(LABEL)
        if item.shortened:
            kept = item.text[len(LABEL) : -len(" …")].split(" ")
            assert len(kept) >= MIN_SHORTENED_WORDS and all(kept)


def test_an_edge_item_too_short_to_shorten_well_is_dropped() -> None:
    short = Candidate(
        "nt_s", "memory", f"{LABEL}Ana likes green tea and long walks.", WHEN, label=LABEL
    )
    (fits,) = token_counts([MEMORY_HEADER + "\n" + short.text])
    context = assemble([], [short], fits - 2, token_counts)
    assert context.items == () and context.text == ""


def test_context_checks_its_input(lived: Memory) -> None:
    with pytest.raises(InvalidInputError, match="budget_tokens"):
        lived.context("trip", user_id="ana", budget_tokens=10)
    with pytest.raises(InvalidInputError, match="query"):
        lived.context(" ", user_id="ana")


def _answers(model: ScriptedTransport) -> None:
    fact = {"text": "Ana moved to Berlin in March 2024.", "occurred_on": "2024-03-01"}
    model.reply(json.dumps({"facts": [fact]}), when='"name": "extract"')
    model.reply('{"facts": []}', when='"name": "extract"', times=None)
    for name, empty in (("reconcile", "decisions"), ("enrich", "notes"), ("link", "links")):
        model.reply(json.dumps({empty: []}), when=f'"name": "{name}"', times=None)
    model.reply('{"updates": []}', when='"name": "evolve"', times=None)


def test_every_line_says_who_said_it_and_when_and_facts_are_marked(location: str) -> None:
    model = ScriptedTransport()
    _answers(model)
    llm = OpenAICompatibleLLM(model.base_url, "m", transport=model, backoff=0)
    with Memory(location, embedder=HashEmbedder(), llm=llm) as memory:
        memory.add(
            [
                {"role": "user", "name": "Ana", "content": "I moved to Berlin last month."},
                {"role": "assistant", "content": "You should try the vegan place in Berlin."},
                {"role": "user", "content": "Berlin is cold in April."},
            ],
            user_id="ana",
            session_id="old",
            occurred_at="2024-04-02T08:30:00Z",
        )
        memory.add(
            [{"role": "assistant", "content": "Welcome back to Berlin!"}],
            user_id="ana",
            session_id="now",
            occurred_at="2024-05-01T12:00:00Z",
        )
        context = memory.context("Berlin", user_id="ana", session_id="now", profile_share=0)
    recent, memories = context.text.split("\n\n")
    assert "- [2024-05-01 12:00] the assistant: Welcome back to Berlin!" in recent
    lines = memories.splitlines()[1:]
    assert "- [2024-04-02] fact: Ana moved to Berlin in March 2024." in lines  # said that day
    assert "- [2024-04-02 08:30] Ana: I moved to Berlin last month." in lines
    assert "- [2024-04-02 08:30] the assistant: You should try the vegan place in Berlin." in lines
    assert "- [2024-04-02 08:30] the user: Berlin is cold in April." in lines
    assert not any(line.split("] ", 1)[1].startswith("Ana: Ana") for line in lines)


def test_text_added_without_a_speaker_is_labelled_a_note(memory: Memory) -> None:
    memory.add("I am allergic to peanuts.", user_id="ana", occurred_at="2024-03-02T10:00:00Z")
    context = memory.context("peanuts", user_id="ana", profile_share=0)
    assert "- [2024-03-02 10:00] note: I am allergic to peanuts." in context.text.splitlines()
