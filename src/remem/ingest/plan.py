"""What to do with a file's chunks given its ledger: each chunk is the same as before
(by place and hash, or moved: same hash elsewhere), changed (same place, new hash: a new
version of its note), or new; what the ledger holds and no chunk matched is gone."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from remem import clock, ids
from remem.ingest.ledger import Entry
from remem.ingest.records import Chunk
from remem.ingest.sessions import digest
from remem.types import Note

Action = Literal["same", "update", "add", "remove"]


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


def plan(chunks: Sequence[Chunk], entries: Sequence[Entry], live: Mapping[str, Note]) -> list[Step]:
    """The steps for `chunks` in file order, then the removals. Entries whose note is no
    longer live (deleted or purged since) count as absent: their chunk is added again."""
    hashes = [chunk_hash(chunk) for chunk in chunks]
    valid = [entry for entry in entries if entry.note_id in live]
    by_place: dict[str, list[Entry]] = defaultdict(list)
    by_hash: dict[str, list[Entry]] = defaultdict(list)
    for entry in valid:
        by_place[entry.key].append(entry)
        by_hash[entry.hash].append(entry)
    used: set[str] = set()

    def take(candidates: list[Entry], want_hash: str | None = None) -> Entry | None:
        for entry in candidates:
            if entry.note_id not in used and (want_hash is None or entry.hash == want_hash):
                used.add(entry.note_id)
                return entry
        return None

    matched: list[tuple[Entry | None, bool]] = [(None, False)] * len(chunks)
    for i, chunk in enumerate(chunks):  # same place, same content
        found = take(by_place[chunk.key], hashes[i])
        matched[i] = (found, found is not None)
    for i in range(len(chunks)):  # moved: the same content elsewhere
        if matched[i][0] is None and (found := take(by_hash[hashes[i]])) is not None:
            matched[i] = (found, True)
    for i, chunk in enumerate(chunks):  # changed in place
        if matched[i][0] is None:
            matched[i] = (take(by_place[chunk.key]), False)
    steps = [
        _step(chunk, hashes[i], entry, same, live)
        for i, (chunk, (entry, same)) in enumerate(zip(chunks, matched, strict=True))
    ]
    gone = [entry for entry in valid if entry.note_id not in used]
    return steps + [
        Step("remove", None, e.hash, e, live[e.note_id], e.episode_id, e.note_id) for e in gone
    ]


def _step(
    chunk: Chunk, hash_: str, entry: Entry | None, same: bool, live: Mapping[str, Note]
) -> Step:
    if entry is None:
        return Step("add", chunk, hash_, None, None, ids.new_id(ids.EPISODE), ids.new_id(ids.NOTE))
    note = live[entry.note_id]
    if same:
        return Step("same", chunk, hash_, entry, note, entry.episode_id, entry.note_id)
    return Step("update", chunk, hash_, entry, note, ids.new_id(ids.EPISODE), entry.note_id)
