"""One memory's page: its text, versions (with a diff), source episodes, links and
history; correcting it (a new version), forgetting and purging it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from remem.errors import ConflictError, InvalidInputError, NotFoundError
from remem.memory import Memory
from remem.server.ui.access import Viewer, posted, viewer
from remem.server.ui.filters import parse_metadata
from remem.server.ui.render import page, redirect
from remem.types import Episode, Event, Link, Note

router = APIRouter(include_in_schema=False)
Looking = Annotated[Viewer, Depends(viewer)]
Posting = Annotated[Viewer, Depends(posted)]


@router.get("/memories/{memory_id}", response_class=HTMLResponse)
def one_memory(request: Request, memory_id: str, looking: Looking) -> Response:
    return _memory_page(request, looking, memory_id)


def _memory_page(
    request: Request,
    looking: Viewer,
    memory_id: str,
    status: int = 200,
    **values: Any,
) -> Response:
    memory = looking.memory
    try:
        note = memory.get(memory_id)
    except (NotFoundError, InvalidInputError):
        message = _why_missing(memory, memory_id)
        return page(request, looking, "error.html", 404, title="Not found", message=message)
    try:
        history = memory.history(note.id)
    except NotFoundError:  # a note written without its history (e.g. copied in by a tool)
        history = []
    values.setdefault("draft_text", note.text)
    values.setdefault("draft_metadata", json.dumps(note.metadata, indent=2, ensure_ascii=False))
    return page(
        request,
        looking,
        "memory.html",
        status,
        title=f"Memory {note.id[-8:]}",
        note=note,
        versions=versions(note, history),
        history=history,
        episodes=_episodes(memory, note),
        links=_links(memory, note),
        superseded_by=_note_or_none(memory, note.superseded_by),
        **values,
    )


GONE = {"delete": "forgotten", "purge": "purged"}


def _why_missing(memory: Memory, memory_id: str) -> str:
    """Why a memory of this tenant has no page: forgotten or purged (and when), or never
    here at all (which is also what another tenant's memory looks like)."""
    try:
        last = memory.history(memory_id)[-1]
    except (NotFoundError, InvalidInputError):
        last = None
    if last is not None and last.action in GONE:
        return f"This memory was {GONE[last.action]} on {last.at:%Y-%m-%d %H:%M} UTC."
    return "No such memory here."


@dataclass(frozen=True)
class Version:
    number: int
    text: str
    metadata: dict[str, Any]
    at: str
    action: str


def versions(note: Note, history: list[Event]) -> list[Version]:
    """Each version of a note's text and metadata, newest first, from its history: an
    update's `before` is the version it replaced, its `after` the version it made."""
    found: dict[int, Version] = {}
    for event in history:
        for side, action in ((event.before, "add"), (event.after, event.action)):
            if side and isinstance(side.get("version"), int) and isinstance(side.get("text"), str):
                if side is event.before and side["version"] in found:
                    continue
                found[side["version"]] = Version(
                    side["version"],
                    side["text"],
                    dict(side.get("metadata") or {}),
                    str(side.get("updated_at", ""))[:19].replace("T", " "),
                    action,
                )
    action = found[note.version].action if note.version in found else "add"
    at = note.updated_at.strftime("%Y-%m-%d %H:%M:%S")
    found[note.version] = Version(note.version, note.text, note.metadata, at, action)
    return [found[number] for number in sorted(found, reverse=True)]


def _episodes(memory: Memory, note: Note) -> list[Episode]:
    found = []
    for episode_id in note.episode_ids:
        try:
            found.append(memory.episode(episode_id))
        except NotFoundError:
            continue
    return found


@dataclass(frozen=True)
class LinkView:
    link: Link
    outgoing: bool
    other: Note | None


def _links(memory: Memory, note: Note) -> list[LinkView]:
    shown = []
    for link in memory.links(note.id):
        outgoing = link.source_id == note.id
        other_id = link.target_id if outgoing else link.source_id
        shown.append(LinkView(link, outgoing, _note_or_none(memory, other_id)))
    return shown


def _note_or_none(memory: Memory, note_id: str | None) -> Note | None:
    if not note_id:
        return None
    try:
        return memory.get(note_id)
    except NotFoundError:
        return None


@router.post("/memories/{memory_id}/edit", response_class=HTMLResponse)
def edit(
    request: Request,
    memory_id: str,
    looking: Posting,
    text: Annotated[str, Form()] = "",
    metadata: Annotated[str, Form()] = "",
    expected_version: Annotated[int, Form()] = 0,
) -> Response:
    """A new version with the changed text and/or metadata, if the memory is still at the
    version the form showed; else the page says who won and keeps the draft."""
    memory = looking.memory
    draft: dict[str, Any] = {"draft_text": text, "draft_metadata": metadata}
    try:
        note = memory.get(memory_id)
        new_metadata = parse_metadata(metadata)
        changes: dict[str, Any] = {}
        if text.strip() and text != note.text:
            changes["text"] = text
        if new_metadata is not None and new_metadata != note.metadata:
            changes["metadata"] = new_metadata
        if not changes:
            return _memory_page(request, looking, memory_id, notice="Nothing changed.", **draft)
        memory.update(memory_id, expected_version=expected_version or None, **changes)
    except ConflictError:
        current = memory.get(memory_id).version
        message = (
            f"Someone changed this memory while you edited it (it is now at version {current},"
            f" you edited version {expected_version}). Your draft is below; review and save again."
        )
        return _memory_page(request, looking, memory_id, 409, problem=message, **draft)
    except NotFoundError:
        return _memory_page(request, looking, memory_id)
    except InvalidInputError as error:
        return _memory_page(request, looking, memory_id, 422, problem=str(error), **draft)
    return redirect(request, f"/memories/{memory_id}?saved=1")


@router.post("/memories/{memory_id}/forget", response_class=HTMLResponse)
def forget(request: Request, memory_id: str, looking: Posting) -> Response:
    try:
        looking.memory.delete(memory_id)
    except (NotFoundError, InvalidInputError):
        return _memory_page(request, looking, memory_id)
    return redirect(request, "/?done=forgotten")


@router.post("/memories/{memory_id}/purge", response_class=HTMLResponse)
def purge(
    request: Request,
    memory_id: str,
    looking: Posting,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if confirm != "purge":
        message = "To purge, tick the box that says you understand it cannot be undone."
        return _memory_page(request, looking, memory_id, 422, problem=message)
    try:
        looking.memory.purge(memory_id)
    except (NotFoundError, InvalidInputError):
        return _memory_page(request, looking, memory_id)
    return redirect(request, "/?done=purged")


@router.get("/episodes/{episode_id}", response_class=HTMLResponse)
def one_episode(request: Request, episode_id: str, looking: Looking) -> Response:
    """One episode (a raw input) verbatim, and the memories made from it."""
    memory = looking.memory
    try:
        episode = memory.episode(episode_id)
    except (NotFoundError, InvalidInputError):
        message = _why_missing(memory, episode_id).replace("memory", "episode")
        return page(request, looking, "error.html", 404, title="Not found", message=message)
    notes = [
        note
        for note in memory.store.notes_of_episodes([episode.id])
        if note.scope.tenant == memory.tenant
    ]
    return page(
        request,
        looking,
        "episode.html",
        title=f"Episode {episode.id[-8:]}",
        episode=episode,
        notes=notes,
    )
