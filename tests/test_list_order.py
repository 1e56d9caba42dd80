"""`list` in every order, page by page, on both stores: notes added out of date order come
back by occurred_at (ties in insertion order), newest first, or as added; forged cursors
are refused."""

from __future__ import annotations

import pytest

from remem import Memory
from remem.errors import InvalidInputError
from remem.inputs import check_cursor

# added out of date order; two pairs share a time, so ties are decided by insertion
DATES = [
    "2001-05-01T00:00:00Z",
    "1999-01-01T00:00:00Z",
    "2010-07-07T12:00:00Z",
    "1999-01-01T00:00:00Z",
    "0001-01-02T00:00:00Z",
    "9999-12-30T00:00:00Z",
    "2010-07-07T12:00:00Z",
    "2005-03-03T03:03:03.000001Z",
]


def _add_all(memory: Memory) -> list[str]:
    return [
        memory.add(f"note {index}", user_id="u", occurred_at=when).note_ids[0]
        for index, when in enumerate(DATES)
    ]


def _pages(memory: Memory, order: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = memory.list(user_id="u", limit=limit, cursor=cursor, order=order)
        seen += [note.id for note in page.items]
        if page.cursor is None:
            return seen
        assert page.cursor.isascii() and check_cursor(page.cursor) == page.cursor
        cursor = page.cursor


@pytest.mark.parametrize("limit", [1, 2, 3, 100])
def test_every_order_pages_without_gaps_or_duplicates(memory: Memory, limit: int) -> None:
    added = _add_all(memory)
    by_time = sorted(range(len(DATES)), key=lambda index: (DATES[index][:19], index))
    oldest = [added[index] for index in by_time]
    newest = [added[index] for index in sorted(by_time, key=lambda i: (DATES[i][:19], i))[::-1]]
    assert _pages(memory, "oldest", limit) == oldest
    assert _pages(memory, "newest", limit) == newest
    assert _pages(memory, "added", limit) == added


def test_oldest_is_the_default(memory: Memory) -> None:
    added = _add_all(memory)
    assert [note.id for note in memory.list(user_id="u").items][:2] == [added[4], added[1]]


def test_a_page_survives_notes_added_after_it(memory: Memory) -> None:
    added = _add_all(memory)
    page = memory.list(user_id="u", limit=3)
    later = memory.add("a late one", user_id="u", occurred_at="1000-01-01T00:00:00Z")
    rest = _rest(memory, page.cursor)
    assert [n.id for n in page.items] + rest == [added[i] for i in (4, 1, 3, 0, 7, 2, 6, 5)]
    assert later.note_ids[0] not in rest  # it sorts before the cursor: a later listing has it


def _rest(memory: Memory, cursor: str | None) -> list[str]:
    seen: list[str] = []
    while cursor is not None:
        page = memory.list(user_id="u", limit=2, cursor=cursor)
        seen += [note.id for note in page.items]
        cursor = page.cursor
    return seen


FORGED = [
    "1.1",  # the time is fixed-width
    "o000000000000000001.1",
    "000000000000000001.",
    ".1",
    "000000000000000001.1.1",
    "000000000000000001.-1",
    "000000000000000001.1234567890123456789",
    "\uff10" * 18 + ".1",  # fullwidth digits
    "000000000000000001.\u00b2",
    "12",  # a row number alone, as cursors once were
    "",
]


@pytest.mark.parametrize("cursor", FORGED, ids=repr)
@pytest.mark.parametrize("order", ["oldest", "newest", "added"])
def test_forged_cursors_are_refused(memory: Memory, cursor: str, order: str) -> None:
    with pytest.raises(InvalidInputError, match="cursor"):
        memory.list(user_id="u", cursor=cursor, order=order)


def test_a_cursor_past_the_last_day_reads_as_the_end(memory: Memory) -> None:
    added = _add_all(memory)
    end = "9" * 18 + "." + "9" * 18
    assert memory.list(user_id="u", cursor=end).items == ()
    assert len(memory.list(user_id="u", cursor=end, order="newest").items) == len(added)


@pytest.mark.parametrize("order", ["", "Oldest", "random", None, 1])
def test_unknown_orders_are_refused(memory: Memory, order: object) -> None:
    with pytest.raises(InvalidInputError, match="order"):
        memory.list(user_id="u", order=order)  # type: ignore[arg-type]
