"""What memory holds is visible and told truthfully: links from and to a note, and a
history typed by what each change did, with the fields it changed."""

from __future__ import annotations

import pytest

from remem import Memory, NotFoundError
from remem.write.versions import changed_fields

SIMILAR = "Ana keeps her bike in the garage next to the car."


def test_history_is_typed_by_what_changed(memory: Memory) -> None:
    note_id = memory.add("Ana's bike is blue.", user_id="ana").note_ids[0]
    memory.update(note_id, text="Ana's bike is red.")
    memory.update(note_id, metadata={"source": "correction"})
    memory.update(note_id, text="Ana's bike is green.", metadata={})
    memory.delete(note_id)
    history = memory.history(note_id)
    assert [event.action for event in history] == [
        "add",
        "update_text",
        "update_metadata",
        "update_text_and_metadata",
        "delete",
    ]
    assert changed_fields(history[1].before, history[1].after) == {
        "text": ("Ana's bike is blue.", "Ana's bike is red.")
    }
    assert changed_fields(history[2].before, history[2].after) == {
        "metadata": ({}, {"source": "correction"})
    }


def test_links_are_visible_from_both_ends(memory: Memory) -> None:
    first = memory.add(SIMILAR, user_id="ana").note_ids[0]
    second = memory.add(SIMILAR + " Always.", user_id="ana").note_ids[0]
    (link,) = memory.links(second)
    assert (link.source_id, link.target_id, link.relation) == (second, first, "similar")
    assert "cosine similarity" in link.reason and 0.6 <= link.weight <= 1.0
    assert memory.links(first) == [link]  # seen from the other end too
    made = [event for event in memory.history(second) if event.action == "link"]
    assert made and made[0].after == {
        "link_id": link.id,
        "target_id": first,
        "relation": "similar",
        "reason": link.reason,
    }
    memory.delete(first)
    assert memory.links(second) == []  # not to a note that is gone
    with pytest.raises(NotFoundError):
        memory.links(first)
    with pytest.raises(NotFoundError):
        memory.as_tenant("other").links(second)


def test_changed_fields_leaves_bookkeeping_out() -> None:
    before = {"text": "a", "version": 1, "updated_at": "x", "tags": ["t"]}
    after = {"text": "a", "version": 2, "updated_at": "y", "valid_to": "z"}
    assert changed_fields(before, after) == {"tags": (["t"], None), "valid_to": (None, "z")}
    assert changed_fields(None, {"text": "new"}) == {"text": (None, "new")}
