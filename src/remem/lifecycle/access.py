"""Access counts: which notes were returned to a caller, written in batches off the read path.

A read (`search`, `context`, `get`) only adds its note ids to an in-memory buffer (a dict
update under a lock: microseconds). A background thread writes the buffer to the store a
moment later, as one increment per note (`Store.record_access`), so a write to the note
never loses a read and a read never rewrites the note. The buffer is also written by
`flush` (which `Memory.flush_access` and `close` call). A failed write keeps the reads for
the next flush; a process that dies loses at most the last `DELAY` seconds of counts,
which is what a cheap counter is allowed to lose.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import replace

from remem import clock
from remem.errors import RememError
from remem.stores.base import Access, Records
from remem.types import Scope

log = logging.getLogger("remem")
# seconds between a read and the write of its count: reads in between share one statement
DELAY = 2.0
# the scope of a note read where the caller did not have it (looked up when written)
UNKNOWN = Scope(tenant="\x00unknown")
# a buffer this large is written at once (without waiting DELAY)
MAX_PENDING = 10_000


class AccessLog:
    """The reads not yet written to one store, and the thread that writes them."""

    def __init__(self, store: Records, delay: float = DELAY) -> None:
        self._store = store
        self._delay = delay
        self._lock = threading.Lock()  # guards the buffer
        self._flushing = threading.Lock()  # one write at a time, so order is kept
        self._pending: dict[str, Access] = {}
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._written_here = -math.inf  # (when no thread can write: see `_write_here`)

    def record(self, notes: Iterable[tuple[str, Scope | None]]) -> None:
        """Count one read of each note (its id, and its scope when the caller has it) now;
        written later."""
        moment = clock.now()
        with self._lock:
            if self._closed:
                return
            for note_id, scope in notes:
                seen = self._pending.get(note_id)
                count = 1 if seen is None else seen.count + 1
                known = scope if seen is None or scope is not None else seen.scope
                self._pending[note_id] = Access(known or UNKNOWN, count, moment)
            if not self._pending:
                return
            full = len(self._pending) >= MAX_PENDING
            writing = self._start()
        if writing and full:
            self._wake.set()
        elif not writing and time.monotonic() - self._written_here >= self._delay:
            self._write_here()

    def flush(self) -> int:
        """Write every buffered read now; return how many notes' counts were written."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                self._store.record_access(self._with_scopes(batch))
            except RememError as error:
                log.warning("access counts not written yet (%s); kept for the next flush", error)
                self._restore(batch)
                return 0
            except BaseException:
                self._restore(batch)
                raise
            return len(batch)

    def _write_here(self) -> None:
        """What the thread would do, on the reader's thread: at most once a `delay` (a
        store that fails does not slow every read), and never failing the read that has
        already been answered."""
        self._written_here = time.monotonic()
        try:
            self.flush()
        except Exception:
            log.exception("access counts not written yet; kept for the next flush")

    def close(self) -> None:
        """Write what is buffered and stop the thread; later reads are not counted."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        self.flush()

    def _with_scopes(self, batch: dict[str, Access]) -> dict[str, Access]:
        """The batch with the scope of each note read without one (a sharded store routes
        each count to its note's owner); notes gone since are left out."""
        unknown = [note_id for note_id, seen in batch.items() if seen.scope is UNKNOWN]
        if not unknown:
            return batch
        found = self._store.get_notes(unknown)
        known = {note_id: replace(batch[note_id], scope=found[note_id].scope) for note_id in found}
        return {
            note_id: known.get(note_id, seen)
            for note_id, seen in batch.items()
            if seen.scope is not UNKNOWN or note_id in found
        }

    def _restore(self, batch: dict[str, Access]) -> None:
        """Put a batch that could not be written back in front of newer reads."""
        with self._lock:
            for note_id, seen in batch.items():
                newer = self._pending.get(note_id)
                if newer is not None:
                    seen = replace(newer, count=newer.count + seen.count)
                self._pending[note_id] = seen

    def _start(self) -> bool:
        """Whether the writing thread runs, started on the first read (called under the
        lock). Where no thread can be started, the reads are written by the readers (see
        `_write_here`): a read must not fail for want of a thread to count it."""
        if self._thread is None:
            thread = threading.Thread(
                target=_run, args=(weakref.ref(self),), name="remem-access", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:
                return False
            self._thread = thread
        return True


def _run(reference: weakref.ref[AccessLog]) -> None:
    """Write the buffer every `delay` seconds while there is one; end with the log."""
    while (log_ := reference()) is not None and not log_._closed:
        wake, delay = log_._wake, log_._delay
        del log_  # hold no reference while waiting: a dropped memory ends the thread
        wake.wait(delay)
        wake.clear()
        if (log_ := reference()) is None or log_._closed:
            return
        log_.flush()
        del log_
