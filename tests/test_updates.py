"""Knowledge updates: once a fact is superseded, the turn it came from stops outranking the
turn that replaced it, and `context` says it is outdated (with a scripted model)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

import pytest

from remem import Memory
from remem.llms import OpenAICompatibleLLM
from remem.read.updates import asks_about_now
from remem.testing import HashEmbedder, ScriptedOpenAIServer

LISBON = "I live in Lisbon, near the river."
BERLIN = "Big news: I moved to Berlin last week."
PARIS = "We settled in Paris for good."


def _step(name: str) -> str:
    return f'"name": "{name}"'


@pytest.fixture
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        for step, empty in (
            ("extract", '{"facts": []}'),
            ("reconcile", '{"decisions": []}'),
            ("enrich", '{"notes": []}'),
            ("link", '{"links": []}'),
            ("evolve", '{"updates": []}'),
        ):
            server.reply(empty, when=_step(step), times=None)
        yield server


@pytest.fixture
def ana(location: str, model: ScriptedOpenAIServer) -> Iterator[Memory]:
    llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5, backoff=0.01)
    with Memory(location, embedder=HashEmbedder(), llm=llm) as memory:
        yield memory


def _tell(
    memory: Memory, model: ScriptedOpenAIServer, text: str, when: str, fact: str, replaces: str = ""
) -> tuple[str, str]:
    """Add Ana's turn; the model extracts `fact`, superseding the fact `replaces`."""
    model.reply(json.dumps({"facts": [{"text": fact, "occurred_on": None}]}), when=_step("extract"))
    if replaces:
        decision = {"fact": 0, "action": "supersede", "target_id": replaces}
        model.reply(json.dumps({"decisions": [decision]}), when=_step("reconcile"))
    message = {"role": "user", "name": "Ana", "content": text}
    result = memory.add([message], user_id="ana", occurred_at=when)
    turn, fact_id = result.note_ids[0], result.note_ids[-1]
    assert memory.get(fact_id).kind == "fact"
    return turn, fact_id


def _moved(ana: Memory, model: ScriptedOpenAIServer) -> tuple[str, str]:
    lisbon, old = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    berlin, new = _tell(
        ana, model, BERLIN, "2025-02-03T10:00:00Z", "Ana lives in Berlin.", replaces=old
    )
    assert ana.get(old).superseded_by == new
    return lisbon, berlin


def _turns(memory: Memory, query: str) -> list[str]:
    return [hit.id for hit in memory.search(query, user_id="ana") if hit.kind == "note"]


