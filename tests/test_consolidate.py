"""Consolidation: near-duplicate notes of one owner merged into one, the oldest keeping all
their sources; the merged ids resolve to it; history keeps every version. On every store,
through Python, REST (real HTTP on 127.0.0.1) and the CLI, with and without a model."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from remem import Consolidation, InvalidInputError, LLMError, Memory, Merge, NotFoundError
from remem.cli.main import cli
from remem.config import Settings
from remem.errors import ConfigError
from remem.keys import create_key
from remem.lifecycle import consolidate as merging
from remem.lifecycle.consolidation_api import consolidate_all
from remem.lifecycle.sweep import Sweeper, interval_of
from remem.llms import OpenAICompatibleLLM
from remem.server.app import create_app
from remem.stores.base import Changes
from remem.testing import HashEmbedder, ScriptedOpenAIServer
from remem.testing.http import running

DOG = "I adopted a golden retriever called Max last spring."


def _said(memory: Memory, text: str, user: str = "ana", **scope: Any) -> str:
    return memory.add(text, user_id=user, **scope).note_ids[0]


def _ids(hits: list[Any]) -> list[str]:
    return [hit.id for hit in hits]


def test_the_same_statement_said_twice_merges_into_the_first(memory: Memory) -> None:
    first = _said(memory, DOG, session_id="s1")
    again = _said(
        memory, "  I adopted a golden retriever called MAX last spring! ", session_id="s2"
    )
    other = _said(memory, "I started learning the cello in January", session_id="s3")
    own, theirs = memory.get(first).episode_ids, memory.get(again).episode_ids
    done = memory.consolidate(user_id="ana")
    assert isinstance(done, Consolidation) and not done.dry_run
    assert done.examined == 3 and done.merged == 1
    (merge,) = done.merges
    assert (merge.survivor_id, merge.merged_ids) == (first, (again,))
    assert merge.decided_by == "similarity" and merge.similarity >= 0.95
    survivor = memory.get(first)
    assert survivor.episode_ids == own and survivor.version == 2  # each keeps its own sources
    assert memory.get(again) == survivor  # the merged id resolves to the survivor
    hits = _ids(memory.search("golden retriever Max", user_id="ana"))
    assert first in hits and again not in hits
    assert memory.get(other).version == 1
    consolidated = [e for e in memory.history(first) if e.action == "consolidate"]
    assert len(consolidated) == 1 and consolidated[0].after is not None
    assert consolidated[0].after["merged"] == [again]
    assert consolidated[0].before is not None and consolidated[0].before["version"] == 1
    merged_history = memory.history(again)
    merge_event = next(e for e in merged_history if e.action == "merge")
    assert merge_event.after is not None and merge_event.after["merged_into"] == first
    links = [(ln.source_id, ln.target_id, ln.relation) for ln in memory.links(first)]
    assert (again, first, "merged_into") in links
    merged = memory.store.get_notes([again])[again]
    assert merged.episode_ids == theirs and merged.superseded_by == first
    assert merged.valid_to is None  # it did not stop being true
    for episode_id in own + theirs:  # every source is still there
        assert memory.episode(episode_id).text.strip()


def test_consolidating_again_merges_nothing_and_a_dry_run_writes_nothing(memory: Memory) -> None:
    first, again = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    preview = memory.consolidate(user_id="ana", dry_run=True)
    assert preview.dry_run and preview.merged == 1
    assert memory.get(again).id == again and memory.get(first).version == 1
    assert memory.consolidate(user_id="ana").merged == 1
    assert memory.consolidate(user_id="ana").merges == ()


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (DOG, "I adopted a golden retriever called Rex last spring."),  # another name
        (DOG, "I did not adopt a golden retriever called Max last spring."),  # a negation
        (DOG, "I adopted 2 golden retrievers called Max last spring."),  # a number
        (DOG, "My sister adopted a golden retriever called Max last spring."),  # someone else
        ("We moved to Berlin before the wedding", "We moved to Berlin after the wedding"),
        ("I left the heating on", "I left the heating off"),
        ("Clara gave Tom her old car", "Tom gave Clara his old car"),  # roles
        ("We meet on the third of May", "We meet on the fifth of May"),  # a date in words
        ("Yoga class is on Tuesday at 7 am", "Yoga class is on Tuesday at 7 pm"),
        ("I ran 10 km this morning", "I ran 10 miles this morning"),  # a unit
        ("I have two kids at school", "I have three kids at school"),  # a number in words
        ("My favourite pet is the 🐶", "My favourite pet is the 🐱"),  # a symbol
        ("I promised you a trip to Rome", "You promised me a trip to Rome"),
        ("Ich esse kein Fleisch mehr", "Ich esse Fleisch mehr"),  # a negation, not English
        (
            "Long story: "
            + "we spent the whole summer renovating the old house, " * 12
            + "and the spare key is with Lucia.",
            "Long story: "
            + "we spent the whole summer renovating the old house, " * 12
            + "and the spare key is under the doormat.",
        ),  # past what the embedder reads
    ],
)
def test_a_statement_that_differs_in_a_detail_is_not_merged(
    memory: Memory, one: str, other: str
) -> None:
    _said(memory, one)
    _said(memory, other)
    assert memory.consolidate(user_id="ana").merges == ()


def test_the_same_sentence_said_on_two_days_is_left_to_a_model(memory: Memory) -> None:
    sentence = "We had a barbecue with the neighbours"
    memory.add(sentence, user_id="ana", occurred_at="2024-05-03T18:00:00Z")
    memory.add(sentence, user_id="ana", occurred_at="2024-08-21T18:00:00Z")  # another one?
    assert memory.consolidate(user_id="ana", model="never").merges == ()
    memory.add(sentence, user_id="ana", occurred_at="2024-08-21T19:30:00Z")  # said again
    assert memory.consolidate(user_id="ana", model="never").merged == 1


def test_only_notes_of_one_owner_kind_speaker_and_expiry_merge(memory: Memory) -> None:
    _said(memory, DOG, user="ana")
    _said(memory, DOG, user="bo")  # another owner
    memory.as_tenant("umbrella").add(DOG, user_id="ana")  # another tenant
    memory.add([{"role": "assistant", "content": DOG}], user_id="ana")  # another speaker
    _said(memory, "thanks a lot!")
    _said(memory, "thanks a lot!", session_id="s2")  # conversation, not a memory
    expiring = memory.add(DOG, user_id="ana", expires_at="2999-01-01T00:00:00Z").note_ids[0]
    archived = _said(memory, DOG, session_id="s3")
    memory.archive(archived)
    assert memory.consolidate().merges == ()
    assert memory.get(expiring).superseded_by is None
    assert memory.as_tenant("umbrella").consolidate().merges == ()


def test_a_pinned_note_survives_even_when_it_is_the_newer_one(memory: Memory) -> None:
    older, newer = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    memory.pin(newer)
    (merge,) = memory.consolidate(user_id="ana").merges
    assert (merge.survivor_id, merge.merged_ids) == (newer, (older,))
    assert memory.get(older).id == newer and memory.get(newer).pinned


def test_copies_merge_whole_in_one_pass_into_a_pinned_newest_one(memory: Memory) -> None:
    older, other = _said(memory, DOG), _said(memory, DOG.upper(), session_id="s2")
    pinned = _said(memory, DOG, session_id="s3")
    memory.pin(pinned)
    (merge,) = memory.consolidate(user_id="ana").merges
    assert (merge.survivor_id, sorted(merge.merged_ids)) == (pinned, sorted([older, other]))


def test_the_survivor_keeps_the_highest_importance_a_pin_and_the_metadata(
    memory: Memory,
) -> None:
    first = memory.add(DOG, user_id="ana", metadata={"channel": "chat"}).note_ids[0]
    again = memory.add(
        DOG, user_id="ana", session_id="s2", metadata={"channel": "email", "thread": "t1"}
    ).note_ids[0]
    memory.pin(again)  # the pinned one survives
    memory.consolidate(user_id="ana")
    survivor = memory.get(first)
    assert survivor.id == again and survivor.pinned
    assert survivor.importance == max(
        survivor.importance, memory.store.get_notes([first])[first].importance
    )
    assert survivor.metadata == {"channel": "email", "thread": "t1"}  # its own values win
    hits = memory.search("golden retriever", user_id="ana", filters={"thread": "t1"})
    assert [hit.id for hit in hits] == [again]


def test_deleting_the_survivor_or_a_merged_id_forgets_the_whole_group(memory: Memory) -> None:
    first, again = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    sources = memory.get(first).episode_ids + memory.get(again).episode_ids
    memory.consolidate(user_id="ana")
    memory.delete(again)  # the id resolves to the survivor: what it said goes
    for note_id in (first, again):
        with pytest.raises(NotFoundError):
            memory.get(note_id)
    for episode_id in sources:
        with pytest.raises(NotFoundError):
            memory.episode(episode_id)
    assert memory.search("golden retriever Max", user_id="ana") == []


def test_purging_a_merged_id_erases_the_group_and_its_episodes(memory: Memory) -> None:
    first, again = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    kept = _said(memory, "I started learning the cello in January")
    sources = memory.get(first).episode_ids + memory.get(again).episode_ids
    memory.consolidate(user_id="ana")
    memory.purge(again)
    found = memory.store.get_notes([first, again])
    assert found == {}  # erased, not only deleted
    assert memory.store.get_episodes(list(sources)) == {}
    assert memory.get(kept).text.startswith("I started")


def test_a_thought_on_a_merged_note_goes_when_the_survivor_goes(memory: Memory) -> None:
    first, again = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    thought = memory.think("Ana has a dog", evidence_ids=[again], user_id="ana")
    memory.consolidate(user_id="ana")
    assert memory.get(thought.id).superseded_by is None  # its evidence still holds
    resting = {ln.target_id for ln in memory.links(thought.id) if ln.relation == "rests_on"}
    assert resting == {first, again}
    memory.delete(first)
    assert memory.get(thought.id).superseded_by is not None


def test_since_compares_only_what_was_added_since(memory: Memory) -> None:
    _said(memory, DOG)
    _said(memory, DOG, session_id="s2")
    later = "2999-01-01T00:00:00Z"
    assert memory.consolidate(user_id="ana", since=later).examined == 0
    assert memory.consolidate(user_id="ana", since="2000-01-01").merged == 1


def test_bad_arguments_are_clear_errors(memory: Memory) -> None:
    with pytest.raises(InvalidInputError, match="model"):
        memory.consolidate(model="sometimes")
    with pytest.raises(InvalidInputError):
        memory.consolidate(since="not a date")


def test_racing_consolidations_merge_each_note_once(location: str) -> None:
    with Memory(location, embedder=HashEmbedder()) as memory:
        groups = [
            [
                _said(memory, f"I planted {word} tomatoes in the garden", session_id=f"s{i}")
                for i in range(3)
            ]
            for word in ("red", "yellow", "green", "purple")
        ]
    merges: list[Consolidation] = []

    def consolidate() -> None:
        with Memory(location, embedder=HashEmbedder()) as memory:
            merges.append(memory.consolidate(user_id="ana"))

    threads = [threading.Thread(target=consolidate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(done.merged for done in merges) == 8  # two per group, each once
    with Memory(location, embedder=HashEmbedder()) as memory:
        for group in groups:
            survivor = memory.get(group[0])
            assert {memory.get(i).id for i in group} == {survivor.id}
            assert survivor.version == 2  # merged once
            merge_events = [e for i in group for e in memory.history(i) if e.action == "merge"]
            assert len(merge_events) == 2


def test_one_sentence_said_three_times_merges_into_the_first_whatever_the_pairs_order() -> None:
    from remem.types import Note, Scope

    said = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    first, second, third = (
        Note(f"nt_{n}", Scope(user_id="ana"), "I planted tomatoes", {}, said, said, said, 1, ())
        for n in (1, 2, 3)
    )
    # equally close (to the last bits of a float), the newer pair first: as a database
    # may return them
    pairs = [
        merging._Pair(second, third, 1.0000001),
        merging._Pair(first, second, 1.0),
        merging._Pair(first, third, 0.99999994),
    ]
    [(survivor, merged)] = merging.groups(pairs)
    assert survivor.id == first.id
    assert sorted(note.id for note, _ in merged) == [second.id, third.id]


# -- with a model --------------------------------------------------------------------------


@pytest.fixture
def judged(location: str) -> Iterator[tuple[Memory, ScriptedOpenAIServer]]:
    with ScriptedOpenAIServer() as model:
        llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5.0, attempts=2, backoff=0.01)
        with Memory(location, embedder=HashEmbedder(), llm=llm, jobs="worker") as memory:
            yield memory, model


def test_with_a_model_it_decides_which_close_pairs_merge(
    judged: tuple[Memory, ScriptedOpenAIServer],
) -> None:
    memory, model = judged
    first = _said(memory, "I adopted a golden retriever called Max")
    reworded = _said(memory, "I adopted a golden retriever named Max")
    model.reply(json.dumps({"same": [0]}), when="SamePairs")
    (merge,) = memory.consolidate(user_id="ana").merges
    assert (merge.survivor_id, merge.merged_ids) == (first, (reworded,))
    assert merge.decided_by == "model:scripted"
    asked = [r for r in model.requests if "SamePairs" in json.dumps(r)]
    assert len(asked) == 1 and "named Max" in json.dumps(asked[0])


def test_with_a_model_nothing_merges_that_it_does_not_confirm(
    judged: tuple[Memory, ScriptedOpenAIServer],
) -> None:
    memory, model = judged
    _said(memory, DOG)
    _said(memory, DOG, session_id="s2")
    model.reply(json.dumps({"same": [7, -1]}), when="SamePairs")  # no such pairs: ignored
    assert memory.consolidate(user_id="ana").merges == ()
    assert memory.consolidate(user_id="ana", model="never").merged == 1  # the rules alone


def test_a_failing_model_is_reported_and_merges_nothing(
    judged: tuple[Memory, ScriptedOpenAIServer],
) -> None:
    memory, model = judged
    first, again = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    model.fail_next(503, times=5)
    with pytest.raises(LLMError):
        memory.consolidate(user_id="ana")
    assert memory.get(again).id == again and memory.get(first).version == 1


# -- over HTTP and the CLI -----------------------------------------------------------------


def test_rest_consolidates_within_the_callers_tenant(location: str) -> None:
    with Memory(location, embedder=HashEmbedder()) as memory:
        acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
        for tenant in (acme, umbrella):
            _said(tenant, DOG)
            _said(tenant, DOG, session_id="s2")
        _, secret = create_key(memory.store, "acme")
        with running(create_app(memory, open_without_keys=False)) as url:
            post = partial(httpx.post, headers={"Authorization": f"Bearer {secret}"})
            preview = post(f"{url}/v1/consolidate", json={"dry_run": True}).json()
            assert preview["dry_run"] is True and len(preview["merges"]) == 1
            done = post(f"{url}/v1/consolidate", json={"user_id": "ana"})
            assert done.status_code == 200, done.text
            assert done.json()["merges"][0]["decided_by"] == "similarity"
            for bad in ({"model": "sometimes"}, {"since": "soon"}, {"dry_run": "yes"}, {"x": 1}):
                answer = post(f"{url}/v1/consolidate", json=bad)
                assert answer.status_code in (400, 422), (bad, answer.text)
        assert umbrella.consolidate(dry_run=True).merged == 1  # untouched by acme's pass


def test_cli_consolidate(tmp_path: Path) -> None:
    db = str(tmp_path / "memory.db")
    with Memory(db, embedder=HashEmbedder()) as memory:
        first, again = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    runner = CliRunner()
    env = {"REMEM_EMBEDDER": "hash"}
    shown = runner.invoke(cli, ["--db", db, "consolidate", "--dry-run"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "would merge 1 memories into 1" in shown.output and again in shown.output
    done = runner.invoke(cli, ["--db", db, "consolidate", "--user", "ana", "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["merges"][0]["survivor_id"] == first
    bad = runner.invoke(cli, ["--db", db, "consolidate", "--since", "soon"], env=env)
    assert bad.exit_code != 0 and "soon" in bad.output


def test_forgetting_the_survivors_session_leaves_what_was_said_elsewhere(memory: Memory) -> None:
    first, again = _said(memory, DOG, session_id="s1"), _said(memory, DOG, session_id="s2")
    memory.consolidate(user_id="ana")
    memory.delete_all(user_id="ana", session_id="s1")
    back = memory.get(again)  # merged no more: live again, as said in s2
    assert back.id == again and back.superseded_by is None
    assert [hit.id for hit in memory.search("golden retriever", user_id="ana")] == [again]
    assert [e.action for e in memory.history(again)][-1] == "unmerge"
    with pytest.raises(NotFoundError):
        memory.get(first)


def test_deleting_one_source_episode_takes_only_the_notes_made_from_it(memory: Memory) -> None:
    first, again = _said(memory, DOG, session_id="s1"), _said(memory, DOG, session_id="s2")
    (first_episode,), (second_episode,) = (memory.get(i).episode_ids for i in (first, again))
    memory.consolidate(user_id="ana")
    memory.delete(second_episode)  # the repeat's turn: the repeat goes, the first stays
    assert memory.get(first).id == first and memory.get(first).superseded_by is None
    with pytest.raises(NotFoundError):
        memory.get(again)
    memory.delete(first_episode)
    with pytest.raises(NotFoundError):
        memory.get(first)


def test_purging_the_survivors_episode_unmerges_the_repeat(memory: Memory) -> None:
    first, again = _said(memory, DOG, session_id="s1"), _said(memory, DOG, session_id="s2")
    (first_episode,) = memory.get(first).episode_ids
    thought = memory.think("Ana has a dog", evidence_ids=[first], user_id="ana")
    memory.consolidate(user_id="ana")
    memory.purge(first_episode)
    assert memory.store.get_notes([first]) == {}
    assert memory.get(again).id == again  # what s2 said is still known
    assert memory.store.get_notes([thought.id]) == {}  # purged with its evidence
    memory.purge_all(user_id="ana", session_id="s2")
    assert memory.store.get_notes([again]) == {}


def test_an_expired_repeat_is_purged_alone(memory: Memory) -> None:
    soon = "2999-01-01T00:00:00Z"
    first = memory.add(DOG, user_id="ana", expires_at=soon).note_ids[0]
    again = memory.add(DOG, user_id="ana", session_id="s2", expires_at=soon).note_ids[0]
    memory.consolidate(user_id="ana")
    memory.update(first, expires_at="never")  # the person keeps it
    repeat = memory.store.get_notes([again])[again]
    past = datetime(2000, 1, 1, tzinfo=UTC)
    memory.store.apply(
        Changes(notes=[replace(repeat, expires_at=past, version=repeat.version + 1)])
    )
    assert memory.sweep_expired() == 1
    assert memory.store.get_notes([again]) == {}
    assert memory.get(first).expires_at is None  # not purged through the repeat


def test_a_merge_planned_before_an_update_is_not_made(location: str) -> None:
    with Memory(location, embedder=HashEmbedder()) as memory:
        _said(memory, DOG)
        again = _said(memory, DOG, session_id="s2")
        pairs = merging.candidate_pairs(
            merging.notes_of(memory.store, memory._scope("ana", None, None), None),
            memory.store,
            merging.SAME_VECTOR,
        )
        ((survivor, merged),) = merging.groups(p for p in pairs if merging.plainly_same(p))
        with Memory(location, embedder=HashEmbedder()) as other:
            other.update(again, text="I sold my car and moved to Oslo")
        plan = Merge(survivor.id, (merged[0][0].id,), merged[0][1], "similarity")
        compared = {survivor.id: survivor.version, again: merged[0][0].version}
        assert not memory._merge(plan, [merged[0][1]], compared)
        assert memory.get(again).text == "I sold my car and moved to Oslo"


def test_a_long_running_process_consolidates_every_tenant_in_the_background(
    location: str,
) -> None:
    with Memory(location, embedder=HashEmbedder()) as memory:
        create_key(memory.store, "acme")  # a tenant the server serves
        acme = memory.as_tenant("acme")
        local = [_said(memory, DOG), _said(memory, DOG, session_id="s2")]
        theirs = [_said(acme, DOG), _said(acme, DOG, session_id="s2")]
        merger = Sweeper(memory, 0.05, consolidate_all, "consolidating").start()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if memory.get(local[1]).id == local[0] and acme.get(theirs[1]).id == theirs[0]:
                    break
                time.sleep(0.05)
        finally:
            merger.stop()
        assert memory.get(local[1]).id == local[0]
        assert acme.get(theirs[1]).id == theirs[0]
        assert memory.store.get_meta("consolidated_since:acme") is not None
        assert consolidate_all(memory) == 0  # nothing new since the last pass


@pytest.mark.parametrize("bad", ["soon", "-1", "nan", "inf"])
def test_consolidate_seconds_must_be_a_number(bad: str) -> None:
    settings = Settings.resolve(environ={"REMEM_CONSOLIDATE_SECONDS": bad})
    with pytest.raises(ConfigError, match="REMEM_CONSOLIDATE_SECONDS"):
        interval_of(settings, "consolidate_seconds")
    default = Settings.resolve(environ={})
    assert interval_of(default, "consolidate_seconds") == 0  # off unless turned on


def test_a_merge_planned_before_a_delete_is_not_made(memory: Memory) -> None:
    first, again = _said(memory, DOG), _said(memory, DOG, session_id="s2")
    notes = memory.store.get_notes([first, again])
    compared = {first: notes[first].version, again: notes[again].version}
    memory.delete(again)
    plan = Merge(first, (again,), 1.0, "similarity")
    assert not memory._merge(plan, [1.0], compared)
    assert memory.get(first).version == 1
