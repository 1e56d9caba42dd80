"""The memory list: newest first, a page at a time from the store, or search results
(ranked as `Memory.search` ranks them) with the matching words highlighted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from remem.errors import InvalidInputError
from remem.memory import Memory
from remem.server.ui.access import Viewer, viewer
from remem.server.ui.filters import (
    NEEDS_SCOPE,
    ScopeFilter,
    known_scopes,
    metadata_filter,
    page_start,
    scope_or_default,
)
from remem.server.ui.render import page
from remem.types import Hit, Note, Page

PAGE_SIZE = 50
SEARCH_LIMIT = 50
router = APIRouter(include_in_schema=False)
Looking = Annotated[Viewer, Depends(viewer)]
DONE = {  # what a redirect after a change says (fixed words: nothing of the request echoed)
    "forgotten": "The memory was forgotten: it is gone from the list and from search.",
    "purged": "The memory was purged: its text, vectors and history payloads are erased.",
    "added": "Remembered.",
}


@router.get("/", response_class=HTMLResponse)
def memories(request: Request, looking: Looking) -> Response:
    """Newest memories first, a page at a time; or, with `q`, the search results."""
    scope = ScopeFilter.of(request)
    query = request.query_params.get("q", "").strip()
    memory = looking.memory
    kind = request.query_params.get("kind", "")
    current = bool(request.query_params.get("current"))
    try:
        cursor = page_start(request)
        listed = list_page(memory, scope, cursor, kind, current)
    except InvalidInputError as error:
        return page(request, looking, "error.html", 422, title="Bad request", message=str(error))
    more = scope.query(cursor=listed.cursor, kind=kind or None, current="1" if current else None)
    if request.headers.get("hx-request") and cursor:
        return page(
            request,
            looking,
            "_rows.html",
            notes=listed.items,
            page=listed,
            more=more,
            continued=True,  # the first new row takes the focus the button had
        )
    hits, problem = _search(memory, request, scope, listed.items) if query else ([], None)
    return page(
        request,
        looking,
        "memories.html",
        title="Search" if query else "Memories",
        notes=listed.items,
        page=listed,
        more=more,
        kind=kind,
        current=current,
        scope=scope,
        query=query,
        hits=hits,
        problem=problem,
        known=known_scopes(listed.items),
        done=DONE.get(request.query_params.get("done", "")),
    )


KINDS = ("", "turn", "fact", "thought")
MAX_SCAN = 1000  # notes a filtered page reads at most, so a rare kind cannot scan everything


def list_page(
    memory: Memory, scope: ScopeFilter, cursor: str | None, kind: str, current: bool
) -> Page:
    """A page of the newest memories from `cursor`; with `kind` ("turn", "fact" or
    "thought") or `current` (nothing superseded), those of the next store pages that
    match, until a page is full or MAX_SCAN notes were read (then the cursor says where
    to go on)."""
    if kind not in KINDS:
        raise InvalidInputError(f"kind must be turn, fact or thought, not {kind!r}")
    kept: list[Note] = []
    scanned = 0
    while True:
        listed = memory.list(**scope.arguments(), limit=PAGE_SIZE, cursor=cursor, order="newest")
        scanned += len(listed.items)
        kept += [
            note
            for note in listed.items
            if (not kind or note.kind == kind) and not (current and note.superseded_by)
        ]
        cursor = listed.cursor
        if len(kept) >= PAGE_SIZE or cursor is None or scanned >= MAX_SCAN:
            return Page(items=tuple(kept), cursor=cursor)


def _search(
    memory: Memory, request: Request, scope: ScopeFilter, recent: tuple[Note, ...]
) -> tuple[list[Hit], str | None]:
    """Search hits, ranked as `Memory.search` ranks them, or why there are none. A
    `meta` of `key=value` keeps hits whose metadata has that value (as text, or as JSON
    when it reads as JSON); `superseded` also shows facts a later fact replaced."""
    arguments = scope_or_default(scope, recent)
    if arguments is None:
        return [], NEEDS_SCOPE
    try:
        return memory.search(
            request.query_params.get("q", ""),
            limit=SEARCH_LIMIT,
            filters=metadata_filter(request.query_params.get("meta", "")),
            include_superseded=bool(request.query_params.get("superseded")),
            **arguments,
        ), None
    except InvalidInputError as error:
        return [], str(error)
