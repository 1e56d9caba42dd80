"""The one entry point of ingesting: files (or uploaded bytes) in, an `IngestResult` out.

For each file: read it as its format says, give each chunk its speaker's role, match the
chunks with the file's ledger, and commit the steps in batches (each batch's notes
embedded together, the ledger in the same transaction). A file that cannot be read is
reported in `skipped` and the others go on.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from remem.errors import InvalidInputError, StoreError
from remem.ingest import detect
from remem.ingest.batch import FileFacts, Target, batch_changes
from remem.ingest.files import find_files, read_source
from remem.ingest.ledger import Ledger, ledger_name
from remem.ingest.links import wikilink_changes
from remem.ingest.plan import Step, chunk_hash, plan
from remem.ingest.records import Chunk, Parsed, Source, UnreadableFileError
from remem.ingest.sessions import digest
from remem.stores.base import Changes, Records, StaleWriteError
from remem.types import IngestResult, Note

__all__ = ["BATCH", "Me", "Progress", "Target", "ingest_paths", "ingest_sources"]

BATCH = 256  # chunk writes per transaction: one embedding batch, a short write lock
MAX_KEY = 200  # characters of a chunk's key (ids in an export may be any length)
ATTEMPTS = 5  # a file another writer overtook is planned again this many times
Me = str | Callable[[list[str]], str | None] | None
Commit = Callable[[Changes], None]
_file_locks: dict[str, threading.Lock] = {}
_file_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Progress:
    """Where an ingest is: file `index` of `files` (`path`), `done` of its `total` steps."""

    path: str
    index: int
    files: int
    done: int
    total: int


@dataclass
class _Tally:
    files: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def result(self) -> IngestResult:
        counts = self.counts
        return IngestResult(
            files=self.files,
            added=counts["add"],
            updated=counts["update"],
            unchanged=counts["same"],
            removed=counts["remove"],
            skipped=tuple(self.skipped or ()),
        )


class _Person:
    """Who "me" is: given, or asked once (a callable) when a chat needs it."""

    def __init__(self, me: Me) -> None:
        self.name = me if isinstance(me, str) and me.strip() else None
        self._ask = me if callable(me) else None

    def needed(self, senders: Sequence[str]) -> str | None:
        if self.name is None and self._ask is not None and len(senders) > 1:
            answer, self._ask = self._ask(list(senders)), None
            self.name = answer.strip() if answer and answer.strip() else None
        return self.name


def ingest_paths(
    paths: str | Path | Iterable[str | Path],
    target: Target,
    commit: Commit,
    *,
    me: Me = None,
    progress: Callable[[Progress], None] | None = None,
    batch: int = BATCH,
) -> IngestResult:
    """Ingest files and folders (recursively) on this machine."""
    found = list(find_files([Path(path).expanduser() for path in _paths(paths)]))

    def sources() -> Iterable[Source | tuple[str, str]]:
        for item in found:
            try:
                yield read_source(item) if item.problem is None else (item.name, item.problem)
            except UnreadableFileError as error:
                yield (item.name, str(error))

    return ingest_sources(sources(), target, commit, me=me, progress=progress, batch=batch,
                          count=len(found))  # fmt: skip


def ingest_sources(
    sources: Iterable[Source | tuple[str, str]],
    target: Target,
    commit: Commit,
    *,
    me: Me = None,
    progress: Callable[[Progress], None] | None = None,
    batch: int = BATCH,
    count: int | None = None,
) -> IngestResult:
    """Ingest files given as bytes (uploads), or (name, reason) pairs already skipped."""
    if not (target.owner.user_id or target.owner.agent_id):
        raise InvalidInputError(
            "ingest needs an owner: pass user_id and/or agent_id (each conversation or"
            " document becomes a session of it)"
        )
    tally = _Tally()
    person = _Person(me)
    for index, source in enumerate(sources, 1):
        if isinstance(source, tuple):
            tally.skipped.append(source)
            continue
        try:
            parsed = detect.parse(source, person.name)
            chunks = _prepared(parsed, person)
        except UnreadableFileError as error:
            tally.skipped.append((source.path, str(error)))
            continue

        def report(done: int, total: int, path: str = source.path, at: int = index) -> None:
            if progress is not None:
                progress(Progress(path, at, count or at, done, total))

        steps = _sync_file(parsed, chunks, source, target, commit, report, batch)
        tally.counts.update(step.action for step in steps)
        tally.files += 1
    return tally.result()


def _paths(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    if isinstance(paths, str | Path):
        return [paths]
    listed = list(paths)
    if not listed:
        raise InvalidInputError("ingest needs at least one file or folder")
    return listed


def _prepared(parsed: Parsed, person: _Person) -> list[Chunk]:
    """The chunks with roles (the person's own messages "user", the others' their
    sender's name), storable text, and keys unique in the file."""
    me = person.needed(parsed.senders) if parsed.senders else person.name
    seen: Counter[str] = Counter()
    chunks = []
    for chunk in parsed.chunks:
        role = chunk.role
        if role is None and chunk.name:
            mine = me is not None and chunk.name.casefold() == me.casefold()
            role = "user" if mine else chunk.name
        seen[chunk.key] += 1
        key = chunk.key if seen[chunk.key] == 1 else f"{chunk.key}~{seen[chunk.key]}"
        key = key if len(key) <= MAX_KEY else f"{key[: MAX_KEY - 33]}~{digest(key)[:32]}"
        text = storable(chunk.text).strip()
        if text:
            name = storable(chunk.name) if chunk.name else None
            metadata = storable(chunk.metadata)
            chunks.append(replace(chunk, key=storable(key), text=text, name=name, role=role,
                                  metadata=metadata))  # fmt: skip
    if not chunks:
        raise UnreadableFileError(f"no text found in it (read as {parsed.format})")
    return chunks


def storable(value: Any) -> Any:
    """Strings both stores can keep: no NUL, no lone surrogate (JSON exports may hold
    both); in dicts and lists too."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _sync_file(
    parsed: Parsed,
    chunks: list[Chunk],
    source: Source,
    target: Target,
    commit: Commit,
    report: Callable[[int, int], None],
    batch: int,
) -> list[Step]:
    """Bring the memory in line with one file, planned again when another writer changed
    one of its notes in between; the steps taken."""
    name = ledger_name(target.owner, source.identity)
    with _lock(name):
        for _ in range(ATTEMPTS):
            try:
                return _apply_plan(parsed, chunks, source, target, commit, report, batch, name)
            except StaleWriteError as stale:
                overtaken = stale
        raise StoreError(f"{source.path}: gave up after {ATTEMPTS} attempts: {overtaken}")


def _apply_plan(
    parsed: Parsed,
    chunks: list[Chunk],
    source: Source,
    target: Target,
    commit: Commit,
    report: Callable[[int, int], None],
    batch: int,
    name: str,
) -> list[Step]:
    ledger = Ledger.load(target.store, name)
    entries = ledger.entries()
    live = _live_notes(target.store, [entry.note_id for entry in entries])
    for entry in entries:
        if entry.note_id not in live:
            ledger.drop(entry.note_id)  # deleted or purged since: its chunk comes back
    steps = plan(chunks, entries, live)
    file_hash = digest(parsed.format, *(chunk_hash(chunk) for chunk in chunks))
    facts = FileFacts(parsed.format, source.path, _fallback_time(chunks, source))
    batches = _batches(steps, batch)
    for number, part in enumerate(batches, 1):
        changes = batch_changes(part, facts, target, ledger)
        if number == len(batches):
            ledger.finish(file_hash)
            _merge(changes, _links(parsed, steps, target))
        changes.meta.update(ledger.flush())
        if _writes_anything(changes):
            commit(changes)
        report(sum(len(done) for done in batches[:number]), len(steps))
    return steps


def _batches(steps: list[Step], size: int) -> list[list[Step]]:
    """Runs of steps with at most `size` writes each (unchanged chunks cost nothing)."""
    batches: list[list[Step]] = [[]]
    writes = 0
    for step in steps:
        if step.action != "same" and writes >= size:
            batches.append([])
            writes = 0
        batches[-1].append(step)
        writes += step.action != "same"
    return batches


def _live_notes(store: Records, note_ids: list[str]) -> dict[str, Note]:
    live: dict[str, Note] = {}
    for start in range(0, len(note_ids), 500):
        found = store.get_notes(note_ids[start : start + 500])
        live.update({i: note for i, note in found.items() if note.deleted_at is None})
    return live


def _fallback_time(chunks: list[Chunk], source: Source) -> Any:
    """When a chunk without a time of its own happened: the first time the file gives,
    else when the file was last changed."""
    return next((c.occurred_at for c in chunks if c.occurred_at is not None), source.modified)


def _links(parsed: Parsed, steps: list[Step], target: Target) -> Changes:
    if parsed.title is None:
        return Changes()
    notes = [(step.chunk, step.note_id) for step in steps if step.chunk is not None]
    return wikilink_changes(target.store, target.owner, target.actor, parsed.title, notes)


def _merge(changes: Changes, more: Changes) -> None:
    changes.links += more.links
    changes.events += more.events
    changes.meta.update(more.meta)


def _writes_anything(changes: Changes) -> bool:
    return bool(changes.episodes or changes.notes or changes.links or changes.meta)


def _lock(name: str) -> threading.Lock:
    """One ingest of a file (per tenant and owner) at a time in this process."""
    with _file_locks_guard:
        return _file_locks.setdefault(name, threading.Lock())
