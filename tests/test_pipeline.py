"""The organising pipeline against a scripted OpenAI-compatible model over real HTTP (a
failing model in-process, on `ScriptedTransport`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from remem import Memory
from remem.llms import OpenAICompatibleLLM
from remem.stores.base import Changes
from remem.testing import HashEmbedder, OpenAIScript, ScriptedOpenAIServer, ScriptedTransport
from remem.write.pipeline import organise_job


def step(name: str) -> str:
    """Text that only a request of this pipeline step contains (its JSON schema's name)."""
    return f'"name": "{name}"'


def facts(*texts: str) -> str:
    return json.dumps({"facts": [{"text": text, "occurred_on": None} for text in texts]})


def _standing_answers(script: OpenAIScript) -> None:
    """A step a test does not script answers with nothing."""
    script.reply(facts(), when=step("extract"), times=None)
    script.reply('{"decisions": []}', when=step("reconcile"), times=None)
    script.reply('{"notes": []}', when=step("enrich"), times=None)
    script.reply('{"links": []}', when=step("link"), times=None)
    script.reply('{"updates": []}', when=step("evolve"), times=None)


@pytest.fixture
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        _standing_answers(server)
        yield server


def _llm(server: ScriptedOpenAIServer, timeout: float = 5.0) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(server.base_url, "scripted", timeout=timeout, backoff=0.01)


@pytest.fixture
def organised(location: str, model: ScriptedOpenAIServer) -> Iterator[Memory]:
    with Memory(location, embedder=HashEmbedder(), llm=_llm(model)) as memory:
        yield memory


def _said(text: str, when: str) -> dict[str, Any]:
    return {"content": [{"role": "user", "name": "Ana", "content": text}], "occurred_at": when}


def test_a_later_fact_supersedes_an_earlier_one(
    organised: Memory, model: ScriptedOpenAIServer
) -> None:
    model.reply(facts("Ana lives in Lisbon."), when=step("extract"))
    first = organised.add(**_said("I live in Lisbon.", "2024-01-10T10:00:00Z"), user_id="ana")
    lisbon = first.note_ids[-1]
    assert organised.get(lisbon).kind == "fact" and first.pending_jobs == ()
    assert first.llm_calls >= 1 and first.llm_tokens > 0
    model.reply(facts("Ana lives in Porto."), when=step("extract"))
    supersede = {"fact": 0, "action": "supersede", "target_id": lisbon}
    model.reply(json.dumps({"decisions": [supersede]}), when=step("reconcile"))
    second = organised.add(**_said("I moved to Porto.", "2024-06-01T10:00:00Z"), user_id="ana")
    porto = second.note_ids[-1]
    old, new = organised.get(lisbon), organised.get(porto)
    assert old.superseded_by == porto and old.valid_to == new.valid_from and old.version == 2
    current = [hit.id for hit in organised.search("where does Ana live", user_id="ana")]
    assert porto in current and lisbon not in current
    every = organised.search("where does Ana live", user_id="ana", include_superseded=True)
    assert lisbon in [hit.id for hit in every]
    history = organised.history(lisbon)
    assert [e.action for e in history] == ["add", "supersede"]
    assert history[1].before is not None and history[1].before["text"] == "Ana lives in Lisbon."
    assert history[1].after is not None and history[1].after["superseded_by"] == porto


def test_links_point_only_to_notes_that_exist(organised: Memory, model: ScriptedOpenAIServer):
    earlier = organised.add("Bo is my brother.", user_id="ana").note_ids[0]
    model.reply(facts("Ana's brother Bo won a tennis match."), when=step("extract"))
    links = [
        {"fact": 0, "target_id": earlier, "relation": "about", "reason": "Bo is the brother"},
        {"fact": 0, "target_id": "nt_INVENTED", "relation": "about", "reason": "made up"},
    ]
    model.reply(json.dumps({"links": links}), when=step("link"))
    fact = organised.add("My brother won his match!", user_id="ana").note_ids[-1]
    made = [link for link in organised.store.dump().links if link.source_id == fact]
    assert [(link.target_id, link.relation) for link in made] == [(earlier, "about")]
    assert organised.get(made[0].target_id).id == earlier


def test_an_evolved_neighbour_is_re_embedded_and_found_by_its_new_context(
    organised: Memory, model: ScriptedOpenAIServer
) -> None:
    earlier = organised.add("Bo is my brother.", user_id="ana").note_ids[0]
    model.reply(facts("Ana's brother Bo won a tennis match."), when=step("extract"))
    link = {"fact": 0, "target_id": earlier, "relation": "about", "reason": "Bo"}
    model.reply(json.dumps({"links": [link]}), when=step("link"))
    update = {"note_id": earlier, "context": "Bo plays competitive badminton", "tags": ["family"]}
    model.reply(json.dumps({"updates": [update]}), when=step("evolve"))
    organised.add("My brother won his match!", user_id="ana")
    evolved = organised.get(earlier)
    assert evolved.context == "Bo plays competitive badminton" and evolved.tags == ("family",)
    assert evolved.version == 2 and organised.history(earlier)[-1].action == "evolve"
    stored = {record.note.id: record.vector for record in organised.store.dump().notes}
    expected = HashEmbedder().embed("Bo is my brother.\nBo plays competitive badminton")
    assert stored[earlier] is not None and (stored[earlier] == expected).all()
    assert organised.search("competitive badminton", user_id="ana")[0].id == earlier


@pytest.mark.parametrize("trouble", ["down", "garbage", "slow"])
def test_add_survives_a_failing_model_and_the_job_completes_later(
    location: str, trouble: str
) -> None:
    model = ScriptedTransport()
    _standing_answers(model)
    if trouble == "down":
        model.fail_next(503, times=3)
    elif trouble == "garbage":
        model.reply("this is not JSON", when=step("extract"), times=3)
    else:
        model.slow_next(1.0, times=3, when=step("extract"))
    llm = OpenAICompatibleLLM(model.base_url, "m", timeout=0.1, backoff=0.01, transport=model)
    with Memory(location, embedder=HashEmbedder(), llm=llm) as memory:
        added = memory.add("I adopted a cat named Miso.", user_id="ana")
        assert len(added.pending_jobs) == 1 and len(added.note_ids) == 1  # the turn only
        assert memory.search("cat Miso", user_id="ana")[0].id == added.note_ids[0]
        (job,) = memory.store.jobs("pending")
        assert job.last_error and job.attempts == 1
        model.reply(facts("Ana adopted a cat named Miso."), when=step("extract"))
        assert memory.run_jobs() == 1
        (done,) = memory.store.jobs("done")
        assert done.id == job.id and memory.list(user_id="ana").items[-1].kind == "fact"
        assert memory.run_jobs() == 0


@pytest.mark.slow
def test_a_killed_worker_s_job_completes_exactly_once(
    location: str, model: ScriptedOpenAIServer
) -> None:
    with Memory(location, embedder=HashEmbedder(), llm=_llm(model), jobs="worker") as memory:
        added = memory.add("I started learning the cello.", user_id="ana")
    (job_id,) = added.pending_jobs
    model.reply(facts("Ana is learning the cello."), when=step("extract"))
    model.slow_next(60, when=step("enrich"))  # the first worker dies waiting for this
    env = {
        **os.environ,
        "REMEM_DB": location,
        "REMEM_EMBEDDER": "hash",
        "REMEM_CONFIG": "",
        "REMEM_LLM_BASE_URL": model.base_url,
        "REMEM_LLM_MODEL": "scripted",
        "REMEM_JOBS": "worker",
    }
    command = [sys.executable, "-m", "remem", "worker", "--once", "--lease-seconds", "1"]
    first = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    with Memory(location, embedder=HashEmbedder()) as reader:
        deadline = time.monotonic() + 30
        while "extract" not in _job(reader, job_id).payload["done"]:  # checkpointed
            assert time.monotonic() < deadline, "the worker never finished extracting"
            time.sleep(0.05)
        while not _enrich_asked(model):
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(1.1)  # the dead worker's lease runs out
        subprocess.run(command, env=env, check=True, stderr=subprocess.DEVNULL, timeout=60)
        job = _job(reader, job_id)
        assert job.status == "done"
        texts = [n.text for n in reader.list(user_id="ana").items if n.kind == "fact"]
        assert texts == ["Ana is learning the cello."]
    extracts = [r for r in model.chat_requests() if step("extract") in json.dumps(r)]
    assert len(extracts) == 1  # resumed from the checkpoint, not redone


def _job(memory: Memory, job_id: str) -> Any:
    return next(job for job in memory.store.jobs() if job.id == job_id)


def _enrich_asked(model: ScriptedOpenAIServer) -> bool:
    return any(step("enrich") in json.dumps(r) for r in model.chat_requests())


def _asked(model: OpenAIScript, name: str) -> list[Any]:
    """The user message of each request of one step, parsed when it is JSON."""
    asked = []
    for request in model.chat_requests():
        if request["response_format"].get("json_schema", {}).get("name") == name:
            content = request["messages"][1]["content"]
            asked.append(content if name == "extract" else json.loads(content))
    return asked


def test_every_step_shows_who_said_what_and_when(location: str) -> None:
    model = ScriptedTransport()
    _standing_answers(model)
    model.reply(facts("The user lives in Lisbon."), when=step("extract"))
    later = {"text": "The user lives in Porto now.", "occurred_on": "2024-05-30"}
    model.reply(json.dumps({"facts": [later]}), when=step("extract"))
    llm = OpenAICompatibleLLM(model.base_url, "m", transport=model, backoff=0)
    with Memory(location, embedder=HashEmbedder(), llm=llm) as memory:
        turns = [
            {"role": "user", "content": "I live in Lisbon, near the river."},
            {"role": "assistant", "name": "Remy", "content": "The user lives in lovely Lisbon."},
        ]
        first = memory.add(turns, user_id="u", occurred_at="2024-01-10T10:00:00Z")
        lisbon_turn = first.note_ids[0]
        link = {"fact": 0, "target_id": lisbon_turn, "relation": "moved from", "reason": "-"}
        model.reply(json.dumps({"links": [link]}), when=step("link"))
        said = [{"role": "user", "content": "I moved to Porto, the user lives there now."}]
        memory.add(said, user_id="u", occurred_at="2024-06-01T09:00:00Z")
    extracts = _asked(model, "extract")
    assert "[2024-01-10 10:00] the user: I live in Lisbon" in extracts[0]
    assert "[2024-01-10 10:00] Remy (the assistant): The user lives" in extracts[0]
    assert "[2024-06-01 09:00] the user: I moved to Porto" in extracts[1]
    assert not any("] user:" in text or "] assistant:" in text for text in extracts)
    ((fact,),) = _asked(model, "reconcile")
    assert (fact["date"], fact["speaker"]) == ("2024-05-30", "the user")
    assert {(e["kind"], e["date"], e["speaker"]) for e in fact["existing"]} == {
        ("fact", "2024-01-10", "the user")
    }
    ((linked,),) = _asked(model, "link")
    assert (linked["date"], linked["speaker"]) == ("2024-05-30", "the user")
    earlier = {e["id"]: (e["date"], e["speaker"]) for e in linked["earlier"]}
    assert earlier[lisbon_turn] == ("2024-01-10 10:00", "the user")
    assert earlier[first.note_ids[1]] == ("2024-01-10 10:00", "Remy (the assistant)")
    (evolve,) = _asked(model, "evolve")
    assert [(n["date"], n["speaker"]) for n in evolve["new"]] == [("2024-05-30", "the user")]
    assert [(e["id"], e["speaker"]) for e in evolve["earlier"]] == [(lisbon_turn, "the user")]


def test_a_job_reads_only_its_own_tenant_s_episodes(
    organised: Memory, model: ScriptedOpenAIServer
) -> None:
    """A job whose payload names another tenant's episode (written by an import before
    imports checked payloads) organises its own tenant's episodes only."""
    secret = organised.add("The vault code is quokka.", user_id="bo").episode_ids[0]
    own = organised.as_tenant("acme").add("I like green tea.", user_id="ana").episode_ids[0]
    found = organised.store.get_episodes([own, secret])
    organised.store.apply(Changes(jobs=[organise_job([found[own], found[secret]])]))
    assert organised.run_jobs() == 1
    (asked,) = [text for text in _asked(model, "extract") if "green tea" in text][-1:]
    assert "quokka" not in asked
