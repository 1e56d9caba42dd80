"""Notes merged into another by consolidation, as every other write sees them.

A merged note is superseded by the note it was merged into (its survivor) but keeps
`valid_to` empty: unlike a superseded fact it did not stop being true, the survivor says it
(with the merged note's episodes among its sources). A `merged_into` link goes from it to the
survivor. So:

- its id resolves to the survivor: `get`, `update`, `delete`, `purge` of a merged id act
  on the note that now holds what it said (`resolved`);
- deleting or purging a survivor by its id takes the notes merged into it along
  (`merged_into`): the person asked to forget what they all said;
- deleting or purging it with its session, scope or episode leaves what was said elsewhere:
  the notes merged into it that do not go are merged no more (`restore_orphans`).

The survivor keeps its own sources; each merged note keeps its own, so deleting one
episode takes exactly the notes made from it, and the merge links reach them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from remem import clock
from remem.stores.base import Changes, Records
from remem.types import Note
from remem.write.versions import event, snapshot

MERGED_INTO = "merged_into"
# merges of merges a lookup follows (a survivor may itself be merged later; a chain is as
# long as the number of consolidation passes that each merged its head)
RESOLVE_DEPTH = 16


def is_merged(note: Note) -> bool:
    """Whether consolidation merged this note into another one."""
    return note.superseded_by is not None and note.valid_to is None and note.kind != "thought"


def resolved(note: Note, store: Records) -> Note:
    """The note a merged note's content lives in now (following merges of merges); the
    note itself when it was not merged, or when its survivor is gone."""
    for _ in range(RESOLVE_DEPTH):
        if not is_merged(note) or note.superseded_by is None or not _linked(note, store):
            return note
        survivor = store.get_notes([note.superseded_by]).get(note.superseded_by)
        if survivor is None or survivor.scope.tenant != note.scope.tenant:
            return note
        note = survivor
    return note


def merged_into(notes: Sequence[Note], store: Records) -> list[Note]:
    """Every note merged into one of `notes`, directly or through merges of merges."""
    found: dict[str, Note] = {}
    frontier = list(notes)
    for _ in range(RESOLVE_DEPTH):
        if not frontier:
            break
        links = store.links_to([n.id for n in frontier], MERGED_INTO, frontier[0].scope)
        sources = store.get_notes([link.source_id for link in links])
        frontier = [
            note
            for note in sources.values()
            if note.id not in found
            and is_merged(note)
            and note.scope.tenant == notes[0].scope.tenant
        ]
        found.update((note.id, note) for note in frontier)
    return list(found.values())


def restore_orphans(changes: Changes, going: Sequence[Note], store: Records, actor: str) -> Changes:
    """`changes`, which delete or erase the `going` notes, with every live note merged
    directly into one of them that does not go itself made live again ("unmerge"): what it
    said is not what the person asked to forget."""
    leaving = {*changes.purge, *(n.id for n in changes.notes if n.deleted_at is not None)}
    leaving |= {note.id for note in going}
    orphans = [
        note
        for note in merged_into(going, store)
        if note.id not in leaving and note.deleted_at is None and note.superseded_by in leaving
    ]
    moment = clock.now()
    for note in orphans:
        back = replace(note, superseded_by=None, version=note.version + 1, updated_at=moment)
        why = {"reason": f"the memory it was merged into, {note.superseded_by}, went"}
        changes.notes.append(back)
        changes.events.append(
            event("unmerge", note.id, note.scope, actor, snapshot(note), {**snapshot(back), **why})
        )
        changes.expect.setdefault(note.id, note.version)
    return changes


def _linked(note: Note, store: Records) -> bool:
    """Whether consolidation linked the note to what supersedes it (a note superseded
    another way, or written so by hand, is not merged whatever its `valid_to`)."""
    return any(
        link.relation == MERGED_INTO
        and link.source_id == note.id
        and link.target_id == note.superseded_by
        for link in store.links_of(note.id)
    )
