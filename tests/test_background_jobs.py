"""Organising on a background thread (what `remem serve` does): jobs pending when a memory
opens are picked up without a new add, jobs another process queues are found on the next
look, closing waits a bounded time and says what it left, and reopening resumes it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import PythonRun
from remem import Memory
from remem.llms import OpenAICompatibleLLM
from remem.testing import HashEmbedder, ScriptedOpenAIServer
from remem.write.jobs import IDLE_SECONDS, JobRunner
from remem.write.pipeline import Organiser


def step(name: str) -> str:
    return f'"name": "{name}"'


@pytest.fixture
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        fact = {"facts": [{"text": "Ana plays the cello.", "occurred_on": None}]}
        server.reply(json.dumps(fact), when=step("extract"), times=None)
        server.reply('{"decisions": []}', when=step("reconcile"), times=None)
        server.reply('{"notes": []}', when=step("enrich"), times=None)
        server.reply('{"links": []}', when=step("link"), times=None)
        server.reply('{"updates": []}', when=step("evolve"), times=None)
        yield server


def _open(location: str, model: ScriptedOpenAIServer, jobs: str) -> Memory:
    llm = OpenAICompatibleLLM(model.base_url, "scripted", timeout=10, backoff=0.01)
    return Memory(location, embedder=HashEmbedder(), llm=llm, jobs=jobs)


def _soon(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "it did not happen in time"
        time.sleep(0.05)


def _facts(memory: Memory) -> list[str]:
    return [note.text for note in memory.list(user_id="ana").items if note.kind == "fact"]


def test_jobs_pending_at_open_run_without_a_new_add(
    location: str, model: ScriptedOpenAIServer
) -> None:
    with _open(location, model, "worker") as queued:  # only queues the job
        (job_id,) = queued.add("I play the cello.", user_id="ana").pending_jobs
    with _open(location, model, "background") as memory:
        _soon(lambda: [job.id for job in memory.store.jobs("done")] == [job_id])
        assert _facts(memory) == ["Ana plays the cello."]


def test_closing_at_once_then_reopening_finishes_the_job(
    location: str, model: ScriptedOpenAIServer
) -> None:
    model.slow_next(1.0, when=step("extract"))  # the model is slow to answer
    with _open(location, model, "background") as memory:
        memory.add("I play the cello.", user_id="ana")
    with _open(location, model, "background") as memory:
        _soon(lambda: _facts(memory) == ["Ana plays the cello."])
        assert memory.store.jobs("pending") == []
        assert len(memory.store.jobs("done")) == 1


@pytest.mark.slow
def test_a_job_another_process_queues_is_found_on_the_next_look(
    location: str, model: ScriptedOpenAIServer
) -> None:
    with _open(location, model, "background") as memory:
        with _open(location, model, "worker") as other:
            other.add("I play the cello.", user_id="ana")
        _soon(lambda: _facts(memory) == ["Ana plays the cello."], IDLE_SECONDS + 10)


def test_close_waits_a_bounded_time_and_says_what_it_left(
    location: str, model: ScriptedOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    with _open(location, model, "worker") as memory:
        memory.add("I play the cello.", user_id="ana")
        model.slow_next(2.0, when=step("extract"))
        assert memory.llm is not None
        organiser = Organiser(memory.store, memory.embedder, memory.llm)
        runner = JobRunner(memory.store, organiser, "background", close_wait=0.2)
        _soon(lambda: bool(model.chat_requests()))  # the thread is running the job
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="remem.jobs"):
            runner.close()
        assert time.monotonic() - started < 1.5
        assert "1 organise job(s) left pending" in caplog.text
        assert "still running" in caplog.text
        _soon(lambda: _facts(memory) == ["Ana plays the cello."])  # it still finishes


NO_THREADS = """
import sys
from remem import Memory
from remem.llms import OpenAICompatibleLLM
from remem.testing import HashEmbedder
from remem.testing.threads import forbid_new_threads

llm = OpenAICompatibleLLM("http://127.0.0.1:9/v1", "scripted", timeout=1)
if not forbid_new_threads():
    sys.exit(77)  # (NOT_HERE)
with Memory(sys.argv[1], embedder=HashEmbedder(), llm=llm, jobs="background") as memory:
    added = [memory.add(f"I play the cello, day {day}.", user_id="ana") for day in (1, 2)]
with Memory(sys.argv[1], embedder=HashEmbedder()) as memory:
    pending = [job.id for job in memory.store.jobs("pending")]
    assert sorted(pending) == sorted(job for one in added for job in one.pending_jobs)
    assert len(memory.list(user_id="ana").items) == 2
"""


def test_an_add_is_kept_where_no_thread_can_organise_it(
    tmp_path: Path, run_python: PythonRun
) -> None:
    # Before, the memory could not even open (and an add already committed raised).
    ran = run_python(NO_THREADS, str(tmp_path / "m.db"))
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("organising jobs wait in the store") == 1  # (once, not per add)
    assert "2 organise job(s) left pending" in ran.stderr  # what close says is left
