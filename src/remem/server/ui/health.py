"""Health: the job queue (failed jobs with their error, and a retry), model calls and
tokens per step, what the store holds, the embedder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from remem import ids
from remem.memory import Memory
from remem.server.ui.access import Viewer, posted, viewer
from remem.server.ui.render import page, redirect
from remem.types import Episode, Job, Note

router = APIRouter(include_in_schema=False)
Looking = Annotated[Viewer, Depends(viewer)]
Posting = Annotated[Viewer, Depends(posted)]
SHOWN_JOBS = 100


def own_jobs(memory: Memory, jobs: list[Job]) -> list[Job]:
    """The jobs about records of this memory's tenant (the queue holds every tenant's)."""
    episodes = [job.target_id for job in jobs if ids.kind_of(job.target_id) == ids.EPISODE]
    notes = [job.target_id for job in jobs if ids.kind_of(job.target_id) == ids.NOTE]
    found: dict[str, Episode | Note] = {}
    found.update(memory.store.get_episodes(episodes))
    found.update(memory.store.get_notes(notes))
    return [
        job
        for job in jobs
        if (record := found.get(job.target_id)) is not None and record.scope.tenant == memory.tenant
    ]


def store_size(memory: Memory) -> int | None:
    """Bytes a SQLite memory takes on disk (its file, write-ahead log and vector index);
    None for a store that is not a file."""
    path = getattr(memory.store, "path", None)
    if not isinstance(path, str) or path == ":memory:":
        return None
    files = [Path(path + suffix).expanduser() for suffix in ("", "-wal", ".hnsw")]
    return sum(file.stat().st_size for file in files if file.is_file())


@router.get("/health", response_class=HTMLResponse)
def health(request: Request, looking: Looking) -> Response:
    memory = looking.memory
    failed = own_jobs(memory, memory.store.jobs("failed"))
    pending = own_jobs(memory, memory.store.jobs("pending"))
    totals = memory.store.llm_totals() if looking.local else []
    counts = memory.store.counts() if looking.local else {}
    return page(
        request,
        looking,
        "health.html",
        title="Health",
        failed=failed[-SHOWN_JOBS:],
        failed_count=len(failed),
        pending=pending[:SHOWN_JOBS],
        pending_count=len(pending),
        totals=totals,
        counts=counts,
        embedder=memory.embedder.model_id,
        llm=type(memory.llm).__name__ if memory.llm is not None else None,
        store=type(memory.store).__name__,
        disk=store_size(memory) if looking.local else None,
        retried=request.query_params.get("retried"),
    )


@router.post("/health/retry", response_class=HTMLResponse)
def retry(request: Request, looking: Posting) -> Response:
    """Make failed jobs pending again (the whole queue: the local user only)."""
    if not looking.local:
        message = "Only the local user of a keyless server can retry the shared job queue."
        return page(request, looking, "error.html", 403, title="Refused", message=message)
    revived = looking.memory.retry_failed_jobs()
    return redirect(request, f"/health?retried={revived}")
