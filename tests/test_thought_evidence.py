"""A thought never outlives its evidence: editing the evidence's text or archiving it
supersedes the thoughts resting on it, purging it erases them, a thought expires with its
evidence, and a write that takes evidence away cannot miss a thought another process made
meanwhile (two real processes racing `think` against `delete`). On every store."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import random
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from remem import InvalidInputError, Memory, NotFoundError, clock
from remem.stores.base import Changes, NewThoughtError, StaleWriteError
from remem.testing import HashEmbedder
from remem.write import operations


def _said(memory: Memory, text: str, **scope: Any) -> str:
    return memory.add(text, user_id="ana", **scope).note_ids[0]


def _hits(memory: Memory, query: str) -> list[str]:
    return [hit.id for hit in memory.search(query, user_id="ana")]


def test_editing_the_text_of_its_evidence_supersedes_the_thought(memory: Memory) -> None:
    job = _said(memory, "I work as a baker in Braga")
    thought = memory.think("Ana gets up before dawn", evidence_ids=[job], user_id="ana")
    on_it = memory.think("Ana goes to bed early", evidence_ids=[thought.id], user_id="ana")
    memory.update(job, metadata={"source": "chat"})  # metadata only: the statement holds
    memory.update(job, expires_at=clock.now() + timedelta(days=30))  # nor does an expiry
    assert memory.get(thought.id).superseded_by is None
    memory.update(job, text="I work as a teacher in Braga", metadata={"source": "form"})
    dropped = memory.get(thought.id)
    assert dropped.superseded_by == job and dropped.valid_to is not None
    assert dropped.deleted_at is None and dropped.text == "Ana gets up before dawn"
    assert memory.get(on_it.id).superseded_by == thought.id  # and what rested on it
    assert thought.id not in _hits(memory, "gets up before dawn")
    last = memory.history(thought.id)[-1]
    assert last.action == "supersede" and last.after is not None
    assert job in last.after["reason"] and "edited" in last.after["reason"]
    # the same text again changes nothing, so drops nothing
    fresh = memory.think("Ana teaches", evidence_ids=[job], user_id="ana")
    memory.update(job, text="I work as a teacher in Braga")
    assert memory.get(fresh.id).superseded_by is None


def test_archiving_its_evidence_supersedes_the_thought(memory: Memory) -> None:
    band = _said(memory, "I play bass in a jazz band")
    other = _said(memory, "We rehearse on Tuesdays")
    thought = memory.think("Ana is a musician", evidence_ids=[band, other], user_id="ana")
    memory.archive(band)
    dropped = memory.get(thought.id)
    assert dropped.superseded_by == band and dropped.archived_at is None
    assert thought.id not in _hits(memory, "Ana is a musician")
    assert "musician" not in memory.context("musician", user_id="ana", min_score=0).text
    last = memory.history(thought.id)[-1]
    assert last.after is not None and "archived" in last.after["reason"]
    memory.unarchive(band)  # the conclusion is not brought back: think it again
    assert memory.get(thought.id).superseded_by == band
    again = memory.think("Ana is a musician", evidence_ids=[band], user_id="ana")
    assert again.id != thought.id and again.superseded_by is None
    memory.archive(band)
    memory.archive(band)  # already archived: nothing more happens
    assert [e.action for e in memory.history(again.id)].count("supersede") == 1


def _expire_now(memory: Memory, note_id: str) -> None:
    """As if the note's expiry had come (the API takes only future times)."""
    note = memory.store.get_notes([note_id])[note_id]
    past = clock.now() - timedelta(seconds=1)
    memory.store.apply(Changes(notes=[replace(note, expires_at=past, version=note.version + 1)]))


def test_archived_or_expired_notes_are_no_evidence(memory: Memory) -> None:
    shelved = _said(memory, "I keep bees on the roof")
    memory.archive(shelved)
    with pytest.raises(InvalidInputError, match=r"evidence_ids\[0\].*archived"):
        memory.think("Ana has honey", evidence_ids=[shelved], user_id="ana")
    brief = _said(memory, "I am in Rome this week")
    _expire_now(memory, brief)
    with pytest.raises(InvalidInputError, match=r"evidence_ids\[1\].*expired"):
        memory.think("Ana travels", evidence_ids=[_said(memory, "Hi"), brief], user_id="ana")
    assert [n for n in memory.list(user_id="ana").items if n.kind == "thought"] == []


