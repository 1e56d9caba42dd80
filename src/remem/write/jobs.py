"""Where organising jobs run: in `add` itself (inline, the default), on a background thread
of this process, or in a separate `remem worker` (mode "worker": `add` only queues them).

The background thread starts when the memory opens, so jobs left pending by an earlier
process (or added by another one) are picked up, and looks for new ones every
IDLE_SECONDS. Workers lease a job before running it, so any number of them can share one
store; a job whose runner stopped mid-way resumes once its lease runs out.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from typing import Literal

from remem import clock
from remem.errors import RememError
from remem.stores.base import Changes, JobQueue
from remem.types import ORGANISE_JOB
from remem.write.pipeline import Organiser, Outcome

JobMode = Literal["inline", "background", "worker"]
JOB_MODES: tuple[JobMode, ...] = ("inline", "background", "worker")
# Long enough for the slowest model to finish a step; a crashed worker's job is taken over
# by another worker once its lease runs out.
LEASE = timedelta(minutes=5)
IDLE_SECONDS = 5.0  # how often a background thread looks for jobs it was not told about
CLOSE_WAIT = 30.0  # how long closing waits for the job running on the background thread
log = logging.getLogger("remem.jobs")


class JobRunner:
    """Runs a memory's organising jobs in the configured mode."""

    def __init__(
        self,
        store: JobQueue,
        organiser: Organiser | None,
        mode: JobMode,
        lease: timedelta = LEASE,
        close_wait: float = CLOSE_WAIT,
    ) -> None:
        self.store = store
        self.organiser = organiser
        self.mode = mode
        self.lease = lease
        self.close_wait = close_wait
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._unstarted = False  # a start failed: close says what is left
        if mode == "background" and organiser is not None:
            self._start()  # jobs pending from before run now, not after the next add

    def after_add(self, changes: Changes) -> Outcome | None:
        """Run the organising job an add just committed now (inline), or hand it to the
        background thread; None when it has none or it runs later."""
        job_id = next((job.id for job in changes.jobs if job.kind == ORGANISE_JOB), None)
        if job_id is None:
            return None
        if self.mode == "inline":
            return self.run_one(job_id)
        if self.mode == "background":
            self._start()
            self._wake.set()
        return None

    def run_one(self, job_id: str) -> Outcome | None:
        """Run one job if it is pending and free; None when it is not."""
        if self.organiser is None:
            return None
        job = self.store.claim_job(uuid.uuid4().hex, clock.now() + self.lease, job_id)
        return None if job is None else self.organiser.run(job)

    def run_pending(self) -> list[Outcome]:
        """Run pending jobs, oldest first, until none is left or one fails (the model is
        probably down: the next pass retries)."""
        outcomes: list[Outcome] = []
        while self.organiser is not None and not self._stopping:
            job = self.store.claim_job(uuid.uuid4().hex, clock.now() + self.lease)
            if job is None:
                break
            outcomes.append(self.organiser.run(job))
            if not outcomes[-1].done:
                break
        return outcomes

    def close(self) -> None:
        """Stop the background thread: wait up to `close_wait` seconds for the job it is
        running, then say what is left for the next open (or a `remem worker`)."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is None and not self._unstarted:
            return
        if thread is not None:
            thread.join(timeout=self.close_wait)
            if thread.is_alive():
                log.warning(
                    "an organising job is still running after %.0f s; it resumes when its"
                    " lease runs out (at most %s) in the next memory opened on this store",
                    self.close_wait,
                    self.lease,
                )
        try:
            pending = sum(job.kind == ORGANISE_JOB for job in self.store.jobs("pending"))
        except RememError:  # closing must not fail for a report
            return
        if pending:
            log.warning(
                "%d organise job(s) left pending; they run when this memory is opened again"
                " with jobs='background', or by `remem worker`",
                pending,
            )

    def _start(self) -> None:
        """The background thread, started on first need. Where no thread can be started,
        the jobs wait in the store (the next add tries again, `remem worker` runs them):
        an add already committed must not fail for want of one."""
        with self._starting:  # (two adds at once start one thread)
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._loop, name="remem-jobs", daemon=True)
            self._wake.set()  # a first look at once
            try:
                thread.start()
            except RuntimeError as error:
                level = logging.DEBUG if self._unstarted else logging.WARNING
                log.log(
                    level, "organising jobs wait in the store (%s): `remem worker` runs them", error
                )
                self._unstarted = True
                return
            self._thread = thread

    def _loop(self) -> None:
        delay = IDLE_SECONDS
        while not self._stopping:
            self._wake.wait(timeout=delay)
            self._wake.clear()
            try:
                outcomes = self.run_pending()
            except Exception:  # keep the thread alive; the job stays pending in the store
                if not self._stopping:  # closing: the store may be gone already
                    log.exception("background organising failed")
                outcomes = []
            failed = bool(outcomes) and not outcomes[-1].done
            delay = min(delay * 2, 300.0) if failed else IDLE_SECONDS  # back off while down
