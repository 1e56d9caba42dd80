"""Nothing is ever returned across scopes."""

from __future__ import annotations

import pytest

from remem import Memory

SCOPES = [
    {"user_id": "ana"},
    {"user_id": "bo"},
    {"user_id": "ana", "agent_id": "travel-bot"},
    {"agent_id": "travel-bot"},
    {"user_id": "ana", "session_id": "s1"},
]


@pytest.fixture
def filled(memory: Memory) -> dict[int, str]:
    """One note per scope, all with the same words, keyed by scope index."""
    return {
        index: memory.add(f"secret plan number {index}", **scope).note_ids[0]
        for index, scope in enumerate(SCOPES)
    }


def _inside(query: dict[str, str], stored: dict[str, str]) -> bool:
    return all(stored.get(key) == value for key, value in query.items())


@pytest.mark.parametrize("query_scope", [*SCOPES, {"session_id": "s1"}, {"user_id": "cy"}])
def test_search_and_list_stay_inside_the_scope(
    memory: Memory, filled: dict[int, str], query_scope: dict[str, str]
) -> None:
    expected = {filled[i] for i, stored in enumerate(SCOPES) if _inside(query_scope, stored)}
    found = {hit.id for hit in memory.search("secret plan", limit=50, **query_scope)}
    listed = {note.id for note in memory.list(**query_scope).items}
    assert found == expected
    assert listed == expected


def test_delete_all_in_one_scope_leaves_the_others(memory: Memory, filled: dict[int, str]) -> None:
    memory.delete_all(user_id="ana", agent_id="travel-bot")
    remaining = {note.id for note in memory.list().items}
    assert remaining == set(filled.values()) - {filled[2]}