def test_the_newer_statement_outranks_the_one_it_replaced(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    lisbon, berlin = _moved(ana, model)
    order = _turns(ana, "where does Ana live?")
    assert lisbon in order and berlin in order  # the old turn stays findable
    assert order.index(berlin) < order.index(lisbon)


def test_a_question_about_the_past_is_answered_by_what_was_true_then(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    lisbon, berlin = _moved(ana, model)
    order = _turns(ana, "Where did Ana live near the river?")
    assert order.index(lisbon) < order.index(berlin)


def test_context_marks_the_outdated_turn_with_when_and_what_replaced_it(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    lisbon, berlin = _moved(ana, model)
    block = ana.context("where does Ana live?", user_id="ana", profile_share=0, min_score=0)
    lines = {item.id: item.text for item in block.items}
    assert f'(outdated: on 2025-02-03 this was replaced by: "{BERLIN}")' in lines[lisbon]
    assert "outdated" not in lines[berlin]


def test_a_chain_of_updates_points_at_the_latest(ana: Memory, model: ScriptedOpenAIServer) -> None:
    lisbon, berlin = _moved(ana, model)
    berlin_fact = ana.search("Ana lives in Berlin.", user_id="ana", limit=20)
    fact = next(hit.id for hit in berlin_fact if ana.get(hit.id).kind == "fact")
    paris, _ = _tell(ana, model, PARIS, "2025-09-01T10:00:00Z", "Ana lives in Paris.", fact)
    replaced = ana.store.replaced_turns([lisbon, berlin, paris])
    assert replaced[lisbon].turn_id == paris and replaced[berlin].turn_id == paris
    assert paris not in replaced


def test_a_deleted_replacement_leaves_the_old_turn_unmarked(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    lisbon, berlin = _moved(ana, model)
    ana.delete(berlin)
    assert ana.store.replaced_turns([lisbon]) == {}


def test_an_update_is_found_behind_many_merged_notes(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    # SQLite first looks at a few superseded notes for an outdated fact: past them (here
    # 70 notes consolidation merged, superseded before the update) it must read the turns.
    for number in range(70):
        said = [{"role": "user", "content": f"Bo's locker code is {number} and {number + 1}."}]
        for _ in range(2):
            ana.add(said, user_id="bo", occurred_at="2024-01-01T10:00:00Z")
    assert ana.consolidate(user_id="bo", model="never").merged == 70
    lisbon, berlin = _moved(ana, model)
    assert ana.store.replaced_turns([lisbon])[lisbon].turn_id == berlin
    order = _turns(ana, "where does Ana live?")
    assert order.index(berlin) < order.index(lisbon)


def test_without_superseded_facts_nothing_moves(ana: Memory) -> None:
    turn = ana.add("I live in Lisbon.", user_id="ana").note_ids[0]
    assert ana.store.replaced_turns([turn, "nt_MISSING"]) == {}


@pytest.mark.parametrize(
    ("query", "now"),
    [
        ("where does Ana live?", True),
        ("What is Ana's job?", True),
        ("Where did Ana live?", False),
        ("Where was Ana in May 2024?", False),
        ("Where did Ana used to live before?", False),
    ],
)
def test_questions_about_now_are_told_apart(query: str, now: bool) -> None:
    assert asks_about_now(query, lambda: None) is now


# -- what a person said to be forgotten does not change what is kept -------------------------

FORGET_AT = "2090-01-01T00:00:00Z"  # the turn expires (the API takes future times only)


def _tell_expiring(
    memory: Memory, model: ScriptedOpenAIServer, text: str, fact: str, decision: Mapping[str, str]
) -> str:
    """Add an expiring turn of Ana's; the model extracts `fact` and decides `decision` on it."""
    model.reply(json.dumps({"facts": [{"text": fact, "occurred_on": None}]}), when=_step("extract"))
    model.reply(json.dumps({"decisions": [{"fact": 0, **decision}]}), when=_step("reconcile"))
    message = {"role": "user", "name": "Ana", "content": text}
    result = memory.add([message], user_id="ana", expires_at=FORGET_AT)
    return result.note_ids[-1]


@pytest.mark.parametrize("action", ["update", "supersede"])
def test_an_expiring_turn_does_not_change_a_fact_kept_longer(
    ana: Memory, model: ScriptedOpenAIServer, action: str
) -> None:
    _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    decision = {"action": action, "target_id": lisbon, "text": "Ana lives in Berlin."}
    berlin = _tell_expiring(ana, model, BERLIN, "Ana lives in Berlin.", decision)
    kept = ana.get(lisbon)
    assert (kept.text, kept.version, kept.superseded_by, kept.expires_at) == (
        "Ana lives in Lisbon.", 1, None, None
    )  # fmt: skip
    new = ana.get(berlin)
    assert (new.kind, new.text, new.expires_at) == (
        "fact",
        "Ana lives in Berlin.",
        datetime(2090, 1, 1, tzinfo=UTC),
    )


def test_a_lasting_turn_still_updates_the_fact(ana: Memory, model: ScriptedOpenAIServer) -> None:
    _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    model.reply(
        json.dumps({"facts": [{"text": "Ana lives in Berlin.", "occurred_on": None}]}),
        when=_step("extract"),
    )
    decision = {"fact": 0, "action": "update", "target_id": lisbon, "text": "Ana lives in Berlin."}
    model.reply(json.dumps({"decisions": [decision]}), when=_step("reconcile"))
    ana.add([{"role": "user", "name": "Ana", "content": BERLIN}], user_id="ana")
    assert (ana.get(lisbon).text, ana.get(lisbon).version) == ("Ana lives in Berlin.", 2)


def test_an_expiring_turn_does_not_evolve_a_note_kept_longer(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    link = {"fact": 0, "target_id": lisbon, "relation": "related", "reason": "where she is"}
    model.reply(json.dumps({"links": [link]}), when=_step("link"))
    update = {"note_id": lisbon, "context": "Ana is in Berlin this week.", "tags": ["travel"]}
    model.reply(json.dumps({"updates": [update]}), when=_step("evolve"))
    trip = _tell_expiring(
        ana, model, "I'm in Berlin this week.", "Ana is in Berlin this week.", {"action": "add"}
    )
    assert ana.get(trip).expires_at is not None
    kept = ana.get(lisbon)
    assert (kept.version, kept.context, kept.tags) == (1, None, ())


def _organising(location: str, model: ScriptedOpenAIServer, jobs: str = "inline") -> Memory:
    llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5, backoff=0.01)
    return Memory(location, embedder=HashEmbedder(), llm=llm, jobs=jobs)


def _said(memory: Memory, *texts: str, expires_at: str | None = None) -> list[str]:
    messages = [{"role": "user", "name": "Ana", "content": text} for text in texts]
    return list(memory.add(messages, user_id="ana", expires_at=expires_at).note_ids)


def _extracted(model: ScriptedOpenAIServer, *facts: dict[str, object]) -> None:
    model.reply(json.dumps({"facts": list(facts)}), when=_step("extract"))


def test_a_deleted_turn_waiting_for_its_job_changes_nothing_kept(
    location: str, model: ScriptedOpenAIServer
) -> None:
    # the job stopped after reconcile (the enrich step's answer was garbage); the person then
    # deleted the turn: the job must not write it into the lasting fact when it runs again
    with _organising(location, model) as ana:
        _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
        _extracted(
            model,
            {"text": "Ana's test came back positive.", "occurred_on": None},
            {"text": "Ana told a secret.", "occurred_on": None},
        )
        decision = {"fact": 0, "action": "update", "target_id": lisbon, "text": "Ana: positive."}
        model.reply(json.dumps({"decisions": [decision]}), when=_step("reconcile"))
        model.reply("garbage", when=_step("enrich"), times=3)  # its three tries
        (turn,) = _said(ana, "Between us: my test was positive.")
        assert ana.get(lisbon).version == 1 and ana.store.jobs("pending")
        ana.delete(turn)
        model.reply('{"notes": []}', when=_step("enrich"))
        assert ana.run_jobs() == 1
        assert (ana.get(lisbon).text, ana.get(lisbon).version) == ("Ana lives in Lisbon.", 1)


def test_an_update_made_an_add_is_enriched_like_one(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    enrich = {"fact": 0, "keywords": ["berlin"], "tags": ["home"], "context": None}
    model.reply(json.dumps({"notes": [enrich]}), when=_step("enrich"))
    decision = {"action": "update", "target_id": lisbon, "text": "Ana lives in Berlin."}
    berlin = _tell_expiring(ana, model, BERLIN, "Ana lives in Berlin.", decision)
    assert (ana.get(berlin).keywords, ana.get(berlin).tags) == (("berlin",), ("home",))


def test_a_fact_the_model_did_not_attribute_goes_with_the_first_turn_to_expire(
    location: str, model: ScriptedOpenAIServer
) -> None:
    with _organising(location, model) as ana:
        _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    with _organising(location, model, jobs="worker") as ana:
        _, secret = _said(ana, "Nice weather today.", "Secret: I'm moving to Berlin.")
        ana.update(secret, expires_at=FORGET_AT)  # before the job runs
        _extracted(model, {"text": "Ana is moving to Berlin.", "occurred_on": None})  # no turn
        decision = {"fact": 0, "action": "update", "target_id": lisbon, "text": "Ana: Berlin."}
        model.reply(json.dumps({"decisions": [decision]}), when=_step("reconcile"))
        ana.run_jobs()
        assert ana.get(lisbon).text == "Ana lives in Lisbon."
        fact = next(
            n for n in ana.list(user_id="ana").items if n.text == "Ana is moving to Berlin."
        )
        assert fact.expires_at == ana.get(secret).expires_at  # and the sweep takes its turn


def test_what_the_model_was_shown_bounds_what_it_may_change(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    # a lasting turn's job is shown an expiring note (a link candidate): evolve may not copy
    # it into a lasting note; and of two expiring facts, the first to expire is the bound
    _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    _extracted(model, {"text": "Ana has therapy in Lisbon on Mondays.", "occurred_on": None})
    therapy = _said(ana, "I have therapy every Monday.", expires_at=FORGET_AT)[-1]
    links = [
        {"fact": 0, "target_id": t, "relation": "place", "reason": "Lisbon"}
        for t in (lisbon, therapy)
    ]
    model.reply(json.dumps({"links": links}), when=_step("link"))
    update = {"note_id": lisbon, "context": "Therapy on Mondays.", "tags": ["health"]}
    model.reply(json.dumps({"updates": [update]}), when=_step("evolve"))
    _extracted(model, {"text": "Ana loves the river.", "occurred_on": None})
    _said(ana, "I love the river here.")
    assert (ana.get(lisbon).version, ana.get(lisbon).context) == (1, None)


def _by_turn(facts: list[tuple[str, int]]) -> Callable[[dict[str, object]], str]:
    """An extract answer naming the batch's turns: each fact with its turn's position."""

    def answer(body: dict[str, object]) -> str:
        turns = list(dict.fromkeys(re.findall(r"ep_[0-9A-Z]+", json.dumps(body))))
        said = [
            {"text": text, "occurred_on": None, "episode_ids": [turns[at]]} for text, at in facts
        ]
        return json.dumps({"facts": said})

    return answer


def test_no_fact_is_made_from_a_turn_deleted_while_its_job_waited(
    location: str, model: ScriptedOpenAIServer
) -> None:
    with _organising(location, model) as ana:
        model.reply(_by_turn([("Ana likes tea.", 0), ("Ana is ill.", 1)]), when=_step("extract"))
        model.reply("garbage", when=_step("enrich"), times=3)  # its three tries: it waits
        _, secret = _said(ana, "I like tea.", "Between us: I am ill.")
        ana.delete(secret)
        assert ana.run_jobs() == 1
        texts = sorted(note.text for note in ana.list(user_id="ana").items)
        assert texts == ["Ana likes tea.", "I like tea."]
        (made,) = ana.store.jobs("done")[-1].payload["result"]["facts"]  # not even hidden
        assert ana.get(made).text == "Ana likes tea."


def test_the_first_fact_to_expire_bounds_what_evolve_may_change(
    location: str, model: ScriptedOpenAIServer
) -> None:
    with _organising(location, model) as ana:
        _extracted(model, {"text": "Ana plans a trip.", "occurred_on": None})
        (trip,) = _said(ana, "Planning a trip.", expires_at="2060-01-01T00:00:00Z")[-1:]
    with _organising(location, model, jobs="worker") as ana:
        pin, _ = _said(ana, "My PIN is 4321.", "I go to Rome in May.", expires_at=FORGET_AT)
        ana.update(pin, expires_at="2030-01-01T00:00:00Z")
        model.reply(
            _by_turn([("Ana's PIN is 4321.", 0), ("Ana goes to Rome.", 1)]), when=_step("extract")
        )
        link = {"fact": 1, "target_id": trip, "relation": "trip", "reason": "Rome"}
        model.reply(json.dumps({"links": [link]}), when=_step("link"))
        update = {"note_id": trip, "context": "Rome; PIN 4321", "tags": None}
        model.reply(json.dumps({"updates": [update]}), when=_step("evolve"))
        ana.run_jobs()
        assert (ana.get(trip).version, ana.get(trip).context) == (1, None)


def test_an_expiring_note_shown_to_reconcile_keeps_its_update_apart(
    ana: Memory, model: ScriptedOpenAIServer
) -> None:
    _, lisbon = _tell(ana, model, LISBON, "2024-05-10T10:00:00Z", "Ana lives in Lisbon.")
    _extracted(model, {"text": "Ana lives in Lisbon's Alfama.", "occurred_on": None})
    _said(ana, "My flat is in Alfama.", expires_at=FORGET_AT)  # a fact that expires
    decision = {"fact": 0, "action": "update", "target_id": lisbon, "text": "Ana: Alfama."}
    model.reply(json.dumps({"decisions": [decision]}), when=_step("reconcile"))
    _extracted(model, {"text": "Ana lives in Lisbon still.", "occurred_on": None})
    _said(ana, "Still in Lisbon.")  # lasting, but its reconcile saw the expiring fact
    assert (ana.get(lisbon).text, ana.get(lisbon).version) == ("Ana lives in Lisbon.", 1)
