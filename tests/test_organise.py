"""Structure without a model: keywords, resolved dates and similarity links on every add."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from remem import Memory
from remem.write.dates import dates_context, resolve_dates

MONDAY = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "meaning"),
    [
        ("I went to a support group yesterday.", [("yesterday", "7 May 2023")]),
        ("the day before yesterday", [("the day before yesterday", "6 May 2023")]),
        ("We met two weeks ago", [("two weeks ago", "the week of 24 April 2023")]),
        ("Last Saturday I ran 10k", [("last saturday", "6 May 2023")]),
        ("last Monday", [("last monday", "1 May 2023")]),
        ("next Monday", [("next monday", "15 May 2023")]),
        ("Next month I start", [("next month", "June 2023")]),
        ("3 days ago, and last year too", [("3 days ago", "5 May 2023"), ("last year", "2022")]),
        ("a month ago", [("a month ago", "April 2023")]),
        ("no dates here", []),
    ],
)
def test_relative_dates_are_resolved_against_when_they_were_said(
    text: str, meaning: list[tuple[str, str]]
) -> None:
    assert resolve_dates(text, MONDAY) == meaning


def test_a_turn_gets_keywords_and_its_dates_as_context(memory: Memory) -> None:
    for filler in ("I like the weather today", "the weather is nice", "I like tea"):
        memory.add(filler, user_id="ana", occurred_at="2023-05-01T10:00:00Z")
    note_id = memory.add(
        "I like the pottery workshop I joined yesterday",
        user_id="ana",
        occurred_at=MONDAY,
    ).note_ids[0]
    note = memory.get(note_id)
    assert note.context == dates_context(note.text, MONDAY) == "yesterday = 7 May 2023"
    assert set(note.keywords[:2]) == {"pottery", "workshop"}  # rarer than "like"
    assert "like" not in note.keywords[:3]
    hits = memory.search("what did Ana do on 7 May 2023?", user_id="ana")
    assert hits[0].id == note_id  # found through the resolved date


def test_similar_notes_of_the_owner_are_linked(memory: Memory) -> None:
    first = memory.add("My dog Rex loves the beach", user_id="ana").note_ids[0]
    memory.add("Completely unrelated: tax forms are due", user_id="ana")
    memory.add("My dog Rex loves the beach", user_id="bo")  # another owner: never linked
    second = memory.add("My dog Rex loves the beach a lot", user_id="ana").note_ids[0]
    links = [link for link in memory.store.dump().links if link.source_id == second]
    assert [(link.target_id, link.relation) for link in links] == [(first, "similar")]
    assert links[0].weight >= 0.6 and "cosine" in links[0].reason
