"""`POST /v1/ingest`: files uploaded (multipart) become memories of the caller's tenant, as
`remem ingest` makes them. Each file is read in memory up to a limit; its name is only
provenance, never a path on this machine."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, UploadFile
from pydantic import BaseModel, Field

from remem.ingest.api import upload_name
from remem.server.auth import Caller
from remem.server.errors import documented
from remem.server.openapi import WRITE
from remem.server.schemas import NO_NUL, any_of

MAX_FILES = 100  # per request
MAX_FILE_BYTES = 64 * 1024 * 1024  # per file; the server's body limit applies first
READ_CHUNK = 1024 * 1024


class Ingested(BaseModel):
    """`IngestResult` as JSON: chunks added, updated (new versions), unchanged, removed;
    files read; files skipped as [name, reason] pairs."""

    files: int
    added: int
    updated: int
    unchanged: int
    removed: int
    skipped: list[Annotated[list[str], Field(min_length=2, max_length=2)]]


OwnerField = Annotated[str | None, Form(max_length=256, pattern=NO_NUL)]
# the form names at least one owner (not blank), as the JSON bodies of other routes do
NEEDS_AN_OWNER: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "anyOf": any_of("user_id", "agent_id"),
                }
            }
        },
    }
}


def install_ingest_routes(app: FastAPI, max_file_bytes: int = MAX_FILE_BYTES) -> None:
    """Add `POST /v1/ingest` to `app`."""

    @app.post(
        "/v1/ingest",
        tags=["memories"],
        responses=WRITE | documented(413),
        openapi_extra=NEEDS_AN_OWNER,
    )
    def ingest(
        memory: Caller,
        files: Annotated[
            list[UploadFile],
            File(description="The files: chat exports, notes, documents, e-mail."),
        ] = [],  # noqa: B006 - FastAPI copies defaults; a form without files ingests nothing
        user_id: OwnerField = None,
        agent_id: OwnerField = None,
        me: Annotated[
            str | None,
            Form(max_length=256, pattern=NO_NUL, description="Your name as chats show it."),
        ] = None,
        organise: Annotated[
            Literal["now", "later"],
            Form(description="With a model: organise now, or leave it to `remem worker`."),
        ] = "now",
    ) -> Ingested:
        """Bring in uploaded files (at least one of `user_id`, `agent_id`): each conversation
        or document becomes a session, each message or section a memory with provenance.
        Uploading a file of the same name again writes only what changed. Files that
        cannot be read are listed in `skipped` with the reason."""
        uploads: list[tuple[str, bytes]] = []
        too_large: list[tuple[str, str]] = []
        for index, upload in enumerate(files[:MAX_FILES]):
            name = upload.filename or ""
            data = _read(upload, max_file_bytes)
            if data is None:
                too_large.append(
                    (upload_name(name, index), f"larger than {max_file_bytes // 2**20} MiB")
                )
            else:
                uploads.append((name, data))
        result = memory.ingest_uploads(
            uploads, user_id=user_id, agent_id=agent_id, me=me, organise=organise
        )
        left_out = [
            (upload_name(f.filename or "", i), f"more than {MAX_FILES} files in one request")
            for i, f in enumerate(files[MAX_FILES:], MAX_FILES)
        ]
        skipped = [*result.skipped, *too_large, *left_out]
        return Ingested(
            files=result.files,
            added=result.added,
            updated=result.updated,
            unchanged=result.unchanged,
            removed=result.removed,
            skipped=[[path, reason] for path, reason in skipped],
        )


def _read(upload: UploadFile, limit: int) -> bytes | None:
    """The uploaded bytes, or None past `limit`."""
    parts: list[bytes] = []
    size = 0
    while block := upload.file.read(READ_CHUNK):
        size += len(block)
        if size > limit:
            return None
        parts.append(block)
    return b"".join(parts)
