"""The graph of notes and links around a memory (cytoscape, vendored), as JSON data in
the page; the same notes and links as a list for keyboards and screen readers."""

from __future__ import annotations

from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from remem.errors import InvalidInputError, NotFoundError
from remem.memory import Memory
from remem.server.ui.access import Viewer, viewer
from remem.server.ui.filters import ScopeFilter
from remem.server.ui.render import page, short
from remem.types import Link, Note, Topic

router = APIRouter(include_in_schema=False)
Looking = Annotated[Viewer, Depends(viewer)]
MAX_NODES = 80
DEPTH = 2


def neighbourhood(
    memory: Memory, center: Note, depth: int = DEPTH, limit: int = MAX_NODES
) -> tuple[dict[str, Note], dict[str, Link], dict[str, int]]:
    """The notes within `depth` links of `center` (at most `limit`), the links between
    them, and how many links away each note is, breadth first."""
    notes = {center.id: center}
    distances = {center.id: 0}
    links: dict[str, Link] = {}
    queue = deque([(center, 0)])
    while queue:
        note, distance = queue.popleft()
        if distance >= depth:
            continue
        for link in memory.links(note.id):
            other_id = link.target_id if link.source_id == note.id else link.source_id
            if other_id not in notes:
                if len(notes) >= limit:
                    continue
                try:
                    notes[other_id] = memory.get(other_id)
                except NotFoundError:
                    continue
                distances[other_id] = distance + 1
                queue.append((notes[other_id], distance + 1))
            links[link.id] = link
    return notes, links, distances


def graph_data(
    center: Note | None,
    notes: dict[str, Note],
    links: dict[str, Link],
    distances: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Cytoscape's elements; labels are plain text the library draws on a canvas."""
    nodes: list[dict[str, Any]] = []
    for note in notes.values():
        data: dict[str, Any] = {"id": note.id, "label": short(note.text, 48)}
        data["center"] = center is not None and note.id == center.id
        if distances is not None:
            data["depth"] = distances.get(note.id, DEPTH)
        nodes.append({"data": data})
    edges = [
        {"data": {"id": k.id, "source": k.source_id, "target": k.target_id, "label": k.relation}}
        for k in links.values()
        if k.source_id in notes and k.target_id in notes
    ]
    return {"nodes": nodes, "edges": edges}


def topic_notes(memory: Memory, topic: Topic, limit: int = MAX_NODES) -> dict[str, Note]:
    """The live notes of a topic of this tenant (at most `limit`)."""
    found = memory.store.get_notes(list(topic.note_ids[:limit]))
    return {
        note_id: note
        for note_id, note in found.items()
        if note.deleted_at is None and note.scope.tenant == memory.tenant
    }


def _topic_page(request: Request, looking: Viewer, topic_id: str) -> Response:
    memory = looking.memory
    scope = ScopeFilter.of(request)
    try:
        topics = memory.topics(user_id=scope.user_id, agent_id=scope.agent_id)
    except InvalidInputError as error:
        return page(request, looking, "error.html", 422, title="Bad request", message=str(error))
    topic = next((found for found in topics if found.id == topic_id), None)
    notes = topic_notes(memory, topic) if topic else {}
    if topic is None or not notes:
        message = "No such topic for this user (topics change as memories come and go)."
        return page(request, looking, "error.html", 404, title="Not found", message=message)
    links = {
        link.id: link
        for note_id in notes
        for link in memory.links(note_id)
        if link.source_id in notes and link.target_id in notes
    }
    center = next(iter(notes.values()))
    return page(
        request,
        looking,
        "graph.html",
        title="Graph",
        center=center,
        topic=topic,
        notes=list(notes.values()),
        links=list(links.values()),
        data=graph_data(None, notes, links),
    )


@router.get("/graph", response_class=HTMLResponse)
def graph(request: Request, looking: Looking) -> Response:
    memory = looking.memory
    if topic_id := request.query_params.get("topic", "").strip():
        return _topic_page(request, looking, topic_id)
    center_id = request.query_params.get("id", "").strip()
    try:
        if center_id:
            center: Note | None = memory.get(center_id)
        else:
            newest = memory.list(limit=1, order="newest").items
            center = newest[0] if newest else None
    except (NotFoundError, InvalidInputError):
        message = "No such memory here: it may have been forgotten."
        return page(request, looking, "error.html", 404, title="Not found", message=message)
    if center is None:
        return page(request, looking, "graph.html", title="Graph", center=None, data=None)
    notes, links, distances = neighbourhood(memory, center)
    return page(
        request,
        looking,
        "graph.html",
        title="Graph",
        center=center,
        notes=list(notes.values()),
        links=list(links.values()),
        data=graph_data(center, notes, links, distances),
    )
