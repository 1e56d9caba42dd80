"""Obsidian `[[wikilinks]]` as links between notes ("links_to"): from the note of the chunk
that holds the link to the first note of the file it names. A file is known by its name
(`link_name`) per tenant and owner in the store's meta table; a link to a file not yet
ingested waits there, and is made when that file comes, in whichever order they come."""

from __future__ import annotations

import json
from collections.abc import Sequence

from remem import clock, ids
from remem.ingest.records import Chunk
from remem.ingest.sessions import digest
from remem.stores.base import Changes, Records
from remem.types import Link, Scope
from remem.write.versions import link_event

RELATION = "links_to"
MAX_WAITING = 10_000  # links waiting for one file: more are dropped, not kept forever


def _key(kind: str, owner: Scope, name: str) -> str:
    owner_part = f"{owner.tenant}\x00{owner.user_id or ''}\x00{owner.agent_id or ''}"
    return f"ingest-{kind}:{digest(owner_part, name)[:40]}"


def _read(store: Records, changes: Changes, key: str) -> str | None:
    """A meta row the links depend on, as the batch will expect it to be when it commits
    (another ingest that names or waits for the same file meanwhile makes it plan again)."""
    value = store.get_meta(key)
    changes.expect_meta.setdefault(key, value)
    return value


def wikilink_changes(
    store: Records,
    owner: Scope,
    actor: str,
    title: str | None,
    notes: Sequence[tuple[Chunk, str]],
) -> Changes:
    """The links a markdown file's chunks (with their note ids, in file order) make, and
    those other files were waiting to make to it; what still waits, in meta."""
    changes = Changes()
    if not notes:
        return changes
    head = notes[0][1]
    known: dict[str, str | None] = {}
    if title:
        known[title] = head
        if _read(store, changes, _key("title", owner, title)) != head:
            changes.meta[_key("title", owner, title)] = head
        waiting = _waiting(store, changes, owner, title)
        if waiting:
            changes.meta[_key("wants", owner, title)] = "[]"
            live = store.get_notes(waiting)
            for source in waiting:
                if source in live and live[source].deleted_at is None:
                    _link(store, changes, source, head, title)
    for chunk, note_id in notes:
        for name in chunk.links:
            if name not in known:
                known[name] = _live_target(store, changes, owner, name)
            target = known[name]
            if target is None:
                _wait(store, changes, owner, name, note_id)
            elif target != note_id:
                _link(store, changes, note_id, target, name)
    changes.events = [link_event(link, owner, actor) for link in changes.links]
    return changes


def _live_target(store: Records, changes: Changes, owner: Scope, name: str) -> str | None:
    target = _read(store, changes, _key("title", owner, name))
    if target is None:
        return None
    note = store.get_notes([target]).get(target)
    return target if note is not None and note.deleted_at is None else None


def _waiting(store: Records, changes: Changes, owner: Scope, name: str) -> list[str]:
    try:
        found = json.loads(_read(store, changes, _key("wants", owner, name)) or "[]")
    except ValueError:
        return []
    return [item for item in found if isinstance(item, str)] if isinstance(found, list) else []


def _wait(store: Records, changes: Changes, owner: Scope, name: str, note_id: str) -> None:
    key = _key("wants", owner, name)
    if key in changes.meta:
        waiting = json.loads(changes.meta[key])
    else:
        waiting = _waiting(store, changes, owner, name)
    if note_id not in waiting and len(waiting) < MAX_WAITING:
        changes.meta[key] = json.dumps([*waiting, note_id])


def _link(store: Records, changes: Changes, source: str, target: str, name: str) -> None:
    """A link from `source` to `target`, unless one is there already."""
    made = {(link.source_id, link.target_id) for link in changes.links}
    if (source, target) in made:
        return
    existing = store.links_of(source)
    if any(l.target_id == target and l.relation == RELATION for l in existing):  # noqa: E741
        return
    reason = f"[[{name}]] in its text"
    changes.links.append(
        Link(ids.new_id(ids.LINK), source, target, RELATION, 1.0, reason, clock.now())
    )
