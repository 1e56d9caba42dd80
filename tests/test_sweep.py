"""Expired notes are erased without anyone asking: the sweeper thread of the long-running
processes purges every tenant's expired notes every REMEM_SWEEP_SECONDS, and a real
`remem serve` and `remem worker` do it on their own. On every store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from remem import ConfigError, Memory, NotFoundError
from remem.cli.main import cli
from remem.config import Settings
from remem.lifecycle.sweep import Sweeper, interval_of, sweep_every_tenant
from remem.llms import OpenAICompatibleLLM
from remem.stores.base import Changes
from remem.testing import HashEmbedder, ScriptedOpenAIServer

FUTURE = datetime(2090, 1, 1, tzinfo=UTC)
DEADLINE = 60.0  # seconds a test waits for a sweep before it fails (it takes well under one)


def _expire_now(memory: Memory, note_id: str) -> None:
    """As if the note's expiry had come (the API takes only future times)."""
    note = memory.store.get_notes([note_id])[note_id]
    past = datetime.now(UTC) - timedelta(minutes=1)
    memory.store.apply(Changes(notes=[replace(note, expires_at=past, version=note.version + 1)]))


def _expiring(memory: Memory, text: str, *, expired: bool = True) -> str:
    note_id = memory.add(text, user_id="ana", expires_at=FUTURE).note_ids[0]
    if expired:
        _expire_now(memory, note_id)
    return note_id


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition`, looking every 50 ms, failing after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE:.0f} s: {what}")
        time.sleep(0.05)


def _gone(memory: Memory, *note_ids: str) -> Callable[[], bool]:
    return lambda: not memory.store.get_notes(list(note_ids))


def test_the_sweeper_purges_the_expired_notes_of_every_tenant(memory: Memory) -> None:
    acme = memory.as_tenant("acme")
    mine, theirs = _expiring(memory, "My locker code is 1234"), _expiring(acme, "Door 77")
    kept = _expiring(acme, "Parking spot 12", expired=False)
    lasting = memory.add("I like tea", user_id="ana").note_ids[0]
    sweeper = Sweeper(acme, 0.05).start()  # a tenant's view sweeps the others too
    try:
        _until(_gone(memory, mine, theirs), "the expired notes purged")
    finally:
        sweeper.stop()
    assert not sweeper.running
    assert memory.history(mine)[-1].action == "purge"
    assert acme.history(theirs)[-1].action == "purge"
    assert acme.get(kept).expires_at == FUTURE and memory.get(lasting).text == "I like tea"
    with pytest.raises(NotFoundError):
        memory.get(mine)


def test_sweeps_racing_in_two_memories_purge_each_note_once(location: str) -> None:
    with (
        Memory(location, embedder=HashEmbedder(), llm=None) as one,
        Memory(location, embedder=HashEmbedder(), llm=None) as other,
    ):
        expired = [_expiring(one, f"Temporary note {n}") for n in range(12)]
        for tenant in ("acme", "umbrella"):
            expired.append(_expiring(one.as_tenant(tenant), f"A note of {tenant}"))
        counts: list[int] = []
        failures: list[BaseException] = []
        start = threading.Barrier(2)

        def sweep(memory: Memory) -> None:
            try:
                start.wait()
                counts.append(sweep_every_tenant(memory))
            except BaseException as error:  # reported below, not lost in the thread
                failures.append(error)

        threads = [threading.Thread(target=sweep, args=(m,)) for m in (one, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sum(counts) == len(expired)  # each purged by one of them, none twice
        assert not one.store.get_notes(expired)
        assert one.store.expired_notes(None, datetime.now(UTC), 10) == []


def test_a_note_another_process_swept_is_gone_from_this_ones_search(db_path: Path) -> None:
    """SQLite keeps a vector index in each process: a note swept by another one must leave
    it too, or a similar new note would link to it (and the store refuse the link)."""
    with (
        Memory(db_path, embedder=HashEmbedder(), llm=None) as serving,
        Memory(db_path, embedder=HashEmbedder(), llm=None) as sweeping,
    ):
        code = _expiring(serving, "The door code for today is 4471")
        assert sweep_every_tenant(sweeping) == 1
        assert serving.search("door code for today", user_id="ana") == []
        added = serving.add("The door code for tomorrow is 4471", user_id="ana")
        assert [ln.target_id for ln in serving.links(added.note_ids[0])] == []
        assert code not in serving.store.get_notes([code])


def test_a_fact_drawn_from_expiring_turns_expires_with_the_last_of_them(location: str) -> None:
    with ScriptedOpenAIServer() as model:
        extracted = '{"facts": [{"text": "Ana is in Rome until Friday.", "occurred_on": null}]}'
        model.reply(extracted, when='"name": "extract"', times=2)
        for step, empty in (("extract", '{"facts": []}'), ("enrich", '{"notes": []}')):
            model.reply(empty, when=f'"name": "{step}"', times=None)
        for step, empty in (("reconcile", "decisions"), ("link", "links"), ("evolve", "updates")):
            model.reply(f'{{"{empty}": []}}', when=f'"name": "{step}"', times=None)
        llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=5.0, backoff=0.01)
        with Memory(location, embedder=HashEmbedder(), llm=llm) as memory:
            said = memory.add("I'm in Rome until Friday", user_id="ana", expires_at=FUTURE)
            turn, fact = said.note_ids
            assert memory.get(fact).kind == "fact" and memory.get(fact).expires_at == FUTURE
            kept = memory.add("I'm in Rome until Friday!", user_id="ana").note_ids[-1]
            assert memory.get(kept).expires_at is None  # said without an expiry: kept
            _expire_now(memory, turn)
            _expire_now(memory, fact)
            assert memory.sweep_expired() == 2
            assert not memory.store.get_notes([turn, fact])
            assert not memory.store.get_episodes(list(said.episode_ids))
            assert memory.search("Rome until Friday", user_id="ana")  # the lasting one


@pytest.mark.parametrize("text", ["soon", "-1", "nan", "inf", ""])
def test_a_bad_interval_names_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match="REMEM_SWEEP_SECONDS"):
        interval_of(Settings(sweep_seconds=text))


def test_the_interval_setting_and_zero_for_never(memory: Memory) -> None:
    assert interval_of(Settings()) == 300.0
    assert interval_of(Settings.resolve(environ={"REMEM_SWEEP_SECONDS": "2.5"})) == 2.5
    never = Sweeper(memory, interval_of(Settings(sweep_seconds="0"))).start()
    assert not never.running
    never.stop()


# -- the long-running processes ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(location: str, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "REMEM_DB": location,
        "REMEM_EMBEDDER": "hash",
        "REMEM_CONFIG": "",
        "REMEM_SWEEP_SECONDS": "0.2",
        **more,
    }


@pytest.fixture
def running_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `remem ARGS…`; stopped after the test, its stderr kept in tmp_path."""
    started: list[subprocess.Popen[bytes]] = []
    with (tmp_path / "stderr.log").open("wb") as log:

        def start(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "remem", *args]
            started.append(subprocess.Popen(command, env=env, stderr=log))
            return started[-1]

        yield start
        for process in started:
            process.terminate()
            process.wait(10)


@pytest.mark.slow
def test_remem_serve_sweeps_without_being_asked(
    location: str, running_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    port = _free_port()
    running_process("serve", "--port", str(port), env=_environment(location))
    url = f"http://127.0.0.1:{port}"
    _until(lambda: _answers(f"{url}/healthz"), "the server up")
    body = {"content": "The wifi password is hunter2", "user_id": "ana", "expires_at": "2090-01-01"}
    note_id = httpx.post(f"{url}/v1/memories", json=body).json()["note_ids"][0]
    with Memory(location, embedder=HashEmbedder(), llm=None) as memory:
        assert memory.get(note_id).expires_at == FUTURE
        _expire_now(memory, note_id)
        _until(_gone(memory, note_id), "the server purged the expired note")
        assert memory.history(note_id)[-1].action == "purge"
    assert httpx.get(f"{url}/v1/memories/{note_id}").status_code == 404


@pytest.mark.slow
def test_remem_worker_sweeps_without_being_asked(
    location: str, running_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    with (
        ScriptedOpenAIServer() as model,
        Memory(location, embedder=HashEmbedder(), llm=None) as memory,
    ):
        note_id = _expiring(memory.as_tenant("acme"), "The alarm code is 2580")
        model_settings = {"REMEM_LLM_BASE_URL": model.base_url, "REMEM_LLM_MODEL": "scripted"}
        worker = running_process("worker", env=_environment(location, **model_settings))
        _until(_gone(memory, note_id), "the worker purged the expired note")
        assert worker.poll() is None  # still running: it swept on its own
        assert memory.as_tenant("acme").history(note_id)[-1].action == "purge"


def test_remem_worker_once_sweeps_once(location: str) -> None:
    with (
        ScriptedOpenAIServer() as model,
        Memory(location, embedder=HashEmbedder(), llm=None) as memory,
    ):
        swept, off = _expiring(memory, "A code for today"), None
        env = {
            "REMEM_DB": location,
            "REMEM_EMBEDDER": "hash",
            "REMEM_CONFIG": "",
            "REMEM_LLM_BASE_URL": model.base_url,
            "REMEM_LLM_MODEL": "scripted",
        }
        result = CliRunner().invoke(cli, ["worker", "--once"], env=env)
        assert result.exit_code == 0, result.output
        assert _gone(memory, swept)()
        off = _expiring(memory, "Another code for today")
        result = CliRunner().invoke(
            cli, ["worker", "--once"], env={**env, "REMEM_SWEEP_SECONDS": "0"}
        )
        assert result.exit_code == 0, result.output
        assert memory.store.get_notes([off])[off].expires_at is not None  # not swept
        bad = CliRunner().invoke(cli, ["worker", "--once"], env={**env, "REMEM_SWEEP_SECONDS": "x"})
        assert bad.exit_code != 0 and "REMEM_SWEEP_SECONDS" in bad.output + str(bad.exception)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False
