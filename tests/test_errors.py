"""Bad input gets a clear exception naming the problem, from the remem.errors hierarchy."""

from __future__ import annotations

from typing import Any

import pytest

from remem import (
    EmptyContentError,
    InvalidContentError,
    InvalidDateError,
    InvalidInputError,
    Memory,
    NotFoundError,
    RememError,
    ScopeRequiredError,
)


@pytest.mark.parametrize("operation", ["add", "search", "delete_all"])
def test_missing_scope_is_refused(memory: Memory, operation: str) -> None:
    call = {
        "add": lambda: memory.add("text"),
        "search": lambda: memory.search("text"),
        "delete_all": lambda: memory.delete_all(),
    }[operation]
    with pytest.raises(ScopeRequiredError, match=operation):
        call()


def test_blank_scope_values_do_not_count_as_a_scope(memory: Memory) -> None:
    with pytest.raises(ScopeRequiredError):
        memory.add("text", user_id="  ")


@pytest.mark.parametrize(
    ("content", "error", "words"),
    [
        ("", EmptyContentError, "empty"),
        ("   \n", EmptyContentError, "empty"),
        ([], EmptyContentError, "empty list"),
        (42, InvalidContentError, "got int"),
        (b"bytes", InvalidContentError, "got bytes"),
        ([{"role": "user"}], InvalidContentError, "no 'content'"),
        ([{"role": "user", "content": 7}], InvalidContentError, "must be text"),
        ([{"role": 3, "content": "x"}], InvalidContentError, "'role' must be a string"),
        (["just a string"], InvalidContentError, "must be a dict"),
        ("nul\x00byte", InvalidContentError, "NUL"),
    ],
)
def test_bad_content_is_named(
    memory: Memory, content: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        memory.add(content, user_id="u")


@pytest.mark.parametrize("when", ["yesterday", "2024-13-01", "8 May 2023", 12345])
def test_bad_dates_are_named(memory: Memory, when: Any) -> None:
    with pytest.raises(InvalidDateError, match="occurred_at"):
        memory.add("text", user_id="u", occurred_at=when)


def test_nothing_is_stored_when_input_is_bad(memory: Memory) -> None:
    with pytest.raises(InvalidContentError):
        memory.add([{"content": "fine"}, {"content": None}], user_id="u")
    assert memory.list(user_id="u").items == ()


@pytest.mark.parametrize("item_id", ["nt_UNKNOWN", "ep_UNKNOWN", "whatever"])
def test_unknown_ids_raise_not_found(memory: Memory, item_id: str) -> None:
    with pytest.raises(NotFoundError, match=item_id):
        memory.delete(item_id)
    with pytest.raises(NotFoundError):
        memory.history(item_id)


def test_unknown_ids_on_get_update_and_episode(memory: Memory) -> None:
    with pytest.raises(NotFoundError, match="no memory with id 'nt_X'"):
        memory.get("nt_X")
    with pytest.raises(NotFoundError):
        memory.update("nt_X", text="new")
    with pytest.raises(NotFoundError, match="no episode"):
        memory.episode("ep_X")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"filters": ["a"]}, "filters"),
        ({"user_id": 5}, "user_id must be a string"),
        ({"user_id": "u" * 257}, "user_id is longer than 256 characters"),
        ({"session_id": "s" * 100_000}, "session_id is longer than 256 characters"),
    ],
)
def test_bad_search_arguments(memory: Memory, kwargs: dict[str, Any], words: str) -> None:
    arguments = {"user_id": "u", **kwargs}
    with pytest.raises(InvalidInputError, match=words):
        memory.search("query", **arguments)


def test_empty_query_and_bad_cursor_and_metadata(memory: Memory) -> None:
    with pytest.raises(InvalidInputError, match="query"):
        memory.search("  ", user_id="u")
    with pytest.raises(InvalidInputError, match="cursor"):
        memory.list(user_id="u", cursor="not-a-cursor")
    with pytest.raises(InvalidInputError, match="JSON"):
        memory.add("x", user_id="u", metadata={"when": object()})
    with pytest.raises(InvalidInputError, match="update needs"):
        memory.update(memory.add("x", user_id="u").note_ids[0])
    with pytest.raises(InvalidInputError, match="agent_id is longer than 256"):
        memory.add("x", user_id="u", agent_id="a" * 257)  # (the REST API's limit, everywhere)


def test_every_error_is_a_remem_error() -> None:
    for error in (ScopeRequiredError("add"), EmptyContentError("x"), NotFoundError("memory", "x")):
        assert isinstance(error, RememError)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.add("lone \ud800 surrogate", user_id="a"),
        lambda m: m.add("fine", user_id="\ud800"),
        lambda m: m.add("fine", user_id="a", metadata={"k": "\udfff"}),
        lambda m: m.search("query \ud800", user_id="a"),
        lambda m: m.list(cursor="9" * 30),
    ],
)
def test_text_that_cannot_be_stored_is_refused(memory: Memory, call: Any) -> None:
    with pytest.raises(InvalidInputError):  # found by schemathesis: these were 500s
        call(memory)
