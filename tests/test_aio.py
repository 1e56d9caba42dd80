"""`AsyncMemory` under a running event loop: many tasks at once, reads beside writes, one
writer on SQLite, cancellation mid-call, close while tasks run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from remem import AsyncMemory, InvalidInputError, Memory, Note, NotFoundError, StoreError
from remem.embedders.base import Embedder, Vectors
from remem.testing import HashEmbedder

WAIT = 10  # seconds a test waits for another thread before it fails


class GatedEmbedder(Embedder):
    """A HashEmbedder whose calls wait at a gate (while `gate` is clear), and which counts
    how many calls run at once: what a slow model looks like to the memory."""

    def __init__(self) -> None:
        self.inner = HashEmbedder()
        self.model_id = self.inner.model_id
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def embed_batch(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.release()
        try:
            assert self.gate.wait(WAIT), "the test never opened the gate"
            return self.inner.embed_batch(texts)
        finally:
            with self._lock:
                self.running -= 1


async def _entered(embedder: GatedEmbedder, calls: int = 1) -> None:
    for _ in range(calls):
        assert await asyncio.to_thread(embedder.entered.acquire, True, WAIT)


def test_many_adds_and_searches_at_once(location: str) -> None:
    async def main() -> None:
        async with await AsyncMemory.open(location, embedder=HashEmbedder(), llm=None) as memory:
            ticks = 0

            async def ticker() -> None:  # runs only while the loop is free
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            beat = asyncio.create_task(ticker())
            texts = [f"note {n}: the {['red', 'blue'][n % 2]} kite flew" for n in range(60)]
            adds = [memory.add(text, user_id="ana") for text in texts]
            searches = [memory.search("kite", user_id="ana", limit=5) for _ in range(20)]
            results = await asyncio.gather(*adds, *searches)
            beat.cancel()
            added, found = results[:60], results[60:]
            assert all(len(hits) <= 5 for hits in found)
            page = await memory.list(user_id="ana", limit=1000, order="added")
            stored = [note.text for note in page.items]
            if location.startswith("postgres"):  # concurrent writers: any order
                stored, texts = sorted(stored), sorted(texts)
            assert stored == texts  # SQLite's one writer: in the order called
            for result in added:
                assert isinstance(await memory.get(result.note_ids[0]), Note)
            assert ticks > 10  # the loop kept running while the threads worked

    asyncio.run(main())


def test_sqlite_writes_take_turns_and_reads_run_together(db_path: Path) -> None:
    embedder = GatedEmbedder()

    async def main() -> None:
        async with AsyncMemory(db_path, embedder=embedder, llm=None, readers=4) as memory:
            await memory.add("a first note about kites", user_id="ana")
            embedder.entered = threading.Semaphore(0)  # count only the searches' calls
            embedder.gate.clear()
            reads = [asyncio.create_task(memory.search("kites", user_id="ana")) for _ in range(3)]
            await _entered(embedder, 3)  # three searches embed their query at once
            assert embedder.running == 3
            embedder.gate.set()
            assert all(len(hits) == 1 for hits in await asyncio.gather(*reads))
            embedder.most_at_once = 0
            await asyncio.gather(*(memory.add(f"kite {n}", user_id="ana") for n in range(8)))
            assert embedder.most_at_once == 1  # SQLite: one writer thread

    asyncio.run(main())


def test_a_cancelled_call_that_started_completes_and_a_queued_one_never_runs(
    db_path: Path,
) -> None:
    embedder = GatedEmbedder()

    async def main() -> None:
        memory = AsyncMemory(db_path, embedder=embedder, llm=None)
        embedder.gate.clear()
        started = asyncio.create_task(memory.add("started before the cancel", user_id="ana"))
        await _entered(embedder)
        queued = asyncio.create_task(memory.add("queued behind it", user_id="ana"))
        await asyncio.sleep(0.05)
        started.cancel()
        queued.cancel()
        for task in (started, queued):
            with pytest.raises(asyncio.CancelledError):
                await task
        embedder.gate.set()
        await memory.close()

    asyncio.run(main())
    with Memory(db_path, embedder=HashEmbedder(), llm=None) as reopened:
        texts = [note.text for note in reopened.list(user_id="ana").items]
    assert texts == ["started before the cancel"]


def test_acknowledged_writes_survive_random_cancellations(location: str) -> None:
    async def main() -> tuple[list[str], int]:
        memory = AsyncMemory(location, embedder=HashEmbedder(), llm=None)
        tasks = [asyncio.create_task(memory.add(f"fact {n}", user_id="ana")) for n in range(80)]
        await asyncio.sleep(0.02)
        for task in tasks[::3]:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        acknowledged = [r.note_ids[0] for r in done if not isinstance(r, BaseException)]
        await memory.close()
        return acknowledged, sum(isinstance(r, asyncio.CancelledError) for r in done)

    acknowledged, cancelled = asyncio.run(main())
    assert cancelled and len(acknowledged) >= 80 - 27
    with Memory(location, embedder=HashEmbedder(), llm=None) as reopened:
        stored = {note.id: note for note in reopened.list(user_id="ana", limit=1000).items}
        assert set(acknowledged) <= set(stored)
        for note in stored.values():  # every stored write is whole: its episode is there
            assert reopened.episode(note.episode_ids[0]).text == note.text


def test_close_waits_for_running_tasks_then_refuses_calls(db_path: Path) -> None:
    embedder = GatedEmbedder()

    async def main() -> None:
        memory = AsyncMemory(db_path, embedder=embedder, llm=None)
        embedder.gate.clear()
        writes = [asyncio.create_task(memory.add(f"w{n}", user_id="ana")) for n in range(5)]
        await _entered(embedder)
        closing = asyncio.create_task(memory.close())
        await asyncio.sleep(0.05)
        assert not closing.done()  # waiting for the writes under way and queued
        with pytest.raises(StoreError, match="closed"):
            await memory.search("w", user_id="ana")
        embedder.gate.set()
        results = await asyncio.gather(*writes)
        await closing
        assert len({r.note_ids[0] for r in results}) == 5
        with pytest.raises(StoreError, match="closed"):
            await memory.add("late", user_id="ana")
        await memory.close()  # again: nothing to do

    asyncio.run(main())
    with Memory(db_path, embedder=HashEmbedder(), llm=None) as reopened:
        assert len(reopened.list(user_id="ana").items) == 5


def test_errors_and_tenants_come_through_the_loop(db_path: Path) -> None:
    async def main() -> None:
        async with AsyncMemory(db_path, embedder=HashEmbedder(), llm=None) as memory:
            acme, umbrella = memory.as_tenant("acme"), memory.as_tenant("umbrella")
            note_id = (await acme.add("acme secret", user_id="ana")).note_ids[0]
            with pytest.raises(NotFoundError):
                await umbrella.get(note_id)
            with pytest.raises(InvalidInputError):
                await acme.search("", user_id="ana")
            assert acme.tenant == "acme" and (await acme.get(note_id)).text == "acme secret"

    asyncio.run(main())


def test_a_shared_memory_serves_sync_and_async_callers(db_path: Path) -> None:
    with Memory(db_path, embedder=HashEmbedder(), llm=None) as memory:
        note_id = memory.add("said synchronously", user_id="ana").note_ids[0]

        async def main() -> str:
            shared = AsyncMemory(memory)
            return (await shared.get(note_id)).text

        assert asyncio.run(main()) == "said synchronously"


@pytest.mark.parametrize("readers", [0, -1, 65, 2.5, True, "4"])
def test_bad_options_are_refused(db_path: Path, readers: object) -> None:
    with pytest.raises(InvalidInputError, match="readers"):
        AsyncMemory(db_path, embedder=HashEmbedder(), llm=None, readers=readers)  # type: ignore[arg-type]


def test_a_ready_memory_and_parts_are_not_both_taken(db_path: Path) -> None:
    with (
        Memory(db_path, embedder=HashEmbedder(), llm=None) as memory,
        pytest.raises(InvalidInputError, match="not both"),
    ):
        AsyncMemory(memory, embedder=HashEmbedder())


def test_postgres_writes_run_together(location: str) -> None:
    if not location.startswith("postgres"):
        pytest.skip("SQLite takes one writer (test_sqlite_writes_take_turns...)")
    embedder = GatedEmbedder()

    async def main() -> None:
        async with AsyncMemory(location, embedder=embedder, llm=None) as memory:
            embedder.gate.clear()
            writes = [asyncio.create_task(memory.add(f"w{n}", user_id="ana")) for n in range(3)]
            await _entered(embedder, 3)  # three adds embed at once
            embedder.gate.set()
            assert len(await asyncio.gather(*writes)) == 3

    asyncio.run(main())