def test_a_thought_expires_with_its_evidence_and_the_sweep_erases_both(memory: Memory) -> None:
    soon = clock.now() + timedelta(hours=1)
    later = clock.now() + timedelta(days=2)
    hotel = memory.add("My hotel is the Miramar", user_id="ana", expires_at=soon).note_ids[0]
    flight = memory.add("I fly home on the 9th", user_id="ana", expires_at=later).note_ids[0]
    stays = _said(memory, "I always travel light")
    thought = memory.think(
        "Ana is on a short trip", evidence_ids=[flight, hotel, stays], user_id="ana"
    )
    assert thought.expires_at == memory.get(hotel).expires_at  # the earliest of its evidence
    assert memory.think("Ana packs light", evidence_ids=[stays], user_id="ana").expires_at is None
    _expire_now(memory, hotel)
    assert memory.sweep_expired() == 1
    for gone in (hotel, thought.id):  # the thought is erased with it
        with pytest.raises(NotFoundError):
            memory.get(gone)
        assert memory.history(gone)[-1].action == "purge"
    assert memory.get(flight).superseded_by is None


def test_purging_evidence_erases_thoughts_already_superseded(memory: Memory) -> None:
    address = _said(memory, "I live at 12 Rua Augusta")
    thought = memory.think("Ana lives at 12 Rua Augusta", evidence_ids=[address], user_id="ana")
    memory.update(address, text="I moved away from Rua Augusta")  # drops the thought
    memory.purge(address)
    with pytest.raises(NotFoundError):
        memory.get(thought.id)
    dump = json.dumps([(e.before, e.after) for e in memory.history(thought.id)])
    assert "Augusta" not in dump
    assert memory.search("Rua Augusta", user_id="ana", include_superseded=True) == []


def test_purge_all_of_one_session_erases_thoughts_resting_there(memory: Memory) -> None:
    trip = _said(memory, "Our flat in Oslo has a sauna", session_id="trip")
    thought = memory.think("Ana likes saunas", evidence_ids=[trip], user_id="ana")
    kept = memory.think(
        "Ana travels", evidence_ids=[_said(memory, "I went to Oslo")], user_id="ana"
    )
    assert memory.purge_all(user_id="ana", session_id="trip") >= 2
    with pytest.raises(NotFoundError):
        memory.get(thought.id)
    assert memory.get(kept.id).superseded_by is None


def test_a_write_built_before_a_new_thought_is_refused_at_commit(memory: Memory) -> None:
    """What two processes racing meet, step by step: a delete is read, a thought on the
    same evidence commits, then the delete: the store refuses it, and `delete` (which
    builds it again) drops the thought."""
    note = _said(memory, "I run every morning")
    planned = operations.forget_note(memory.get(note), memory.store, actor="test")
    thought = memory.think("Ana is an early riser", evidence_ids=[note], user_id="ana")
    with pytest.raises(NewThoughtError, match=thought.id) as refused:
        memory.store.apply(planned)
    assert isinstance(refused.value, StaleWriteError)
    assert memory.get(note).deleted_at is None  # nothing of it was written
    edit = operations.update(
        memory.get(note), "I run every evening", None, memory.store, memory.embedder, actor="t"
    )
    memory.think("Ana likes the morning air", evidence_ids=[note], user_id="ana")
    with pytest.raises(NewThoughtError):
        memory.store.apply(edit)
    memory.delete(note)
    live = [
        n for n in memory.list(user_id="ana").items if n.kind == "thought" and not n.superseded_by
    ]
    assert live == []


