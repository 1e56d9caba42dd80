"""Adding a memory from a text box, and bringing files in (upload)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from remem.errors import InvalidInputError, RememError
from remem.memory import Memory
from remem.server.import_jobs_api import import_as
from remem.server.ui.access import Viewer, posted, viewer
from remem.server.ui.filters import ScopeFilter, known_scopes, parse_metadata
from remem.server.ui.render import page, redirect

router = APIRouter(include_in_schema=False)
Looking = Annotated[Viewer, Depends(viewer)]
Posting = Annotated[Viewer, Depends(posted)]
Field = Annotated[str, Form()]
EXPORT_HEADER = b'"remem-export"'  # the first line of remem's own JSONL export names itself


def _form_page(request: Request, looking: Viewer, status: int = 200, **values: Any) -> Response:
    listed = looking.memory.list(limit=50, order="newest").items
    values.setdefault("scope", ScopeFilter())
    values.setdefault("draft", "")
    return page(
        request,
        looking,
        "add.html",
        status,
        title="Add",
        known=known_scopes(listed),
        **values,
    )


@router.get("/add", response_class=HTMLResponse)
def add_form(request: Request, looking: Looking) -> Response:
    return _form_page(request, looking, scope=ScopeFilter.of(request))


@router.post("/add", response_class=HTMLResponse)
def add(
    request: Request,
    looking: Posting,
    text: Field = "",
    user: Field = "",
    agent: Field = "",
    session: Field = "",
    occurred_at: Field = "",
    metadata: Field = "",
) -> Response:
    """Remember the text in the chosen scope; show the new memory."""
    scope = ScopeFilter()
    try:
        scope = ScopeFilter.from_form(user, agent, session)
        result = looking.memory.add(
            text,
            occurred_at=occurred_at.strip() or None,
            metadata=parse_metadata(metadata),
            **scope.arguments(),
        )
    except InvalidInputError as error:
        return _form_page(request, looking, 422, scope=scope, draft=text, problem=str(error))
    if result.note_ids:
        return redirect(request, f"/memories/{result.note_ids[0]}")
    return redirect(request, "/?done=added")


@router.post("/import", response_class=HTMLResponse)
def upload(
    request: Request,
    looking: Posting,
    upload: Annotated[list[UploadFile], File()],
    user: Field = "",
    agent: Field = "",
    me: Field = "",
) -> Response:
    """Bring files in: remem's JSONL exports are imported, other files go to the importers
    (chat exports, notes, documents) for the chosen user or agent."""
    scope = ScopeFilter()
    files = [(item.filename or "upload", item.file.read()) for item in upload]
    try:
        scope = ScopeFilter.from_form(user, agent)
        summary = bring_in(looking.memory, files, scope, me.strip() or None)
    except RememError as error:
        return _form_page(request, looking, 422, scope=scope, import_problem=str(error))
    return _form_page(request, looking, scope=scope, imported=summary)


def bring_in(
    memory: Memory, files: list[tuple[str, bytes]], scope: ScopeFilter, me: str | None
) -> list[str]:
    """Import the exports among `files` and ingest the others; say what happened."""
    exports: list[tuple[str, bytes]] = []
    others: list[tuple[str, bytes]] = []
    for name, data in files:
        is_export = EXPORT_HEADER in data[:4096].split(b"\n", 1)[0]
        (exports if is_export else others).append((name, data))
    said = [_import_export(memory, name, data) for name, data in exports]
    if others:
        result = memory.ingest_uploads(
            others, user_id=scope.user_id, agent_id=scope.agent_id, me=me
        )
        said.append(
            f"Read {result.files} file(s): {result.added} added, {result.updated} updated,"
            f" {result.unchanged} unchanged, {result.removed} removed."
        )
        said += [f"Skipped {name}: {reason}" for name, reason in result.skipped]
    return said


def _import_export(memory: Memory, name: str, data: bytes) -> str:
    """Import one remem export (from a temporary file: the importer reads files)."""
    with tempfile.TemporaryDirectory(prefix="remem-upload-") as folder:
        path = Path(folder) / _safe_name(name)
        path.write_bytes(data)
        result = import_as(memory, path, path.name)
    return f"Imported {path.name}: {result.added} records added, {result.skipped} already here."


def _safe_name(name: str) -> str:
    """The file's own name, without folders, of characters a file system takes."""
    base = Path(name.replace("\\", "/")).name
    cleaned = "".join(c if c.isalnum() or c in "._- " else "_" for c in base).strip(". ")
    return cleaned[:120] or "upload"
