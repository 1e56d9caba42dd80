"""`Memory.context`: recent turns, then relevant memories, dated, within the budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from remem import InvalidInputError, Memory
from remem.read.context import MEMORY_HEADER, RECENT_HEADER, Candidate, assemble
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


def test_context_has_recent_turns_then_dated_memories(lived: Memory) -> None:
    context = lived.context("Should I visit my sister Bea?", user_id="ana", session_id="now")
    recent, memories = context.text.split("\n\n")
    assert recent.splitlines()[0] == RECENT_HEADER
    assert "[2024-05-01 12:00] Ana: I am planning a trip this summer." in recent
    assert recent.index("planning") < recent.index("Where would")  # in the order said
    assert memories.splitlines()[0] == MEMORY_HEADER
    assert "- [2024-01-10] Ana: My sister Bea lives in Porto." in memories
    assert [item.kind for item in context.items] == ["recent", "recent", "memory"]
    assert context.items[2].id == lived.search("sister Bea", user_id="ana")[0].id
    assert context.tokens == count_tokens([context.text]) <= context.budget


def test_turns_already_in_the_recent_part_are_not_repeated(lived: Memory) -> None:
    context = lived.context("trip this summer", user_id="ana", session_id="now")
    assert context.text.count("planning a trip") == 1


def test_without_a_session_only_memories_are_given(lived: Memory) -> None:
    context = lived.context("trip", user_id="ana")
    assert {item.kind for item in context.items} == {"memory"}


def _memories(count: int) -> list[Candidate]:
    return [
        Candidate(
            f"nt_{i}", "memory", f"- [2024-05-01] fact {i} " + "word " * 30, WHEN, 1 / (i + 1)
        )
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
    context = assemble([], _memories(3), 60, token_counts)
    last = context.items[-1]
    assert last.shortened and last.text.endswith(" …")
    assert (last.text[: -len(" …")] + " ").startswith("- [2024-05-01] fact")
    original = _memories(3)[len(context.items) - 1].text
    assert original.startswith(last.text[: -len(" …")] + " ")


def test_context_checks_its_input(lived: Memory) -> None:
    with pytest.raises(InvalidInputError, match="budget_tokens"):
        lived.context("trip", user_id="ana", budget_tokens=10)
    with pytest.raises(InvalidInputError, match="query"):
        lived.context(" ", user_id="ana")
