"""What to do with a file's chunks given its ledger: each chunk is the same as before
(by place and hash, or moved: same hash elsewhere), changed (same place, new hash: a new
version of its note), or new; what the ledger holds and no chunk matched is gone. A chunk
whose note the person forgot stays forgotten while it is unchanged."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from remem import clock, ids
from remem.ingest.ledger import Entry, key_digest
from remem.ingest.records import Chunk
from remem.ingest.sessions import digest
from remem.types import Note

Action = Literal["same", "update", "add", "remove", "forgotten", "drop"]


@dataclass(frozen=True)
class Step:
    """One chunk's fate: `entry` is its ledger entry before (None for a new chunk), `note`
    its live note (None for a new chunk); `chunk` is None for a removal."""

    action: Action
    chunk: Chunk | None
    hash: str
    entry: Entry | None
    note: Note | None
    episode_id: str
    note_id: str


def chunk_hash(chunk: Chunk) -> str:
    """What a chunk says, who said it and when: equal hashes, nothing to write."""
    when = clock.to_text(chunk.occurred_at) if chunk.occurred_at else ""
    described = json.dumps(chunk.metadata, sort_keys=True, ensure_ascii=False, default=str)
    return digest(chunk.text, chunk.name or "", chunk.role or "", when, described)[:32]


def plan(
    chunks: Sequence[Chunk],
    entries: Sequence[Entry],
    live: Mapping[str, Note],
    forgotten: Collection[str] = (),
) -> list[Step]:
    """The steps for `chunks` in file order, then the removals. Entries whose note is no
    longer live count as absent (a purged chunk is added again), except the `forgotten`
    (notes the person deleted): a chunk with such an entry's hash stays forgotten, and a
    forgotten entry no chunk has any more is dropped ("drop")."""
    hashes = [chunk_hash(chunk) for chunk in chunks]
    keys = [key_digest(chunk.key) for chunk in chunks]
    valid = [entry for entry in entries if entry.note_id in live]
    by_place: dict[str, list[Entry]] = defaultdict(list)
    by_hash: dict[str, list[Entry]] = defaultdict(list)
    tombs: dict[str, list[Entry]] = defaultdict(list)
    for entry in valid:
        by_place[entry.key].append(entry)
        by_hash[entry.hash].append(entry)
    for entry in entries:
        if entry.note_id in forgotten and entry.note_id not in live:
            tombs[entry.hash].append(entry)
    used: set[str] = set()

    def take(candidates: list[Entry], want_hash: str | None = None) -> Entry | None:
        for entry in candidates:
            if entry.note_id not in used and (want_hash is None or entry.hash == want_hash):
                used.add(entry.note_id)
                return entry
        return None

    matched: list[tuple[Entry | None, Action]] = [(None, "add")] * len(chunks)
    passes: list[tuple[Callable[[int], Entry | None], Action]] = [
        (lambda i: take(by_place[keys[i]], hashes[i]), "same"),  # same place, same content
        (lambda i: take(by_hash[hashes[i]]), "same"),  # moved: the same content elsewhere
        (lambda i: take(tombs[hashes[i]]), "forgotten"),  # unchanged, and the person forgot it
        (lambda i: take(by_place[keys[i]]), "update"),  # changed in place
    ]
    for find, action in passes:
        for i in range(len(chunks)):
            if matched[i][0] is None and (found := find(i)) is not None:
                matched[i] = (found, action)
    steps = [
        _step(chunk, hashes[i], entry, action, live)
        for i, (chunk, (entry, action)) in enumerate(zip(chunks, matched, strict=True))
    ]
    gone = [entry for entry in valid if entry.note_id not in used]
    dropped = [entry for found in tombs.values() for entry in found if entry.note_id not in used]
    return (
        steps
        + [Step("remove", None, e.hash, e, live[e.note_id], e.episode_id, e.note_id) for e in gone]
        + [Step("drop", None, e.hash, e, None, e.episode_id, e.note_id) for e in dropped]
    )


def _step(
    chunk: Chunk, hash_: str, entry: Entry | None, action: Action, live: Mapping[str, Note]
) -> Step:
    if entry is None:
        return Step("add", chunk, hash_, None, None, ids.new_id(ids.EPISODE), ids.new_id(ids.NOTE))
    if action == "forgotten":
        return Step("forgotten", chunk, hash_, entry, None, entry.episode_id, entry.note_id)
    note = live[entry.note_id]
    if action == "same":
        return Step("same", chunk, hash_, entry, note, entry.episode_id, entry.note_id)
    return Step("update", chunk, hash_, entry, note, ids.new_id(ids.EPISODE), entry.note_id)
