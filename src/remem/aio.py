"""`AsyncMemory`: the whole `Memory` API as coroutines, for asyncio servers and agents.

    async with AsyncMemory("memory.db") as memory:
        await asyncio.gather(*(memory.add(text, user_id="ana") for text in texts))
        hits = await memory.search("where does Ana live?", user_id="ana")

How the calls run. remem's stores and embedders are synchronous (the REST server already
calls them from threads), so each call runs on a thread of one of two lanes and the event
loop only waits for it:

- writes (add, update, delete, purge, import, ingest, jobs) go through the write lane. On
  SQLite it is ONE thread: SQLite takes one writer at a time, so more threads would only
  queue on its lock; one thread applies the writes in the order they were called and
  keeps the loop free while a write embeds and commits. On PostgreSQL, which takes
  concurrent writers, the lane has as many threads as the read lane.
- reads (search, context, get, list, links, history, export, profile...) go through a
  small pool (`readers` threads). SQLite in WAL mode lets readers run beside a writer;
  remem's SQLiteStore shares one connection and runs one statement at a time, so what
  reads gain there is the overlap of their non-SQL work (embedding the query, vector
  scoring, ranking: numpy and the model release the GIL) with each other and with writes.
  On PostgreSQL each read thread takes its own connection from the store's psycopg pool,
  so reads run in parallel in the database too. An async psycopg pool would need a
  second, async copy of the whole store (every query, every transaction): the threads
  over the existing pool give the same concurrency with one implementation.

Cancellation: a call that has not started when its task is cancelled never runs; one
that has started runs to its end (each write is one transaction, committed or rolled
back whole), so a cancelled task never leaves a half-applied write, and a write whose
call returned is durable. `close` refuses new calls, waits for the ones under way and
queued, then closes the memory.

Callbacks a method takes (`progress`, `me`) are called on the lane's thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from remem.errors import InvalidInputError, StoreError
from remem.memory import Memory
from remem.stores.base import Store

__all__ = ["AsyncMemory"]

P = ParamSpec("P")
R = TypeVar("R")
READERS = 4  # read threads by default: a few, so reads overlap without crowding the cores
MAX_READERS = 64


class _Lanes:
    """The threads a memory's calls run on: one lane for writes, one for reads."""

    def __init__(self, store: Store, readers: int) -> None:
        writers = readers if _takes_concurrent_writers(store) else 1
        self.write: Executor = ThreadPoolExecutor(writers, thread_name_prefix="remem-write")
        self.read: Executor = ThreadPoolExecutor(readers, thread_name_prefix="remem-read")
        self.closed = False

    async def run(self, lane: Executor, call: Callable[[], R]) -> R:
        if self.closed:
            raise StoreError("this memory is closed")
        try:
            future = lane.submit(call)
        except RuntimeError:  # closed between the check and the submit
            raise StoreError("this memory is closed") from None
        # cancelling the task cancels the call only if it has not started (see the docstring)
        return await asyncio.wrap_future(future)

    def shut(self) -> None:
        """Wait for every call under way or queued, then stop the threads."""
        self.write.shutdown(wait=True)
        self.read.shutdown(wait=True)


def _takes_concurrent_writers(store: Store) -> bool:
    """PostgreSQL takes concurrent writers; SQLite (and a store we do not know) one at a time.
    Named by module so that checking does not import psycopg."""
    return type(store).__module__ == "remem.stores.postgres"