def test_a_thought_on_a_dropped_thought_made_meanwhile_is_refused_too(memory: Memory) -> None:
    note = _said(memory, "I run every morning")
    first = memory.think("Ana is an early riser", evidence_ids=[note], user_id="ana")
    planned = operations.forget_note(memory.get(note), memory.store, actor="test")
    second = memory.think("Ana sleeps early", evidence_ids=[first.id], user_id="ana")
    with pytest.raises(NewThoughtError, match=second.id):
        memory.store.apply(planned)
    memory.delete(note)  # built again: the whole chain goes
    assert memory.get(second.id).superseded_by == first.id


def test_a_long_chain_of_thoughts_goes_with_its_evidence(memory: Memory) -> None:
    evidence = _said(memory, "I run every morning")
    chain = [evidence]
    for n in range(12):  # deeper than any fixed cap
        chain.append(memory.think(f"Conclusion {n}", evidence_ids=[chain[-1]], user_id="ana").id)
    memory.delete(evidence)
    assert all(memory.get(t).superseded_by is not None for t in chain[1:])


def test_the_sweep_keeps_a_note_whose_expiry_was_lifted(memory: Memory) -> None:
    kept, gone = (
        memory.add(text, user_id="ana", expires_at="2999-01-01").note_ids[0]
        for text in ("Door code 4471", "Gate code 9902")
    )
    for note in (kept, gone):
        _expire_now(memory, note)  # the sweep reads both as expired...
    memory.update(kept, expires_at="never")  # ...then the person keeps one
    assert memory._purge_expired(kept) is False
    assert memory._purge_expired(gone) is True
    assert memory.get(kept).expires_at is None
    with pytest.raises(NotFoundError):
        memory.get(gone)


# -- two processes racing ------------------------------------------------------------------

ROUNDS = 40


def _thinker(location: str, notes: list[str], start: Any) -> None:
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        for n, note in enumerate(notes):
            start.wait()
            with contextlib.suppress(NotFoundError):  # deleted first: nothing to conclude from
                memory.think(f"Ana gardens, conclusion {n}", evidence_ids=[note], user_id="ana")


def _forgetter(location: str, notes: list[str], start: Any) -> None:
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        for note in notes:
            start.wait()
            # a think takes a few ms, a delete one: a varied head start makes the delete
            # land before, during and after the think (without the store's check at commit,
            # about one race in three left a live thought on deleted evidence)
            time.sleep(random.uniform(0, 0.008))
            memory.delete(note)


def test_processes_racing_think_and_delete_leave_no_thought_on_deleted_evidence(
    memory: Memory, location: str
) -> None:
    notes = [_said(memory, f"I planted {n} tomatoes in row {n}") for n in range(ROUNDS)]
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2, timeout=120)
    racers = [
        spawn.Process(target=target, args=(location, notes, start))
        for target in (_thinker, _forgetter)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=300)
    assert [racer.exitcode for racer in racers] == [0, 0]
    stored = memory.store.get_notes(notes)
    assert all(note.deleted_at is not None for note in stored.values())
    thoughts = [n for n in memory.list(user_id="ana", limit=1000).items if n.kind == "thought"]
    assert thoughts, "every delete won: the race was not run"
    for thought in thoughts:
        targets = [ln.target_id for ln in memory.store.links_of(thought.id)]
        assert targets and set(targets) <= set(notes)
        assert thought.superseded_by in targets, thought  # dropped with its evidence


def test_reingesting_an_edited_file_supersedes_thoughts_on_the_rewritten_chunk(
    memory: Memory, tmp_path: Any
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    page = notes / "work.md"
    page.write_text("# Work\n\nI work as a nurse at the city hospital.\n", encoding="utf-8")
    memory.ingest(notes, user_id="ana")
    (chunk,) = [n for n in memory.list(user_id="ana").items if "nurse" in n.text]
    thought = memory.think("Ana works in health care", evidence_ids=[chunk.id], user_id="ana")
    page.write_text("# Work\n\nI work as a teacher at the city school.\n", encoding="utf-8")
    memory.ingest(notes, user_id="ana")
    assert memory.get(chunk.id).text != chunk.text  # the same chunk, rewritten
    assert memory.get(thought.id).superseded_by == chunk.id
