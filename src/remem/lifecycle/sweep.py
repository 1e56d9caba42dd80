"""The sweep of expired notes, on a schedule: every long-running remem process (`remem
serve`, `remem mcp`, `remem worker`) purges the expired notes of every tenant every
`sweep_seconds` (REMEM_SWEEP_SECONDS, default 300; 0 turns it off).

An expired note leaves search, context, lists and the profile the moment it expires; the
sweep is only what erases it (`Memory.sweep_expired`: a purge, so history keeps only that
it was purged, and the thoughts resting on it go too). Several processes may sweep one
store: a note another one purged first is skipped.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from remem import clock
from remem.errors import ConfigError
from remem.lifecycle.api import SWEEP_BATCH

if TYPE_CHECKING:
    from remem.config import Settings
    from remem.memory import Memory

SWEEP_SECONDS = 300.0
log = logging.getLogger("remem.sweep")


def interval_of(settings: Settings, name: str = "sweep_seconds") -> float:
    """Seconds between passes the setting `name` asks for (0: never)."""
    text = getattr(settings, name)
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(
            f"REMEM_{name.upper()} ({name}) must be a number of seconds, 0 for never; got {text!r}"
        )
    return seconds


def sweep_every_tenant(memory: Memory) -> int:
    """Purge the expired notes of every tenant of the memory's store; how many went."""
    purged = 0
    while expired := memory.store.expired_notes(None, clock.now(), SWEEP_BATCH):
        before = purged
        for tenant in sorted({note.scope.tenant for note in expired}):
            purged += _as(memory, tenant).sweep_expired()
        if purged == before:  # all went meanwhile (another sweep): the next one looks again
            break
    return purged


class Sweeper:
    """A thread that sweeps every `interval` seconds, the first time at once; stopped by
    `stop` (or with its process: it is a daemon). `task` may be another periodic pass over
    every tenant (consolidation), returning how many notes it changed."""

    def __init__(
        self,
        memory: Memory,
        interval: float,
        task: Callable[[Memory], int] = sweep_every_tenant,
        doing: str = "sweeping expired notes",
    ) -> None:
        self.memory = memory
        self.interval = interval
        self.task = task
        self.doing = doing
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Sweeper:
        """Start sweeping, unless the interval is 0."""
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"remem-{self.doing}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop, after the sweep running now (if one is) has finished."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                changed = self.task(self.memory)
                if changed:
                    log.info("%s: %d note(s)", self.doing, changed)
            except Exception:  # keep going: the store may be back next time
                if not self._stopping.is_set():
                    log.exception("%s failed", self.doing)
            self._stopping.wait(self.interval)


def _as(memory: Memory, tenant: str) -> Memory:
    """The memory as one tenant sees it ("" is the local, tenant-less use)."""
    if tenant == memory.tenant:
        return memory
    if tenant:
        return memory.as_tenant(tenant)
    view = copy.copy(memory)  # as `as_tenant` makes a view, for the one name it refuses
    view.tenant = ""
    return view