def _writing(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, R]]:
    """`Memory.<method>` as a coroutine on the write lane (same parameters, same docs)."""

    @functools.wraps(method)
    async def call(self: AsyncMemory, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = functools.partial(method, self.memory, *args, **kwargs)
        return await self._lanes.run(self._lanes.write, bound)

    return call


def _reading(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, R]]:
    """`Memory.<method>` as a coroutine on the read lane (same parameters, same docs)."""

    @functools.wraps(method)
    async def call(self: AsyncMemory, /, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = functools.partial(method, self.memory, *args, **kwargs)
        return await self._lanes.run(self._lanes.read, bound)

    return call


class AsyncMemory:
    """A `Memory` whose methods are coroutines (see the module docstring for how they run).

    Pass what `Memory(...)` takes (a path, `store=`, `embedder=`, `llm=`...), or a ready
    `Memory` to share with synchronous code. Opening a memory reads its file: in a running
    loop, prefer `await AsyncMemory.open(...)`. `readers` is the size of the read pool."""

    def __init__(
        self,
        path: str | Path | Memory | None = None,
        *,
        readers: int = READERS,
        **options: Any,
    ) -> None:
        if isinstance(readers, bool) or not isinstance(readers, int):
            raise InvalidInputError(f"readers must be an integer, got {readers!r}")
        if not 1 <= readers <= MAX_READERS:
            raise InvalidInputError(f"readers must be from 1 to {MAX_READERS}, got {readers}")
        if isinstance(path, Memory):
            if options:
                raise InvalidInputError("pass a ready Memory or the parts to build one, not both")
            self.memory = path
        else:
            self.memory = Memory(path, **options)
        self._lanes = _Lanes(self.memory.store, readers)

    @classmethod
    async def open(
        cls, path: str | Path | Memory | None = None, *, readers: int = READERS, **options: Any
    ) -> AsyncMemory:
        """Build one off the event loop (opening a store reads and may migrate its file)."""
        return await asyncio.to_thread(cls, path, readers=readers, **options)

    @classmethod
    def from_config(cls, *, config_file: str | Path | None = None, **arguments: Any) -> AsyncMemory:
        """`Memory.from_config`: settings: defaults < config file < REMEM_* < arguments."""
        return cls(Memory.from_config(config_file=config_file, **arguments))

    def as_tenant(self, tenant: str) -> AsyncMemory:
        """This memory as seen by one tenant (its calls share the same threads). Close the
        original, not the view."""
        view = object.__new__(AsyncMemory)
        view.memory = self.memory.as_tenant(tenant)
        view._lanes = self._lanes
        return view

    @property
    def tenant(self) -> str:
        return self.memory.tenant

    # -- writing ---------------------------------------------------------------------------
    add = _writing(Memory.add)
    think = _writing(Memory.think)
    update = _writing(Memory.update)
    delete = _writing(Memory.delete)
    purge = _writing(Memory.purge)
    purge_all = _writing(Memory.purge_all)
    delete_all = _writing(Memory.delete_all)
    run_jobs = _writing(Memory.run_jobs)
    retry_failed_jobs = _writing(Memory.retry_failed_jobs)
    import_file = _writing(Memory.import_file)
    ingest = _writing(Memory.ingest)
    ingest_uploads = _writing(Memory.ingest_uploads)
    pin = _writing(Memory.pin)
    unpin = _writing(Memory.unpin)
    archive = _writing(Memory.archive)
    unarchive = _writing(Memory.unarchive)
    sweep_expired = _writing(Memory.sweep_expired)
    consolidate = _writing(Memory.consolidate)
    set_default_expiry = _writing(Memory.set_default_expiry)

    # -- reading (a profile read may also save the profile it brought up to date) -----------
    search = _reading(Memory.search)
    context = _reading(Memory.context)
    get = _reading(Memory.get)
    episode = _reading(Memory.episode)
    list = _reading(Memory.list)
    links = _reading(Memory.links)
    history = _reading(Memory.history)
    export = _reading(Memory.export)
    profile = _reading(Memory.profile)
    topics = _reading(Memory.topics)
    fill = _reading(Memory.fill)

    # -- lifecycle -------------------------------------------------------------------------

    async def close(self) -> None:
        """Refuse new calls, let the ones under way and queued finish, close the memory."""
        if self._lanes.closed:
            return
        self._lanes.closed = True
        await asyncio.to_thread(self._close_now)

    def _close_now(self) -> None:
        self._lanes.shut()
        self.memory.close()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
