"""Thoughts (Think-in-Memory): conclusions stored as notes of kind "thought", linked to the
memories they rest on, searched like facts, marked inferred in context, merged when they
repeat, and superseded (never deleted) as soon as a memory they rest on goes. On every
store, through Python, REST (real HTTP on 127.0.0.1), MCP and the CLI."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner
from mcp import Client as MCPClient

from remem import (
    EmptyContentError,
    InvalidInputError,
    Memory,
    NotFoundError,
    ScopeRequiredError,
)
from remem.cli.main import cli
from remem.inputs import MAX_EVIDENCE, MAX_THOUGHT_CHARS
from remem.llms import OpenAICompatibleLLM
from remem.server.app import create_app
from remem.server.mcp_tools import create_mcp_server
from remem.server.proxy import Upstream
from remem.testing import HashEmbedder, ScriptedOpenAIServer
from remem.testing.http import running


def _said(memory: Memory, text: str, user: str = "ana", **scope: Any) -> str:
    return memory.add(text, user_id=user, **scope).note_ids[0]


def _ids(hits: list[Any]) -> list[str]:
    return [hit.id for hit in hits]


def test_a_thought_is_found_like_a_fact_and_marked_inferred_in_context(memory: Memory) -> None:
    lisbon = _said(memory, "I moved to Lisbon last spring")
    nurse = _said(memory, "I work night shifts at the hospital")
    thought = memory.think(
        "Ana is a nurse living in Lisbon",
        evidence_ids=[lisbon, nurse],
        user_id="ana",
        metadata={"by": "agent"},
    )
    assert thought.kind == "thought" and thought.episode_ids == ()
    assert thought.metadata == {"by": "agent"} and thought.superseded_by is None
    assert memory.get(thought.id) == thought
    assert thought.id in _ids(memory.search("nurse living in Lisbon", user_id="ana"))
    links = memory.links(thought.id)
    assert {(ln.source_id, ln.target_id, ln.relation) for ln in links} == {
        (thought.id, lisbon, "rests_on"),
        (thought.id, nurse, "rests_on"),
    }
    assert thought.id in {ln.source_id for ln in memory.links(lisbon)}  # seen from the evidence
    context = memory.context("is Ana a nurse in Lisbon?", user_id="ana", min_score=0)
    day = thought.occurred_at.strftime("%Y-%m-%d")
    assert f"- [{day}] thought (inferred): Ana is a nurse living in Lisbon" in context.text
    history = memory.history(thought.id)
    assert [e.action for e in history] == ["add", "link", "link"]
    assert history[0].after == {"evidence_ids": [lisbon, nurse]}
    assert [n.kind for n in memory.list(user_id="ana").items].count("thought") == 1


def test_a_repeated_thought_merges_into_the_first(memory: Memory) -> None:
    tea = _said(memory, "I drink green tea every morning")
    coffee = _said(memory, "Coffee makes me jittery")
    first = memory.think("Ana prefers tea to coffee", evidence_ids=[tea], user_id="ana")
    again = memory.think(
        "  ana PREFERS tea to coffee. ", evidence_ids=[coffee, tea], user_id="ana", session_id="s2"
    )
    assert again.id == first.id
    assert {ln.target_id for ln in memory.links(first.id)} == {tea, coffee}
    merged = [e for e in memory.history(first.id) if e.action == "merge"]
    assert len(merged) == 1 and merged[0].after is not None
    assert merged[0].after["added_evidence"] == [coffee]
    thoughts = [n for n in memory.list(user_id="ana").items if n.kind == "thought"]
    assert [n.id for n in thoughts] == [first.id]
    # another owner's same words are their own thought; a different conclusion is new
    bo_tea = _said(memory, "I drink green tea every morning", user="bo")
    assert memory.think("Ana prefers tea to coffee", evidence_ids=[bo_tea], user_id="bo").id != (
        first.id
    )
    other = memory.think("Ana avoids caffeine in the evening", evidence_ids=[coffee], user_id="ana")
    assert other.id != first.id


def test_deleting_its_evidence_supersedes_the_thought(memory: Memory) -> None:
    porto = _said(memory, "My sister lives in Porto")
    visits = _said(memory, "I visit my sister every month")
    thought = memory.think(
        "Ana travels to Porto monthly", evidence_ids=[porto, visits], user_id="ana"
    )
    assert thought.id in _ids(memory.search("travels to Porto", user_id="ana"))
    memory.delete(visits)
    dropped = memory.get(thought.id)  # superseded, not deleted
    assert dropped.superseded_by == visits and dropped.valid_to is not None
    assert dropped.version == 2 and dropped.deleted_at is None
    assert thought.id not in _ids(memory.search("travels to Porto", user_id="ana"))
    assert thought.id in _ids(
        memory.search("travels to Porto", user_id="ana", include_superseded=True)
    )
    assert "travels to Porto" not in memory.context("Porto", user_id="ana", min_score=0).text
    last = memory.history(thought.id)[-1]
    assert last.action == "supersede" and last.after is not None
    assert visits in last.after["reason"] and "deleted" in last.after["reason"]
    # the same conclusion again is a new thought: the dropped one is not revived
    again = memory.think("Ana travels to Porto monthly", evidence_ids=[porto], user_id="ana")
    assert again.id != thought.id and again.superseded_by is None
    with pytest.raises(InvalidInputError, match=r"evidence_ids\[0\].*superseded"):
        memory.think("Ana likes trains", evidence_ids=[thought.id], user_id="ana")


def test_forgetting_an_episode_supersedes_the_thoughts_on_its_notes(memory: Memory) -> None:
    added = memory.add("I adopted a greyhound called Flash", user_id="ana")
    thought = memory.think("Ana has a dog", evidence_ids=list(added.note_ids), user_id="ana")
    memory.delete(added.episode_ids[0])
    assert memory.get(thought.id).superseded_by == added.note_ids[0]


def test_purging_its_evidence_purges_the_thought_and_those_resting_on_it(memory: Memory) -> None:
    secret = _said(memory, "My bank PIN is 4321")
    other = _said(memory, "I bank with the credit union")
    thought = memory.think("Ana's PIN is 4321", evidence_ids=[secret, other], user_id="ana")
    on_it = memory.think("Ana reuses short PINs", evidence_ids=[thought.id], user_id="ana")
    memory.delete(secret)  # the thoughts are superseded first: their text still says it
    assert memory.get(thought.id).superseded_by == secret
    memory.purge(secret)
    for gone in (thought.id, on_it.id):
        with pytest.raises(NotFoundError):
            memory.get(gone)
        assert [e.action for e in memory.history(gone)][-1] == "purge"
        assert "4321" not in json.dumps([(e.before, e.after) for e in memory.history(gone)])
    found = memory.search("PIN 4321", user_id="ana", include_superseded=True)
    assert [hit.id for hit in found] == [other]
    assert memory.get(other).text == "I bank with the credit union"  # other evidence stays
    assert [ln.target_id for ln in memory.links(other)] == []


def test_a_thought_resting_on_a_thought_goes_with_it(memory: Memory) -> None:
    runs = _said(memory, "I ran a marathon in October")
    fit = memory.think("Ana is fit", evidence_ids=[runs], user_id="ana")
    sporty = memory.think("Ana would enjoy a hiking trip", evidence_ids=[fit.id], user_id="ana")
    memory.delete(runs)
    assert memory.get(fit.id).superseded_by == runs
    assert memory.get(sporty.id).superseded_by == fit.id


def test_forgetting_a_session_supersedes_the_thoughts_resting_on_it(memory: Memory) -> None:
    trip = _said(memory, "We land in Oslo on Friday", session_id="trip")
    thought = memory.think("Ana travels to Norway", evidence_ids=[trip], user_id="ana")
    assert memory.delete_all(user_id="ana", session_id="trip") == 1  # the thought is not counted
    assert memory.get(thought.id).superseded_by == trip


def test_forgetting_the_scope_deletes_its_thoughts(memory: Memory) -> None:
    note = _said(memory, "I collect vinyl records")
    thought = memory.think("Ana likes music", evidence_ids=[note], user_id="ana")
    assert memory.delete_all(user_id="ana") == 2
    with pytest.raises(NotFoundError):
        memory.get(thought.id)
    assert memory.history(thought.id)[-1].action == "delete"
    memory.purge_all(user_id="ana")
    assert memory.history(thought.id)[-1].action == "purge"


# -- the organising pipeline superseding the evidence ------------------------------------


def _step(name: str) -> str:
    return f'"name": "{name}"'


def _facts(*texts: str) -> str:
    return json.dumps({"facts": [{"text": text, "occurred_on": None} for text in texts]})


@pytest.fixture
def organised(location: str) -> Iterator[tuple[Memory, ScriptedOpenAIServer]]:
    with ScriptedOpenAIServer() as model:
        model.reply(_facts(), when=_step("extract"), times=None)
        model.reply('{"decisions": []}', when=_step("reconcile"), times=None)
        model.reply('{"notes": []}', when=_step("enrich"), times=None)
        model.reply('{"links": []}', when=_step("link"), times=None)
        model.reply('{"updates": []}', when=_step("evolve"), times=None)
        llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5.0, backoff=0.01)
        with Memory(location, embedder=HashEmbedder(), llm=llm) as memory:
            yield memory, model


def test_a_fact_superseded_by_the_pipeline_supersedes_its_thoughts(
    organised: tuple[Memory, ScriptedOpenAIServer],
) -> None:
    memory, model = organised
    model.reply(_facts("Ana lives in Lisbon."), when=_step("extract"))
    lisbon = memory.add("I live in Lisbon.", user_id="ana").note_ids[-1]
    assert memory.get(lisbon).kind == "fact"
    thought = memory.think("Ana's commute is by tram", evidence_ids=[lisbon], user_id="ana")
    model.reply(_facts("Ana lives in Porto."), when=_step("extract"))
    supersede = {"fact": 0, "action": "supersede", "target_id": lisbon}
    model.reply(json.dumps({"decisions": [supersede]}), when=_step("reconcile"))
    porto = memory.add("I moved to Porto.", user_id="ana").note_ids[-1]
    assert memory.get(lisbon).superseded_by == porto
    dropped = memory.get(thought.id)
    assert dropped.superseded_by == porto  # what replaced its evidence
    assert thought.id not in _ids(memory.search("commute by tram", user_id="ana"))
    last = memory.history(thought.id)[-1]
    assert last.action == "supersede" and last.actor.startswith("llm:")


def test_a_fact_rewritten_by_the_pipeline_supersedes_its_thoughts(
    organised: tuple[Memory, ScriptedOpenAIServer],
) -> None:
    memory, model = organised
    model.reply(_facts("Ana has a cat."), when=_step("extract"))
    cat = memory.add("I have a cat.", user_id="ana").note_ids[-1]
    thought = memory.think("Ana is a pet owner", evidence_ids=[cat], user_id="ana")
    model.reply(_facts("Ana has two cats."), when=_step("extract"))
    update = {"fact": 0, "action": "update", "target_id": cat, "text": "Ana has two cats."}
    model.reply(json.dumps({"decisions": [update]}), when=_step("reconcile"))
    memory.add("Actually I have two cats.", user_id="ana")
    assert memory.get(cat).text == "Ana has two cats." and memory.get(cat).superseded_by is None
    dropped = memory.get(thought.id)
    assert dropped.superseded_by == cat  # the evidence itself, rewritten
    last = memory.history(thought.id)[-1]
    assert last.after is not None and "edited" in last.after["reason"]


# -- export and import ---------------------------------------------------------------------


def test_an_export_keeps_thoughts_and_what_they_rest_on(memory: Memory, tmp_path: Path) -> None:
    cat = _said(memory, "My cat Miso hates the vacuum cleaner")
    thought = memory.think("Miso is easily scared", evidence_ids=[cat], user_id="ana")
    gone = memory.think(
        "Miso is a calm cat", evidence_ids=[_said(memory, "Miso slept all day")], user_id="ana"
    )
    memory.delete(memory.links(gone.id)[0].target_id)
    target = tmp_path / "export.jsonl"
    memory.export(target)
    with Memory(tmp_path / "copy.db", embedder=HashEmbedder(), llm=None) as copy:
        copy.import_file(target)
        assert copy.get(thought.id) == memory.get(thought.id)
        assert copy.get(gone.id).superseded_by is not None
        assert copy.links(thought.id) == memory.links(thought.id)
        assert thought.id in _ids(copy.search("Miso scared", user_id="ana"))
        # the links came along, so the rule still holds in the copy
        copy.delete(cat)
        assert copy.get(thought.id).superseded_by == cat


# -- hostile callers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evidence", "error", "says"),
    [
        ([], InvalidInputError, "evidence_ids must be a non-empty list"),
        ("nt_01", InvalidInputError, "evidence_ids must be a non-empty list"),
        (None, InvalidInputError, "evidence_ids"),
        ([""], InvalidInputError, r"evidence_ids\[0\]"),
        ([7], InvalidInputError, r"evidence_ids\[0\]"),
        (["x" * 300], InvalidInputError, r"evidence_ids\[0\]"),
        (["nt_\x00"], InvalidInputError, r"evidence_ids\[0\]"),
        (["nt_" + "A" * 26] * (MAX_EVIDENCE + 1), InvalidInputError, "at most"),
        (["nt_00000000000000000000000000"], NotFoundError, "no memory with id"),
    ],
)
def test_bad_evidence_is_refused(memory: Memory, evidence: Any, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        memory.think("Ana is tired", evidence_ids=evidence, user_id="ana")
    assert memory.list(user_id="ana").items == ()


def test_evidence_of_another_tenant_user_or_kind_is_refused(memory: Memory) -> None:
    acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
    theirs = acme.add("Acme's launch code is 1234", user_id="ana")
    with pytest.raises(NotFoundError, match=theirs.note_ids[0]):  # exactly as `get` says
        umbrella.think("the code is 1234", evidence_ids=list(theirs.note_ids), user_id="ana")
    with pytest.raises(NotFoundError):
        umbrella.get(theirs.note_ids[0])
    bo = acme.add("Bo likes jazz", user_id="bo").note_ids[0]
    ana = acme.add("Ana likes rock", user_id="ana").note_ids[0]
    with pytest.raises(InvalidInputError, match=r"evidence_ids\[1\].*user_id 'ana'"):
        acme.think("Ana and Bo like music", evidence_ids=[ana, bo], user_id="ana")
    with pytest.raises(InvalidInputError, match=r"evidence_ids\[0\].*episode"):
        acme.think("Ana likes rock", evidence_ids=list(theirs.episode_ids), user_id="ana")
    acme.delete(ana)
    with pytest.raises(NotFoundError):
        acme.think("Ana likes rock", evidence_ids=[ana], user_id="ana")
    assert {n.kind for n in acme.list().items} == {"turn"} and umbrella.list().items == ()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", EmptyContentError),
        ("   \n", EmptyContentError),
        (None, InvalidInputError),
        ("a\x00b", InvalidInputError),
        ("\ud800", InvalidInputError),
        ("x" * (MAX_THOUGHT_CHARS + 1), InvalidInputError),
    ],
)
def test_bad_text_is_refused(memory: Memory, text: Any, error: type) -> None:
    note = _said(memory, "I like pears")
    with pytest.raises(error):
        memory.think(text, evidence_ids=[note], user_id="ana")
    with pytest.raises(ScopeRequiredError):
        memory.think("Ana likes fruit", evidence_ids=[note])
    with pytest.raises(InvalidInputError):
        memory.think("Ana likes fruit", evidence_ids=[note], user_id="ana", occurred_at="soon")
    assert [n.kind for n in memory.list(user_id="ana").items] == ["turn"]


def test_racing_threads_concluding_the_same_make_one_thought(memory: Memory) -> None:
    evidence = [_said(memory, f"I swam {n} km today") for n in range(4)]
    made: list[str] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def conclude(n: int) -> None:
        try:
            start.wait()
            thought = memory.think("Ana swims a lot", evidence_ids=[evidence[n % 4]], user_id="ana")
            made.append(thought.id)
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=conclude, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(made)) == 1 and len(made) == 8
    thoughts = [n for n in memory.list(user_id="ana").items if n.kind == "thought"]
    assert [n.id for n in thoughts] == made[:1]
    assert {ln.target_id for ln in memory.links(made[0])} == set(evidence)


def test_racing_a_delete_never_leaves_a_thought_on_deleted_evidence(memory: Memory) -> None:
    notes = [_said(memory, f"I planted {n} tomatoes") for n in range(6)]
    start = threading.Barrier(2)

    def conclude() -> None:
        start.wait()
        for n, note in enumerate(notes):
            with contextlib.suppress(NotFoundError):  # deleted first: nothing to conclude from
                memory.think(f"Ana gardens, conclusion {n}", evidence_ids=[note], user_id="ana")

    def forget() -> None:
        start.wait()
        for note in notes:
            memory.delete(note)

    threads = [threading.Thread(target=conclude), threading.Thread(target=forget)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live = [n for n in memory.list(user_id="ana").items if n.superseded_by is None]
    assert live == []  # every thought made went with its evidence


# -- the other surfaces ----------------------------------------------------------------------


@pytest.fixture
def server(memory: Memory) -> Iterator[httpx.Client]:
    with running(create_app(memory)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def test_rest_thinks_and_names_the_field_of_a_mistake(memory: Memory, server: httpx.Client) -> None:
    note = _said(memory, "I speak Portuguese at home")
    bo = _said(memory, "I speak Dutch", user="bo")
    body = {"text": "Ana is bilingual", "evidence_ids": [note], "user_id": "ana"}
    made = server.post("/v1/thoughts", json=body)
    assert made.status_code == 201 and made.json()["kind"] == "thought"
    again = server.post("/v1/thoughts", json=body | {"occurred_at": "2024-05-01T10:00:00Z"})
    assert again.status_code == 201 and again.json()["id"] == made.json()["id"]
    for change, status, field in [
        ({"evidence_ids": []}, 422, "evidence_ids"),
        ({"evidence_ids": None}, 422, "evidence_ids"),
        ({"evidence_ids": "nt_x"}, 422, "evidence_ids"),
        ({"evidence_ids": ["a\x00"]}, 422, "evidence_ids.0"),
        ({"text": " "}, 422, "text"),
        ({"text": "x" * (MAX_THOUGHT_CHARS + 1)}, 422, "text"),
        ({"user_id": None}, 422, "user_id, agent_id or session_id"),
        ({"occurred_at": "soon"}, 422, "occurred_at"),
        ({"evidence_ids": [bo]}, 422, "evidence_ids[0]"),
        ({"evidence_ids": ["nt_00000000000000000000000000"]}, 404, "nt_00000000000000000000000000"),
        ({"unknown": 1}, 422, "unknown"),
    ]:
        answer = server.post("/v1/thoughts", json=body | change)
        assert answer.status_code == status, (change, answer.text)
        assert field in answer.json()["error"]["message"], (change, answer.text)
    missing = server.post("/v1/thoughts", json={"text": "x", "user_id": "ana"})
    assert missing.status_code == 422 and "evidence_ids" in missing.json()["error"]["message"]


def test_mcp_remember_conclusion(memory: Memory) -> None:
    note = _said(memory, "I switched to decaf in June")
    bo = _said(memory, "I drink espresso", user="bo")
    app = create_mcp_server(memory, "ana").streamable_http_app()

    async def main(url: str) -> None:
        async with MCPClient(f"{url}/mcp") as client:
            made = await client.call_tool(
                "remember_conclusion", {"text": "Ana avoids caffeine", "evidence_ids": [note]}
            )
            assert not made.is_error, made.content
            data = made.structured_content
            assert data is not None and data["kind"] == "thought" and "scope" not in data
            for arguments, field in [
                ({"text": "x", "evidence_ids": []}, "evidence_ids"),
                ({"text": "x"}, "evidence_ids"),
                ({"text": "", "evidence_ids": [note]}, "text"),
                ({"text": "x", "evidence_ids": [bo]}, "evidence_ids[0]"),
                ({"text": "x", "evidence_ids": ["nt_nope"]}, "nt_nope"),
            ]:
                refused = await client.call_tool("remember_conclusion", arguments)
                assert refused.is_error and field in refused.content[0].text, arguments

    with running(app) as url:
        anyio.run(main, url)
    assert [n.kind for n in memory.list(user_id="ana").items] == ["turn", "thought"]


def test_cli_think(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    env = {"REMEM_EMBEDDER": "hash"}
    added = runner.invoke(
        cli, ["--db", db, "add", "I bake bread", "--user", "ana", "--json"], env=env
    )
    note = json.loads(added.output)["note_ids"][0]
    made = runner.invoke(
        cli, ["--db", db, "think", "Ana bakes", "--evidence", note[-8:], "--user", "ana"], env=env
    )
    assert made.exit_code == 0, made.output
    assert made.output.startswith("concluded nt_")
    listed = runner.invoke(cli, ["--db", db, "list", "--user", "ana"], env=env)
    assert "thought" in listed.output and "Ana bakes" in listed.output
    missing = runner.invoke(cli, ["--db", db, "think", "Ana bakes", "--user", "ana"], env=env)
    assert missing.exit_code == 2 and "--evidence" in missing.output
    unknown = runner.invoke(
        cli, ["--db", db, "think", "x", "--evidence", "nt_nope", "--user", "ana"], env=env
    )
    assert unknown.exit_code == 1 and "no memory with id 'nt_nope'" in unknown.output


# -- the chat proxy's opt-in conclusions -----------------------------------------------------


def _chat(url: str) -> httpx.Response:
    question = {"role": "user", "content": "What should I cook with my peanut allergy?"}
    body = {"messages": [question], "user": "ana", "model": "m"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)


@pytest.mark.parametrize("concluded", ["valid", "garbage", "off"])
def test_the_chat_proxy_keeps_what_the_model_concluded_only_when_asked(
    memory: Memory, concluded: str
) -> None:
    peanuts = _said(memory, "I am allergic to peanuts")
    conclusions = {
        "conclusions": [
            {"text": "Ana avoids dishes with peanuts", "evidence_ids": [peanuts, "nt_MADE_UP"]},
            {"text": "Ana is a chef", "evidence_ids": ["nt_MADE_UP"]},  # rests on nothing shown
        ]
    }
    with ScriptedOpenAIServer() as upstream:
        answer = json.dumps(conclusions) if concluded != "garbage" else "not JSON at all"
        upstream.reply(answer, when="worth remembering")
        upstream.reply("Try the lentil curry.")
        proxy = Upstream(upstream.base_url, model="m", conclude=concluded != "off")
        with running(create_app(memory, upstream=proxy)) as url:
            reply = _chat(url)
        asked = upstream.chat_requests()
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "Try the lentil curry."
    thoughts = [n for n in memory.list(user_id="ana").items if n.kind == "thought"]
    if concluded == "off":
        assert len(asked) == 1 and thoughts == []
        return
    assert len(asked) == 2 and "worth remembering" in asked[1]["messages"][0]["content"]
    assert peanuts in asked[1]["messages"][1]["content"]
    if concluded == "garbage":
        assert thoughts == []
        return
    assert [(t.text, t.metadata) for t in thoughts] == [
        ("Ana avoids dishes with peanuts", {"source": "chat proxy"})
    ]
    assert [ln.target_id for ln in memory.links(thoughts[0].id)] == [peanuts]
