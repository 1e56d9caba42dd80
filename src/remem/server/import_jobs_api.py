"""`POST /v1/import` (a remem export, uploaded) and `POST /v1/jobs/run`, `/v1/jobs/retry`:
the `Memory` methods the rest of the API did not serve, so `remem.Client` has them all."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, UploadFile
from pydantic import BaseModel

from remem.errors import InvalidInputError
from remem.memory import Memory
from remem.server.auth import Caller
from remem.server.errors import documented
from remem.server.openapi import WRITE
from remem.types import ImportResult

COPY_CHUNK = 1024 * 1024


class JobsDone(BaseModel):
    """How many jobs completed (run) or were made pending again (retry)."""

    jobs: int


def install_import_jobs_routes(app: FastAPI) -> None:
    """Add `POST /v1/import`, `POST /v1/jobs/run` and `POST /v1/jobs/retry` to `app`."""

    @app.post("/v1/import", tags=["memories"], responses=WRITE | documented(413))
    def import_export(
        memory: Caller,
        file: Annotated[UploadFile, File(description="A remem export, as /v1/export gives.")],
    ) -> ImportResult:
        """Load an export into the caller's tenant; records already present (same id) are
        skipped. A bad record is an error naming its line, and then nothing is written."""
        with tempfile.TemporaryDirectory(prefix="remem-import-") as folder:
            path = Path(folder) / "import.jsonl"
            with path.open("wb") as out:
                shutil.copyfileobj(file.file, out, COPY_CHUNK)
            return import_as(memory, path, file.filename or "the upload")

    @app.post("/v1/jobs/run", tags=["jobs"], responses=WRITE | documented(403))
    def run_jobs(memory: Caller) -> JobsDone:
        """Run pending jobs (embedding that failed, then organising by the model); answer
        how many completed. Jobs span tenants: only the server's own user may run them."""
        return JobsDone(jobs=_operator(memory).run_jobs())

    @app.post("/v1/jobs/retry", tags=["jobs"], responses=WRITE | documented(403))
    def retry_failed_jobs(memory: Caller) -> JobsDone:
        """Make jobs that failed too often pending again; answer how many. Jobs span
        tenants: only the server's own user may retry them."""
        return JobsDone(jobs=_operator(memory).retry_failed_jobs())


def _operator(memory: Memory) -> Memory:
    """The memory, if the caller is the server's own user (a keyless loopback server: an
    API key always names a tenant); jobs are the store's, not one tenant's."""
    if memory.tenant:
        raise HTTPException(
            403, "jobs span every tenant: run them on the server (`remem jobs`, `remem worker`)"
        )
    return memory


def import_as(memory: Memory, path: Path, name: str) -> ImportResult:
    """Import the export uploaded to `path`, its errors naming the file `name`, as the
    caller knows it, not by the server's temporary path."""
    try:
        return memory.import_file(path)
    except InvalidInputError as error:
        error.args = (str(error).replace(str(path), name),)
        raise
